//! Channels that deliver messages. Only this module talks to vendors.
//! `twilio` (SMS and voice over Twilio's REST API), `smtp` (email), `console`
//! (development) prints; `memory` (tests) records. [`Router`] picks the
//! sender for a message's channel.

pub mod smtp;
pub mod twilio;

use std::io::Write;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::domain::Channel;

/// One message handed to a channel.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The intent id: the idempotency key for the provider.
    pub intent_id: String,
    /// Channel.
    pub channel: Channel,
    /// Recipient address (PHI; printed only masked).
    pub to: String,
    /// Email subject.
    pub subject: String,
    /// The SMS text.
    pub text: String,
    /// The plain-text email body.
    pub email_text: String,
    /// What a voice call says.
    pub voice_text: String,
    /// Locale rendered.
    pub lang: String,
    /// Written right to left.
    pub rtl: bool,
    /// How long the provider may hold it (Twilio ValidityPeriod, seconds).
    pub validity_secs: Option<u32>,
    /// Where the provider reports delivery status.
    pub status_callback: Option<String>,
}

/// What the provider said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The provider's message id.
    pub provider_ref: String,
}

/// Why a send failed. Reasons never carry PHI (no address, no text).
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Try again later (5xx, 429, timeout); the outcome may be unknown, so the
    /// retry reconciles first.
    #[error("transient provider failure: {reason}")]
    Transient {
        /// What happened.
        reason: String,
        /// The provider's Retry-After, when it gave one.
        retry_after: Option<std::time::Duration>,
    },
    /// Do not try again.
    #[error("permanent provider failure: {reason}")]
    Permanent {
        /// What happened.
        reason: String,
        /// The provider's error code (e.g. Twilio 21211).
        code: Option<String>,
    },
    /// The recipient unsubscribed at the carrier (Twilio 21610): never
    /// retried; the number is marked opted out (messaging.md W4).
    #[error("recipient has opted out at the carrier")]
    OptedOut,
}

impl ProviderError {
    /// A transient error without Retry-After.
    pub fn transient(reason: impl Into<String>) -> Self {
        Self::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }
}

/// A delivery channel.
pub trait Sender: Send + Sync {
    /// Delivers one message; the same `intent_id` twice must not deliver twice
    /// where the provider offers idempotency.
    fn send(&self, msg: &Outbound) -> Result<Receipt, ProviderError>;

    /// Before a retry whose earlier attempt may have reached the provider
    /// (timeout, crash), looks for that earlier message; `Some` means it was
    /// accepted and must not be sent again.
    fn reconcile(
        &self,
        _msg: &Outbound,
        _since: DateTime<Utc>,
    ) -> Result<Option<Receipt>, ProviderError> {
        Ok(None)
    }
}

/// One sender per channel.
pub struct Router {
    /// SMS.
    pub sms: Box<dyn Sender>,
    /// Email.
    pub email: Box<dyn Sender>,
    /// Voice.
    pub voice: Box<dyn Sender>,
}

impl Router {
    fn pick(&self, c: Channel) -> &dyn Sender {
        match c {
            Channel::Sms => self.sms.as_ref(),
            Channel::Email => self.email.as_ref(),
            Channel::Voice => self.voice.as_ref(),
        }
    }
}

impl Sender for Router {
    fn send(&self, msg: &Outbound) -> Result<Receipt, ProviderError> {
        self.pick(msg.channel).send(msg)
    }

    fn reconcile(
        &self,
        msg: &Outbound,
        since: DateTime<Utc>,
    ) -> Result<Option<Receipt>, ProviderError> {
        self.pick(msg.channel).reconcile(msg, since)
    }
}

/// Masks an address for display: keeps the last four characters.
pub fn mask(addr: &str) -> String {
    let n = addr.chars().count();
    let tail: String = addr.chars().skip(n.saturating_sub(4)).collect();
    format!("***{tail}")
}

/// Prints messages to a writer (stdout in `herald demo`), recipients masked.
pub struct ConsoleSender {
    out: Mutex<Box<dyn Write + Send>>,
    seen: Mutex<std::collections::HashSet<String>>,
}

impl ConsoleSender {
    /// Prints to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
            seen: Mutex::new(Default::default()),
        }
    }
}

impl Sender for ConsoleSender {
    fn send(&self, msg: &Outbound) -> Result<Receipt, ProviderError> {
        let provider_ref = format!("console-{}", msg.intent_id);
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| ProviderError::transient("lock"))?;
        if !seen.insert(msg.intent_id.clone()) {
            return Ok(Receipt { provider_ref });
        }
        let mut out = self
            .out
            .lock()
            .map_err(|_| ProviderError::transient("lock"))?;
        writeln!(
            out,
            "  SENT    {:<5} to {:<10} [{}] {}",
            msg.channel,
            mask(&msg.to),
            msg.lang,
            match msg.channel {
                Channel::Sms => &msg.text,
                Channel::Email => &msg.subject,
                Channel::Voice => &msg.voice_text,
            }
        )
        .map_err(|e| ProviderError::transient(e.kind().to_string()))?;
        Ok(Receipt { provider_ref })
    }
}

/// Records messages in memory (tests).
#[derive(Default)]
pub struct MemorySender {
    /// Everything delivered, once per intent.
    pub sent: Mutex<Vec<Outbound>>,
}

impl Sender for MemorySender {
    fn send(&self, msg: &Outbound) -> Result<Receipt, ProviderError> {
        let mut sent = self
            .sent
            .lock()
            .map_err(|_| ProviderError::transient("lock"))?;
        if !sent.iter().any(|m| m.intent_id == msg.intent_id) {
            sent.push(msg.clone());
        }
        Ok(Receipt {
            provider_ref: format!("mem-{}", msg.intent_id),
        })
    }
}

/// The channels the settings name: Twilio or console for SMS and voice, SMTP
/// or console for email.
pub fn from_settings(s: &crate::config::Settings) -> Result<Router, String> {
    let console =
        || -> Box<dyn Sender> { Box::new(ConsoleSender::new(Box::new(std::io::stdout()))) };
    let twilio = || -> Result<twilio::Twilio, String> {
        twilio::Twilio::new(twilio::TwilioConfig {
            base_url: s.sms.base_url.clone(),
            account_sid: s
                .sms
                .account_sid
                .clone()
                .ok_or("sms.account_sid is not set")?,
            auth_token: s
                .sms
                .auth_token
                .as_ref()
                .map(|t| t.expose().to_string())
                .ok_or("sms.auth_token is not set")?,
            from: s.sms.from.clone().ok_or("sms.from is not set")?,
            timeout: std::time::Duration::from_millis(s.sms.timeout_ms),
        })
    };
    let sms: Box<dyn Sender> = match s.sms.provider.as_str() {
        "twilio" => Box::new(twilio::TwilioSms(twilio()?)),
        _ => console(),
    };
    let voice: Box<dyn Sender> = match s.voice.provider.as_str() {
        "twilio" => Box::new(twilio::TwilioVoice(twilio()?)),
        _ => console(),
    };
    let email: Box<dyn Sender> = match (s.email.provider.as_str(), &s.email.smtp_url) {
        ("smtp", Some(url)) => Box::new(smtp::Smtp::new(
            url.expose(),
            &s.email.from,
            std::time::Duration::from_millis(s.email.timeout_ms),
        )?),
        _ => console(),
    };
    Ok(Router { sms, email, voice })
}
