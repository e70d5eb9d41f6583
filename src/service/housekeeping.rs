//! Housekeeping (issue 11 F5d): expired SMART launches and clinician
//! sessions, and expired staff sessions, are deleted on a schedule
//! (`web::limits::tick`, run by `herald serve`), so abandoned rows (and the
//! sealed refresh tokens they hold) do not pile up.
//!
//! A row is deleted only once the web layer would refuse it anyway: unused
//! for longer than its idle limit (a launch also outlives its own ten
//! minutes), or, for staff, older than the absolute limit. The end of a
//! session found expired on a request is still audited there; a purge only
//! removes what nobody came back to.

use chrono::{DateTime, Duration, Utc};

use crate::config::Settings;
use crate::db::{DbConn, DbError};

/// What a purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// SMART launches and clinician sessions.
    pub smart: usize,
    /// Staff sessions.
    pub staff: usize,
}

/// Deletes expired SMART launches and sessions and expired staff sessions.
pub fn purge_expired(
    conn: &mut DbConn,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Purged, DbError> {
    let smart_idle = Duration::minutes(
        i64::from(settings.smart.idle_minutes).max(crate::smart::launch::LAUNCH_TTL_MINUTES),
    );
    let smart = crate::db::smart::purge(conn, now - smart_idle)?;
    let st = &settings.staff;
    let staff = crate::db::staff::purge_sessions(
        conn,
        now - Duration::minutes(i64::from(st.idle_minutes)),
        now - Duration::hours(i64::from(st.absolute_hours)),
    )?;
    if smart + staff > 0 {
        tracing::info!(
            purged.smart = smart,
            purged.staff = staff,
            "expired sessions purged"
        );
    }
    Ok(Purged { smart, staff })
}
