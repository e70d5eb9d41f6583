//! The pipeline that ties the pure domain to storage, rendering and channels:
//! ingest (EHR resource → plan → outbox) and send (outbox → consent → quiet
//! hours → render → channel → audit). Each step commits its state change and
//! its audit records in one transaction.

pub mod delivery;
pub mod ehr;
pub mod housekeeping;
pub mod inbound;
pub mod ingest;
pub mod keys;
pub mod preferences;
pub mod send;
pub mod staff;
pub mod worker;

use crate::clock::Clock;
use crate::config::{MessagingSettings, OutboxSettings};
use crate::crypto::KeyRing;
use crate::providers::Sender;
use crate::render::Renderer;

/// What the pipeline needs besides a connection.
pub struct Ctx<'a> {
    /// Key ring for PHI columns.
    pub ring: &'a KeyRing,
    /// Time.
    pub clock: &'a dyn Clock,
    /// Messaging settings.
    pub messaging: &'a MessagingSettings,
    /// Templates.
    pub renderer: &'a Renderer,
    /// The EHR's base URL (for audit records).
    pub ehr: &'a str,
    /// Outbox worker settings (leases, retries).
    pub outbox: &'a OutboxSettings,
    /// The channels.
    pub sender: &'a dyn Sender,
    /// Where providers report delivery status (from server.public_url).
    pub status_callback: Option<String>,
    /// The compliance guard every final text passes.
    pub guard: &'a crate::guard::Guard,
}
