//! How Herald reads an inbound reply (messaging.md T5, T6, W7, C2, C3): the
//! carrier keywords in any case with spaces or punctuation around them, their
//! equivalents in Herald's other locales, one-letter misspellings of STOP,
//! free text a reasonable person would read as "stop", and the two-way
//! answers to a reminder (confirm, cancel the appointment, reschedule). The
//! inbound webhook and `herald reply classify` both call [`classify`].

/// What a reply means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyIntent {
    /// Revoke consent (T5, T6).
    Stop,
    /// Opt back in (W7: START, UNSTOP, YES).
    Start,
    /// Brand, support contact and opt-out instructions; no consent change (C2).
    Help,
    /// Confirm the appointment just reminded of.
    Confirm,
    /// Cancel that appointment.
    CancelAppointment,
    /// Ask for another time.
    Reschedule,
    /// Anything else: a person reads it.
    Other,
}

impl ReplyIntent {
    /// The name in `herald reply classify` output.
    pub fn code(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Start => "start",
            Self::Help => "help",
            Self::Confirm => "confirm",
            Self::CancelAppointment => "cancel_appointment",
            Self::Reschedule => "reschedule",
            Self::Other => "other",
        }
    }
}

/// What the patient is answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyContext {
    /// Nothing in particular.
    #[default]
    None,
    /// A reminder or confirmation that asked "Reply C to confirm, R to reschedule".
    Reminder,
    /// The confirmation of an opt-out ("Reply START to resubscribe").
    AfterOptOut,
}

impl ReplyContext {
    /// Parses `reminder` / `after_opt_out` / `none`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "reminder" => Some(Self::Reminder),
            "after_opt_out" => Some(Self::AfterOptOut),
            "none" | "" => Some(Self::None),
            _ => None,
        }
    }
}

/// Carrier opt-out keywords (T5, W7) and their equivalents in Herald's locales.
const STOP: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
    "STOPP",
    // es
    "ALTO",
    "PARAR",
    "PARE",
    "BAJA",
    "DETENER",
    "DARMEDEBAJA",
    "NOMAS",
    // zh, vi, tl, ko, ru, ar, ht
    "退订",
    "停止",
    "取消订阅",
    "DUNG",
    "DUNGLAI",
    "HUY",
    "TIGIL",
    "HINTO",
    "ITIGIL",
    "중지",
    "수신거부",
    "그만",
    "СТОП",
    "ОТПИСАТЬСЯ",
    "ОТПИСКА",
    "توقف",
    "إيقاف",
    "الغاء",
    "SISPANN",
    "KANPE",
    "RETIRE",
];
const START: &[&str] = &[
    "START",
    "UNSTOP",
    "YES",
    "SUBSCRIBE",
    "COMENZAR",
    "INICIAR",
    "REANUDAR",
    "开始",
    "BATDAU",
    "SIMULA",
    "시작",
    "СТАРТ",
    "ابدأ",
    "KOMANSE",
];
const HELP: &[&str] = &[
    "HELP",
    "INFO",
    "AYUDA",
    "帮助",
    "GIUP",
    "TROGIUP",
    "TULONG",
    "도움말",
    "도움",
    "ПОМОЩЬ",
    "مساعدة",
    "ED",
];
const CONFIRM: &[&str] = &[
    "C",
    "Y",
    "YES",
    "YEP",
    "YEAH",
    "CONFIRM",
    "CONFIRMED",
    "OK",
    "OKAY",
    "SI",
    "CONFIRMO",
    "CONFIRMAR",
    "确认",
    "是",
    "XACNHAN",
    "CO",
    "OO",
    "KUMPIRMA",
    "확인",
    "예",
    "ДА",
    "ПОДТВЕРЖДАЮ",
    "نعم",
    "تأكيد",
    "WI",
    "KONFIME",
];
const RESCHEDULE: &[&str] = &[
    "R",
    "RESCHEDULE",
    "CHANGE",
    "REPROGRAMAR",
    "CAMBIAR",
    "改期",
    "DOILICH",
    "ILIPAT",
    "변경",
    "ПЕРЕНЕСТИ",
    "تغيير",
    "CHANJE",
];
const CANCEL_APPOINTMENT: &[&str] = &[
    "CANCELAPPOINTMENT",
    "CANCELAPPT",
    "CANCELVISIT",
    "CANCELARCITA",
    "CANCELARLACITA",
    "取消预约",
    "HUYLICHHEN",
    "KANSELAHIN",
    "예약취소",
    "ОТМЕНИТЬ",
    "ОТМЕНИТЬПРИЁМ",
    "ОТМЕНИТЬПРИЕМ",
    "إلغاءالموعد",
    "ANILERANDEVOU",
];

/// Free text a reasonable person would read as "stop" (T6), folded and
/// lower-cased, matched as substrings.
const STOP_PHRASES: &[&str] = &[
    "stop text",
    "stop messag",
    "stop send",
    "stop contact",
    "stop call",
    "stop these",
    "stop this",
    "stop it",
    "stop please",
    "please stop",
    "stop now",
    "dont text",
    "don't text",
    "do not text",
    "dont message",
    "do not message",
    "do not contact",
    "dont contact",
    "don't contact",
    "no more text",
    "no more messag",
    "no more call",
    "unsubscribe",
    "remove me",
    "take me off",
    "opt me out",
    "opt out",
    "opt-out",
    "leave me alone",
    "wrong number",
    "not interested",
    "no mas mensajes",
    "no mas textos",
    "no mas",
    "no me escriban",
    "no me envien",
    "no me manden",
    "dejen de",
    "deje de",
    "ya no quiero",
    "quitenme",
    "quiteme",
    "borrenme",
    "darme de baja",
    "no quiero recibir",
    "numero equivocado",
    "basta",
];

/// Folds a reply for matching: accents off, upper case, letters and digits
/// only (so "opt-out", " Stop! " and "s t o p" compare as keywords).
fn squeeze(text: &str) -> String {
    text.chars()
        .filter_map(|c| {
            let f = fold(c);
            f.is_alphanumeric().then_some(f)
        })
        .flat_map(char::to_uppercase)
        .collect()
}

fn fold(c: char) -> char {
    match c {
        'á' | 'à' | 'â' | 'ä' | 'ã' | 'Á' | 'À' | 'Â' | 'Ä' | 'Ã' | 'ạ' | 'ả' | 'ă' | 'ắ' | 'ằ'
        | 'ấ' | 'ầ' | 'ậ' | 'ặ' | 'ẩ' | 'ẫ' | 'ẳ' | 'ẵ' => 'a',
        'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' | 'ẹ' | 'ẻ' | 'ẽ' | 'ế' | 'ề' | 'ệ' | 'ể'
        | 'ễ' => 'e',
        'í' | 'ì' | 'î' | 'ï' | 'Í' | 'Ì' | 'Î' | 'Ï' | 'ị' | 'ỉ' | 'ĩ' => 'i',
        'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'Ó' | 'Ò' | 'Ô' | 'Ö' | 'Õ' | 'ơ' | 'ọ' | 'ỏ' | 'ố' | 'ồ'
        | 'ộ' | 'ổ' | 'ỗ' | 'ớ' | 'ờ' | 'ợ' | 'ở' | 'ỡ' => 'o',
        'ú' | 'ù' | 'û' | 'ü' | 'Ú' | 'Ù' | 'Û' | 'Ü' | 'ư' | 'ụ' | 'ủ' | 'ũ' | 'ứ' | 'ừ' | 'ự'
        | 'ử' | 'ữ' => 'u',
        'ñ' | 'Ñ' => 'n',
        'đ' | 'Đ' => 'd',
        'ý' | 'ỳ' | 'ỵ' | 'ỷ' | 'ỹ' => 'y',
        'ç' | 'Ç' => 'c',
        'ё' | 'Ё' => 'е',
        other => other,
    }
}

/// Lower-cased, accent-folded text with single spaces, for phrase matching.
fn words(text: &str) -> String {
    let folded: String = text
        .chars()
        .map(|c| fold(c).to_lowercase().next().unwrap_or(c))
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' || c == '-' {
                c
            } else {
                ' '
            }
        })
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One edit (insert, delete, substitute, or swap of neighbours) from "STOP".
fn near_stop(word: &str) -> bool {
    let w: Vec<char> = word.chars().collect();
    let s: Vec<char> = "STOP".chars().collect();
    if w == s {
        return true;
    }
    match w.len() {
        4 => {
            let diff: Vec<usize> = (0..4).filter(|&i| w.get(i) != s.get(i)).collect();
            match diff.as_slice() {
                // A slip onto a neighbouring key ("STIP", "STOO"), never another word ("SHOP").
                [i] => match (s.get(*i), w.get(*i)) {
                    (Some(want), Some(got)) => qwerty_neighbours(*want).contains(*got),
                    _ => false,
                },
                [i, j] if *j == *i + 1 => w.get(*i) == s.get(*j) && w.get(*j) == s.get(*i),
                _ => false,
            }
        }
        3 | 5 => {
            let (long, short) = if w.len() > 4 { (&w, &s) } else { (&s, &w) };
            (0..long.len()).any(|skip| {
                let mut it = long
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| *k != skip)
                    .map(|(_, c)| c);
                short.iter().all(|c| it.next() == Some(c))
            }) && w.first() == Some(&'S')
        }
        _ => false,
    }
}

fn qwerty_neighbours(c: char) -> &'static str {
    match c {
        'S' => "AWEDXZ",
        'T' => "RYFG56",
        'O' => "IPKL90",
        'P' => "OL0",
        _ => "",
    }
}

/// Reads one inbound reply.
pub fn classify(text: &str, context: ReplyContext) -> ReplyIntent {
    let key = squeeze(text);
    if key.is_empty() {
        return ReplyIntent::Other;
    }
    let is = |set: &[&str]| set.iter().any(|k| squeeze(k) == key);
    // Two-way answers first where a reminder asked for them ("YES" confirms
    // there); everywhere else YES is the carrier's opt-in (W7).
    if context == ReplyContext::Reminder {
        if is(CONFIRM) {
            return ReplyIntent::Confirm;
        }
        if is(RESCHEDULE) {
            return ReplyIntent::Reschedule;
        }
    }
    if is(CANCEL_APPOINTMENT) {
        return ReplyIntent::CancelAppointment;
    }
    if is(STOP) {
        return ReplyIntent::Stop;
    }
    if is(START) {
        return ReplyIntent::Start;
    }
    if is(HELP) {
        return ReplyIntent::Help;
    }
    let w = words(text);
    let first = w.split(' ').next().unwrap_or_default().to_uppercase();
    // "Stop!!", "STOP please", "stpo", "Stop it now".
    if near_stop(&first) || (first == "STOP" && !w.contains("stop by")) {
        return ReplyIntent::Stop;
    }
    if STOP_PHRASES.iter().any(|p| w.contains(p)) {
        return ReplyIntent::Stop;
    }
    if context == ReplyContext::Reminder {
        let cancel_phrases = [
            "cancel my appointment",
            "cancel the appointment",
            "cancel appointment",
            "cancelar mi cita",
            "cancelar la cita",
            "cant make it",
            "can't make it",
            "no puedo ir",
        ];
        if cancel_phrases.iter().any(|p| w.contains(p)) {
            return ReplyIntent::CancelAppointment;
        }
    }
    ReplyIntent::Other
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReplyContext as Cx;
    use ReplyIntent as I;

    #[test]
    fn carrier_keywords_in_any_case_with_spaces_and_punctuation() {
        for k in [
            "STOP",
            "stop",
            " Stop ",
            "STOP.",
            "stop!",
            "STOPALL",
            "Unsubscribe",
            "CANCEL",
            "end",
            "QUIT",
            "revoke",
            "OPT OUT",
            "opt-out",
            "OptOut",
            "optout",
            "\tSTOP\n",
            "«STOP»",
        ] {
            assert_eq!(classify(k, Cx::None), I::Stop, "{k:?}");
            assert_eq!(classify(k, Cx::Reminder), I::Stop, "{k:?} after a reminder");
        }
        for k in ["START", "unstop", "Yes"] {
            assert_eq!(classify(k, Cx::None), I::Start, "{k:?}");
            assert_eq!(classify(k, Cx::AfterOptOut), I::Start, "{k:?}");
        }
        for k in ["HELP", "help ", "Info", "AYUDA"] {
            assert_eq!(classify(k, Cx::None), I::Help, "{k:?}");
        }
    }

    #[test]
    fn other_locales_and_misspellings() {
        for k in [
            "ALTO", "Baja", "parar", "退订", "СТОП", "стоп", "توقف", "Dừng", "SISPANN", "중지",
            "STPO", "sotp", "Stopp", "STOOP", "sto", "stip", "Srop",
        ] {
            assert_eq!(classify(k, Cx::None), I::Stop, "{k:?}");
        }
        assert_eq!(classify("shop", Cx::None), I::Other);
    }

    #[test]
    fn free_text_that_means_stop() {
        for t in [
            "please stop texting me",
            "Stop sending me these",
            "no más mensajes",
            "No mas mensajes por favor",
            "I don't want these, take me off your list",
            "wrong number, don't text me",
            "ya no quiero recibir esto",
            "Stop it",
        ] {
            assert_eq!(classify(t, Cx::Reminder), I::Stop, "{t:?}");
        }
        assert_eq!(
            classify("I'll stop by the front desk", Cx::Reminder),
            I::Other
        );
        assert_eq!(classify("see you then, thanks", Cx::Reminder), I::Other);
    }

    #[test]
    fn two_way_answers_after_a_reminder() {
        for t in ["C", "c", "Y", "YES", "yes!", "Confirm", "Sí", "si", "OK"] {
            assert_eq!(classify(t, Cx::Reminder), I::Confirm, "{t:?}");
        }
        assert_eq!(
            classify("YES", Cx::None),
            I::Start,
            "YES outside a reminder is the carrier opt-in"
        );
        assert_eq!(classify("r", Cx::Reminder), I::Reschedule);
        assert_eq!(classify("Reschedule", Cx::Reminder), I::Reschedule);
        assert_eq!(classify("R", Cx::None), I::Other);
        assert_eq!(
            classify("cancel appointment", Cx::Reminder),
            I::CancelAppointment
        );
        assert_eq!(classify("Cancelar cita", Cx::None), I::CancelAppointment);
        assert_eq!(
            classify(
                "I can't make it, please cancel my appointment",
                Cx::Reminder
            ),
            I::CancelAppointment
        );
        // A bare CANCEL is a carrier opt-out keyword (T5), not an appointment answer.
        assert_eq!(classify("CANCEL", Cx::Reminder), I::Stop);
        assert_eq!(classify("", Cx::None), I::Other);
        assert_eq!(classify("   ", Cx::None), I::Other);
    }
}
