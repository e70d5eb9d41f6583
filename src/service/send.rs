//! The send path: claim due intents, ask the consent ledger *now*, respect
//! quiet hours, render, hand to the channel, and record the outcome with its
//! audit records in one transaction.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use chrono_tz::Tz;

use super::Ctx;
use crate::audit;
use crate::crypto::{normalize_email, normalize_phone};
use crate::db::{self, DbConn, DbError, consents, outbox, patients, resources};
use crate::domain::audit::{Activity, Actor, AuditRecord, Outcome};
use crate::domain::consent::{self, Verdict};
use crate::domain::intent::IntentState;
use crate::domain::plan::MessageKind;
use crate::domain::policy::SendingWindow;
use crate::domain::{Channel, Purpose};
use crate::fhir;
use crate::providers::{Outbound, ProviderError, Sender};
use crate::render::MessageArgs;

/// What happened to one intent in this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Delivered to the channel.
    Sent {
        /// Channel used.
        channel: Channel,
    },
    /// Blocked, with the reason.
    Suppressed {
        /// Why.
        reason: String,
    },
    /// Outside the sending window; back to pending until then.
    Deferred {
        /// Next opening.
        until: DateTime<Utc>,
    },
    /// Its validity ended first.
    Expired,
    /// The channel failed; retried later (or given up).
    Failed {
        /// Why (no PHI).
        reason: String,
    },
}

/// One line of a pass's report.
#[derive(Debug, Clone)]
pub struct Report {
    /// Intent id.
    pub intent_id: String,
    /// Patient id.
    pub patient_id: String,
    /// Message kind key.
    pub kind: String,
    /// What it is about.
    pub about: String,
    /// What happened.
    pub outcome: SendOutcome,
}

const MAX_ATTEMPTS: i32 = 5;

fn window(ctx: &Ctx<'_>) -> SendingWindow {
    let t = |s: &str, d: u32| {
        NaiveTime::parse_from_str(s, "%H:%M")
            .unwrap_or(NaiveTime::MIN + Duration::hours(i64::from(d)))
    };
    SendingWindow {
        opens: t(&ctx.messaging.quiet_end, 8),
        closes: t(&ctx.messaging.quiet_start, 21),
    }
}

fn record(
    ctx: &Ctx<'_>,
    patient: &str,
    activity: Activity,
    outcome: Outcome,
    desc: Option<&str>,
) -> AuditRecord {
    AuditRecord {
        recorded: ctx.clock.now(),
        activity,
        actor: Actor::System,
        outcome,
        outcome_desc: desc.map(String::from),
        patient_id: Some(patient.into()),
        request_id: None,
        ehr: None,
    }
}

/// Claims and processes due intents until none are due; returns what happened.
pub fn run_due(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    sender: &dyn Sender,
    owner: &str,
) -> Result<Vec<Report>, DbError> {
    let mut reports = Vec::new();
    loop {
        let now = ctx.clock.now();
        let batch = outbox::claim_due(conn, owner, now, Duration::minutes(5), 50)?;
        if batch.is_empty() {
            break;
        }
        for intent in batch {
            let outcome = process(conn, ctx, sender, owner, &intent)?;
            reports.push(Report {
                intent_id: intent.id.clone(),
                patient_id: intent.patient_id.clone(),
                kind: intent.kind.clone(),
                about: intent.about.clone(),
                outcome,
            });
        }
    }
    Ok(reports)
}

fn finish(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    owner: &str,
    id: &str,
    f: outbox::Finish<'_>,
    records: &[AuditRecord],
) -> Result<(), DbError> {
    let now = ctx.clock.now();
    db::write_tx(conn, |c| {
        outbox::finish(c, ctx.ring, id, owner, &f, now)?;
        audit::append(c, records)?;
        Ok(())
    })
}

fn process(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    sender: &dyn Sender,
    owner: &str,
    intent: &outbox::Intent,
) -> Result<SendOutcome, DbError> {
    let now = ctx.clock.now();
    let plain = |state, reason: Option<&'static str>| outbox::Finish {
        state,
        channel: None,
        reason,
        provider_ref: None,
        body: None,
        due_at: None,
    };
    if intent.expires_at.is_some_and(|e| db::utc(e) <= now) {
        finish(
            conn,
            ctx,
            owner,
            &intent.id,
            plain(IntentState::Expired, Some("validity passed")),
            &[],
        )?;
        return Ok(SendOutcome::Expired);
    }
    let purpose: Purpose = intent.purpose.parse().unwrap_or(Purpose::Marketing);
    let Some(patient) = patients::get(conn, ctx.ring, &intent.patient_id)? else {
        finish(
            conn,
            ctx,
            owner,
            &intent.id,
            plain(IntentState::Failed, Some("unknown patient")),
            &[],
        )?;
        return Ok(SendOutcome::Failed {
            reason: "unknown patient".into(),
        });
    };
    // Consent is asked at send time, per channel, for the exact address.
    let entries = consents::entries_for(conn, &patient.id)?;
    let mut candidates = Vec::new();
    if let Some(p) = &patient.phone {
        candidates.push((
            Channel::Sms,
            p.expose().to_string(),
            ctx.ring.blind_index("phone", &normalize_phone(p.expose())),
        ));
    }
    if let Some(e) = &patient.email {
        candidates.push((
            Channel::Email,
            e.expose().to_string(),
            ctx.ring.blind_index("email", &normalize_email(e.expose())),
        ));
    }
    let mut chosen = None;
    let mut first_denial = None;
    for (channel, addr, idx) in candidates {
        match consent::decide(&entries, channel, purpose, &idx, now) {
            Verdict::Permit { consent_id } => {
                chosen = Some((channel, addr, consent_id));
                break;
            }
            Verdict::Deny { reason, consent_id } => {
                if first_denial.is_none() {
                    first_denial = Some((channel, reason, consent_id));
                }
            }
        }
    }
    let Some((channel, addr, consent_id)) = chosen else {
        let (reason, records) = match first_denial {
            Some((channel, reason, consent_id)) => (
                reason.reason(),
                vec![record(
                    ctx,
                    &patient.id,
                    Activity::ConsentDecision {
                        intent_id: intent.id.clone(),
                        channel,
                        purpose,
                        permit: false,
                        consent_id,
                    },
                    Outcome::SeriousFailure,
                    Some(&format!("Consent denied: {}", reason.reason())),
                )],
            ),
            None => ("no contact address", vec![]),
        };
        finish(
            conn,
            ctx,
            owner,
            &intent.id,
            plain(IntentState::Suppressed, Some(reason)),
            &records,
        )?;
        return Ok(SendOutcome::Suppressed {
            reason: reason.into(),
        });
    };
    let permit = record(
        ctx,
        &patient.id,
        Activity::ConsentDecision {
            intent_id: intent.id.clone(),
            channel,
            purpose,
            permit: true,
            consent_id: Some(consent_id),
        },
        Outcome::Success,
        None,
    );
    // Quiet hours in the recipient's zone (patient, else practice default).
    let tz: Tz = patient
        .tz
        .or_else(|| ctx.messaging.default_timezone.parse().ok())
        .unwrap_or(chrono_tz::America::New_York);
    if let Some(until) = window(ctx).defer_until(now, tz) {
        if intent.expires_at.is_some_and(|e| db::utc(e) <= until) {
            finish(
                conn,
                ctx,
                owner,
                &intent.id,
                plain(
                    IntentState::Expired,
                    Some("quiet hours until after validity"),
                ),
                &[permit],
            )?;
            return Ok(SendOutcome::Expired);
        }
        let f = outbox::Finish {
            due_at: Some(until),
            ..plain(IntentState::Pending, Some("quiet hours"))
        };
        finish(conn, ctx, owner, &intent.id, f, &[permit])?;
        return Ok(SendOutcome::Deferred { until });
    }
    // Render from the resource as Herald knows it now.
    let kind = MessageKind::from_key(&intent.kind);
    let (resource_type, resource_id) = intent.about.split_once('/').unwrap_or(("", ""));
    let tracked = resources::get(conn, ctx.ring, resource_type, resource_id)?;
    let mut args = MessageArgs {
        practice: ctx.messaging.practice_name.clone(),
        phone: ctx.messaging.practice_phone.clone(),
        portal: ctx.messaging.portal_url.clone(),
        hours: match kind {
            Some(MessageKind::Reminder(h)) => Some(h),
            _ => None,
        },
        ..MessageArgs::default()
    };
    if let Some(t) = &tracked
        && resource_type == "Appointment"
    {
        let appt_tz = t.timezone.as_deref().and_then(|z| z.parse::<Tz>().ok());
        if let Some(a) = serde_json::from_str(&t.body)
            .ok()
            .and_then(|v| fhir::appointment_facts(&v, &|_| appt_tz).ok())
        {
            args.at = a.start;
            // The appointment's zone, else the recipient's (already resolved above).
            args.tz = a.tz.or(Some(tz));
            args.clinician = a.clinician;
            args.location = a.location;
        }
    }
    let template = kind.map(MessageKind::template).unwrap_or_default();
    let rendered = match ctx
        .renderer
        .render(patient.language.as_deref(), template, &args)
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(intent.id = %intent.id, error = %e, "template failed to render");
            finish(
                conn,
                ctx,
                owner,
                &intent.id,
                plain(IntentState::Failed, Some("template failed")),
                &[permit],
            )?;
            return Ok(SendOutcome::Failed {
                reason: "template failed".into(),
            });
        }
    };
    let msg = Outbound {
        intent_id: intent.id.clone(),
        channel,
        to: addr,
        subject: rendered.subject.clone(),
        text: rendered.sms.clone(),
        lang: rendered.lang.clone(),
    };
    match sender.send(&msg) {
        Ok(receipt) => {
            let disclosure = record(
                ctx,
                &patient.id,
                Activity::Disclosure {
                    intent_id: intent.id.clone(),
                    channel,
                    purpose,
                    about: intent.about.clone(),
                },
                Outcome::Success,
                None,
            );
            let f = outbox::Finish {
                state: IntentState::Sent,
                channel: Some(channel.code()),
                reason: None,
                provider_ref: Some(&receipt.provider_ref),
                body: Some(&rendered.sms),
                due_at: None,
            };
            finish(conn, ctx, owner, &intent.id, f, &[permit, disclosure])?;
            Ok(SendOutcome::Sent { channel })
        }
        Err(e) => {
            let (state, due, reason) = match e {
                ProviderError::Transient(_) if intent.attempts < MAX_ATTEMPTS => {
                    let backoff = Duration::seconds(30 * (1i64 << intent.attempts.clamp(0, 10)));
                    (
                        IntentState::Pending,
                        Some(now + backoff),
                        "provider unavailable; will retry",
                    )
                }
                _ => (IntentState::Failed, None, "provider refused"),
            };
            tracing::warn!(intent.id = %intent.id, error = %e, "send failed");
            let f = outbox::Finish {
                state,
                channel: Some(channel.code()),
                reason: Some(reason),
                provider_ref: None,
                body: None,
                due_at: due,
            };
            finish(conn, ctx, owner, &intent.id, f, &[permit])?;
            Ok(SendOutcome::Failed {
                reason: reason.into(),
            })
        }
    }
}
