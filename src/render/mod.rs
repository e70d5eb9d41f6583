//! Fluent rendering: one bundle per locale (embedded at build time), locale
//! negotiation with a fallback chain, dates and times formatted for the locale
//! in the appointment's zone, and the template checks `herald check` runs.
//!
//! Templates may use only [`APPROVED_VARIABLES`]: never a diagnosis, a drug,
//! a test or a result.

pub mod datetime;
pub mod segments;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use std::collections::{BTreeMap, BTreeSet};
use unic_langid::LanguageIdentifier;

use crate::domain::Purpose;

/// The locales shipped, with their message files.
pub const LOCALES: &[(&str, &str)] = &[
    ("en-US", include_str!("../../locales/en-US/messages.ftl")),
    ("es-US", include_str!("../../locales/es-US/messages.ftl")),
    (
        "zh-Hans",
        include_str!("../../locales/zh-Hans/messages.ftl"),
    ),
    ("vi", include_str!("../../locales/vi/messages.ftl")),
    ("tl", include_str!("../../locales/tl/messages.ftl")),
    ("ko", include_str!("../../locales/ko/messages.ftl")),
    ("ru", include_str!("../../locales/ru/messages.ftl")),
    ("ar", include_str!("../../locales/ar/messages.ftl")),
    ("ht", include_str!("../../locales/ht/messages.ftl")),
];

/// The locale every chain ends in.
pub const FALLBACK: &str = "en-US";

/// Variables a template may use.
pub const APPROVED_VARIABLES: &[&str] = &[
    "practice",
    "phone",
    "portal",
    "date",
    "time",
    "clinician",
    "location",
    "first_name",
    "hours",
    "code",
];

/// Attributes every message must have.
pub const REQUIRED_ATTRIBUTES: &[&str] = &["sms", "subject", "email", "voice"];

/// What a template is for, which decides the consent and policy rules that
/// apply to it (messaging.md T3: every template carries a purpose tag).
#[derive(Debug, Clone, Copy)]
pub struct TemplateSpec {
    /// Fluent message id.
    pub id: &'static str,
    /// The purpose consent is checked against.
    pub purpose: Purpose,
    /// Confirmations of a consent change (C1, C3, T9) and HELP replies are
    /// owed to the patient: they go to the number that wrote whatever the
    /// ledger says, at once, uncapped.
    pub consent_notice: bool,
    /// An answer to the patient's own text (two-way): consent still decides,
    /// but caps and quiet hours do not apply (the patient just wrote).
    pub reply: bool,
}

/// Every template Herald ships; `herald check` requires each locale to have
/// exactly these.
pub const TEMPLATES: &[TemplateSpec] = &[
    spec("appointment-confirmation", Purpose::Appointment),
    spec("appointment-reminder", Purpose::Appointment),
    spec("appointment-rescheduled", Purpose::Appointment),
    spec("appointment-cancelled", Purpose::Appointment),
    spec("appointment-missed", Purpose::Appointment),
    spec("medication-refill-reminder", Purpose::Medication),
    spec("medication-ready-for-pickup", Purpose::Medication),
    TemplateSpec {
        consent_notice: true,
        ..spec("consent-opt-in-confirmation", Purpose::Appointment)
    },
    TemplateSpec {
        consent_notice: true,
        ..spec("consent-opt-out-confirmation", Purpose::Appointment)
    },
    TemplateSpec {
        consent_notice: true,
        ..spec("consent-help", Purpose::Appointment)
    },
    // The code that confirms a number or address the patient entered on the
    // preference page (issue 11 F8f): asked for just now, sent at once to
    // that address only, never with anything about the patient.
    TemplateSpec {
        consent_notice: true,
        ..spec(CONTACT_CODE, Purpose::Appointment)
    },
    TemplateSpec {
        reply: true,
        ..spec("reply-confirmed", Purpose::Appointment)
    },
    TemplateSpec {
        reply: true,
        ..spec("reply-reschedule", Purpose::Appointment)
    },
    TemplateSpec {
        reply: true,
        ..spec("reply-cancel-requested", Purpose::Appointment)
    },
    TemplateSpec {
        reply: true,
        ..spec("reply-received", Purpose::Appointment)
    },
];

/// The message that carries a contact confirmation code (`$code`, the only
/// template that uses it).
pub const CONTACT_CODE: &str = "contact-code";

const fn spec(id: &'static str, purpose: Purpose) -> TemplateSpec {
    TemplateSpec {
        id,
        purpose,
        consent_notice: false,
        reply: false,
    }
}

/// The spec of template `id`.
pub fn template(id: &str) -> Option<&'static TemplateSpec> {
    TEMPLATES.iter().find(|t| t.id == id)
}

/// Scripts written right to left: their placeables (numbers, links, Latin
/// names) are wrapped in FSI/PDI so they keep their order (Unicode UAX #9).
fn right_to_left(lang: &str) -> bool {
    matches!(
        lang.split('-').next().unwrap_or_default(),
        "ar" | "he" | "fa" | "ur" | "ps" | "yi"
    )
}

/// Rendering problems.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// No such message in any locale of the chain.
    #[error("no template {0}")]
    Missing(String),
    /// Fluent reported errors (e.g. a missing variable).
    #[error("template {id} in {lang}: {detail}")]
    Format {
        /// Message id.
        id: String,
        /// Locale.
        lang: String,
        /// What Fluent said.
        detail: String,
    },
}

/// The values a template may draw on.
#[derive(Debug, Clone, Default)]
pub struct MessageArgs {
    /// Practice (brand) name.
    pub practice: String,
    /// Practice phone.
    pub phone: String,
    /// Portal link.
    pub portal: String,
    /// Appointment start, formatted per locale in `tz`.
    pub at: Option<DateTime<Utc>>,
    /// Zone to show times in.
    pub tz: Option<Tz>,
    /// Clinician display name.
    pub clinician: Option<String>,
    /// Location display name.
    pub location: Option<String>,
    /// Hours before the appointment (reminders).
    pub hours: Option<u32>,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The locale used.
    pub lang: String,
    /// The SMS text.
    pub sms: String,
    /// The email subject.
    pub subject: String,
    /// The plain-text email body.
    pub email: String,
    /// What a voice call says.
    pub voice: String,
    /// Written right to left.
    pub rtl: bool,
    /// The SMS's encoding and segment count.
    pub segments: segments::SegmentInfo,
    /// The date and time strings inserted (the guard allows them).
    pub date: String,
    /// See `date`.
    pub time: String,
}

struct Loc {
    bundle: FluentBundle<FluentResource>,
    formats: datetime::DateTimeFormats,
    rtl: bool,
}

/// The loaded bundles.
pub struct Renderer {
    bundles: BTreeMap<String, Loc>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("locales", &self.bundles.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Renderer {
    /// Builds bundles from the embedded locales.
    pub fn embedded() -> Result<Self, Vec<String>> {
        Self::from_sources(LOCALES.iter().map(|(l, s)| (l.to_string(), s.to_string())))
    }

    /// Builds bundles from (locale, FTL source) pairs; every problem is returned.
    pub fn from_sources(
        sources: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, Vec<String>> {
        let mut bundles = BTreeMap::new();
        let mut problems = Vec::new();
        for (lang, src) in sources {
            let langid: LanguageIdentifier = match lang.parse() {
                Ok(l) => l,
                Err(_) => {
                    problems.push(format!("{lang}: not a BCP 47 language tag"));
                    continue;
                }
            };
            let res = match FluentResource::try_new(src) {
                Ok(r) => r,
                Err((r, errs)) => {
                    for e in errs {
                        problems.push(format!("{lang}: Fluent syntax error: {e:?}"));
                    }
                    r
                }
            };
            let mut bundle = FluentBundle::new_concurrent(vec![langid]);
            // Isolation marks cost SMS characters; only RTL text needs them.
            let rtl = right_to_left(&lang);
            bundle.set_use_isolating(rtl);
            if let Err(errs) = bundle.add_resource(res) {
                for e in errs {
                    problems.push(format!("{lang}: {e:?}"));
                }
            }
            let formats = match datetime::DateTimeFormats::new(&lang) {
                Ok(f) => f,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            bundles.insert(
                lang,
                Loc {
                    bundle,
                    formats,
                    rtl,
                },
            );
        }
        if problems.is_empty() {
            Ok(Self { bundles })
        } else {
            Err(problems)
        }
    }

    /// The locales loaded.
    pub fn locales(&self) -> impl Iterator<Item = &str> {
        self.bundles.keys().map(String::as_str)
    }

    /// The locale chain for a requested language: exact match, then the same
    /// primary language, then [`FALLBACK`].
    pub fn negotiate(&self, requested: Option<&str>) -> Vec<String> {
        let mut chain = Vec::new();
        if let Some(req) = requested {
            let req_l = req.to_ascii_lowercase();
            if let Some(k) = self
                .bundles
                .keys()
                .find(|k| k.to_ascii_lowercase() == req_l)
            {
                chain.push(k.clone());
            }
            let primary = req_l
                .split(['-', '_'])
                .next()
                .unwrap_or_default()
                .to_string();
            for k in self.bundles.keys() {
                if k.to_ascii_lowercase().split('-').next() == Some(primary.as_str())
                    && !chain.contains(k)
                {
                    chain.push(k.clone());
                }
            }
        }
        if !chain.iter().any(|c| c == FALLBACK) {
            chain.push(FALLBACK.to_string());
        }
        chain
    }

    /// Renders message `id` for a patient who prefers `requested`.
    pub fn render(
        &self,
        requested: Option<&str>,
        id: &str,
        args: &MessageArgs,
    ) -> Result<Rendered, RenderError> {
        self.render_attrs(requested, id, args, REQUIRED_ATTRIBUTES, "")
    }

    /// Renders the contact confirmation code message ([`CONTACT_CODE`]) in
    /// the patient's language: the practice's name and the code, nothing else.
    pub fn render_code(
        &self,
        requested: Option<&str>,
        practice: &str,
        code: &str,
    ) -> Result<Rendered, RenderError> {
        let args = MessageArgs {
            practice: practice.into(),
            ..MessageArgs::default()
        };
        self.render_attrs(requested, CONTACT_CODE, &args, REQUIRED_ATTRIBUTES, code)
    }

    /// Renders only what `channel` sends (the SMS text; the email subject
    /// and body; the voice text); the other fields are left empty. The send
    /// path uses this.
    pub fn render_for(
        &self,
        requested: Option<&str>,
        id: &str,
        args: &MessageArgs,
        channel: crate::domain::Channel,
    ) -> Result<Rendered, RenderError> {
        use crate::domain::Channel;
        let attrs: &[&str] = match channel {
            Channel::Sms => &["sms"],
            Channel::Email => &["subject", "email"],
            Channel::Voice => &["voice"],
        };
        self.render_attrs(requested, id, args, attrs, "")
    }

    fn render_attrs(
        &self,
        requested: Option<&str>,
        id: &str,
        args: &MessageArgs,
        attrs: &[&str],
        code: &str,
    ) -> Result<Rendered, RenderError> {
        // The common case — the patient's exact locale has the message —
        // needs no negotiated chain.
        let exact = requested.and_then(|r| self.bundles.get_key_value(r));
        let chain: Vec<String> = match exact {
            Some((k, loc)) if loc.bundle.has_message(id) => vec![k.clone()],
            _ => self.negotiate(requested),
        };
        for lang in chain {
            let Some(loc) = self.bundles.get(&lang) else {
                continue;
            };
            let bundle = &loc.bundle;
            let Some(msg) = bundle.get_message(id) else {
                continue;
            };
            let mut fargs = FluentArgs::new();
            fargs.set("practice", FluentValue::from(args.practice.as_str()));
            fargs.set("phone", FluentValue::from(args.phone.as_str()));
            fargs.set("portal", FluentValue::from(args.portal.as_str()));
            fargs.set("code", FluentValue::from(code));
            let tz = args.tz.unwrap_or(chrono_tz::America::New_York);
            let (date, time) = match args.at {
                Some(at) => (loc.formats.date(at, tz), loc.formats.time(at, tz)),
                None => (String::new(), String::new()),
            };
            fargs.set("date", FluentValue::from(date.as_str()));
            fargs.set("time", FluentValue::from(time.as_str()));
            fargs.set(
                "clinician",
                FluentValue::from(args.clinician.as_deref().unwrap_or(&args.practice)),
            );
            fargs.set(
                "location",
                FluentValue::from(args.location.as_deref().unwrap_or_default()),
            );
            if let Some(h) = args.hours {
                fargs.set("hours", FluentValue::from(h));
            } else {
                fargs.set("hours", FluentValue::from(0));
            }
            let mut out: [Option<String>; 4] = Default::default();
            for attr in attrs {
                let Some(a) = msg.get_attribute(attr) else {
                    return Err(RenderError::Format {
                        id: id.into(),
                        lang: lang.clone(),
                        detail: format!("no .{attr}"),
                    });
                };
                let mut errors = Vec::new();
                let text = bundle
                    .format_pattern(a.value(), Some(&fargs), &mut errors)
                    .into_owned();
                if !errors.is_empty() {
                    return Err(RenderError::Format {
                        id: id.into(),
                        lang: lang.clone(),
                        detail: format!("{errors:?}"),
                    });
                }
                if let Some(slot) = REQUIRED_ATTRIBUTES
                    .iter()
                    .position(|r| r == attr)
                    .and_then(|i| out.get_mut(i))
                {
                    *slot = Some(text);
                }
            }
            drop(fargs);
            let [sms, subject, email, voice] = out.map(Option::unwrap_or_default);
            return Ok(Rendered {
                lang,
                segments: segments::analyze(&sms),
                sms,
                subject,
                email,
                voice,
                rtl: loc.rtl,
                date,
                time,
            });
        }
        Err(RenderError::Missing(id.into()))
    }
}

/// Escapes text for HTML or XML (email HTML parts, TwiML, Herald's pages).
pub fn escape_markup(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Checks locale sources the way `herald check` does: Fluent syntax, the same
/// messages and attributes in every locale, and only approved variables.
pub fn check_sources(sources: &[(String, String)]) -> Vec<String> {
    use fluent_syntax::ast;
    let mut problems = Vec::new();
    let mut ids_by_locale: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (lang, src) in sources {
        let res = match fluent_syntax::parser::parse(src.as_str()) {
            Ok(r) => r,
            Err((r, errs)) => {
                for e in errs {
                    let line = src
                        .get(..e.pos.start)
                        .map(|s| s.lines().count())
                        .unwrap_or(0);
                    problems.push(format!(
                        "locales/{lang}: Fluent syntax error near line {line}: {:?}",
                        e.kind
                    ));
                }
                r
            }
        };
        let mut ids = BTreeSet::new();
        for entry in &res.body {
            if let ast::Entry::Message(m) = entry {
                let id = m.id.name.to_string();
                let mut vars = BTreeSet::new();
                if let Some(p) = &m.value {
                    collect_vars(p, &mut vars);
                }
                for a in &m.attributes {
                    collect_vars(&a.value, &mut vars);
                    ids.insert(format!("{id}.{}", a.id.name));
                }
                for attr in REQUIRED_ATTRIBUTES {
                    if !m.attributes.iter().any(|a| a.id.name == *attr) {
                        problems.push(format!("locales/{lang}: message {id} lacks .{attr}"));
                    }
                }
                for v in vars {
                    if v == "code" && id != CONTACT_CODE {
                        problems.push(format!(
                            "locales/{lang}: message {id} uses $code, which only {CONTACT_CODE} may use"
                        ));
                    } else if !APPROVED_VARIABLES.contains(&v.as_str()) {
                        problems.push(format!(
                            "locales/{lang}: message {id} uses ${v}, which is not an approved variable ({})",
                            APPROVED_VARIABLES.join(", ")
                        ));
                    }
                }
                ids.insert(id);
            }
        }
        ids_by_locale.insert(lang.as_str(), ids);
    }
    for (lang, ids) in &ids_by_locale {
        for t in TEMPLATES {
            if !ids.contains(t.id) {
                problems.push(format!("locales/{lang}: missing message {}", t.id));
            }
        }
        for id in ids.iter().filter(|i| !i.contains('.')) {
            if template(id).is_none() {
                problems.push(format!(
                    "locales/{lang}: message {id} has no purpose tag (add it to render::TEMPLATES)"
                ));
            }
        }
    }
    let all: BTreeSet<String> = ids_by_locale.values().flatten().cloned().collect();
    for (lang, ids) in &ids_by_locale {
        for missing in all.difference(ids) {
            problems.push(format!(
                "locales/{lang}: missing {missing} (present in another locale)"
            ));
        }
    }
    problems
}

fn collect_vars(p: &fluent_syntax::ast::Pattern<&str>, out: &mut BTreeSet<String>) {
    use fluent_syntax::ast::{Expression, InlineExpression, PatternElement};
    fn inline(e: &InlineExpression<&str>, out: &mut BTreeSet<String>) {
        match e {
            InlineExpression::VariableReference { id } => {
                out.insert(id.name.to_string());
            }
            InlineExpression::FunctionReference { arguments, .. } => {
                for a in &arguments.positional {
                    inline(a, out);
                }
                for n in &arguments.named {
                    inline(&n.value, out);
                }
            }
            InlineExpression::Placeable { expression } => expr(expression, out),
            _ => {}
        }
    }
    fn expr(e: &Expression<&str>, out: &mut BTreeSet<String>) {
        match e {
            Expression::Inline(i) => inline(i, out),
            Expression::Select { selector, variants } => {
                inline(selector, out);
                for v in variants {
                    collect_vars(&v.value, out);
                }
            }
        }
    }
    for el in &p.elements {
        if let PatternElement::Placeable { expression } = el {
            expr(expression, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn args() -> MessageArgs {
        MessageArgs {
            practice: "Herald Demo Health".into(),
            phone: "+18005550100".into(),
            portal: "https://portal.example.org".into(),
            at: Some(Utc.with_ymd_and_hms(2026, 12, 3, 14, 30, 0).unwrap()),
            tz: Some(chrono_tz::America::New_York),
            clinician: Some("Dr. Priya Raman".into()),
            location: Some("Downtown".into()),
            hours: Some(24),
        }
    }

    #[test]
    fn renders_each_locale_with_fallback() {
        let r = Renderer::embedded().unwrap();
        let en = r
            .render(Some("en-US"), "appointment-confirmation", &args())
            .unwrap();
        assert_eq!(
            en.sms,
            "Herald Demo Health: your appointment with Dr. Priya Raman on Thursday, December 3 at 9:30 AM is booked. Reply C to confirm, R to reschedule, STOP to opt out."
        );
        let es = r
            .render(Some("es-MX"), "appointment-confirmation", &args())
            .unwrap();
        assert_eq!(es.lang, "es-US");
        assert!(
            es.sms.contains("jueves, 3 de diciembre a las 9:30"),
            "{}",
            es.sms
        );
        // zh-Hant-TW has no bundle of its own: same primary language first.
        let zh = r
            .render(Some("zh-Hant-TW"), "appointment-cancelled", &args())
            .unwrap();
        assert_eq!(zh.lang, "zh-Hans");
        let de = r
            .render(Some("de-DE"), "appointment-cancelled", &args())
            .unwrap();
        assert_eq!(de.lang, "en-US");
        assert!(r.render(None, "no-such-message", &args()).is_err());
    }

    #[test]
    fn right_to_left_placeables_are_isolated_and_left_to_right_ones_are_not() {
        let r = Renderer::embedded().unwrap();
        let ar = r
            .render(Some("ar"), "appointment-rescheduled", &args())
            .unwrap();
        assert!(ar.rtl);
        // The phone number and the Latin clinician name keep their order inside Arabic text.
        assert!(
            ar.sms.contains("\u{2068}+18005550100\u{2069}"),
            "{}",
            ar.sms
        );
        assert!(
            ar.sms.contains("\u{2068}Dr. Priya Raman\u{2069}"),
            "{}",
            ar.sms
        );
        let en = r
            .render(Some("en-US"), "appointment-rescheduled", &args())
            .unwrap();
        assert!(!en.rtl);
        assert!(!en.sms.contains('\u{2068}'), "{}", en.sms);
    }

    #[test]
    fn plurals_follow_the_locale() {
        let r = Renderer::embedded().unwrap();
        let hours = |lang: &str, h: u32| {
            let a = MessageArgs {
                hours: Some(h),
                ..args()
            };
            r.render(Some(lang), "appointment-reminder", &a)
                .unwrap()
                .sms
        };
        assert!(hours("en-US", 1).contains("in 1 hour,"));
        assert!(hours("en-US", 2).contains("in 2 hours,"));
        assert!(hours("ru", 1).contains("1 час"), "{}", hours("ru", 1));
        assert!(hours("ru", 24).contains("24 часа"), "{}", hours("ru", 24));
        assert!(hours("ru", 72).contains("72 часа"), "{}", hours("ru", 72));
        assert!(hours("ru", 5).contains("5 часов"), "{}", hours("ru", 5));
    }

    #[test]
    fn every_template_has_a_purpose_tag() {
        for (_, src) in LOCALES {
            for t in TEMPLATES {
                assert!(src.contains(&format!("\n{} =", t.id)), "{}", t.id);
            }
        }
        assert!(template("appointment-reminder").is_some());
        assert!(template("no-such").is_none());
    }

    #[test]
    fn shipped_locales_pass_the_check() {
        let sources: Vec<(String, String)> = LOCALES
            .iter()
            .map(|(l, s)| (l.to_string(), s.to_string()))
            .collect();
        assert_eq!(check_sources(&sources), Vec::<String>::new());
    }

    #[test]
    fn check_finds_unknown_variables_missing_messages_and_syntax_errors() {
        let sources = vec![
            ("en-US".to_string(), "a =\n    .sms = { $diagnosis }\n    .subject = x\nb =\n    .sms = ok\n    .subject = y\n".to_string()),
            ("es-US".to_string(), "a =\n    .sms = { $practice }\n    .subject = x\nc = { \n".to_string()),
        ];
        let p = check_sources(&sources);
        assert!(p.iter().any(|s| s.contains("$diagnosis")), "{p:?}");
        assert!(
            p.iter().any(|s| s.contains("locales/es-US: missing b")),
            "{p:?}"
        );
        assert!(p.iter().any(|s| s.contains("syntax error")), "{p:?}");
    }

    /// Issue 11 F8f: `$code` belongs to the confirmation-code message only,
    /// which says nothing but the practice and the code.
    #[test]
    fn only_the_code_message_may_use_code() {
        let src = "appointment-reminder =\n    .sms = { $code }\n".to_string();
        let p = check_sources(&[("en-US".into(), src)]);
        assert!(
            p.iter()
                .any(|s| s.contains("uses $code, which only contact-code may use")),
            "{p:?}"
        );
        let r = Renderer::embedded().unwrap_or_else(|e| panic!("{e:?}"));
        for (lang, _) in LOCALES {
            let m = r
                .render_code(Some(lang), "Herald Demo Health", "042917")
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&m.lang, lang);
            for text in [&m.sms, &m.email, &m.voice] {
                assert!(text.contains("042917"), "{lang}: {text}");
                assert!(text.contains("Herald Demo Health"), "{lang}: {text}");
            }
        }
    }
}
