//! The single integration test binary. Each module is one area; the story
//! tests run on SQLite always and on PostgreSQL when TEST_DATABASE_URL is set.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::disallowed_methods,
    clippy::indexing_slicing,
    clippy::as_conversions
)]

mod access;
mod api_clients;
mod audit_chain;
mod audit_search;
mod channels;
mod checkpoints;
mod cli;
mod consent_guard;
mod demo;
mod fhir_follow;
mod guard;
mod http;
mod inbound;
mod interop;
mod limits;
mod migrations;
mod notification_edge;
mod outbox_chaos;
mod prefcode;
mod prefpage;
mod render;
mod smart_app;
mod smart_launch;
mod staff;
mod story;
mod support;
mod tidy;
mod tls;
mod twilio_double;
mod webhook_guard;
