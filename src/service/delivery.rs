//! Delivery-status callbacks from the SMS provider (Twilio's StatusCallback,
//! already authenticated by the webhook): the status moves forward only, and
//! error 21610 — the carrier holds a STOP for the number (messaging.md W4) —
//! writes a carrier opt-out to the consent ledger. The status, the ledger row
//! and the row's AuditEvent commit in one transaction: if any of them fails
//! nothing is kept, the webhook answers 503, and the provider's retry does it
//! all again. The opt-out's id is derived from the intent, so a repeated
//! callback records it once.

use crate::audit;
use crate::clock::Clock;
use crate::crypto::{KeyRing, normalize_phone};
use crate::db::{self, DbConn, DbError, consents, outbox, patients};
use crate::domain::Channel;
use crate::domain::audit::{Activity, Actor, AuditRecord, Outcome};

/// Twilio's error code for a recipient who unsubscribed at the carrier.
pub const CARRIER_OPT_OUT: &str = "21610";

/// One status callback as the provider sent it.
#[derive(Debug, Clone)]
pub struct StatusCallback {
    /// The provider's message (or call) id.
    pub provider_ref: String,
    /// The provider's status ("delivered", "undelivered", …).
    pub status: String,
    /// The provider's error code, if any.
    pub error_code: Option<String>,
}

/// What a callback did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusRecorded {
    /// No intent has this provider id: nothing changed.
    Unknown,
    /// The intent is known.
    Known {
        /// The status moved forward.
        applied: bool,
        /// A carrier opt-out was written to the ledger (with its AuditEvent).
        opted_out: bool,
    },
}

/// The ledger id of the carrier opt-out reported for `intent_id`.
pub fn carrier_opt_out_id(intent_id: &str) -> String {
    format!("carrier-{intent_id}")
}

/// Records one status callback; see the module docs.
pub fn status_callback(
    conn: &mut DbConn,
    ring: &KeyRing,
    clock: &dyn Clock,
    cb: &StatusCallback,
) -> Result<StatusRecorded, DbError> {
    let now = clock.now();
    db::write_tx(conn, |c| {
        let Some(intent) = outbox::by_provider_ref(c, &cb.provider_ref)? else {
            return Ok(StatusRecorded::Unknown);
        };
        let applied = outbox::record_status(c, &intent, &cb.status, cb.error_code.as_deref(), now)?;
        let mut opted_out = false;
        if cb.error_code.as_deref() == Some(CARRIER_OPT_OUT)
            && let Some(p) = patients::get(c, ring, &intent.patient_id)?
            && let Some(phone) = p.phone
        {
            let idx = ring.blind_index("phone", &normalize_phone(phone.expose()));
            let entry = super::send::carrier_opt_out(
                carrier_opt_out_id(&intent.id),
                &p.id,
                Channel::Sms,
                &idx,
                now,
            );
            if consents::insert(c, ring, &entry)? {
                audit::append(
                    c,
                    &[AuditRecord {
                        recorded: now,
                        activity: Activity::ConsentRecorded {
                            consent_id: entry.id.clone(),
                        },
                        actor: Actor::System,
                        outcome: Outcome::Success,
                        outcome_desc: Some(
                            "Consent revoked: the carrier reports the recipient unsubscribed (21610)"
                                .into(),
                        ),
                        patient_id: Some(p.id.clone()),
                        request_id: None,
                        ehr: None,
                    }],
                )?;
                opted_out = true;
            }
        }
        Ok(StatusRecorded::Known { applied, opted_out })
    })
}
