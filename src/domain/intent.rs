//! The life of an outbound message intent. Each intent has a unique id and a
//! unique dedupe key, so a retry never sends twice.

use super::code_enum;

/// Where an intent is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentState {
    /// Waiting for its due time (or deferred by quiet hours).
    Pending,
    /// Claimed by a worker until its lease runs out.
    Leased,
    /// Handed to the channel.
    Sent,
    /// Blocked by a rule (consent, guard); the reason is recorded.
    Suppressed,
    /// Withdrawn because the resource changed (cancelled, moved).
    Withdrawn,
    /// Its validity passed before it could go out.
    Expired,
    /// The channel refused it for good.
    Failed,
}

code_enum!(IntentState {
    Pending = "pending",
    Leased = "leased",
    Sent = "sent",
    Suppressed = "suppressed",
    Withdrawn = "withdrawn",
    Expired = "expired",
    Failed = "failed",
});

impl IntentState {
    /// No further change is possible.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::Leased)
    }
}
