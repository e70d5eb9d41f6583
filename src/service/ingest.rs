//! EHR resource → domain facts → plan → outbox, with the read audited.

use chrono_tz::Tz;
use serde_json::Value;

use super::Ctx;
use crate::clock::Clock;
use crate::config::MessagingSettings;
use crate::crypto::KeyRing;

/// What ingesting needs: keys, time, the messaging settings and the EHR's
/// name. The full pipeline [`Ctx`] has it; so does [`IngestCtx`], which the
/// EHR followers (notifications, poller) use without channels or templates.
pub trait IngestEnv {
    /// Key ring.
    fn ring(&self) -> &KeyRing;
    /// Time.
    fn clock(&self) -> &dyn Clock;
    /// Messaging settings.
    fn messaging(&self) -> &MessagingSettings;
    /// The EHR base URL (audit).
    fn ehr(&self) -> &str;
}

impl IngestEnv for Ctx<'_> {
    fn ring(&self) -> &KeyRing {
        self.ring
    }
    fn clock(&self) -> &dyn Clock {
        self.clock
    }
    fn messaging(&self) -> &MessagingSettings {
        self.messaging
    }
    fn ehr(&self) -> &str {
        self.ehr
    }
}

/// The ingest context of the EHR followers.
#[derive(Clone, Copy)]
pub struct IngestCtx<'a> {
    /// Key ring.
    pub ring: &'a KeyRing,
    /// Time.
    pub clock: &'a dyn Clock,
    /// Messaging settings.
    pub messaging: &'a MessagingSettings,
    /// The EHR base URL.
    pub ehr: &'a str,
}

impl IngestEnv for IngestCtx<'_> {
    fn ring(&self) -> &KeyRing {
        self.ring
    }
    fn clock(&self) -> &dyn Clock {
        self.clock
    }
    fn messaging(&self) -> &MessagingSettings {
        self.messaging
    }
    fn ehr(&self) -> &str {
        self.ehr
    }
}
use crate::audit;
use crate::crypto::{normalize_email, normalize_phone};
use crate::db::{self, DbConn, DbError, consents, outbox, patients, resources};
use crate::domain::audit::{Activity, Actor, AuditRecord, Outcome};
use crate::domain::consent::Decision;
use crate::domain::facts::{VersionOrder, order_versions};
use crate::domain::plan::{Plan, plan_appointment, plan_medication};
use crate::domain::{Channel, Purpose};
use crate::fhir::{self, ParseError};

/// Why a resource was not ingested.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The resource is unusable (skipped, reported, never fatal to the batch).
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Readable, but refused as it stands (Herald's API answers 400 naming
    /// the element).
    #[error("{element} {reason}")]
    Refused {
        /// The FHIR element at fault ("Consent.dateTime").
        element: &'static str,
        /// Why, for the caller.
        reason: &'static str,
    },
}

/// What becomes of a Consent whose `dateTime` is in the future (beyond
/// [`crate::domain::consent::CLOCK_SKEW`]): its sender's claim can never
/// rank it ahead of what the patient does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FutureDated {
    /// Refused ([`IngestError::Refused`]): the caller (Herald's API) can
    /// correct it.
    Refuse,
    /// Recorded at Herald's time, marked on the ledger row and on its
    /// AuditEvent, and logged on the `security` target (the EHR import: the
    /// EHR's record stands, and its claimed time is kept as evidence).
    Clamp,
}

/// What ingesting one resource did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// The same version was seen before; nothing done.
    Duplicate,
    /// An older version than Herald holds arrived late; nothing done (N12).
    Stale,
    /// Planned.
    Planned {
        /// Intents enqueued.
        enqueued: usize,
        /// Pending intents withdrawn.
        withdrawn: usize,
    },
}

fn read_record(ctx: &impl IngestEnv, resource_type: &str, id: &str, patient: &str) -> AuditRecord {
    AuditRecord {
        recorded: ctx.clock().now(),
        activity: Activity::EhrRead {
            resource_type: resource_type.into(),
            id: id.into(),
        },
        actor: Actor::System,
        outcome: Outcome::Success,
        outcome_desc: None,
        patient_id: Some(patient.into()),
        request_id: None,
        ehr: Some(ctx.ehr().into()),
    }
}

/// meta.lastUpdated of a resource, when present and parseable.
pub fn last_updated(raw: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    raw.get("meta")
        .and_then(|m| m.get("lastUpdated"))
        .and_then(|v| v.as_str())
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

fn order(old: Option<&resources::Tracked>, version: Option<&str>, raw: &Value) -> VersionOrder {
    match old {
        None => VersionOrder::Newer,
        Some(o) => order_versions(
            (version, last_updated(raw)),
            (o.version_id.as_deref(), o.last_updated),
        ),
    }
}

/// Stores a Patient read from the EHR (encrypted) and audits the read.
pub fn patient(
    conn: &mut DbConn,
    ctx: &impl IngestEnv,
    raw: &Value,
    calls: &[AuditRecord],
) -> Result<String, IngestError> {
    let facts = fhir::patient_facts(raw)?;
    let now = ctx.clock().now();
    db::write_tx(conn, |c| {
        patients::upsert(c, ctx.ring(), &facts, now)?;
        audit::append(c, calls)?;
        audit::append(c, &[read_record(ctx, "Patient", &facts.id, &facts.id)])?;
        Ok::<_, IngestError>(())
    })?;
    Ok(facts.id)
}

fn apply_plan(
    c: &mut DbConn,
    plan: &Plan,
    about: &str,
    patient_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(usize, usize), DbError> {
    let withdrawn = if plan.withdraw_pending {
        outbox::withdraw_pending(c, about, now)?
    } else if plan.replaces_pending {
        let keep: Vec<String> = plan.send.iter().map(|m| m.dedupe_key.clone()).collect();
        outbox::withdraw_pending_except(c, about, &keep, now)?
    } else {
        0
    };
    let mut enqueued = 0;
    for m in &plan.send {
        let intent = outbox::NewIntent {
            id: uuid::Uuid::new_v4().to_string(),
            dedupe_key: m.dedupe_key.clone(),
            patient_id: patient_id.into(),
            kind: m.kind.key(),
            purpose: m.kind.purpose().code().into(),
            about: about.into(),
            due_at: m.due_at,
            expires_at: m.expires_at,
        };
        if outbox::enqueue(c, &intent, now)? {
            enqueued += 1;
        }
    }
    Ok((enqueued, withdrawn))
}

/// Plans an Appointment change against what Herald last saw of it.
///
/// `calls` are the audit records of the FHIR calls that brought it (BALP
/// A2–A5); they commit in the same transaction, whatever the outcome.
pub fn appointment(
    conn: &mut DbConn,
    ctx: &impl IngestEnv,
    raw: &Value,
    location_tz: &dyn Fn(&str) -> Option<Tz>,
    calls: &[AuditRecord],
) -> Result<Ingested, IngestError> {
    let new = fhir::appointment_facts(raw, location_tz)?;
    let now = ctx.clock().now();
    let about = format!("Appointment/{}", new.id);
    let body = raw.to_string();
    db::write_tx(conn, |c| {
        let old = resources::get(c, ctx.ring(), "Appointment", &new.id)?;
        match order(old.as_ref(), new.version.as_deref(), raw) {
            VersionOrder::Newer => {}
            VersionOrder::Same => {
                audit::append(c, calls)?;
                return Ok(Ingested::Duplicate);
            }
            VersionOrder::Older => {
                audit::append(c, calls)?;
                return Ok(Ingested::Stale);
            }
        }
        let old_facts = old.as_ref().and_then(|o| {
            let v: Value = serde_json::from_str(&o.body).ok()?;
            let tz = o.timezone.as_deref().and_then(|z| z.parse::<Tz>().ok());
            fhir::appointment_facts(&v, &|_| tz).ok()
        });
        let plan = plan_appointment(
            &new,
            old_facts.as_ref(),
            now,
            &ctx.messaging().reminder_offsets_hours,
        );
        let (enqueued, withdrawn) = apply_plan(c, &plan, &about, &new.patient_id, now)?;
        let tz = new.tz.map(|t| t.name().to_string());
        resources::put(
            c,
            ctx.ring(),
            "Appointment",
            &new.id,
            new.version.as_deref(),
            last_updated(raw),
            new.status.code(),
            &new.patient_id,
            tz.as_deref(),
            &body,
            now,
        )?;
        audit::append(c, calls)?;
        audit::append(
            c,
            &[read_record(ctx, "Appointment", &new.id, &new.patient_id)],
        )?;
        Ok(Ingested::Planned {
            enqueued,
            withdrawn,
        })
    })
}

/// Plans a MedicationRequest change.
pub fn medication(
    conn: &mut DbConn,
    ctx: &impl IngestEnv,
    raw: &Value,
    calls: &[AuditRecord],
) -> Result<Ingested, IngestError> {
    let new = fhir::medication_facts(raw)?;
    let now = ctx.clock().now();
    let about = format!("MedicationRequest/{}", new.id);
    let body = raw.to_string();
    db::write_tx(conn, |c| {
        let old = resources::get(c, ctx.ring(), "MedicationRequest", &new.id)?;
        match order(old.as_ref(), new.version.as_deref(), raw) {
            VersionOrder::Newer => {}
            VersionOrder::Same => {
                audit::append(c, calls)?;
                return Ok(Ingested::Duplicate);
            }
            VersionOrder::Older => {
                audit::append(c, calls)?;
                return Ok(Ingested::Stale);
            }
        }
        let plan = plan_medication(&new, now, ctx.messaging().refill_lead_days);
        let (enqueued, withdrawn) = apply_plan(c, &plan, &about, &new.patient_id, now)?;
        resources::put(
            c,
            ctx.ring(),
            "MedicationRequest",
            &new.id,
            new.version.as_deref(),
            last_updated(raw),
            &new.status,
            &new.patient_id,
            None,
            &body,
            now,
        )?;
        audit::append(c, calls)?;
        audit::append(
            c,
            &[read_record(
                ctx,
                "MedicationRequest",
                &new.id,
                &new.patient_id,
            )],
        )?;
        Ok(Ingested::Planned {
            enqueued,
            withdrawn,
        })
    })
}

/// Imports a Consent from the EHR into the ledger (one row per purpose) and
/// audits it. Returns false if it was already there.
pub fn consent(
    conn: &mut DbConn,
    ctx: &impl IngestEnv,
    raw: &Value,
    source: &str,
) -> Result<bool, IngestError> {
    record_consent(
        conn,
        ctx.ring(),
        ctx.clock(),
        raw,
        source,
        Actor::System,
        Some(ctx.ehr()),
        FutureDated::Clamp,
    )
}

/// The most channels one Consent may name (there are three).
pub const MAX_CHANNELS: usize = 3;
/// The most purposes one Consent may name (there are four).
pub const MAX_PURPOSES: usize = 4;

/// Keeps the first of each value, in order.
fn dedup<T: PartialEq + Copy>(v: &mut Vec<T>) {
    let mut seen: Vec<T> = Vec::with_capacity(v.len());
    v.retain(|x| {
        let new = !seen.contains(x);
        if new {
            seen.push(*x);
        }
        new
    });
}

/// Records a FHIR Consent in the ledger (one row per purpose) with its
/// AuditEvent; false when it was already there or is not active. The entry
/// ranks at Herald's clock, or at the `dateTime` its sender states when that
/// is earlier (`domain::consent::ranked_at`); a `dateTime` in the future is
/// refused or clamped as `future` says, and always kept as evidence.
#[allow(clippy::too_many_arguments)]
pub fn record_consent(
    conn: &mut DbConn,
    ring: &crate::crypto::KeyRing,
    clock: &dyn crate::clock::Clock,
    raw: &Value,
    source: &str,
    actor: Actor,
    ehr: Option<&str>,
    future: FutureDated,
) -> Result<bool, IngestError> {
    let f = fhir::consent_facts(raw)?;
    let bad = |element| ParseError::Missing {
        resource: format!("Consent/{}", f.id),
        element,
    };
    if f.status != "active" {
        return Ok(false);
    }
    // One Consent writes one ledger row per channel × purpose: each list is
    // capped at what exists and deduplicated, so a body cannot multiply rows
    // (issue 11 F5a).
    if f.channels.len() > MAX_CHANNELS {
        return Err(IngestError::Refused {
            element: "Consent.provision.extension(consent-channel)",
            reason: "may name at most 3 channels (sms, email, voice)",
        });
    }
    if f.purposes.len() > MAX_PURPOSES {
        return Err(IngestError::Refused {
            element: "Consent.provision.purpose",
            reason: "may name at most 4 purposes (appointment, medication, billing, marketing)",
        });
    }
    let mut channels: Vec<Channel> = f
        .channels
        .iter()
        .map(|c| c.parse())
        .collect::<Result<_, _>>()
        .map_err(|_| bad("provision.extension(consent-channel)"))?;
    dedup(&mut channels);
    // Without an address a provision covers every address on its channels;
    // that only ever takes consent away (or lifts such a request), never
    // grants it to numbers nobody named.
    let index_for = |channel: Channel| match (&f.address, channel) {
        (None, _) => crate::domain::consent::ANY_ADDRESS.to_string(),
        (Some(a), Channel::Email) => ring.blind_index("email", &normalize_email(a)),
        (Some(a), Channel::Sms | Channel::Voice) => ring.blind_index("phone", &normalize_phone(a)),
    };
    let purposes: Vec<Option<Purpose>> = if f.purposes.is_empty() {
        vec![None]
    } else {
        f.purposes
            .iter()
            .map(|p| {
                p.parse::<Purpose>()
                    .map(Some)
                    .map_err(|_| bad("provision.purpose"))
            })
            .collect::<Result<_, _>>()?
    };
    let mut purposes = purposes;
    dedup(&mut purposes);
    let now = clock.now();
    let ranked = crate::domain::consent::ranked_at(f.date_time, now);
    if ranked.future && future == FutureDated::Refuse {
        return Err(IngestError::Refused {
            element: "Consent.dateTime",
            reason: "is in the future: a consent is recorded when it was given (at the latest now)",
        });
    }
    let resource = raw.to_string();
    let recorded = db::write_tx(conn, |c| {
        let mut any = false;
        let scopes: Vec<(Channel, Option<Purpose>)> = channels
            .iter()
            .flat_map(|c| purposes.iter().map(move |p| (*c, *p)))
            .collect();
        for (i, (channel, purpose)) in scopes.iter().enumerate() {
            let (channel, purpose) = (*channel, purpose);
            let address_index = index_for(channel);
            let (id, part_of) = if scopes.len() == 1 {
                (f.id.clone(), None)
            } else {
                let part = i32::try_from(i).map_err(|e| DbError::Other(e.into()))?;
                (format!("{}-{}", f.id, i), Some((f.id.clone(), part)))
            };
            any |= consents::insert(
                c,
                ring,
                &consents::NewConsent {
                    id,
                    patient_id: f.patient_id.clone(),
                    channel,
                    purpose: *purpose,
                    address_index: address_index.clone(),
                    decision: if f.permit {
                        Decision::Permit
                    } else {
                        Decision::Deny
                    },
                    source: source.into(),
                    recorded_at: ranked.at,
                    stated_at: f.date_time,
                    future_dated: ranked.future,
                    valid_until: f.valid_until,
                    resource: resource.clone(),
                    part_of,
                    categories: f.categories.clone(),
                },
            )?;
        }
        if any {
            audit::append(
                c,
                &[AuditRecord {
                    recorded: now,
                    activity: Activity::ConsentRecorded {
                        consent_id: f.id.clone(),
                    },
                    actor: actor.clone(),
                    outcome: Outcome::Success,
                    outcome_desc: ranked.future.then(|| {
                        "Consent.dateTime was in the future; recorded at Herald's time".to_string()
                    }),
                    patient_id: Some(f.patient_id.clone()),
                    request_id: None,
                    ehr: ehr.map(String::from),
                }],
            )?;
        }
        Ok::<_, IngestError>(any)
    })?;
    if recorded && ranked.future {
        tracing::warn!(
            target: "security",
            source = %source,
            consent.id = %f.id,
            "a Consent dated in the future was recorded at Herald's time and marked; it cannot lift an earlier opt-out"
        );
    }
    Ok(recorded)
}

/// A followed resource is gone from the EHR (deleted, or no longer
/// readable): withdraw what is pending about it and send nothing, because
/// Herald cannot tell a cancellation from a record entered in error.
pub fn vanished(
    conn: &mut DbConn,
    ctx: &impl IngestEnv,
    resource_type: &str,
    id: &str,
    calls: &[AuditRecord],
) -> Result<usize, IngestError> {
    let now = ctx.clock().now();
    let about = format!("{resource_type}/{id}");
    db::write_tx(conn, |c| {
        let withdrawn = outbox::withdraw_pending(c, &about, now)?;
        resources::set_status(c, resource_type, id, "vanished", now)?;
        audit::append(c, calls)?;
        Ok::<_, IngestError>(withdrawn)
    })
}
