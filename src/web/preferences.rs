//! `GET /p/{token}` and `POST /p/{token}`: the patient preference page (issue
//! 5 §5). A signed, expiring link for one patient; language, channels and
//! purposes, opt out of everything, express written consent (never
//! pre-checked, exact wording versioned), confidential-communications
//! requests; a new number is used only once the 6-digit code sent to it is
//! entered (`POST /p/{token}/confirm`, issue 11 F8f). CSRF-protected (a keyed token in the form and a SameSite=Strict
//! cookie must both match); no scripts; a CSP without inline anything; every
//! view and change audited.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{AppState, access_record, peer};
use crate::audit;
use crate::domain::audit::{Activity, AuditRecord};
use crate::domain::{Channel, Purpose};
use crate::render::escape_markup;
use crate::service::preferences::{
    self as prefs, Change, LinkError, PURPOSES, WRITTEN_CONSENT_TEXT, WRITTEN_CONSENT_VERSION,
};

const CSRF_COOKIE: &str = "herald_csrf";

fn page(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "content-security-policy",
            "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header(("referrer-policy", "no-referrer"))
        .insert_header(("x-frame-options", "DENY"))
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title></head><body>{body}</body></html>",
            escape_markup(title)
        ))
}

fn refused(e: LinkError) -> HttpResponse {
    match e {
        LinkError::Expired => page(
            StatusCode::GONE,
            "Link expired",
            "<h1>This link has expired</h1><p>For your privacy, preference links work for a limited time. Reply HELP to any of our messages or call the practice for a new one.</p>",
        ),
        LinkError::Invalid => page(
            StatusCode::FORBIDDEN,
            "Link not valid",
            "<h1>This link is not valid</h1><p>It may have been copied incompletely. Reply HELP to any of our messages or call the practice for a new one.</p>",
        ),
    }
}

fn page_record(state: &AppState, req: &HttpRequest, patient: &str, what: &str) -> AuditRecord {
    access_record(
        state,
        req,
        Activity::RecordQuery {
            resource_type: "Consent".into(),
            query: format!("patient-preference-page={what}"),
        },
        Some(patient.into()),
    )
}

fn channel_label(c: Channel) -> &'static str {
    match c {
        Channel::Sms => "Text messages",
        Channel::Email => "Email",
        Channel::Voice => "Phone calls",
    }
}

fn purpose_label(p: Purpose) -> &'static str {
    match p {
        Purpose::Appointment => "Appointments",
        Purpose::Medication => "Prescriptions",
        Purpose::Billing => "Billing",
        Purpose::Marketing => "News and offers",
    }
}

/// GET /p/{token}
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> HttpResponse {
    let token = token.into_inner();
    let patient = match prefs::open_link(&state.ring, &token, state.clock.now()) {
        Ok(p) => p,
        Err(e) => return refused(e),
    };
    let st = state.clone();
    let record = page_record(&state, &req, &patient, "view");
    let pid = patient.clone();
    let loaded = web::block(move || -> Result<_, crate::db::DbError> {
        let mut c = st.pool.get()?;
        let now = st.clock.now();
        let v = prefs::view(&mut c, &st.ring, &pid, now)?;
        let waiting = prefs::waiting(&mut c, &st.ring, &pid, now)?;
        audit::append_now(&mut c, &[record])?;
        Ok(v.map(|v| (v, waiting)))
    })
    .await;
    let (view, waiting) = match loaded {
        Ok(Ok(Some(v))) => v,
        Ok(Ok(None)) => return refused(LinkError::Invalid),
        _ => {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "<h1>Please try again in a few minutes</h1>",
            );
        }
    };
    let csrf = prefs::csrf_for(&state.ring, &token);
    let saved = req.query_string().contains("saved=1");
    let lang = view
        .patient
        .language
        .clone()
        .unwrap_or_else(|| state.settings.messaging.default_language.clone());
    let mut html = String::new();
    html.push_str("<main><h1>Your message preferences</h1>");
    if saved {
        html.push_str("<p role=\"status\" id=\"saved\">Your choices are saved.</p>");
    }
    if let Some(note) = code_note(req.query_string()) {
        html.push_str(note);
    }
    if let Some(w) = &waiting {
        // Issue 11 F8f: the new number is used only once this code is back.
        html.push_str(&format!(
            "<form method=\"post\" action=\"/p/{}/confirm\" id=\"code-form\"><p>We sent a 6-digit code to {}. Enter it here within {} minutes to use that number.</p><input type=\"hidden\" name=\"csrf\" value=\"{}\"><label for=\"code\">Code</label> <input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9]{{6}}\" maxlength=\"6\" required> <button type=\"submit\" id=\"confirm\">Confirm the number</button></form>",
            escape_markup(&token),
            escape_markup(&w.masked),
            prefs::CODE_MINUTES,
            escape_markup(&csrf)
        ));
    }
    html.push_str(&format!(
        "<form method=\"post\" action=\"/p/{}\">",
        escape_markup(&token)
    ));
    html.push_str(&format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape_markup(&csrf)
    ));
    html.push_str("<fieldset><legend>Language</legend><label for=\"language\">Language for messages</label> <select id=\"language\" name=\"language\">");
    for (code, _) in crate::render::LOCALES {
        html.push_str(&format!(
            "<option value=\"{}\"{}>{}</option>",
            escape_markup(code),
            if *code == lang { " selected" } else { "" },
            escape_markup(code)
        ));
    }
    html.push_str("</select></fieldset>");
    html.push_str("<fieldset><legend>What we may send you</legend><table><tr><th></th>");
    for p in PURPOSES {
        html.push_str(&format!("<th>{}</th>", purpose_label(p)));
    }
    html.push_str("</tr>");
    for ch in [Channel::Sms, Channel::Email, Channel::Voice] {
        if !view.allowed.iter().any(|(c, _, _)| *c == ch) {
            continue;
        }
        html.push_str(&format!("<tr><th>{}</th>", channel_label(ch)));
        for p in PURPOSES {
            let on = view
                .allowed
                .iter()
                .any(|(c, pp, a)| *c == ch && *pp == p && *a);
            let name = format!("allow.{}.{}", ch.code(), p.code());
            html.push_str(&format!(
                "<td><input type=\"checkbox\" id=\"{name}\" name=\"{name}\" value=\"1\"{}><input type=\"hidden\" name=\"shown.{}.{}\" value=\"{}\"></td>",
                if on { " checked" } else { "" },
                ch.code(),
                p.code(),
                if on { "1" } else { "0" }
            ));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table></fieldset>");
    let marketing_on = view
        .allowed
        .iter()
        .any(|(_, p, a)| *p == Purpose::Marketing && *a);
    html.push_str("<fieldset><legend>News and offers</legend>");
    if marketing_on {
        html.push_str("<p id=\"marketing-on\">You agreed to receive news and offers.</p>");
    } else {
        // Express written consent: never pre-checked (CTIA C4); the exact wording is versioned.
        html.push_str(&format!(
            "<label><input type=\"checkbox\" id=\"written-consent\" name=\"written_consent\" value=\"{}\"> {}</label>",
            WRITTEN_CONSENT_VERSION,
            escape_markup(WRITTEN_CONSENT_TEXT)
        ));
    }
    html.push_str("</fieldset>");
    html.push_str("<fieldset><legend>Confidential communications</legend><p>You may ask us to reach you only in certain ways. You do not need to say why.</p>");
    html.push_str("<label><input type=\"checkbox\" id=\"email-only\" name=\"email_only\" value=\"1\"> Email only: no text messages and no calls</label><br>");
    html.push_str("<label><input type=\"checkbox\" id=\"no-voicemail\" name=\"no_voicemail\" value=\"1\"> No phone calls or voicemail</label><br>");
    html.push_str("<label>Text and call me at this number instead: <input type=\"tel\" id=\"other-number\" name=\"other_number\" autocomplete=\"tel\" placeholder=\"+1 212 555 0100\"></label>");
    html.push_str("<br><label><input type=\"checkbox\" id=\"clear-number\" name=\"clear_number\" value=\"1\"> Use the number my care team has again</label>");
    if !view.blocked_channels.is_empty() {
        let names: Vec<&str> = view
            .blocked_channels
            .iter()
            .map(|c| channel_label(*c))
            .collect();
        html.push_str(&format!(
            "<p id=\"blocked\">In force: no {}.</p>",
            escape_markup(&names.join(", ").to_lowercase())
        ));
    }
    html.push_str("</fieldset>");
    html.push_str("<button type=\"submit\" id=\"save\" name=\"action\" value=\"save\">Save my choices</button> ");
    html.push_str("<button type=\"submit\" id=\"optout\" name=\"action\" value=\"optout_all\">Stop all messages</button>");
    html.push_str("</form></main>");
    let mut resp = page(StatusCode::OK, "Your message preferences", &html);
    // Over TLS `__Host-herald_csrf` (Secure, Path=/, F8d); on plain http
    // the plain name, scoped to the pages.
    let secure = super::served_over_tls(&state.settings);
    let cookie = Cookie::build(super::cookie_name(&state.settings, CSRF_COOKIE), csrf)
        .path(if secure { "/" } else { "/p/" })
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .finish();
    let _ = resp.add_cookie(&cookie);
    resp
}

/// POST /p/{token}
pub async fn save(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let token = token.into_inner();
    let patient = match prefs::open_link(&state.ring, &token, state.clock.now()) {
        Ok(p) => p,
        Err(e) => return refused(e),
    };
    let form = form.into_inner();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if !csrf_ok(&req, &state, &token, get("csrf")) {
        return not_saved();
    }
    let mut changes = Vec::new();
    let mut new_number = None;
    if get("action") == Some("optout_all") {
        changes.push(Change::OptOutAll);
    } else {
        if let Some(lang) = get("language")
            && crate::render::LOCALES.iter().any(|(l, _)| *l == lang)
        {
            changes.push(Change::Language(lang.to_string()));
        }
        for ch in [Channel::Sms, Channel::Email, Channel::Voice] {
            for p in PURPOSES {
                let shown = get(&format!("shown.{}.{}", ch.code(), p.code()));
                let Some(shown) = shown else { continue };
                let now_on = get(&format!("allow.{}.{}", ch.code(), p.code())) == Some("1");
                if (shown == "1") != now_on {
                    changes.push(Change::Set(ch, p, now_on));
                }
            }
        }
        if get("written_consent") == Some(WRITTEN_CONSENT_VERSION) {
            changes.push(Change::WrittenConsent);
        }
        if get("email_only") == Some("1") {
            changes.push(Change::EmailOnly);
        }
        if get("no_voicemail") == Some("1") {
            changes.push(Change::NoVoicemail);
        }
        if let Some(raw) = get("other_number").filter(|n| !n.trim().is_empty()) {
            match prefs::check_number(raw) {
                // Used only once a code sent to it comes back (F8f).
                Ok(n) => new_number = Some(n),
                Err(why) => {
                    return page(
                        StatusCode::BAD_REQUEST,
                        "Not saved",
                        &format!(
                            "<h1>Your choices were not saved</h1><p>{}</p>",
                            escape_markup(why)
                        ),
                    );
                }
            }
        } else if get("clear_number") == Some("1") {
            changes.push(Change::ClearNumber);
        }
    }
    let st = state.clone();
    let who = peer(&req);
    let record = page_record(&state, &req, &patient, "save");
    let done = web::block(move || -> Result<&'static str, crate::db::DbError> {
        let mut c = st.pool.get()?;
        prefs::apply(
            &mut c,
            &st.ring,
            st.clock.as_ref(),
            &patient,
            &changes,
            &who,
        )?;
        audit::append_now(&mut c, &[record])?;
        let Some(number) = new_number else {
            return Ok("");
        };
        let Some(sender) = st.channels.as_deref() else {
            return Ok("&code=failed");
        };
        let renderer = match crate::render::Renderer::embedded() {
            Ok(r) => r,
            Err(_) => return Ok("&code=failed"),
        };
        let via = prefs::CodeChannel {
            sender,
            renderer: &renderer,
            practice: &st.settings.messaging.practice_name,
        };
        let sent = prefs::request_code(
            &mut c,
            &st.ring,
            st.clock.as_ref(),
            &via,
            &patient,
            &number,
            &who,
        )?;
        Ok(match sent {
            prefs::CodeRequest::Sent => "&code=sent",
            prefs::CodeRequest::Capped => "&code=capped",
            prefs::CodeRequest::SendFailed | prefs::CodeRequest::UnknownPatient => "&code=failed",
        })
    })
    .await;
    match done {
        Ok(Ok(note)) => HttpResponse::SeeOther()
            .insert_header(("location", format!("/p/{token}?saved=1{note}")))
            .finish(),
        _ => page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            "<h1>Your choices were not saved; please try again</h1>",
        ),
    }
}

fn not_saved() -> HttpResponse {
    page(
        StatusCode::FORBIDDEN,
        "Not saved",
        "<h1>Your choices were not saved</h1><p>Please open the link again and retry.</p>",
    )
}

/// The form's CSRF field and the SameSite=Strict cookie both carry the
/// link's keyed token (compared in constant time).
fn csrf_ok(req: &HttpRequest, state: &AppState, token: &str, field: Option<&str>) -> bool {
    let expected = prefs::csrf_for(&state.ring, token);
    let cookie = req
        .cookie(&super::cookie_name(&state.settings, CSRF_COOKIE))
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    let ok = |a: &str| crate::crypto::same_secret(a, &expected);
    ok(field.unwrap_or_default()) && ok(&cookie)
}

/// What the page says after a code step (`?code=…`, a closed set: nothing
/// the caller writes is echoed).
fn code_note(query: &str) -> Option<&'static str> {
    let value = query.split('&').find_map(|kv| kv.strip_prefix("code="))?;
    Some(match value {
        "sent" => {
            "<p role=\"status\" id=\"code-sent\">We sent a code to the new number. It is not used until you enter the code below.</p>"
        }
        "capped" => {
            "<p role=\"alert\" id=\"code-capped\">Too many codes were sent in the last hour. Please try again later.</p>"
        }
        "failed" => {
            "<p role=\"alert\" id=\"code-failed\">We could not send a code to that number. Please check it and try again.</p>"
        }
        "confirmed" => {
            "<p role=\"status\" id=\"code-confirmed\">The new number is confirmed. We will text and call you there.</p>"
        }
        "wrong" => {
            "<p role=\"alert\" id=\"code-wrong\">That code is not right. Please try again.</p>"
        }
        "expired" => {
            "<p role=\"alert\" id=\"code-expired\">That code has expired or was tried too many times. Enter the number again for a new code.</p>"
        }
        "none" => {
            "<p role=\"alert\" id=\"code-none\">No code is waiting. Enter the number again for a new code.</p>"
        }
        _ => return None,
    })
}

/// POST /p/{token}/confirm: the code sent to a new number (issue 11 F8f).
pub async fn confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let token = token.into_inner();
    let patient = match prefs::open_link(&state.ring, &token, state.clock.now()) {
        Ok(p) => p,
        Err(e) => return refused(e),
    };
    let form = form.into_inner();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if !csrf_ok(&req, &state, &token, get("csrf")) {
        return not_saved();
    }
    // At most a few characters of it reach the service; never logged.
    let code: String = get("code").unwrap_or_default().chars().take(12).collect();
    let st = state.clone();
    let who = peer(&req);
    let done = web::block(move || -> Result<prefs::CodeCheck, crate::db::DbError> {
        let mut c = st.pool.get()?;
        prefs::confirm_code(&mut c, &st.ring, st.clock.as_ref(), &patient, &code, &who)
    })
    .await;
    let note = match done {
        Ok(Ok(prefs::CodeCheck::Confirmed)) => "confirmed",
        Ok(Ok(prefs::CodeCheck::Wrong { left })) if left > 0 => "wrong",
        Ok(Ok(prefs::CodeCheck::Wrong { .. }))
        | Ok(Ok(prefs::CodeCheck::Expired))
        | Ok(Ok(prefs::CodeCheck::Locked)) => "expired",
        Ok(Ok(prefs::CodeCheck::NoCode)) => "none",
        _ => {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "<h1>Your code was not checked; please try again</h1>",
            );
        }
    };
    HttpResponse::SeeOther()
        .insert_header(("location", format!("/p/{token}?code={note}")))
        .finish()
}
