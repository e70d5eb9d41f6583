//! The send path: claim due intents, ask the consent ledger *now*, respect
//! quiet hours, render, hand to the channel, and record the outcome with its
//! audit records in one transaction.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use chrono_tz::Tz;

use super::Ctx;
use crate::audit;
use crate::config::{MessagingSettings, OutboxSettings};
use crate::crypto::{normalize_email, normalize_phone};
use crate::db::{self, DbConn, DbError, consents, outbox, patients, resources};
use crate::domain::audit::{Activity, Actor, AuditRecord, Outcome};
use crate::domain::consent::Decision;
use crate::domain::consent::{self, Verdict};
use crate::domain::intent::IntentState;
use crate::domain::plan::MessageKind;
use crate::domain::policy::{Caps, Policy, Recipient, SendingWindow, Timing};
use crate::domain::{Channel, Purpose};
use crate::fhir;
use crate::guard::{ContentRules, ScanContext};
use crate::providers::{Outbound, ProviderError, Receipt, Sender};
use crate::render::{self, MessageArgs};

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
        /// "quiet hours" or "frequency cap".
        reason: &'static str,
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

/// The sending policy from the settings (validated by `herald check`).
pub fn policy(m: &MessagingSettings) -> Policy {
    let t = |s: &str, d: u32| {
        NaiveTime::parse_from_str(s, "%H:%M")
            .unwrap_or(NaiveTime::MIN + Duration::hours(i64::from(d)))
    };
    Policy {
        window: SendingWindow {
            opens: t(&m.quiet_end, 8),
            closes: t(&m.quiet_start, 21),
        },
        state_windows: m
            .state_windows
            .iter()
            .filter_map(|s| crate::config::parse_state_window(s))
            .map(|(state, opens, closes)| (state, SendingWindow { opens, closes }))
            .collect(),
        caps: Caps {
            per_day: m.cap_per_day,
            per_week: m.cap_per_week,
        },
    }
}

/// Exponential backoff with ±50% jitter, at least the provider's Retry-After.
pub fn backoff(
    o: &OutboxSettings,
    attempts: i32,
    retry_after: Option<std::time::Duration>,
) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    let base = o.retry_base_ms.saturating_mul(1u64 << exp.min(20));
    let capped = base.min(o.retry_max_secs.saturating_mul(1000));
    let mut r = [0u8; 2];
    let jitter = if openssl::rand::rand_bytes(&mut r).is_ok() {
        f64::from(u16::from_le_bytes(r)) / 65_536.0
    } else {
        0.5
    };
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        clippy::as_conversions
    )]
    let ms = (capped as f64 * (0.5 + jitter)) as u64;
    let floor = retry_after.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Duration::milliseconds(i64::try_from(ms.max(floor)).unwrap_or(i64::MAX))
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
    while let Some(mut batch) = claim_with(conn, ctx, sender, owner)? {
        reports.append(&mut batch);
    }
    Ok(reports)
}

/// Claims one batch and processes it; `None` when nothing was due.
pub fn claim(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    owner: &str,
) -> Result<Option<Vec<Report>>, DbError> {
    claim_with(conn, ctx, ctx.sender, owner)
}

fn claim_with(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    sender: &dyn Sender,
    owner: &str,
) -> Result<Option<Vec<Report>>, DbError> {
    let now = ctx.clock.now();
    let lease = Duration::seconds(i64::from(ctx.outbox.lease_secs));
    let batch = outbox::claim_due(conn, owner, now, lease, i64::from(ctx.outbox.batch))?;
    if batch.is_empty() {
        return Ok(None);
    }
    // Outcomes of the batch commit together (group commit): one write
    // transaction per batch instead of one per message. A crash before it
    // loses only outcomes, never sends: the next claim reconciles with the
    // provider before sending again.
    let _group = GroupCommit::start();
    let policy = policy(ctx.messaging);
    let mut reports = Vec::with_capacity(batch.len());
    for intent in batch {
        let outcome = match process(conn, ctx, &policy, sender, owner, &intent) {
            Ok(o) => o,
            // Another worker took the lease over (ours ran out): its outcome stands.
            Err(DbError::Conflict) => continue,
            Err(e) => return Err(e),
        };
        reports.push(Report {
            intent_id: intent.id.clone(),
            patient_id: intent.patient_id.clone(),
            kind: intent.kind.clone(),
            about: intent.about.clone(),
            outcome,
        });
    }
    commit_group(conn, ctx, owner)?;
    Ok(Some(reports))
}

/// An outcome waiting for its batch's commit.
struct Pending {
    id: String,
    state: IntentState,
    channel: Option<String>,
    reason: Option<String>,
    provider_ref: Option<String>,
    body: Option<String>,
    due_at: Option<DateTime<Utc>>,
    sent_at: Option<DateTime<Utc>>,
    error_code: Option<String>,
    segments: Option<i32>,
    patient: Option<String>,
    records: Vec<AuditRecord>,
}

thread_local! {
    /// The current batch's outcomes, when a batch is being processed on this thread.
    static GROUP: std::cell::RefCell<Option<Vec<Pending>>> = const { std::cell::RefCell::new(None) };
}

/// Opens the thread's group for one batch; dropping it discards anything
/// not committed (an error path: the leases run out and are reclaimed).
struct GroupCommit;

impl GroupCommit {
    fn start() -> Self {
        GROUP.with(|g| *g.borrow_mut() = Some(Vec::new()));
        Self
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        GROUP.with(|g| *g.borrow_mut() = None);
    }
}

/// Sends this batch has made to `patient` but not committed yet (caps must
/// count them).
fn uncommitted_sends(patient: &str) -> Vec<DateTime<Utc>> {
    GROUP.with(|g| {
        g.borrow()
            .iter()
            .flatten()
            .filter(|p| p.patient.as_deref() == Some(patient))
            .filter_map(|p| p.sent_at)
            .collect()
    })
}

fn commit_group(conn: &mut DbConn, ctx: &Ctx<'_>, owner: &str) -> Result<(), DbError> {
    let pending = GROUP.with(|g| {
        g.borrow_mut()
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    });
    if pending.is_empty() {
        return Ok(());
    }
    let now = ctx.clock.now();
    db::write_tx(conn, |c| {
        for p in &pending {
            let f = outbox::Finish {
                state: p.state,
                channel: p.channel.as_deref(),
                reason: p.reason.as_deref(),
                provider_ref: p.provider_ref.as_deref(),
                body: p.body.as_deref(),
                due_at: p.due_at,
                sent_at: p.sent_at,
                error_code: p.error_code.as_deref(),
                segments: p.segments,
            };
            match outbox::finish(c, ctx.ring, &p.id, owner, &f, now) {
                Ok(()) => audit::append(c, &p.records).map(|_| ())?,
                // The lease went to another worker: its outcome stands, and
                // this one (with its audit records) is dropped.
                Err(DbError::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })
}

fn finish(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    owner: &str,
    id: &str,
    f: outbox::Finish<'_>,
    records: &[AuditRecord],
) -> Result<(), DbError> {
    let queued = GROUP.with(|g| {
        let mut g = g.borrow_mut();
        let Some(group) = g.as_mut() else {
            return false;
        };
        group.push(Pending {
            id: id.to_string(),
            state: f.state,
            channel: f.channel.map(String::from),
            reason: f.reason.map(String::from),
            provider_ref: f.provider_ref.map(String::from),
            body: f.body.map(String::from),
            due_at: f.due_at,
            sent_at: f.sent_at,
            error_code: f.error_code.map(String::from),
            segments: f.segments,
            patient: records.iter().find_map(|r| r.patient_id.clone()),
            records: records.to_vec(),
        });
        true
    });
    if queued {
        return Ok(());
    }
    let now = ctx.clock.now();
    db::write_tx(conn, |c| {
        outbox::finish(c, ctx.ring, id, owner, &f, now)?;
        audit::append(c, records)?;
        Ok(())
    })
}

/// The channels a patient can be reached on, in order of preference, with
/// the address and its blind index.
fn candidates(
    ctx: &Ctx<'_>,
    patient: &crate::domain::facts::PatientFacts,
) -> Vec<(Channel, String, String)> {
    let mut out = Vec::new();
    if let Some(p) = &patient.phone {
        let idx = ctx.ring.blind_index("phone", &normalize_phone(p.expose()));
        out.push((Channel::Sms, p.expose().to_string(), idx.clone()));
        out.push((Channel::Voice, p.expose().to_string(), idx));
    }
    if let Some(e) = &patient.email {
        out.push((
            Channel::Email,
            e.expose().to_string(),
            ctx.ring.blind_index("email", &normalize_email(e.expose())),
        ));
    }
    // SMS first, then email, then voice.
    out.sort_by_key(|(c, _, _)| match c {
        Channel::Sms => 0,
        Channel::Email => 1,
        Channel::Voice => 2,
    });
    out
}

#[allow(clippy::too_many_lines)]
fn process(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    policy: &Policy,
    sender: &dyn Sender,
    owner: &str,
    intent: &outbox::Intent,
) -> Result<SendOutcome, DbError> {
    let now = ctx.clock.now();
    let plain = outbox::Finish::state;
    let expires = intent.expires_at.map(db::utc);
    if expires.is_some_and(|e| e <= now) {
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
    let kind = MessageKind::from_key(&intent.kind);
    let template: &str = match kind {
        Some(k) => k.template(),
        None => intent.kind.as_str(),
    };
    let spec = render::template(template);
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
    let notice = spec.is_some_and(|s| s.consent_notice);
    // Consent is asked at send time, per channel, for the exact address.
    // A consent notice (the one confirmation of a STOP or START, a HELP
    // answer) replies by text to the number that wrote, whatever the ledger
    // now says: it is owed to the patient (T9, C2, C3).
    let entries = consents::entries_for(conn, &patient.id)?;
    let mut chosen = None;
    let mut first_denial = None;
    for (channel, addr, idx) in candidates(ctx, &patient) {
        if notice {
            if channel == Channel::Sms {
                chosen = Some((channel, addr, idx, None));
                break;
            }
            continue;
        }
        match consent::decide(&entries, channel, purpose, &idx, now) {
            Verdict::Permit { consent_id } => {
                chosen = Some((channel, addr, idx, Some(consent_id)));
                break;
            }
            Verdict::Deny { reason, consent_id } => {
                if first_denial.is_none() {
                    first_denial = Some((channel, reason, consent_id));
                }
            }
        }
    }
    let Some((channel, addr, addr_index, consent_id)) = chosen else {
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
            consent_id: consent_id.clone(),
        },
        Outcome::Success,
        consent_id
            .is_none()
            .then_some("Consent notice owed to the patient (TCPA T9, CTIA C2/C3)"),
    );
    // Quiet hours in every zone the recipient may be in, and frequency caps.
    let practice_tz: Tz = ctx
        .messaging
        .default_timezone
        .parse()
        .unwrap_or(chrono_tz::America::New_York);
    let phone = patient.phone.as_ref().map(|p| p.expose().to_string());
    let to = Recipient::resolve(
        patient.tz,
        patient.region.as_deref(),
        phone.as_deref(),
        practice_tz,
    );
    let reply = spec.is_some_and(|s| s.reply);
    let capped = !notice && !reply;
    let history = if capped {
        let mut h = outbox::sent_times(conn, &patient.id, now - Duration::days(7))?;
        h.extend(uncommitted_sends(&patient.id));
        h
    } else {
        Vec::new()
    };
    // A consent notice answers the patient's own text at once, day or night.
    let timing = if notice || reply {
        Timing::Now
    } else {
        policy.when(now, &to, &history, capped)
    };
    if let Timing::Defer { until, reason } = timing {
        if expires.is_some_and(|e| e <= until) {
            let why = if reason == "frequency cap" {
                "frequency cap until after validity"
            } else {
                "quiet hours until after validity"
            };
            finish(
                conn,
                ctx,
                owner,
                &intent.id,
                plain(IntentState::Expired, Some(why)),
                &[permit],
            )?;
            return Ok(SendOutcome::Expired);
        }
        let f = outbox::Finish {
            due_at: Some(until),
            ..plain(IntentState::Pending, Some(reason))
        };
        finish(conn, ctx, owner, &intent.id, f, &[permit])?;
        return Ok(SendOutcome::Deferred { until, reason });
    }
    // The provider may hold it only until the appointment or the window closes.
    let validity = policy.validity(now, &to, expires);
    if validity.is_none() {
        finish(
            conn,
            ctx,
            owner,
            &intent.id,
            plain(IntentState::Expired, Some("validity passed")),
            &[permit],
        )?;
        return Ok(SendOutcome::Expired);
    }
    // Render from the resource as Herald knows it now.
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
            // The appointment's zone, else the recipient's.
            args.tz = a.tz.or(to.zones.first().copied());
            args.clinician = a.clinician;
            args.location = a.location;
        }
    }
    let requested = patient
        .language
        .as_deref()
        .or(Some(ctx.messaging.default_language.as_str()));
    let rendered = match ctx.renderer.render_for(requested, template, &args, channel) {
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
    let body = match channel {
        Channel::Sms => rendered.sms.clone(),
        Channel::Email => rendered.email.clone(),
        Channel::Voice => rendered.voice.clone(),
    };
    // The compliance guard reads the final text (messaging.md P1-P3, H9, T2).
    let portal_domain = ctx.messaging.portal_domain();
    let mut allowed: Vec<&str> = vec![
        &ctx.messaging.practice_name,
        &ctx.messaging.practice_phone,
        &ctx.messaging.portal_url,
        &rendered.date,
        &rendered.time,
    ];
    // The location is not on the list, and the clinician only when their
    // display names no clinical term: a department can reveal a condition
    // ("Oncology Infusion Center", "Dr. Lee, Oncology"), which H9 forbids.
    let clinician_clean = args.clinician.as_deref().filter(|c| {
        let alone = ScanContext {
            lang: Some(&rendered.lang),
            allowed: &[],
            allowed_domains: &[],
            content: None,
        };
        ctx.guard
            .scan(c, &alone)
            .findings
            .iter()
            .all(|f| f.kind == crate::guard::Kind::OtherName)
    });
    allowed.extend(clinician_clean);
    let verdict = ctx.guard.scan(
        &body,
        &ScanContext {
            lang: Some(&rendered.lang),
            allowed: &allowed,
            allowed_domains: &[portal_domain],
            content: (channel == Channel::Sms).then_some(ContentRules {
                brand: &ctx.messaging.practice_name,
                require_opt_out: !notice,
            }),
        },
    );
    if verdict.blocked() {
        let reason = format!("compliance guard: {}", verdict.reasons());
        tracing::error!(alert = "compliance-guard", intent.id = %intent.id, template, reasons = %verdict.reasons(), "message blocked by the compliance guard");
        let blocked = record(
            ctx,
            &patient.id,
            Activity::Disclosure {
                intent_id: intent.id.clone(),
                channel,
                purpose,
                about: intent.about.clone(),
            },
            Outcome::SeriousFailure,
            Some(&format!("Blocked before sending: {reason}")),
        );
        let f = outbox::Finish {
            channel: Some(channel.code()),
            reason: Some(&reason),
            ..plain(IntentState::Suppressed, None)
        };
        finish(conn, ctx, owner, &intent.id, f, &[permit, blocked])?;
        return Ok(SendOutcome::Suppressed { reason });
    }
    let msg = Outbound {
        intent_id: intent.id.clone(),
        channel,
        to: addr,
        subject: rendered.subject.clone(),
        text: rendered.sms.clone(),
        email_text: rendered.email.clone(),
        voice_text: rendered.voice.clone(),
        lang: rendered.lang.clone(),
        rtl: rendered.rtl,
        validity_secs: validity,
        status_callback: ctx.status_callback.clone(),
    };
    let segments = (channel == Channel::Sms)
        .then(|| i32::try_from(rendered.segments.segments).ok())
        .flatten();
    // Our lease must outlast the provider calls (a reconcile and a send, each
    // at most the provider timeout). `herald check` holds the lease to at
    // least four timeouts, so with half of it left there is time; otherwise
    // renew it first (one more write, only for slow batches).
    let lease = Duration::seconds(i64::from(ctx.outbox.lease_secs));
    let claimed = db::utc(intent.updated_at);
    let now = ctx.clock.now();
    if claimed + lease - now < lease / 2
        && !outbox::renew_lease(conn, &intent.id, owner, now + lease)?
    {
        return Err(DbError::Conflict);
    }
    // A retry may follow an attempt whose outcome is unknown (a timeout, or a
    // crash after the provider accepted it): look for that message first.
    let first_claim = intent.first_claimed_at.map(db::utc).unwrap_or(now);
    let result = if intent.attempts > 1 {
        match sender.reconcile(&msg, first_claim) {
            Ok(Some(receipt)) => Ok(receipt),
            Ok(None) => sender.send(&msg),
            Err(e) => Err(e),
        }
    } else {
        sender.send(&msg)
    };
    match result {
        Ok(receipt) => sent(
            conn,
            ctx,
            owner,
            intent,
            &patient.id,
            channel,
            purpose,
            &receipt,
            &body,
            segments,
            permit,
        ),
        Err(ProviderError::OptedOut) => {
            // Twilio 21610: the carrier holds a STOP for this number. Record
            // the opt-out in the ledger so nothing else goes to it (W4).
            let entry = carrier_opt_out(
                uuid::Uuid::new_v4().to_string(),
                &patient.id,
                channel,
                &addr_index,
                now,
            );
            let reason = "opted out at carrier (21610)";
            let revoke = record(
                ctx,
                &patient.id,
                Activity::ConsentDecision {
                    intent_id: intent.id.clone(),
                    channel,
                    purpose,
                    permit: false,
                    consent_id: Some(entry.id.clone()),
                },
                Outcome::SeriousFailure,
                Some("Consent revoked: provider reports the recipient unsubscribed"),
            );
            db::write_tx(conn, |c| {
                consents::insert(c, ctx.ring, &entry)?;
                let f = outbox::Finish {
                    channel: Some(channel.code()),
                    error_code: Some("21610"),
                    ..plain(IntentState::Suppressed, Some(reason))
                };
                outbox::finish(c, ctx.ring, &intent.id, owner, &f, now)?;
                audit::append(c, &[permit, revoke])?;
                Ok::<_, DbError>(())
            })?;
            Ok(SendOutcome::Suppressed {
                reason: reason.into(),
            })
        }
        Err(e) => {
            let max = i32::try_from(ctx.outbox.max_attempts).unwrap_or(i32::MAX);
            let (state, due, reason, code) = match &e {
                ProviderError::Transient { retry_after, .. } if intent.attempts < max => (
                    IntentState::Pending,
                    Some(now + backoff(ctx.outbox, intent.attempts, *retry_after)),
                    "provider unavailable; will retry",
                    None,
                ),
                ProviderError::Transient { .. } => (
                    IntentState::Failed,
                    None,
                    "provider unavailable; gave up",
                    None,
                ),
                ProviderError::Permanent { code, .. } => (
                    IntentState::Failed,
                    None,
                    "provider refused",
                    code.as_deref(),
                ),
                ProviderError::OptedOut => (IntentState::Failed, None, "provider refused", None),
            };
            tracing::warn!(intent.id = %intent.id, error = %e, "send failed");
            let f = outbox::Finish {
                channel: Some(channel.code()),
                due_at: due,
                error_code: code,
                ..plain(state, Some(reason))
            };
            finish(conn, ctx, owner, &intent.id, f, &[permit])?;
            Ok(SendOutcome::Failed {
                reason: reason.into(),
            })
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn sent(
    conn: &mut DbConn,
    ctx: &Ctx<'_>,
    owner: &str,
    intent: &outbox::Intent,
    patient_id: &str,
    channel: Channel,
    purpose: Purpose,
    receipt: &Receipt,
    body: &str,
    segments: Option<i32>,
    permit: AuditRecord,
) -> Result<SendOutcome, DbError> {
    let disclosure = record(
        ctx,
        patient_id,
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
        channel: Some(channel.code()),
        provider_ref: Some(&receipt.provider_ref),
        body: Some(body),
        sent_at: Some(ctx.clock.now()),
        segments,
        ..outbox::Finish::state(IntentState::Sent, None)
    };
    finish(conn, ctx, owner, &intent.id, f, &[permit, disclosure])?;
    Ok(SendOutcome::Sent { channel })
}

/// A ledger entry `id` for a carrier-side opt-out, with its FHIR Consent.
pub(crate) fn carrier_opt_out(
    id: String,
    patient_id: &str,
    channel: Channel,
    addr_index: &str,
    now: DateTime<Utc>,
) -> consents::NewConsent {
    let resource = crate::fhir::consent::resource(&crate::fhir::consent::ConsentDraft {
        id: &id,
        patient: patient_id,
        performer: None,
        permit: false,
        channel,
        purpose: None,
        address: None,
        rule: "Carrier reported the recipient unsubscribed (Twilio error 21610)",
        at: now,
    });
    consents::NewConsent {
        id,
        patient_id: patient_id.into(),
        channel,
        purpose: None,
        address_index: addr_index.into(),
        decision: Decision::Deny,
        source: "carrier".into(),
        recorded_at: now,
        stated_at: None,
        future_dated: false,
        part_of: None,
        categories: vec![crate::fhir::consent::CATEGORY.into()],
        valid_until: None,
        resource,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_honours_retry_after_and_is_capped() {
        let o = OutboxSettings {
            retry_base_ms: 1_000,
            retry_max_secs: 60,
            ..OutboxSettings::default()
        };
        for attempt in 1..=4 {
            let base = 1_000i64 << (attempt - 1);
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..200 {
                let d = backoff(&o, attempt, None).num_milliseconds();
                assert!(d >= base / 2 && d < base * 3 / 2, "attempt {attempt}: {d}");
                seen.insert(d);
            }
            assert!(seen.len() > 20, "no jitter at attempt {attempt}");
        }
        // Capped at retry_max (±50%), and never below the provider's Retry-After.
        assert!(backoff(&o, 20, None).num_milliseconds() < 90_000);
        let ra = std::time::Duration::from_secs(120);
        assert!(backoff(&o, 1, Some(ra)).num_milliseconds() >= 120_000);
    }

    #[test]
    fn policy_reads_the_settings() {
        let m = MessagingSettings::default();
        let p = policy(&m);
        assert_eq!(
            p.caps,
            Caps {
                per_day: 1,
                per_week: 3
            }
        );
        assert_eq!(
            p.window.opens,
            NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default()
        );
        assert!(
            p.state_windows.iter().any(|(s, w)| s == "FL"
                && w.closes == NaiveTime::from_hms_opt(20, 0, 0).unwrap_or_default())
        );
        assert_eq!(
            MessagingSettings {
                portal_url: "https://portal.example.org/x?y".into(),
                ..MessagingSettings::default()
            }
            .portal_domain(),
            "portal.example.org"
        );
    }
}
