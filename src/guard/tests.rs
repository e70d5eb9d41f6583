use super::*;

fn guard() -> &'static Guard {
    static G: std::sync::OnceLock<Guard> = std::sync::OnceLock::new();
    G.get_or_init(Guard::new)
}

/// Scans `text` and returns (kind, flagged text) pairs.
fn scan_with(text: &str, lang: Option<&str>, allowed: &[&str]) -> Vec<(Kind, String)> {
    let ctx = ScanContext {
        lang,
        allowed,
        allowed_domains: &["portal.examplehealth.org"],
        content: None,
    };
    let chars: Vec<char> = text.chars().collect();
    guard()
        .scan(text, &ctx)
        .findings
        .iter()
        .map(|f| (f.kind, chars[f.start..f.end].iter().collect()))
        .collect()
}

fn check(text: &str, expect: &[(Kind, &str)]) {
    let got = scan_with(text, None, &[]);
    for (k, s) in expect {
        assert!(
            got.iter().any(|(gk, gs)| gk == k && gs == s),
            "{text:?}: expected {k} {s:?}, got {got:?}"
        );
    }
}

fn clean(text: &str, lang: Option<&str>, allowed: &[&str]) {
    let got = scan_with(text, lang, allowed);
    assert!(got.is_empty(), "{text:?}: expected clean, got {got:?}");
}

#[test]
fn rules_compile() {
    // A broken pattern falls back to matching nothing; make sure none did.
    check("Call 617-555-0142", &[(Kind::Phone, "617-555-0142")]);
    check("SSN 123-45-6789", &[(Kind::Ssn, "123-45-6789")]);
    assert!(guard().vocab.is_some() && guard().meta.len() > 10_000);
}

#[test]
fn identifiers() {
    check("MRN: 00482913 please verify", &[(Kind::Mrn, "00482913")]);
    check("expediente #A778812", &[(Kind::Mrn, "A778812")]);
    check("DOB 03/14/1956", &[(Kind::Dob, "03/14/1956")]);
    check(
        "fecha de nacimiento: 4 de mayo de 1961",
        &[(Kind::Dob, "4 de mayo de 1961")],
    );
    check("born March 3, 1948", &[(Kind::Dob, "March 3, 1948")]);
    check("visit on 1987-02-11", &[(Kind::Dob, "1987-02-11")]);
    check(
        "lives at 1432 Maple Ave Apt 3",
        &[(Kind::Address, "1432 Maple Ave Apt 3")],
    );
    check("vive en Calle Luna 45", &[(Kind::Address, "Calle Luna 45")]);
    check("Springfield, IL 62704", &[(Kind::Address, "62704")]);
    check(
        "mail jdoe88@gmail.com",
        &[(Kind::Email, "jdoe88@gmail.com")],
    );
    check("fax (312) 555-0199", &[(Kind::Phone, "(312) 555-0199")]);
    check("member ID XGH449201", &[(Kind::Insurance, "XGH449201")]);
    check(
        "Medicare 1EG4-TE5-MK73",
        &[(Kind::Insurance, "1EG4-TE5-MK73")],
    );
    check("account # 55820193", &[(Kind::Account, "55820193")]);
    check(
        "card 4111 1111 1111 1111",
        &[(Kind::Account, "4111 1111 1111 1111")],
    );
    check("driver's license D1234567", &[(Kind::License, "D1234567")]);
    check("pacemaker serial PM88123", &[(Kind::Device, "PM88123")]);
    check(
        "VIN 1HGCM82633A004352",
        &[(Kind::Vehicle, "1HGCM82633A004352")],
    );
    check("see bit.ly/3xYz", &[(Kind::Url, "bit.ly/3xYz")]);
    check("login from 10.2.33.4", &[(Kind::Ip, "10.2.33.4")]);
    check("she is 93 years old", &[(Kind::Age, "93 years old")]);
    check("tiene 91 años", &[(Kind::Age, "91")]);
    check(
        "your husband Carlos Diaz called",
        &[(Kind::OtherName, "Carlos Diaz")],
    );
    check("Dr. Okafor reviewed it", &[(Kind::OtherName, "Okafor")]);
}

#[test]
fn clinical_terms_en_es() {
    check("Your metformin refill", &[(Kind::Drug, "metformin")]);
    check("Lipitor is ready", &[(Kind::Drug, "Lipitor")]);
    check("su metformina está lista", &[(Kind::Drug, "metformina")]);
    check("about your diabetes", &[(Kind::Diagnosis, "diabetes")]);
    check(
        "control de hipertensión",
        &[(Kind::Diagnosis, "hipertensión")],
    );
    check("sobre su depresion", &[(Kind::Diagnosis, "depresion")]);
    check(
        "A1C 9.2 today",
        &[(Kind::Test, "A1C"), (Kind::Result, "9.2")],
    );
    check(
        "su glucosa de 250",
        &[(Kind::Test, "glucosa"), (Kind::Result, "250")],
    );
    check(
        "came back positive",
        &[(Kind::Result, "came back positive")],
    );
    check("negative for strep", &[(Kind::Result, "negative for")]);
    check("at the Oncology clinic", &[(Kind::Specialty, "Oncology")]);
    check("cita de psiquiatría", &[(Kind::Specialty, "psiquiatría")]);
    check("two biopsies", &[(Kind::Test, "biopsies")]);
}

#[test]
fn word_boundaries_and_case() {
    clean(
        "Reminder: your visit is Tuesday. Reply C to confirm.",
        Some("en-US"),
        &[],
    );
    check("HIV", &[(Kind::Diagnosis, "HIV")]);
    // "asthma" inside another word is not a hit.
    clean("xasthmax", None, &[]);
}

#[test]
fn allowed_values_pass() {
    let allowed = [
        "Lakeside Family Medicine",
        "(617) 555-0100",
        "Dr. Priya Raman",
        "Ana",
        "Tuesday, March 3",
        "10:30 AM",
        "200 Harbor Street, Suite 4",
    ];
    clean(
        "Hi Ana, reminder from Lakeside Family Medicine: Tuesday, March 3 at 10:30 AM with Dr. Priya Raman at 200 Harbor Street, Suite 4. Questions? 617-555-0100. https://portal.examplehealth.org/a/x Reply STOP to opt out.",
        Some("en-US"),
        &allowed,
    );
    clean("Dr. Raman will see you", None, &allowed);
    clean(
        "Hola Ana, su cita con Dr. Priya Raman es el martes 3 de marzo a las 10:30 AM. Llame al (617) 555-0100. Responda STOP para cancelar.",
        Some("es-US"),
        &allowed,
    );
}

#[test]
fn offsets_are_chars() {
    let text = "Señora Núñez, ¿su metformina? Llame 312-555-0199";
    let v = guard().scan(text, &ScanContext::default());
    let chars: Vec<char> = text.chars().collect();
    let drug = v.findings.iter().find(|f| f.kind == Kind::Drug).unwrap();
    assert_eq!(
        chars[drug.start..drug.end].iter().collect::<String>(),
        "metformina"
    );
    let phone = v.findings.iter().find(|f| f.kind == Kind::Phone).unwrap();
    assert_eq!(phone.end, chars.len());
}

#[test]
fn accents_optional() {
    check(
        "quimioterapia y diagnóstico",
        &[(Kind::Diagnosis, "diagnóstico")],
    );
    check("diagnostico", &[(Kind::Diagnosis, "diagnostico")]);
    check("NEUMONÍA", &[(Kind::Diagnosis, "NEUMONÍA")]);
}

#[test]
fn content_rules() {
    let rules = ContentRules {
        brand: "Lakeside Clinic",
        require_opt_out: true,
    };
    let ctx = ScanContext {
        content: Some(rules),
        ..ScanContext::default()
    };
    let kinds = |t: &str| -> Vec<Kind> {
        guard()
            .scan(t, &ctx)
            .findings
            .iter()
            .map(|f| f.kind)
            .collect()
    };
    assert_eq!(
        kinds("Lakeside Clinic: see you Monday. Reply STOP to opt out."),
        vec![]
    );
    assert_eq!(
        kinds("Lakeside Clinic: nos vemos el lunes. Responda ALTO para cancelar."),
        vec![]
    );
    assert_eq!(
        kinds("See you Monday. Reply STOP to opt out."),
        vec![Kind::MissingBrand]
    );
    assert_eq!(
        kinds("LAKESIDE CLINIC: see you Monday."),
        vec![Kind::MissingOptOut]
    );
    let v = guard().scan("See you Monday.", &ctx);
    assert!(v.blocked());
    assert_eq!(v.reasons(), "content: missing_brand, missing_opt_out");
}

#[test]
fn reasons_carry_no_phi() {
    let v = guard().scan("DOB 01/02/1950, on metformin", &ScanContext::default());
    assert_eq!(v.reasons(), "phi: dob, drug");
    assert!(!v.reasons().contains("1950"));
    assert_eq!(Kind::parse("other_name"), Some(Kind::OtherName));
}

#[test]
fn urls() {
    let ctx = ScanContext {
        allowed_domains: &["examplehealth.org"],
        ..ScanContext::default()
    };
    assert!(
        !guard()
            .scan("Pay at https://portal.examplehealth.org/pay", &ctx)
            .blocked()
    );
    assert!(
        guard()
            .scan("Pay at https://evil-example.com/pay", &ctx)
            .blocked()
    );
    assert!(guard().scan("see tinyurl.com/abc", &ctx).blocked());
}

#[test]
fn guard_is_send_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Guard>();
}

#[test]
fn typos_are_caught_but_not_ordinary_words() {
    check("keep taking your metfromin", &[(Kind::Drug, "metfromin")]);
    check("your diabetis check", &[(Kind::Diagnosis, "diabetis")]);
    check("the colonscopy prep", &[(Kind::Test, "colonscopy")]);
    clean(
        "Reminder: please confirm your appointment tomorrow afternoon. Pharmacy pickup available.",
        Some("en-US"),
        &[],
    );
    clean(
        "Recordatorio: confirme su cita de mañana por la tarde. Puede recoger en la farmacia.",
        Some("es-US"),
        &[],
    );
}

/// The rule gates only skip regexes that cannot match: scanning with every rule run (behind
/// the coarse digit gates the rules always had, which must agree with their regexes) gives the
/// same verdict on the corpus, on every text in these tests, and on generated texts dense in
/// digits, separators and trigger words.
#[test]
fn gates_change_nothing() {
    let corpus = include_str!("../../fixtures/guard/corpus.jsonl");
    let mut texts: Vec<String> = corpus
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect();
    texts.extend(
        include_str!("tests.rs")
            .split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_string),
    );
    let pieces = [
        "123",
        "45",
        "6789",
        "9",
        "95",
        "101",
        "2019",
        "1987",
        "12345",
        "4111",
        "1111111",
        "-",
        " ",
        ".",
        "/",
        ":",
        "@",
        "#",
        ", ",
        "  ",
        "\n",
        "_",
        "Dr",
        "Mr.",
        "MRN",
        "dob",
        "D.O.B.",
        "born",
        "nacio el",
        "SSN",
        "social",
        "member id",
        "acct",
        "license",
        "plate",
        "VIN",
        "serie",
        "calle",
        "Av.",
        "St",
        "Ave",
        "Main",
        "apt",
        "ZIP",
        "CA",
        "years old",
        "anos",
        "age",
        "edad",
        "www.",
        "http://",
        "x.com",
        "bit.ly/a",
        "jan",
        "March",
        "de",
        "mayo",
        "1EG4",
        "TE5",
        "MK73",
        "1HGCM82633A004352",
        "fe80",
        "a1b2",
        "Ana",
        "patient",
        "Reply",
        "STOP",
        "\u{0436}",
        "é",
        "ñ",
        "A1C",
        "level",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..4000 {
        let mut t = String::new();
        for _ in 0..12 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = seed % u64::try_from(pieces.len()).unwrap();
            t.push_str(pieces[usize::try_from(i).unwrap()]);
            if seed & 0x100 != 0 {
                t.push(' ');
            }
        }
        texts.push(t);
    }
    let legacy = regex::RegexSet::new(rules::LEGACY_DIGIT_RULES).unwrap();
    for t in &texts {
        let folded = fold::Folded::new(t);
        let set = legacy.matches(folded.orig());
        let gates = guard().rules.gates(&folded);
        for (i, &on) in gates.legacy.iter().enumerate() {
            assert_eq!(on, set.matched(i), "legacy rule {i} on {t:?}");
        }
        for lang in [None, Some("en-US"), Some("es-US")] {
            let ctx = ScanContext {
                lang,
                allowed: &["Ana", "(617) 555-2480"],
                allowed_domains: &["portal.examplehealth.org"],
                content: None,
            };
            assert_eq!(
                guard().scan(t, &ctx),
                guard().scan_gated(t, &ctx, true),
                "{t:?}"
            );
        }
    }
}

#[test]
fn ages_over_89_and_partial_ssns_are_found_without_spaces() {
    let g = Guard::new();
    let ctx = ScanContext {
        lang: Some("en-US"),
        allowed: &[],
        allowed_domains: &[],
        content: None,
    };
    let kinds =
        |t: &str| -> Vec<Kind> { g.scan(t, &ctx).findings.iter().map(|f| f.kind).collect() };
    assert!(kinds("95-year-old patient needs a ride").contains(&Kind::Age));
    assert!(kinds("SSN: 1234 on file").contains(&Kind::Ssn));
    assert!(kinds("Your appointment is at 9:30 AM").is_empty());
}
