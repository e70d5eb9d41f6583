//! SMS and voice through a Twilio-compatible REST API (messaging.md §2.5,
//! W3-W5): `POST /2010-04-01/Accounts/{Sid}/Messages.json` and `Calls.json`
//! with HTTP Basic auth, StatusCallback and ValidityPeriod. Twilio has no
//! idempotency key for creating messages, so a retry after an unknown outcome
//! first lists recent messages to that number and matches the body
//! ([`Sender::reconcile`]). Error 21610 (unsubscribed) is never retried.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{Outbound, ProviderError, Receipt, Sender};
use crate::render::escape_markup;

/// A Twilio account.
#[derive(Clone)]
pub struct TwilioConfig {
    /// API base, e.g. `https://api.twilio.com`.
    pub base_url: String,
    /// Account SID (AC…).
    pub account_sid: String,
    /// Auth token.
    pub auth_token: String,
    /// Sending number (E.164) or Messaging Service SID (MG…).
    pub from: String,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"***")
            .finish_non_exhaustive()
    }
}

/// Twilio's REST client (blocking; workers run on their own threads).
pub struct Twilio {
    cfg: TwilioConfig,
    http: reqwest::blocking::Client,
}

/// Texts through Messages.json.
pub struct TwilioSms(pub Twilio);
/// Calls through Calls.json with TwiML `<Say>`.
pub struct TwilioVoice(pub Twilio);

#[derive(Deserialize)]
struct Created {
    sid: String,
}

#[derive(Deserialize)]
struct ApiError {
    code: Option<i64>,
}

#[derive(Deserialize)]
struct MessageList {
    #[serde(default)]
    messages: Vec<ListedMessage>,
}

#[derive(Deserialize)]
struct ListedMessage {
    sid: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    date_created: Option<String>,
}

impl Twilio {
    /// A client with verified TLS and the configured timeout.
    pub fn new(cfg: TwilioConfig) -> Result<Self, String> {
        let http = reqwest::blocking::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self { cfg, http })
    }

    fn url(&self, resource: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/{resource}",
            self.cfg.base_url.trim_end_matches('/'),
            self.cfg.account_sid
        )
    }

    fn sender_param(&self) -> (&'static str, &str) {
        if self.cfg.from.starts_with("MG") {
            ("MessagingServiceSid", &self.cfg.from)
        } else {
            ("From", &self.cfg.from)
        }
    }

    fn create(&self, resource: &str, form: &[(&str, &str)]) -> Result<Receipt, ProviderError> {
        let resp = self
            .http
            .post(self.url(resource))
            .basic_auth(&self.cfg.account_sid, Some(&self.cfg.auth_token))
            .form(form)
            .send()
            .map_err(|e| {
                ProviderError::transient(if e.is_timeout() {
                    "timed out (outcome unknown)".to_string()
                } else {
                    "connection failed".to_string()
                })
            })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = resp
            .text()
            .map_err(|_| ProviderError::transient("response body lost (outcome unknown)"))?;
        if status.is_success() {
            let c: Created = serde_json::from_str(&body)
                .map_err(|_| ProviderError::transient("unreadable success response"))?;
            return Ok(Receipt {
                provider_ref: c.sid,
            });
        }
        let err: Option<ApiError> = serde_json::from_str(&body).ok();
        let code = err.as_ref().and_then(|e| e.code);
        if code == Some(21610) {
            return Err(ProviderError::OptedOut);
        }
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(ProviderError::Transient {
                reason: format!("HTTP {}", status.as_u16()),
                retry_after,
            });
        }
        // Twilio's `message` names the number: keep only the code and status.
        Err(ProviderError::Permanent {
            reason: format!(
                "HTTP {}{}",
                status.as_u16(),
                code.map(|c| format!(", Twilio error {c}"))
                    .unwrap_or_default()
            ),
            code: code.map(|c| c.to_string()),
        })
    }
}

impl Sender for TwilioSms {
    fn send(&self, msg: &Outbound) -> Result<Receipt, ProviderError> {
        let t = &self.0;
        let (from_key, from) = t.sender_param();
        let validity = msg.validity_secs.map(|v| v.clamp(1, 36_000).to_string());
        let mut form: Vec<(&str, &str)> =
            vec![("To", &msg.to), (from_key, from), ("Body", &msg.text)];
        if let Some(cb) = &msg.status_callback {
            form.push(("StatusCallback", cb));
        }
        if let Some(v) = &validity {
            form.push(("ValidityPeriod", v));
        }
        t.create("Messages.json", &form)
    }

    fn reconcile(
        &self,
        msg: &Outbound,
        since: DateTime<Utc>,
    ) -> Result<Option<Receipt>, ProviderError> {
        let t = &self.0;
        let (from_key, from) = t.sender_param();
        let mut query = vec![("To", msg.to.as_str()), ("PageSize", "50")];
        if from_key == "From" {
            query.push(("From", from));
        }
        let resp = t
            .http
            .get(t.url("Messages.json"))
            .basic_auth(&t.cfg.account_sid, Some(&t.cfg.auth_token))
            .query(&query)
            .send()
            .map_err(|_| ProviderError::transient("message lookup failed"))?;
        if !resp.status().is_success() {
            return Err(ProviderError::transient(format!(
                "message lookup: HTTP {}",
                resp.status().as_u16()
            )));
        }
        let list: MessageList = resp
            .json()
            .map_err(|_| ProviderError::transient("message lookup unreadable"))?;
        // Newest first; the earlier attempt is the one with our exact text,
        // to this number, created since the intent was first claimed.
        let since = since - chrono::Duration::seconds(5);
        Ok(list
            .messages
            .into_iter()
            .find(|m| {
                m.body.as_deref() == Some(msg.text.as_str())
                    && m.to.as_deref().is_none_or(|to| to == msg.to)
                    && m.date_created
                        .as_deref()
                        .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
                        .is_none_or(|d| d >= since)
            })
            .map(|m| Receipt {
                provider_ref: m.sid,
            }))
    }
}

/// Twilio's `<Say>` language for a Herald locale (Haitian Creole has no
/// voice: French is the closest Twilio offers, and the text stays Creole).
fn say_language(lang: &str) -> &'static str {
    match lang.split('-').next().unwrap_or_default() {
        "es" => "es-US",
        "zh" => "cmn-CN",
        "vi" => "vi-VN",
        "tl" | "fil" => "fil-PH",
        "ko" => "ko-KR",
        "ru" => "ru-RU",
        "ar" => "arb",
        "ht" => "fr-FR",
        _ => "en-US",
    }
}

/// The TwiML a call plays.
pub fn twiml(msg: &Outbound) -> String {
    format!(
        "<Response><Say language=\"{}\">{}</Say></Response>",
        say_language(&msg.lang),
        escape_markup(&msg.voice_text)
    )
}

impl Sender for TwilioVoice {
    fn send(&self, msg: &Outbound) -> Result<Receipt, ProviderError> {
        let t = &self.0;
        let twiml = twiml(msg);
        let mut form: Vec<(&str, &str)> =
            vec![("To", &msg.to), ("From", &t.cfg.from), ("Twiml", &twiml)];
        if let Some(cb) = &msg.status_callback {
            form.push(("StatusCallback", cb));
        }
        t.create("Calls.json", &form)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Channel;

    #[test]
    fn twiml_escapes_and_picks_the_voice_language() {
        let msg = Outbound {
            intent_id: "i".into(),
            channel: Channel::Voice,
            to: "+12125550100".into(),
            subject: String::new(),
            text: String::new(),
            email_text: String::new(),
            voice_text: "Hola, <Herald> & \"Demo\"".into(),
            lang: "es-US".into(),
            rtl: false,
            validity_secs: None,
            status_callback: None,
        };
        assert_eq!(
            twiml(&msg),
            "<Response><Say language=\"es-US\">Hola, &lt;Herald&gt; &amp; &quot;Demo&quot;</Say></Response>"
        );
    }
}
