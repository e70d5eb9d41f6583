//! `herald demo`: the whole pipeline on embedded defaults. The bundled
//! synthetic EHR (`fixtures/fhir/demo`) is the FHIR source, SQLite the store,
//! the console the channel, and a fixed clock at the fixtures' "now" makes
//! every run print the same story.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::clock::{Clock, FixedClock};
use crate::config::{DbUrl, Settings};
use crate::crypto::KeyRing;
use crate::db::{self, DbConn};
use crate::fhir::source::FixtureEhr;
use crate::providers::Sender;
use crate::service::send::{Report, SendOutcome};
use crate::service::{Ctx, ingest, keys, send};

/// Where the bundled fixtures are: `./fixtures/fhir/demo`, else the source tree's.
pub fn default_fixtures() -> PathBuf {
    let local = PathBuf::from("fixtures/fhir/demo");
    if local.join("manifest.json").exists() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fhir/demo")
    }
}

/// Settings for a demo run: its own data directory and a fresh SQLite file.
pub fn demo_settings(mut s: Settings) -> Settings {
    s.data_dir = s.data_dir.join("demo");
    s.database.url = Some(DbUrl::new(format!(
        "sqlite://{}",
        s.data_dir.join("herald.db").display()
    )));
    // F8b: links and callbacks come from public_url only; the demo serves on
    // its own loopback address, so that is its public URL.
    let loopback =
        s.server.bind.starts_with("127.0.0.1:") || s.server.bind.starts_with("localhost:");
    if s.server.public_url.is_none() && loopback {
        s.server.public_url = Some(format!("http://{}", s.server.bind));
    }
    s
}

/// Totals of one pass.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Patients read.
    pub patients: usize,
    /// Resources planned.
    pub resources: usize,
    /// Resources skipped as unusable.
    pub skipped: usize,
    /// Messages sent.
    pub sent: usize,
    /// Messages blocked.
    pub blocked: usize,
    /// Deferred to the sending window.
    pub deferred: usize,
    /// Scheduled for later (reminders).
    pub scheduled: usize,
}

/// Prepares the demo database: a fresh file, migrations, the key ring (a
/// demo key file is made on first use).
pub fn prepare(
    settings: &Settings,
    clock: &dyn Clock,
    out: &mut dyn Write,
) -> anyhow::Result<(db::Pool, KeyRing)> {
    let db_path = settings.data_dir.join("herald.db");
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", db_path.display()));
        if p.exists() {
            std::fs::remove_file(&p)?;
        }
    }
    let pool = db::pool(
        &settings.database_url(),
        4,
        std::time::Duration::from_secs(5),
    )?;
    let mut conn = pool.get()?;
    db::migrate(&mut conn)?;
    let said = keys::init(&mut conn, settings, clock)?;
    if said.contains("created master key") {
        writeln!(out, "demo: {said}")?;
    }
    let ring = keys::open_ring(&mut conn, settings)?;
    Ok((pool, ring))
}

/// Loads the fixture EHR into Herald and runs every due message once.
pub fn run_once(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    ehr: &FixtureEhr,
    sender: &dyn Sender,
    out: &mut dyn Write,
) -> anyhow::Result<Summary> {
    let mut sum = Summary::default();
    writeln!(
        out,
        "Herald demo: fixture EHR {} at {}",
        ehr.dir.display(),
        ctx.clock.now().to_rfc3339()
    )?;
    for id in ehr.patient_ids() {
        if let Some(raw) = ehr.read_patient(id) {
            match ingest::patient(conn, ctx, raw, &[]) {
                Ok(_) => sum.patients += 1,
                Err(e) => {
                    writeln!(out, "  SKIPPED Patient/{id}: {e}")?;
                    sum.skipped += 1;
                }
            }
        }
    }
    for raw in ehr.consents() {
        if let Err(e) = ingest::consent(conn, ctx, raw, "ehr-import") {
            writeln!(out, "  SKIPPED a Consent: {e}")?;
            sum.skipped += 1;
        }
    }
    let tz = |id: &str| ehr.location_tz(id);
    for raw in ehr.appointments() {
        match ingest::appointment(conn, ctx, raw, &tz, &[]) {
            Ok(_) => sum.resources += 1,
            Err(e) => {
                writeln!(out, "  SKIPPED {e}")?;
                sum.skipped += 1;
            }
        }
    }
    for raw in ehr.medication_requests() {
        match ingest::medication(conn, ctx, raw, &[]) {
            Ok(_) => sum.resources += 1,
            Err(e) => {
                writeln!(out, "  SKIPPED {e}")?;
                sum.skipped += 1;
            }
        }
    }
    writeln!(out, "Sending what is due now:")?;
    let reports = send::run_due(conn, ctx, sender, "demo")?;
    print_reports(&reports, &mut sum, out)?;
    sum.scheduled = db::outbox::list(conn)?
        .iter()
        .filter(|i| i.state == "pending")
        .count()
        .saturating_sub(sum.deferred);
    writeln!(
        out,
        "Summary: {} patients, {} resources planned, {} sent, {} blocked, {} deferred (quiet hours or caps), {} scheduled for later, {} skipped",
        sum.patients,
        sum.resources,
        sum.sent,
        sum.blocked,
        sum.deferred,
        sum.scheduled,
        sum.skipped
    )?;
    Ok(sum)
}

fn print_reports(
    reports: &[Report],
    sum: &mut Summary,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut blocked = Vec::new();
    let mut deferred = Vec::new();
    for r in reports {
        match &r.outcome {
            SendOutcome::Sent { .. } => sum.sent += 1,
            SendOutcome::Suppressed { reason } => blocked.push((r, reason.clone())),
            SendOutcome::Failed { reason } => blocked.push((r, format!("failed: {reason}"))),
            SendOutcome::Expired => blocked.push((r, "expired before it could be sent".into())),
            SendOutcome::Deferred { until, reason } => deferred.push((r, *until, *reason)),
        }
    }
    sum.blocked = blocked.len();
    sum.deferred = deferred.len();
    if !blocked.is_empty() {
        writeln!(out, "Blocked:")?;
    }
    for (r, reason) in &blocked {
        writeln!(
            out,
            "  BLOCKED {:<28} Patient/{:<8} {:<28} reason: {}",
            r.kind, r.patient_id, r.about, reason
        )?;
    }
    if !deferred.is_empty() {
        writeln!(
            out,
            "Deferred (quiet hours in the recipient's time zone, or frequency caps):"
        )?;
    }
    for (r, until, reason) in &deferred {
        writeln!(
            out,
            "  DEFERRED {:<27} Patient/{:<8} until {}  ({reason})",
            r.kind,
            r.patient_id,
            until.to_rfc3339()
        )?;
    }
    Ok(())
}

/// A fixed clock at the fixtures' "now".
pub fn clock_for(ehr: &FixtureEhr) -> FixedClock {
    FixedClock::new(ehr.now)
}
