//! Provider webhooks. `POST /hooks/sms/{provider}/status` records delivery
//! status from Twilio-style callbacks after checking `X-Twilio-Signature`
//! exactly as Twilio computes it (messaging.md W1): the configured public URL
//! of the request (scheme, host, port, path, query) followed by every POST
//! parameter name and value sorted by name, HMAC-SHA1 keyed by the auth
//! token, base64; compared in constant time. A mismatch is a 403. What a
//! callback changes is `service::delivery::status_callback`'s, in one
//! transaction.

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;

use super::AppState;
use crate::db;

/// Twilio's signature of a form POST to `url`; `None` when it cannot be
/// computed (an empty token, an OpenSSL failure), which refuses (F4).
pub fn twilio_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
) -> Option<String> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = String::from(url);
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mac = crate::crypto::hmac_sha1(auth_token.as_bytes(), data.as_bytes()).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(mac))
}

/// Whether `given` is Twilio's signature of this request.
pub fn twilio_signature_ok(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    given: &str,
) -> bool {
    // F4: fail closed — no token, no MAC, or no signature given is a refusal.
    let Some(want) = twilio_signature(auth_token, url, params) else {
        return false;
    };
    !given.is_empty()
        && want.len() == given.len()
        && openssl::memcmp::eq(want.as_bytes(), given.as_bytes())
}

/// The URL Twilio signed: the configured public URL plus the request's path
/// and query (never the Host header, which a caller controls).
pub fn signed_url(public_url: &str, req: &HttpRequest) -> String {
    let mut u = format!("{}{}", public_url.trim_end_matches('/'), req.path());
    if !req.query_string().is_empty() {
        u.push('?');
        u.push_str(req.query_string());
    }
    u
}

fn problem(status: actix_web::http::StatusCode, title: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/problem+json")
        .json(
            serde_json::json!({ "type": "about:blank", "title": title, "status": status.as_u16() }),
        )
}

/// Checks the signature of a Twilio form POST; `Err` is the response to give.
pub fn verify_twilio(
    state: &AppState,
    req: &HttpRequest,
    params: &[(String, String)],
) -> Result<(), Box<HttpResponse>> {
    let forbidden = || {
        problem(
            actix_web::http::StatusCode::FORBIDDEN,
            "Signature check failed",
        )
    };
    let (Some(public), Some(token)) = (
        state.settings.server.public_url.as_deref(),
        state.settings.sms.auth_token.as_ref(),
    ) else {
        tracing::warn!(
            "webhook refused: server.public_url and sms.auth_token are needed to check signatures"
        );
        return Err(Box::new(forbidden()));
    };
    let given = req
        .headers()
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if twilio_signature_ok(token.expose(), &signed_url(public, req), params, given) {
        Ok(())
    } else {
        tracing::warn!(
            path = req.path(),
            "webhook refused: bad or missing X-Twilio-Signature"
        );
        Err(Box::new(forbidden()))
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// POST /hooks/sms/{provider}/status
pub async fn status(
    req: HttpRequest,
    state: web::Data<AppState>,
    provider: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    if provider.as_str() != "twilio" {
        return problem(actix_web::http::StatusCode::NOT_FOUND, "Unknown provider");
    }
    let params = form.into_inner();
    if let Err(resp) = verify_twilio(&state, &req, &params) {
        return *resp;
    }
    let sid = param(&params, "MessageSid").or_else(|| param(&params, "CallSid"));
    let status = param(&params, "MessageStatus")
        .or_else(|| param(&params, "SmsStatus"))
        .or_else(|| param(&params, "CallStatus"));
    let (Some(sid), Some(status)) = (sid.map(String::from), status.map(String::from)) else {
        return problem(
            actix_web::http::StatusCode::BAD_REQUEST,
            "MessageSid and MessageStatus are required",
        );
    };
    let cb = crate::service::delivery::StatusCallback {
        provider_ref: sid,
        status,
        error_code: param(&params, "ErrorCode").map(String::from),
    };
    let st = state.clone();
    let done = web::block(move || -> Result<_, db::DbError> {
        let mut c = st.pool.get()?;
        crate::service::delivery::status_callback(&mut c, &st.ring, st.clock.as_ref(), &cb)
    })
    .await;
    match done {
        Ok(Ok(_)) => HttpResponse::NoContent().finish(),
        _ => problem(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "Status not recorded; retry later",
        ),
    }
}

const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>";

/// POST /hooks/sms/{provider}/inbound: a patient's text. Signature first
/// (403 otherwise, audited); then recorded once per signed MessageSid, read,
/// and acted on in one transaction. The unsigned `I-Twilio-Idempotency-Token`
/// header is ignored: a captured signed request replayed with another token
/// is still a replay (F8a). Answers at once with empty TwiML: replies go
/// through the outbox (consent, language, audit).
pub async fn inbound(
    req: HttpRequest,
    state: web::Data<AppState>,
    provider: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    if provider.as_str() != "twilio" {
        return problem(actix_web::http::StatusCode::NOT_FOUND, "Unknown provider");
    }
    let params = form.into_inner();
    let verified = verify_twilio(&state, &req, &params).is_ok();
    let sid = param(&params, "MessageSid").or_else(|| param(&params, "SmsSid"));
    if verified && sid.is_none_or(str::is_empty) {
        return problem(
            actix_web::http::StatusCode::BAD_REQUEST,
            "MessageSid is required",
        );
    }
    let message_ref = sid.unwrap_or("unknown").to_string();
    let msg = crate::service::inbound::InboundSms {
        provider: provider.into_inner(),
        // The signed message id, never an unsigned header.
        dedupe_key: format!("sid:{message_ref}"),
        message_ref,
        from: param(&params, "From").unwrap_or_default().to_string(),
        body: param(&params, "Body").unwrap_or_default().to_string(),
        peer: super::peer(&req),
        confirm_keywords: state.settings.sms.keyword_confirmations,
        cancel_by_reply: state.settings.messaging.reply_cancel == "cancel",
        review_within: chrono::Duration::hours(i64::from(
            state.settings.messaging.reply_review_hours,
        )),
    };
    let st = state.clone();
    let done = web::block(move || -> Result<bool, db::DbError> {
        let mut c = st.pool.get()?;
        if !verified {
            crate::service::inbound::refused(
                &mut c,
                &st.ring,
                st.clock.as_ref(),
                &msg,
                "refused: bad or missing signature",
            )?;
            return Ok(false);
        }
        crate::service::inbound::handle(&mut c, &st.ring, st.clock.as_ref(), &msg)?;
        Ok(true)
    })
    .await;
    match done {
        Ok(Ok(true)) => HttpResponse::Ok()
            .content_type("text/xml; charset=utf-8")
            .body(EMPTY_TWIML),
        Ok(Ok(false)) => problem(
            actix_web::http::StatusCode::FORBIDDEN,
            "Signature check failed",
        ),
        _ => problem(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "Message not recorded; retry later",
        ),
    }
}
