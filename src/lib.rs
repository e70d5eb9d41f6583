//! Herald: an open patient-messaging server for FHIR R4 EHRs.
//!
//! Codemap (details and invariants in `ARCHITECTURE.md`):
//! - [`domain`]: pure rules (plan, consent decision, quiet hours, audit record). No IO, no clock.
//! - [`fhir`]: reads FHIR R4 JSON leniently; EHR sources (the demo's fixture EHR).
//! - [`db`]: the only diesel code: MultiConnection (SQLite/PostgreSQL), pool, migrations, repositories.
//! - [`crypto`]: AES-256-GCM field envelopes, key ring, blind indexes.
//! - [`audit`]: FHIR AuditEvent (IHE BALP) building, hash chain, verify, export.
//! - [`render`]: Fluent templates per locale.
//! - [`guard`]: pure PHI/content scanner for outgoing text (vocabularies + patterns). No IO.
//! - [`providers`]: delivery channels (console, memory).
//! - [`service`]: the pipeline: ingest → plan → outbox → consent → render → send → audit.
//! - [`web`]: the only actix code.
//! - [`demo`]: `herald demo`.
//! - [`config`], [`error`], [`clock`], [`telemetry`]: plumbing.

pub mod audit;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod domain;
pub mod error;
pub mod fhir;
pub mod guard;
pub mod providers;
pub mod render;
pub mod service;
pub mod smart;
pub mod telemetry;
pub mod web;
