//! Channels that deliver messages. Only this module talks to vendors.
//! `console` (development) prints; `memory` (tests) records.

use std::io::Write;
use std::sync::Mutex;

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
    /// Text.
    pub text: String,
    /// Locale rendered.
    pub lang: String,
}

/// What the provider said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The provider's message id.
    pub provider_ref: String,
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Try again later.
    #[error("transient provider failure: {0}")]
    Transient(String),
    /// Do not try again.
    #[error("permanent provider failure: {0}")]
    Permanent(String),
}

/// A delivery channel.
pub trait Sender: Send + Sync {
    /// Delivers one message; the same `intent_id` twice must not deliver twice.
    fn send(&self, msg: &Outbound) -> Result<Receipt, ProviderError>;
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
            .map_err(|_| ProviderError::Transient("lock".into()))?;
        if !seen.insert(msg.intent_id.clone()) {
            return Ok(Receipt { provider_ref });
        }
        let mut out = self
            .out
            .lock()
            .map_err(|_| ProviderError::Transient("lock".into()))?;
        writeln!(
            out,
            "  SENT    {:<5} to {:<10} [{}] {}",
            msg.channel,
            mask(&msg.to),
            msg.lang,
            msg.text
        )
        .map_err(|e| ProviderError::Transient(e.kind().to_string()))?;
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
            .map_err(|_| ProviderError::Transient("lock".into()))?;
        if !sent.iter().any(|m| m.intent_id == msg.intent_id) {
            sent.push(msg.clone());
        }
        Ok(Receipt {
            provider_ref: format!("mem-{}", msg.intent_id),
        })
    }
}
