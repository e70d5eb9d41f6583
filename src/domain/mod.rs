//! The pure core: what to send to whom and when, whether consent permits it,
//! whether the hour is decent, and what an audit record says.
//!
//! Architecture invariant: nothing here does IO, reads a clock or the
//! environment, or knows actix, diesel or FHIR JSON. Time comes in as a
//! parameter. The `tidy` test enforces this.

pub mod audit;
pub mod consent;
pub mod facts;
pub mod intent;
pub mod nanp;
pub mod phi;
pub mod plan;
pub mod policy;
pub mod reply;
pub mod staff;

/// A channel a message can go out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// Text message.
    Sms,
    /// Email.
    Email,
    /// Voice call.
    Voice,
}

/// Why a message is sent; consent is given per purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Purpose {
    /// Appointment confirmations, reminders and notices.
    Appointment,
    /// Refill reminders and pickup notices.
    Medication,
    /// Bills.
    Billing,
    /// Anything promotional (needs express written consent).
    Marketing,
}

macro_rules! code_enum {
    ($t:ty { $($v:ident = $s:literal),* $(,)? }) => {
        impl $t {
            /// The wire code.
            pub fn code(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
        }
        impl std::str::FromStr for $t {
            type Err = $crate::domain::UnknownCode;
            fn from_str(s: &str) -> Result<Self, $crate::domain::UnknownCode> {
                match s { $($s => Ok(Self::$v),)* other => Err($crate::domain::UnknownCode(other.chars().take(40).collect())) }
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.code()) }
        }
    };
}
pub(crate) use code_enum;

/// A code that is not one of the expected ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown code {0:?}")]
pub struct UnknownCode(pub String);

code_enum!(Channel { Sms = "sms", Email = "email", Voice = "voice" });
code_enum!(Purpose {
    Appointment = "appointment",
    Medication = "medication",
    Billing = "billing",
    Marketing = "marketing",
});
