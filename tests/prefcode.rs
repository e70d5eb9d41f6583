//! Issue 11, security review F8f: the preference link lasts at most 30 days
//! and its issue is audited; a number entered on the page is used only once
//! the six-digit code sent to it comes back (expiring, single-use, five
//! tries, stored hashed, at most three an hour per patient, every step
//! audited). Rules: messaging.md T1 (consent is the patient's, for the number
//! they gave), fhir.md §1.4 A1 (every access and change is an AuditEvent).

use std::sync::Arc;

use actix_web::test as at;
use herald::clock::{Clock as _, FixedClock};
use herald::crypto::KeyRing;
use herald::db::{DbConn, patients};
use herald::domain::Channel;
use herald::domain::audit::Actor;
use herald::providers::{MemorySender, Outbound};
use herald::service::preferences::{
    self as prefs, CodeChannel, CodeCheck, CodeRequest, LinkError, NewLinkError,
};
use herald::web::{AppState, app};

use super::support::{self, TestDb};

const PHONE: &str = "+12125550142";
const OTHER: &str = "+13125550199";

fn patient(db: &TestDb, ring: &KeyRing, id: &str) {
    super::channels::patient(
        db,
        ring,
        id,
        Some(PHONE),
        None,
        "en-US",
        &[(Channel::Sms, PHONE)],
    );
}

fn request(
    c: &mut DbConn,
    ring: &KeyRing,
    clock: &FixedClock,
    sender: &MemorySender,
    patient: &str,
    number: &str,
) -> CodeRequest {
    let renderer = support::renderer();
    let via = CodeChannel {
        sender,
        renderer: &renderer,
        practice: "Herald Demo Health",
    };
    prefs::request_code(c, ring, clock, &via, patient, number, "127.0.0.1").unwrap()
}

/// The six digits of a code message.
fn code_of(m: &Outbound) -> String {
    let digits: String = m
        .text
        .split(|ch: char| !ch.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_default()
        .into();
    assert_eq!(digits.len(), 6, "{}", m.text);
    digits
}

fn phone_of(c: &mut DbConn, ring: &KeyRing, id: &str) -> String {
    patients::get(c, ring, id)
        .unwrap()
        .unwrap()
        .phone
        .unwrap()
        .expose()
        .to_string()
}

/// Every AuditEvent's JSON.
fn audit_text(c: &mut DbConn) -> String {
    use diesel::prelude::*;
    use herald::db::schema::audit_events::dsl::{audit_events, resource};
    audit_events
        .select(resource)
        .load::<String>(c)
        .unwrap()
        .join("\n")
}

/// What `contact_codes` keeps of the codes.
fn code_hashes(c: &mut DbConn) -> Vec<String> {
    use diesel::prelude::*;
    use herald::db::schema::contact_codes::dsl::{code_hash, contact_codes};
    contact_codes.select(code_hash).load::<String>(c).unwrap()
}

/// Sends a code to `number` and enters it: the number becomes the
/// patient's. Returns the code message.
pub fn confirm_number(
    c: &mut DbConn,
    ring: &KeyRing,
    clock: &FixedClock,
    patient: &str,
    number: &str,
) -> Outbound {
    let sender = MemorySender::default();
    assert_eq!(
        request(c, ring, clock, &sender, patient, number),
        CodeRequest::Sent
    );
    let m = sender.sent.lock().unwrap().last().unwrap().clone();
    assert_eq!(
        prefs::confirm_code(c, ring, clock, patient, &code_of(&m), "127.0.0.1").unwrap(),
        CodeCheck::Confirmed
    );
    m
}

#[test]
fn a_new_number_is_used_only_after_its_code_comes_back() {
    for db in support::backends() {
        let (ring, _) = support::ready(&db);
        patient(&db, &ring, "p-code");
        let clock = support::clock();
        let sender = MemorySender::default();
        let mut c = db.conn();
        assert_eq!(
            request(&mut c, &ring, &clock, &sender, "p-code", OTHER),
            CodeRequest::Sent
        );
        // One SMS, to the new number only, the fixed wording: the practice and
        // the code, nothing about the patient.
        let sent = sender.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        let m = &sent[0];
        assert_eq!((m.channel, m.to.as_str()), (Channel::Sms, OTHER));
        let code = code_of(m);
        assert_eq!(
            m.text,
            format!(
                "Herald Demo Health: your code is {code}. Enter it on the preferences page within 10 minutes. If you did not ask for it, ignore this message."
            )
        );
        assert!(!m.text.contains("Synthetic") && !m.text.contains(PHONE));
        // Not used yet: neither the patient's number nor a lookup by it.
        assert_eq!(phone_of(&mut c, &ring, "p-code"), PHONE);
        assert!(
            patients::find_by_phone(&mut c, &ring, OTHER)
                .unwrap()
                .is_empty()
        );
        // A wrong code changes nothing and says how many tries are left.
        let wrong = if code == "000000" { "111111" } else { "000000" };
        assert_eq!(
            prefs::confirm_code(&mut c, &ring, &clock, "p-code", wrong, "127.0.0.1").unwrap(),
            CodeCheck::Wrong { left: 4 }
        );
        assert_eq!(phone_of(&mut c, &ring, "p-code"), PHONE);
        // The right one makes it the patient's number, with consent for it.
        assert_eq!(
            prefs::confirm_code(&mut c, &ring, &clock, "p-code", &code, "127.0.0.1").unwrap(),
            CodeCheck::Confirmed
        );
        assert_eq!(phone_of(&mut c, &ring, "p-code"), OTHER);
        assert_eq!(
            patients::find_by_phone(&mut c, &ring, OTHER).unwrap(),
            vec!["p-code".to_string()]
        );
        // Single use.
        assert_eq!(
            prefs::confirm_code(&mut c, &ring, &clock, "p-code", &code, "127.0.0.1").unwrap(),
            CodeCheck::NoCode
        );
        // Stored hashed; each step audited, never the number or the code.
        let hash = ring.blind_index("contact-code", &format!("{}:{code}", m.intent_id));
        assert_eq!(code_hashes(&mut c), vec![hash], "only the keyed hash");
        let audit = audit_text(&mut c);
        for step in ["sent", "wrong-code", "confirmed"] {
            assert!(audit.contains(&format!("\"{step}\"")), "{step} is audited");
        }
        assert!(audit.contains("urn:herald:contact-code"));
        assert!(!audit.contains(OTHER));
        drop(c);
        assert!(!db.dump().contains(OTHER), "the new number is sealed");
    }
}

#[test]
fn codes_expire_after_ten_minutes_and_lock_after_five_tries() {
    for db in support::backends() {
        let (ring, _) = support::ready(&db);
        patient(&db, &ring, "p-exp");
        let clock = support::clock();
        let sender = MemorySender::default();
        let mut c = db.conn();
        request(&mut c, &ring, &clock, &sender, "p-exp", OTHER);
        let code = code_of(sender.sent.lock().unwrap().last().unwrap());
        clock.advance(chrono::Duration::minutes(10));
        assert_eq!(
            prefs::confirm_code(&mut c, &ring, &clock, "p-exp", &code, "127.0.0.1").unwrap(),
            CodeCheck::Expired
        );
        assert_eq!(phone_of(&mut c, &ring, "p-exp"), PHONE);

        // A new code retires the old one; five wrong tries lock it, and then
        // even the right code is refused.
        request(&mut c, &ring, &clock, &sender, "p-exp", OTHER);
        let code2 = code_of(sender.sent.lock().unwrap().last().unwrap());
        let wrong = if code2 == "000000" {
            "111111"
        } else {
            "000000"
        };
        for left in (0..5).rev() {
            assert_eq!(
                prefs::confirm_code(&mut c, &ring, &clock, "p-exp", wrong, "127.0.0.1").unwrap(),
                CodeCheck::Wrong { left }
            );
        }
        assert_eq!(
            prefs::confirm_code(&mut c, &ring, &clock, "p-exp", &code2, "127.0.0.1").unwrap(),
            CodeCheck::Locked
        );
        assert_eq!(phone_of(&mut c, &ring, "p-exp"), PHONE);
        assert!(
            prefs::waiting(&mut c, &ring, "p-exp", clock.now())
                .unwrap()
                .is_none()
        );
        let audit = audit_text(&mut c);
        assert!(audit.contains("\"expired\"") && audit.contains("\"locked\""));
    }
}

#[test]
fn at_most_three_codes_an_hour_so_the_page_cannot_flood_a_number() {
    for db in support::backends() {
        let (ring, _) = support::ready(&db);
        patient(&db, &ring, "p-cap");
        let clock = support::clock();
        let sender = MemorySender::default();
        let mut c = db.conn();
        for _ in 0..3 {
            assert_eq!(
                request(&mut c, &ring, &clock, &sender, "p-cap", OTHER),
                CodeRequest::Sent
            );
            clock.advance(chrono::Duration::minutes(5));
        }
        assert_eq!(
            request(&mut c, &ring, &clock, &sender, "p-cap", OTHER),
            CodeRequest::Capped
        );
        assert_eq!(sender.sent.lock().unwrap().len(), 3);
        // Quiet hours do not apply (the patient asked just now), the hour does.
        clock.advance(chrono::Duration::minutes(50));
        assert_eq!(
            request(&mut c, &ring, &clock, &sender, "p-cap", OTHER),
            CodeRequest::Sent
        );
        assert!(audit_text(&mut c).contains("\"capped\""));
    }
}

/// The acceptance line: a number that was never confirmed gets no
/// appointment or medication messages; they keep going to the EHR's number.
#[test]
fn an_unconfirmed_number_receives_no_messages() {
    for db in support::backends() {
        let (ring, _) = support::ready(&db);
        patient(&db, &ring, "p-unc");
        let clock = support::clock();
        let codes = MemorySender::default();
        let mut c = db.conn();
        request(&mut c, &ring, &clock, &codes, "p-unc", OTHER);
        super::channels::intent_with(&mut c, "p-unc", 1);
        let parts = support::Parts::new();
        let sender = MemorySender::default();
        let ctx = parts.ctx(&ring, &clock, &sender);
        herald::service::send::run_due(&mut c, &ctx, &sender, "w1").unwrap();
        let sent = sender.sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to, PHONE);
        assert!(sent.iter().all(|m| m.to != OTHER));
    }
}

#[test]
fn issuing_a_link_is_audited_and_limited_to_thirty_days() {
    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    patient(&db, &ring, "p-link");
    let now = support::now();
    let mut c = db.conn();
    let by = || Actor::Staff("os:frontdesk".into());
    for days in [0, 31, 365] {
        assert!(matches!(
            prefs::new_link(&mut c, &ring, now, "p-link", days, by()),
            Err(NewLinkError::Days)
        ));
    }
    assert!(matches!(
        prefs::new_link(&mut c, &ring, now, "nobody", 7, by()),
        Err(NewLinkError::UnknownPatient)
    ));
    let (token, until) = prefs::new_link(&mut c, &ring, now, "p-link", 30, by()).unwrap();
    assert_eq!(until, now + chrono::Duration::days(30));
    assert_eq!(prefs::open_link(&ring, &token, now), Ok("p-link".into()));
    drop(c);
    let dump = db.dump();
    assert!(dump.contains("urn:herald:preference-link"));
    assert!(dump.contains("os:frontdesk"), "who issued it");
    assert!(dump.contains("2026-12-31T17:00:00Z"), "until when");
    assert!(!dump.contains(&token), "never the token");
    // A link Herald signed for longer than 30 days does not open.
    let long = prefs::issue_link(&ring, "p-link", now, now + chrono::Duration::days(31)).unwrap();
    assert_eq!(prefs::open_link(&ring, &long, now), Err(LinkError::Invalid));
}

fn form_cookie<B>(res: &actix_web::dev::ServiceResponse<B>) -> String {
    res.response()
        .cookies()
        .find(|c| c.name() == "herald_csrf")
        .unwrap()
        .value()
        .to_string()
}

/// The page end to end over HTTP: the number field sends a code, the page
/// asks for it, a wrong one is refused, the right one switches the number;
/// a signed link longer than 30 days is refused.
#[actix_rt::test]
async fn the_page_asks_for_the_code_before_using_a_number() {
    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    patient(&db, &ring, "p-web");
    let now = support::now();
    let token = prefs::issue_link(&ring, "p-web", now, now + chrono::Duration::days(7)).unwrap();
    let long = prefs::issue_link(&ring, "p-web", now, now + chrono::Duration::days(90)).unwrap();
    let ring = Arc::new(ring);
    let sender = Arc::new(MemorySender::default());
    let state = AppState::new(
        Arc::new(herald::config::Settings::default()),
        db.pool.clone(),
        Arc::clone(&ring),
        Arc::new(support::clock()),
    )
    .with_channels(sender.clone());
    let app = at::init_service(app(state)).await;
    let peer: std::net::SocketAddr = "127.0.0.1:40000".parse().unwrap();

    let res = at::call_service(
        &app,
        at::TestRequest::get()
            .uri(&format!("/p/{long}"))
            .peer_addr(peer)
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 403, "a 90-day link");

    let res = at::call_service(
        &app,
        at::TestRequest::get()
            .uri(&format!("/p/{token}"))
            .peer_addr(peer)
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    let csrf = form_cookie(&res);
    let body = String::from_utf8(at::read_body(res).await.to_vec()).unwrap();
    assert!(!body.contains("code-form"));
    let post = |path: String, form: Vec<(&'static str, String)>| {
        at::TestRequest::post()
            .uri(&path)
            .peer_addr(peer)
            .cookie(actix_web::cookie::Cookie::new("herald_csrf", csrf.clone()))
            .set_form(form)
            .to_request()
    };
    let res = at::call_service(
        &app,
        post(
            format!("/p/{token}"),
            vec![
                ("csrf", csrf.clone()),
                ("action", "save".into()),
                ("other_number", "+1 (312) 555-0199".into()),
            ],
        ),
    )
    .await;
    assert_eq!(res.status().as_u16(), 303);
    let location = res
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(location.ends_with("code=sent"), "{location}");
    let code = code_of(sender.sent.lock().unwrap().last().unwrap());
    let mut c = db.conn();
    assert_eq!(
        phone_of(&mut c, &ring, "p-web"),
        PHONE,
        "not before the code"
    );
    drop(c);

    let res = at::call_service(
        &app,
        at::TestRequest::get()
            .uri(&location)
            .peer_addr(peer)
            .to_request(),
    )
    .await;
    let body = String::from_utf8(at::read_body(res).await.to_vec()).unwrap();
    assert!(body.contains("id=\"code-form\"") && body.contains("id=\"code-sent\""));
    assert!(body.contains("***0199") && !body.contains(OTHER), "masked");
    assert!(!body.contains(&code));

    // Without the CSRF token nothing is checked.
    let res = at::call_service(
        &app,
        post(format!("/p/{token}/confirm"), vec![("code", code.clone())]),
    )
    .await;
    assert_eq!(res.status().as_u16(), 403);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let res = at::call_service(
        &app,
        post(
            format!("/p/{token}/confirm"),
            vec![("csrf", csrf.clone()), ("code", wrong.into())],
        ),
    )
    .await;
    assert_eq!(
        res.headers().get("location").unwrap().to_str().unwrap(),
        format!("/p/{token}?code=wrong")
    );
    let res = at::call_service(
        &app,
        post(
            format!("/p/{token}/confirm"),
            vec![("csrf", csrf.clone()), ("code", code.clone())],
        ),
    )
    .await;
    assert_eq!(
        res.headers().get("location").unwrap().to_str().unwrap(),
        format!("/p/{token}?code=confirmed")
    );
    let mut c = db.conn();
    assert_eq!(phone_of(&mut c, &ring, "p-web"), OTHER);
}

/// Security review F8d: behind TLS (an https `server.public_url`, or Herald's
/// own certificate) the preference page's form cookie is
/// `__Host-herald_csrf` — Secure, `Path=/`, no Domain — and only that name is
/// read back; on plain http (the loopback demo) it keeps its plain name.
/// The clinician page's session cookie follows the same rule: a request
/// carrying only the unprefixed name is treated as carrying none.
#[actix_rt::test]
async fn over_tls_the_patient_and_clinician_cookies_are_host_prefixed() {
    for tls in [false, true] {
        let db = support::sqlite();
        let (ring, _) = support::ready(&db);
        patient(&db, &ring, "p-tls");
        let now = support::now();
        let token =
            prefs::issue_link(&ring, "p-tls", now, now + chrono::Duration::days(7)).unwrap();
        let mut settings = herald::config::Settings::default();
        if tls {
            settings.server.public_url = Some("https://herald.example.org".into());
        }
        let state = AppState::new(
            Arc::new(settings),
            db.pool.clone(),
            Arc::new(ring),
            Arc::new(support::clock()),
        );
        let app = at::init_service(app(state)).await;
        let res = at::call_service(
            &app,
            at::TestRequest::get()
                .uri(&format!("/p/{token}"))
                .to_request(),
        )
        .await;
        assert_eq!(res.status().as_u16(), 200);
        let cookie = res
            .response()
            .cookies()
            .find(|c| c.name().ends_with("herald_csrf"))
            .unwrap()
            .into_owned();
        if tls {
            assert_eq!(cookie.name(), "__Host-herald_csrf");
            assert_eq!(
                (cookie.secure(), cookie.path(), cookie.domain()),
                (Some(true), Some("/"), None)
            );
        } else {
            assert_eq!(cookie.name(), "herald_csrf");
            assert_ne!(cookie.secure(), Some(true));
        }
        // The form posted back with the cookie under the other name fails
        // its CSRF check; under its own name it passes.
        let body = String::from_utf8(at::read_body(res).await.to_vec()).unwrap();
        let csrf = body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap()
            .to_string();
        let other = if tls {
            "herald_csrf"
        } else {
            "__Host-herald_csrf"
        };
        for (name, ok) in [
            (cookie.name().to_string(), true),
            (other.to_string(), false),
        ] {
            let res = at::call_service(
                &app,
                at::TestRequest::post()
                    .uri(&format!("/p/{token}"))
                    .cookie(actix_web::cookie::Cookie::new(
                        name.clone(),
                        cookie.value().to_string(),
                    ))
                    .set_form([("csrf", csrf.as_str()), ("sms", "on")])
                    .to_request(),
            )
            .await;
            let status = res.status().as_u16();
            assert_eq!(status < 400, ok, "tls={tls} cookie {name}: {status}");
        }
        // /app: a (stale) session cookie under Herald's name gets the
        // "session has ended" page; under the other name it is no session.
        let (mine, theirs) = if tls {
            ("__Host-herald_app", "herald_app")
        } else {
            ("herald_app", "__Host-herald_app")
        };
        let ended = |res: actix_web::dev::ServiceResponse<_>| async move {
            String::from_utf8(at::read_body(res).await.to_vec())
                .unwrap()
                .contains("has ended")
        };
        let get = |name: &str| {
            at::TestRequest::get()
                .uri("/app")
                .cookie(actix_web::cookie::Cookie::new(
                    name.to_string(),
                    "stale".to_string(),
                ))
                .to_request()
        };
        let res = at::call_service(&app, get(mine)).await;
        assert_eq!(res.status().as_u16(), 401);
        assert!(ended(res).await, "tls={tls}: {mine} is read");
        let res = at::call_service(&app, get(theirs)).await;
        assert_eq!(res.status().as_u16(), 401);
        assert!(!ended(res).await, "tls={tls}: {theirs} is not read");
    }
}
