//! Inbound SMS (issue 5 §3): a reply from a patient's number, already
//! authenticated by the webhook, is recorded once per signed message id
//! (replays change nothing, whatever their unsigned headers say),
//! read by `domain::reply::classify`, and acted on in one transaction with
//! its audit records: STOP writes a deny to the ledger for every purpose on
//! that number (SMS and voice) and queues exactly one confirmation; START
//! writes a permit and queues the opt-in confirmation (CTIA C1, C3); HELP
//! queues the help text (C2). Other readings wait in the inbound table for
//! staff. Replies go out through the outbox like every message, so they are
//! rendered in the patient's language and audited.

use chrono::{DateTime, Duration, Utc};

use crate::audit;
use crate::clock::Clock;
use crate::crypto::KeyRing;
use crate::crypto::normalize_phone;
use crate::db::writes::{self, WriteKind};
use crate::db::{self, DbConn, DbError, consents, inbound, outbox, patients};
use crate::domain::audit::{Activity, Actor, AuditRecord, Outcome};
use crate::domain::consent::{self, Decision, DenyReason, Verdict};
use crate::domain::reply::{ReplyContext, ReplyIntent, classify};
use crate::domain::{Channel, Purpose};
use crate::fhir::consent::{ConsentDraft, resource as consent_resource};

/// One inbound text as the provider sent it.
#[derive(Debug, Clone)]
pub struct InboundSms {
    /// "twilio".
    pub provider: String,
    /// Its key in the inbound table: the provider's signed message id
    /// (`sid:…`), never an unsigned header a replayer could change.
    pub dedupe_key: String,
    /// The provider's message id.
    pub message_ref: String,
    /// Sender (PHI).
    pub from: String,
    /// Text (PHI).
    pub body: String,
    /// Caller's network address, for the audit record.
    pub peer: String,
    /// Queue Herald's STOP/START confirmation (false when the provider sends
    /// its own, e.g. Twilio Advanced Opt-Out).
    pub confirm_keywords: bool,
    /// How long staff have to read a text Herald cannot act on alone.
    pub review_within: Duration,
    /// A "cancel" reply cancels the Appointment on the EHR (else a staff task).
    pub cancel_by_reply: bool,
}

/// What became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Seen before: nothing changed.
    Replay,
    /// No patient has this number: recorded and audited, nothing changed.
    UnknownNumber,
    /// Read and acted on.
    Read {
        /// The reading.
        intent: ReplyIntent,
        /// Patients the number belongs to.
        patients: usize,
        /// Messages queued in reply.
        replies: usize,
    },
}

fn inbound_record(
    clock: &dyn Clock,
    msg: &InboundSms,
    patient: Option<&str>,
    reading: &str,
    outcome: Outcome,
) -> AuditRecord {
    AuditRecord {
        recorded: clock.now(),
        activity: Activity::InboundMessage {
            message_ref: msg.message_ref.clone(),
            reading: reading.into(),
        },
        actor: Actor::Anonymous(msg.peer.clone()),
        outcome,
        outcome_desc: (outcome != Outcome::Success).then(|| reading.to_string()),
        patient_id: patient.map(String::from),
        request_id: None,
        ehr: None,
    }
}

/// Records a refused webhook (bad or missing signature) in the audit log.
/// Nothing the unauthenticated caller wrote is kept verbatim: its message id
/// is recorded as a keyed hash (issue 11 F6c).
pub fn refused(
    conn: &mut DbConn,
    ring: &KeyRing,
    clock: &dyn Clock,
    msg: &InboundSms,
    why: &str,
) -> Result<(), DbError> {
    let unverified = InboundSms {
        message_ref: ring.untrusted_ref("provider-message", &msg.message_ref),
        ..msg.clone()
    };
    db::write_tx(conn, |c| {
        audit::append(
            c,
            &[inbound_record(
                clock,
                &unverified,
                None,
                why,
                Outcome::MinorFailure,
            )],
        )?;
        Ok(())
    })
}

/// What the patient is answering: the last message Herald sent them.
fn context_for(
    conn: &mut DbConn,
    patient: &str,
    now: DateTime<Utc>,
) -> Result<(ReplyContext, Option<String>), DbError> {
    let last = outbox::search(
        conn,
        &outbox::Search {
            patient: Some(patient.into()),
            states: Some(vec!["sent".into()]),
            sent_from: Some(now - Duration::days(7)),
            limit: 1000,
            ..outbox::Search::default()
        },
    )?
    .into_iter()
    // Herald's own answers are not what the patient is answering.
    .filter(|i| !i.kind.starts_with("reply-") && i.kind != "consent-help")
    .max_by_key(|i| i.sent_at);
    let about = last
        .as_ref()
        .map(|i| i.about.clone())
        .filter(|a| a.starts_with("Appointment/"));
    let context = match last.as_ref().map(|i| i.kind.as_str()) {
        Some("consent-opt-out-confirmation") => ReplyContext::AfterOptOut,
        Some(k)
            if k.starts_with("reminder-")
                || k == "appointment-confirmation"
                || k == "appointment-rescheduled" =>
        {
            ReplyContext::Reminder
        }
        _ => ReplyContext::None,
    };
    Ok((context, about))
}

fn queue_reply(
    conn: &mut DbConn,
    template: &str,
    patient: &str,
    key: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbError> {
    queue(
        conn,
        template,
        patient,
        key,
        &format!("Patient/{patient}"),
        now,
        Duration::minutes(5),
    )
}

/// Queues `template` about `about` (an Appointment renders its date and time).
fn queue(
    conn: &mut DbConn,
    template: &str,
    patient: &str,
    key: &str,
    about: &str,
    now: DateTime<Utc>,
    valid_for: Duration,
) -> Result<bool, DbError> {
    outbox::enqueue(
        conn,
        &outbox::NewIntent {
            id: uuid::Uuid::new_v4().to_string(),
            dedupe_key: format!("{template}/{patient}/{key}"),
            patient_id: patient.into(),
            kind: template.into(),
            purpose: Purpose::Appointment.code().into(),
            about: about.into(),
            due_at: now,
            // T9: the one confirmation goes within 5 minutes or not at all.
            expires_at: Some(now + valid_for),
        },
        now,
    )
}

/// Handles one authenticated inbound SMS.
pub fn handle(
    conn: &mut DbConn,
    ring: &KeyRing,
    clock: &dyn Clock,
    msg: &InboundSms,
) -> Result<Handled, DbError> {
    let now = clock.now();
    db::write_tx(conn, |c| {
        // By key, and by message id for rows recorded under an older key.
        if inbound::seen(c, &msg.dedupe_key)?
            || inbound::seen_message(c, &msg.provider, &msg.message_ref)?
        {
            audit::append(
                c,
                &[inbound_record(
                    clock,
                    msg,
                    None,
                    "replay ignored",
                    Outcome::MinorFailure,
                )],
            )?;
            return Ok(Handled::Replay);
        }
        let owners = patients::find_by_phone(c, ring, &msg.from)?;
        let record_row = |c: &mut DbConn, patient: Option<&str>, reading: &str| {
            // Unsure free text, cancel requests and confirmations (until the
            // EHR write-back exists) wait for a person, with a deadline.
            let for_staff = matches!(reading, "other" | "cancel_appointment" | "confirm");
            inbound::insert(
                c,
                ring,
                &inbound::NewInbound {
                    dedupe_key: &msg.dedupe_key,
                    provider: &msg.provider,
                    message_ref: &msg.message_ref,
                    patient_id: patient,
                    reading,
                    body: &msg.body,
                    received_at: now,
                    due_by: (for_staff && patient.is_some()).then(|| now + msg.review_within),
                },
            )
        };
        let Some(first) = owners.first() else {
            record_row(c, None, "unknown number")?;
            audit::append(
                c,
                &[inbound_record(
                    clock,
                    msg,
                    None,
                    "unknown number",
                    Outcome::MinorFailure,
                )],
            )?;
            return Ok(Handled::UnknownNumber);
        };
        let idx = ring.blind_index("phone", &normalize_phone(&msg.from));
        let (context, appointment) = context_for(c, first, now)?;
        let intent = classify(&msg.body, context);
        record_row(c, Some(first), intent.code())?;
        let mut records = Vec::new();
        let mut replies = 0;
        for patient in &owners {
            records.push(inbound_record(
                clock,
                msg,
                Some(patient),
                intent.code(),
                Outcome::Success,
            ));
            let entries = consents::entries_for(c, patient)?;
            let verdict = consent::decide(&entries, Channel::Sms, Purpose::Appointment, &idx, now);
            let opted_out = matches!(
                verdict,
                Verdict::Deny {
                    reason: DenyReason::OptedOut,
                    ..
                }
            );
            let permitted = matches!(verdict, Verdict::Permit { .. });
            match intent {
                ReplyIntent::Stop | ReplyIntent::Start => {
                    let permit = intent == ReplyIntent::Start;
                    // STOP revokes every purpose on this number, for text and
                    // for calls (T11: revoke-all). START restores texts for
                    // the healthcare purposes only: marketing needs express
                    // written consent, never a keyword (T1).
                    let scopes: &[(Channel, Option<Purpose>)] = if permit {
                        &[
                            (Channel::Sms, Some(Purpose::Appointment)),
                            (Channel::Sms, Some(Purpose::Medication)),
                        ]
                    } else {
                        &[(Channel::Sms, None), (Channel::Voice, None)]
                    };
                    for &(channel, purpose) in scopes {
                        let id = uuid::Uuid::new_v4().to_string();
                        consents::insert(
                            c,
                            ring,
                            &consents::NewConsent {
                                id: id.clone(),
                                patient_id: patient.clone(),
                                channel,
                                purpose,
                                address_index: idx.clone(),
                                decision: if permit {
                                    Decision::Permit
                                } else {
                                    Decision::Deny
                                },
                                source: "sms-keyword".into(),
                                recorded_at: now,
                                stated_at: None,
                                future_dated: false,
                                part_of: None,
                                categories: vec![crate::fhir::consent::CATEGORY.into()],
                                valid_until: None,
                                resource: consent_resource(&ConsentDraft {
                                    id: &id,
                                    patient,
                                    performer: Some(&format!("Patient/{patient}")),
                                    permit,
                                    channel,
                                    purpose,
                                    address: Some(&msg.from),
                                    rule: if permit {
                                        "Patient replied START by SMS"
                                    } else {
                                        "Patient replied STOP by SMS (47 CFR 64.1200(a)(12))"
                                    },
                                    at: now,
                                }),
                            },
                        )?;
                        records.push(AuditRecord {
                            recorded: now,
                            activity: Activity::ConsentRecorded { consent_id: id },
                            actor: Actor::Anonymous(msg.peer.clone()),
                            outcome: Outcome::Success,
                            outcome_desc: None,
                            patient_id: Some(patient.clone()),
                            request_id: None,
                            ehr: None,
                        });
                    }
                    // Exactly one confirmation per change: none when the
                    // number was already in that state (T9, C3).
                    let template = if permit {
                        "consent-opt-in-confirmation"
                    } else {
                        "consent-opt-out-confirmation"
                    };
                    let changes = if permit { !permitted } else { !opted_out };
                    if changes
                        && msg.confirm_keywords
                        && queue_reply(c, template, patient, &msg.dedupe_key, now)?
                    {
                        replies += 1;
                    }
                }
                ReplyIntent::Help
                    if queue_reply(c, "consent-help", patient, &msg.dedupe_key, now)? =>
                {
                    replies += 1;
                }
                // Two-way answers (issue 5 §4): each gets a reply in the
                // patient's language about the appointment it answers; the
                // reading stays in the inbound table for staff (a cancel is a
                // staff task; unsure free text waits for a person).
                // Writing the acceptance back to the EHR needs the EHR client.
                ReplyIntent::Confirm
                | ReplyIntent::Reschedule
                | ReplyIntent::CancelAppointment
                | ReplyIntent::Other => {
                    let template = match intent {
                        ReplyIntent::Confirm => "reply-confirmed",
                        ReplyIntent::Reschedule => "reply-reschedule",
                        ReplyIntent::CancelAppointment => "reply-cancel-requested",
                        _ => "reply-received",
                    };
                    let about = match (&appointment, intent) {
                        (
                            Some(a),
                            ReplyIntent::Confirm
                            | ReplyIntent::Reschedule
                            | ReplyIntent::CancelAppointment,
                        ) => a.clone(),
                        _ => format!("Patient/{patient}"),
                    };
                    if queue(
                        c,
                        template,
                        patient,
                        &msg.dedupe_key,
                        &about,
                        now,
                        Duration::hours(1),
                    )? {
                        replies += 1;
                    }
                    // Owed to the EHR: the acceptance (issue 5 §4), and the
                    // cancellation when replies cancel. The staff row stays
                    // open until the write lands.
                    let owed = match intent {
                        ReplyIntent::Confirm => Some(WriteKind::AppointmentAccept),
                        ReplyIntent::CancelAppointment if msg.cancel_by_reply => {
                            Some(WriteKind::AppointmentCancel)
                        }
                        _ => None,
                    };
                    if let (Some(kind), Some(a)) = (owed, &appointment) {
                        writes::enqueue(c, kind, a, patient, Some(&msg.dedupe_key), now)?;
                    }
                }
                _ => {}
            }
        }
        audit::append(c, &records)?;
        Ok(Handled::Read {
            intent,
            patients: owners.len(),
            replies,
        })
    })
}
