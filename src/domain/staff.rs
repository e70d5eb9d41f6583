//! Staff accounts as rules: roles, when a session has ended (idle and absolute
//! limits, HIPAA automatic logoff, messaging.md H3), when failures lock an
//! account, what a break-glass request must carry (H2). Time is a parameter.

use chrono::{DateTime, Duration, Utc};

/// What a staff member may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Manages accounts.
    Admin,
    /// Sees patients (from the EHR launch, or by break-glass).
    Clinician,
    /// Reads the audit log (also through an API token).
    Auditor,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Clinician, Role::Auditor];

    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Clinician => "clinician",
            Self::Auditor => "auditor",
        }
    }

    /// Parses a stored code.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == s)
    }
}

/// The limits a session lives under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Unused this long: ended.
    pub idle: Duration,
    /// This long after sign-in: ended, however busy.
    pub absolute: Duration,
}

/// What a session is at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// In use.
    Live,
    /// Unused past the idle limit.
    Idle,
    /// Past the absolute limit.
    Expired,
}

impl SessionState {
    /// Why a session ended, as the audit record says it.
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Self::Live => None,
            Self::Idle => Some("idle timeout"),
            Self::Expired => Some("absolute session limit"),
        }
    }
}

/// Whether a session signed in at `created` and last used at `last_seen` is
/// still live at `now`. A limit reached exactly has ended the session.
pub fn session_state(
    created: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    now: DateTime<Utc>,
    limits: SessionLimits,
) -> SessionState {
    if now - created >= limits.absolute {
        SessionState::Expired
    } else if now - last_seen >= limits.idle {
        SessionState::Idle
    } else {
        SessionState::Live
    }
}

/// Whether a failure that brings the run of failures to `failures` locks the
/// account (`lockout_after` failures in a row do).
pub fn locks(failures: i32, lockout_after: u32) -> bool {
    i64::from(failures) >= i64::from(lockout_after)
}

/// Whether an account locked until `locked_until` is still locked at `now`.
pub fn is_locked(locked_until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    locked_until.is_some_and(|t| now < t)
}

/// The fewest characters a break-glass reason may have.
pub const MIN_REASON_CHARS: usize = 10;
/// The most characters a break-glass reason may have.
pub const MAX_REASON_CHARS: usize = 2000;

/// Why a break-glass request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakGlassRefusal {
    /// No reason, or too short a one.
    ReasonTooShort,
    /// A reason longer than anyone reads.
    ReasonTooLong,
    /// Not a FHIR logical id.
    BadPatient,
    /// More grants in the last hour than `staff.break_glass_per_hour` (F2).
    TooMany,
}

impl BreakGlassRefusal {
    /// What the clinician is told (no PHI: it names the rule, not the input).
    pub fn message(self) -> &'static str {
        match self {
            Self::ReasonTooShort => {
                "Give the reason for emergency access (at least 10 characters)."
            }
            Self::ReasonTooLong => "The reason is too long (at most 2000 characters).",
            Self::BadPatient => {
                "Give the patient's id as the EHR knows it (letters, digits, '-' and '.')."
            }
            Self::TooMany => {
                "Too many emergency accesses in the last hour; ask the privacy officer."
            }
        }
    }
}

/// Whether a SMART `fhirUser` names a practitioner (F2): `Practitioner/{id}`
/// or `PractitionerRole/{id}`, relative or absolute (`https://ehr/fhir/Practitioner/7`).
/// Patients, RelatedPersons, bare `sub`s and anything else are not.
pub fn is_practitioner(fhir_user: &str) -> bool {
    let mut parts = fhir_user.trim().rsplit('/');
    let (Some(id), Some(kind)) = (parts.next(), parts.next()) else {
        return false;
    };
    let ok_id = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    ok_id && (kind == "Practitioner" || kind == "PractitionerRole")
}

/// Checks a break-glass request: the patient is a FHIR id, the reason says why.
/// Returns the trimmed reason.
pub fn check_break_glass<'a>(patient: &str, reason: &'a str) -> Result<&'a str, BreakGlassRefusal> {
    let ok_id = !patient.is_empty()
        && patient.len() <= 64
        && patient
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !ok_id {
        return Err(BreakGlassRefusal::BadPatient);
    }
    let reason = reason.trim();
    let n = reason.chars().count();
    if n < MIN_REASON_CHARS {
        Err(BreakGlassRefusal::ReasonTooShort)
    } else if n > MAX_REASON_CHARS {
        Err(BreakGlassRefusal::ReasonTooLong)
    } else {
        Ok(reason)
    }
}

/// A break-glass grant: one clinician, one patient, a limited time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Opaque id.
    pub id: String,
    /// The clinician.
    pub user_id: String,
    /// The patient (logical id).
    pub patient_id: String,
    /// When it began.
    pub started: DateTime<Utc>,
    /// When it ends.
    pub ends: DateTime<Utc>,
}

impl Grant {
    /// Whether the grant is in force at `now`.
    pub fn active_at(&self, now: DateTime<Utc>) -> bool {
        self.started <= now && now < self.ends
    }
}

/// The smallest password length accepted (NIST 800-63B allows 8; Herald asks 12).
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Checks a new account name: 1–64 characters, no control characters, not
/// only spaces. (Any other character is allowed and escaped where shown.)
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty() || name.chars().count() > 64 {
        return Err("a user name must have 1 to 64 characters");
    }
    if name.chars().any(char::is_control) || name != name.trim() {
        return Err("a user name may not hold control characters or begin or end with a space");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 8, 0, 0).unwrap() + Duration::minutes(min)
    }

    #[test]
    fn sessions_end_when_idle_or_old() {
        let limits = SessionLimits {
            idle: Duration::minutes(15),
            absolute: Duration::hours(12),
        };
        let check = |created, seen, now, want| {
            assert_eq!(session_state(t(created), t(seen), t(now), limits), want);
        };
        check(0, 0, 14, SessionState::Live);
        check(0, 0, 15, SessionState::Idle);
        check(0, 700, 714, SessionState::Live);
        check(0, 715, 720, SessionState::Expired);
        check(0, 0, 720, SessionState::Expired);
    }

    #[test]
    fn lockout_after_the_configured_failures() {
        assert!(!locks(4, 5));
        assert!(locks(5, 5));
        assert!(is_locked(Some(t(10)), t(9)));
        assert!(!is_locked(Some(t(10)), t(10)));
        assert!(!is_locked(None, t(0)));
    }

    #[test]
    fn only_practitioners_may_break_the_glass() {
        // F2 (security-review.md): the identity's type decides, not its presence.
        for ok in [
            "Practitioner/pr7",
            "PractitionerRole/r-1",
            "https://ehr.example.org/fhir/Practitioner/pr7",
        ] {
            assert!(is_practitioner(ok), "{ok}");
        }
        for no in [
            "Patient/p-9",
            "RelatedPerson/r1",
            "https://ehr.example.org/fhir/Patient/p-9",
            "u1",
            "",
            "Practitioner/",
            "Practitioner/../x",
            "Practitioner/a/b",
            "MyPractitioner/x",
        ] {
            assert!(!is_practitioner(no), "{no}");
        }
    }

    #[test]
    fn break_glass_needs_a_reason_and_an_id() {
        let check = |p: &str, r: &str, want: Result<&str, BreakGlassRefusal>| {
            assert_eq!(check_break_glass(p, r), want, "{p:?} {r:?}");
        };
        check("p-1", "  unconscious in ED  ", Ok("unconscious in ED"));
        check("p-1", "", Err(BreakGlassRefusal::ReasonTooShort));
        check("p-1", "   urgent  ", Err(BreakGlassRefusal::ReasonTooShort));
        check(
            "",
            "a long enough reason",
            Err(BreakGlassRefusal::BadPatient),
        );
        check(
            "../p",
            "a long enough reason",
            Err(BreakGlassRefusal::BadPatient),
        );
        let long = "x".repeat(MAX_REASON_CHARS + 1);
        check("p", &long, Err(BreakGlassRefusal::ReasonTooLong));
    }

    #[test]
    fn names() {
        assert!(check_name("dr.house").is_ok());
        assert!(check_name("<script>alert(1)</script>").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name(" x").is_err());
        assert!(check_name("a\nb").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
        assert_eq!(Role::parse("auditor"), Some(Role::Auditor));
        assert_eq!(Role::parse("root"), None);
    }
}
