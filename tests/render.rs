//! Snapshots of every message in every locale (issue 4: "every locale renders
//! every message"), with the SMS encoding and segment count (messaging.md C6).
//! `UPDATE_SNAPSHOTS=1 cargo test --test main render` rewrites the file after
//! a deliberate wording change; review the diff like code.

use chrono::{TimeZone, Utc};
use herald::render::segments::Encoding;
use herald::render::{LOCALES, MessageArgs, Renderer, TEMPLATES};

const SNAPSHOT: &str = "tests/snapshots/messages.txt";

fn args(hours: Option<u32>) -> MessageArgs {
    MessageArgs {
        practice: "Herald Demo Health".into(),
        phone: "+18005550100".into(),
        portal: "https://portal.example.org".into(),
        // 14:30Z on Thursday 3 December 2026: 09:30 in New York.
        at: Some(Utc.with_ymd_and_hms(2026, 12, 3, 14, 30, 0).unwrap()),
        tz: Some(chrono_tz::America::New_York),
        clinician: Some("Dr. Priya Raman".into()),
        location: Some("Downtown Clinic".into()),
        hours,
    }
}

fn render_all() -> String {
    let r = Renderer::embedded().unwrap();
    let mut out = String::new();
    for (lang, _) in LOCALES {
        for t in TEMPLATES {
            let hours: &[Option<u32>] = if t.id == "appointment-reminder" {
                &[Some(72), Some(24), Some(2), Some(1)]
            } else {
                &[None]
            };
            for h in hours {
                let m = r.render(Some(lang), t.id, &args(*h)).unwrap();
                assert_eq!(&m.lang, lang, "{} fell back", t.id);
                let id = match h {
                    Some(h) => format!("{} hours={h}", t.id),
                    None => t.id.to_string(),
                };
                out.push_str(&format!(
                    "## {lang} {id} [{} {} units, {} segment(s)]\nsms: {}\nsubject: {}\nvoice: {}\nemail:\n{}\n\n",
                    m.segments.encoding.label(),
                    m.segments.units,
                    m.segments.segments,
                    m.sms.escape_debug(),
                    m.subject,
                    m.voice,
                    m.email
                ));
            }
        }
    }
    out
}

#[test]
fn every_message_in_every_locale_matches_its_snapshot() {
    let got = render_all();
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all("tests/snapshots").unwrap();
        std::fs::write(SNAPSHOT, &got).unwrap();
    }
    let want = std::fs::read_to_string(SNAPSHOT)
        .expect("no snapshot: run UPDATE_SNAPSHOTS=1 cargo test --test main render");
    if got != want {
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "rendered messages differ from {SNAPSHOT} at line {}:\n got: {}\nwant: {}\n(UPDATE_SNAPSHOTS=1 to accept a deliberate change)",
            first + 1,
            got.lines().nth(first).unwrap_or(""),
            want.lines().nth(first).unwrap_or("")
        );
    }
}

#[test]
fn english_fits_gsm7_and_spanish_with_accents_is_ucs2() {
    let r = Renderer::embedded().unwrap();
    for t in TEMPLATES {
        let en = r.render(Some("en-US"), t.id, &args(Some(24))).unwrap();
        assert_eq!(en.segments.encoding, Encoding::Gsm7, "{}: {}", t.id, en.sms);
        assert!(en.segments.segments <= 2, "{}: {}", t.id, en.sms);
    }
    let es = r
        .render(Some("es-US"), "appointment-confirmation", &args(None))
        .unwrap();
    assert!(es.sms.contains("está"), "{}", es.sms);
    assert_eq!(es.segments.encoding, Encoding::Ucs2);
    assert_eq!(es.segments.units, es.sms.chars().count());
    assert_eq!(es.segments.segments, es.segments.units.div_ceil(67));
}

/// Every shipped message passes the compliance guard the way the send path
/// runs it (brand and opt-out present, no PHI beyond the template's slots).
#[test]
fn every_shipped_message_passes_the_compliance_guard() {
    use herald::guard::{ContentRules, Guard, ScanContext};
    let r = Renderer::embedded().unwrap();
    let guard = Guard::new();
    let a = args(Some(24));
    for (lang, _) in LOCALES {
        for t in TEMPLATES {
            let m = r.render(Some(lang), t.id, &a).unwrap();
            let allowed = [
                a.practice.as_str(),
                a.phone.as_str(),
                a.portal.as_str(),
                m.date.as_str(),
                m.time.as_str(),
                a.clinician.as_deref().unwrap(),
            ];
            for (channel, text) in [("sms", &m.sms), ("email", &m.email), ("voice", &m.voice)] {
                let v = guard.scan(
                    text,
                    &ScanContext {
                        lang: Some(lang),
                        allowed: &allowed,
                        allowed_domains: &["portal.example.org"],
                        content: (channel == "sms").then_some(ContentRules {
                            brand: &a.practice,
                            require_opt_out: !t.consent_notice,
                        }),
                    },
                );
                assert!(
                    !v.blocked(),
                    "{lang} {} {channel}: {} — {text}",
                    t.id,
                    v.reasons()
                );
            }
        }
    }
}
