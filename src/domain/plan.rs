//! Planning: from the new state of a resource (and the state Herald last saw)
//! to the messages to schedule and whether pending ones are withdrawn.
//! Dedupe keys make planning idempotent: the same version planned twice
//! yields the same keys, which the outbox stores once.

use chrono::{DateTime, Days, Duration, NaiveTime, Utc};

use super::Purpose;
use super::facts::{AppointmentFacts, AppointmentStatus, MedicationFacts};

/// What kind of message, which picks the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// "Your appointment is booked".
    Confirmation,
    /// "Reminder: your appointment is in N hours" (offset in hours).
    Reminder(u32),
    /// "Your appointment has moved".
    Rescheduled,
    /// "Your appointment was cancelled".
    Cancellation,
    /// "We missed you".
    NoShow,
    /// "Time to refill".
    RefillReminder,
    /// "Your prescription is ready for pickup".
    ReadyForPickup,
}

impl MessageKind {
    /// The Fluent message id.
    pub fn template(self) -> &'static str {
        match self {
            Self::Confirmation => "appointment-confirmation",
            Self::Reminder(_) => "appointment-reminder",
            Self::Rescheduled => "appointment-rescheduled",
            Self::Cancellation => "appointment-cancelled",
            Self::NoShow => "appointment-missed",
            Self::RefillReminder => "medication-refill-reminder",
            Self::ReadyForPickup => "medication-ready-for-pickup",
        }
    }

    /// The purpose consent is checked against.
    pub fn purpose(self) -> Purpose {
        match self {
            Self::RefillReminder | Self::ReadyForPickup => Purpose::Medication,
            _ => Purpose::Appointment,
        }
    }

    /// A short stable name used in dedupe keys and the outbox.
    pub fn key(self) -> String {
        match self {
            Self::Reminder(h) => format!("reminder-{h}h"),
            other => other.template().to_string(),
        }
    }

    /// Parses [`MessageKind::key`].
    pub fn from_key(s: &str) -> Option<Self> {
        if let Some(h) = s
            .strip_prefix("reminder-")
            .and_then(|r| r.strip_suffix('h'))
        {
            return h.parse().ok().map(Self::Reminder);
        }
        [
            Self::Confirmation,
            Self::Rescheduled,
            Self::Cancellation,
            Self::NoShow,
            Self::RefillReminder,
            Self::ReadyForPickup,
        ]
        .into_iter()
        .find(|k| k.template() == s)
    }
}

/// One message to schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedMessage {
    /// Which message.
    pub kind: MessageKind,
    /// When it may go out at the earliest.
    pub due_at: DateTime<Utc>,
    /// After this it must not go out at all (e.g. the appointment's start).
    pub expires_at: Option<DateTime<Utc>>,
    /// Unique per resource, kind and the fact it is about.
    pub dedupe_key: String,
}

/// The outcome of planning one resource change.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Withdraw every pending message for this resource first.
    pub withdraw_pending: bool,
    /// Withdraw pending messages for this resource that this plan no longer
    /// contains (a changed supply or refill count moves the reminders).
    pub replaces_pending: bool,
    /// Messages to schedule.
    pub send: Vec<PlannedMessage>,
}

/// Plans an Appointment change. `old` is what Herald last saw of it.
pub fn plan_appointment(
    new: &AppointmentFacts,
    old: Option<&AppointmentFacts>,
    now: DateTime<Utc>,
    reminder_offsets_hours: &[u32],
) -> Plan {
    use AppointmentStatus as S;
    let mut plan = Plan::default();
    let Some(start) = new.start else {
        // Nothing can be said about an appointment without a time.
        plan.withdraw_pending = old.is_some();
        return plan;
    };
    let stamp = start.format("%Y%m%dT%H%MZ").to_string();
    let key = |kind: MessageKind| format!("Appointment/{}/{}/{}", new.id, kind.key(), stamp);
    let upcoming = start > now;
    let was = old.map(|o| o.status);
    match new.status {
        S::Booked => {
            if !upcoming {
                return plan;
            }
            let moved = old.is_some_and(|o| o.status == S::Booked && o.start != new.start);
            if moved {
                plan.withdraw_pending = true;
            }
            if was != Some(S::Booked) || moved {
                let kind = if moved {
                    MessageKind::Rescheduled
                } else {
                    MessageKind::Confirmation
                };
                plan.send.push(PlannedMessage {
                    kind,
                    due_at: now,
                    expires_at: Some(start),
                    dedupe_key: key(kind),
                });
            }
            let mut offsets = reminder_offsets_hours.to_vec();
            offsets.sort_unstable_by(|a, b| b.cmp(a));
            offsets.dedup();
            for h in offsets {
                let at = start - Duration::hours(i64::from(h));
                // A reminder whose moment has passed adds nothing to the confirmation.
                if at > now {
                    let kind = MessageKind::Reminder(h);
                    plan.send.push(PlannedMessage {
                        kind,
                        due_at: at,
                        expires_at: Some(start),
                        dedupe_key: key(kind),
                    });
                }
            }
        }
        S::Cancelled => {
            plan.withdraw_pending = true;
            if upcoming && was != Some(S::Cancelled) {
                let kind = MessageKind::Cancellation;
                plan.send.push(PlannedMessage {
                    kind,
                    due_at: now,
                    expires_at: Some(start),
                    dedupe_key: key(kind),
                });
            }
        }
        S::Noshow => {
            plan.withdraw_pending = true;
            if was != Some(S::Noshow) && now - start < Duration::days(7) {
                let kind = MessageKind::NoShow;
                plan.send.push(PlannedMessage {
                    kind,
                    due_at: now,
                    expires_at: Some(start + Duration::days(7)),
                    dedupe_key: key(kind),
                });
            }
        }
        S::EnteredInError | S::Arrived | S::CheckedIn | S::Fulfilled => {
            plan.withdraw_pending = true;
        }
        S::Proposed | S::Pending | S::Waitlist => {
            // Not booked (any more): reminders planned for a booking no longer hold.
            plan.withdraw_pending = was == Some(S::Booked);
        }
    }
    plan
}

/// Plans a MedicationRequest change: a pickup notice, or a refill reminder
/// `lead_days` before the supply runs out while refills remain.
pub fn plan_medication(new: &MedicationFacts, now: DateTime<Utc>, lead_days: u32) -> Plan {
    let mut plan = Plan::default();
    if new.status != "active" {
        plan.withdraw_pending = true;
        return plan;
    }
    if new.ready_for_pickup {
        let kind = MessageKind::ReadyForPickup;
        plan.send.push(PlannedMessage {
            kind,
            due_at: now,
            expires_at: Some(now + Duration::days(10)),
            dedupe_key: format!(
                "MedicationRequest/{}/{}/{}",
                new.id,
                kind.key(),
                new.version.as_deref().unwrap_or("0")
            ),
        });
        return plan;
    }
    // One refill reminder before each supply runs out while refills remain:
    // fill k (k = 1 ..= numberOfRepeatsAllowed; unknown counts as one) runs out
    // at authoredOn + k × expectedSupplyDuration, within validityPeriod.
    plan.replaces_pending = true;
    let (Some(authored), Some(days)) = (new.authored_on, new.supply_days) else {
        return plan;
    };
    if days == 0 {
        return plan;
    }
    let refills = new.repeats_allowed.unwrap_or(1).min(12);
    for k in 1..=refills {
        let Some(runout) = authored.checked_add_days(Days::new(u64::from(days) * u64::from(k)))
        else {
            break;
        };
        if new.valid_until.is_some_and(|v| v < runout) {
            break;
        }
        let runout_at = runout.and_time(NaiveTime::MIN).and_utc();
        if runout_at <= now {
            continue;
        }
        let due = (runout_at - Duration::days(i64::from(lead_days))).max(now);
        let kind = MessageKind::RefillReminder;
        plan.send.push(PlannedMessage {
            kind,
            due_at: due,
            expires_at: Some(runout_at),
            dedupe_key: format!("MedicationRequest/{}/{}/{}", new.id, kind.key(), runout),
        });
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn appt(status: AppointmentStatus, start: DateTime<Utc>) -> AppointmentFacts {
        AppointmentFacts {
            id: "a1".into(),
            version: Some("1".into()),
            status,
            start: Some(start),
            patient_id: "p1".into(),
            clinician: None,
            location: None,
            location_id: None,
            tz: None,
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 17, 0, 0).unwrap()
    }

    fn kinds(p: &Plan) -> Vec<MessageKind> {
        p.send.iter().map(|m| m.kind).collect()
    }

    #[test]
    fn booked_gets_confirmation_and_future_reminders() {
        let start = now() + Duration::hours(30);
        let p = plan_appointment(
            &appt(AppointmentStatus::Booked, start),
            None,
            now(),
            &[72, 24, 2],
        );
        assert_eq!(
            kinds(&p),
            vec![
                MessageKind::Confirmation,
                MessageKind::Reminder(24),
                MessageKind::Reminder(2)
            ]
        );
        assert!(p.send.iter().all(|m| m.expires_at == Some(start)));
        assert_eq!(p.send[1].due_at, start - Duration::hours(24));
        // The same version planned again gives the same keys.
        let again = plan_appointment(
            &appt(AppointmentStatus::Booked, start),
            None,
            now(),
            &[72, 24, 2],
        );
        assert_eq!(p, again);
    }

    #[test]
    fn unchanged_booking_plans_nothing_new_but_reschedule_does() {
        let start = now() + Duration::hours(100);
        let old = appt(AppointmentStatus::Booked, start);
        let same = plan_appointment(&old, Some(&old), now(), &[24]);
        assert_eq!(kinds(&same), vec![MessageKind::Reminder(24)]);
        assert!(!same.withdraw_pending);
        let moved = appt(AppointmentStatus::Booked, start + Duration::hours(48));
        let p = plan_appointment(&moved, Some(&old), now(), &[24]);
        assert!(p.withdraw_pending);
        assert_eq!(
            kinds(&p),
            vec![MessageKind::Rescheduled, MessageKind::Reminder(24)]
        );
        assert_ne!(p.send[1].dedupe_key, same.send[0].dedupe_key);
    }

    #[test]
    fn cancellation_withdraws_and_notifies_once() {
        let start = now() + Duration::hours(50);
        let old = appt(AppointmentStatus::Booked, start);
        let new = appt(AppointmentStatus::Cancelled, start);
        let p = plan_appointment(&new, Some(&old), now(), &[24]);
        assert!(p.withdraw_pending);
        assert_eq!(kinds(&p), vec![MessageKind::Cancellation]);
        let again = plan_appointment(&new, Some(&new), now(), &[24]);
        assert!(again.send.is_empty());
        let past = plan_appointment(
            &appt(AppointmentStatus::Cancelled, now() - Duration::hours(1)),
            None,
            now(),
            &[24],
        );
        assert!(past.send.is_empty());
    }

    #[test]
    fn other_statuses() {
        let past = now() - Duration::days(1);
        let ns = plan_appointment(&appt(AppointmentStatus::Noshow, past), None, now(), &[24]);
        assert_eq!(kinds(&ns), vec![MessageKind::NoShow]);
        for s in [
            AppointmentStatus::EnteredInError,
            AppointmentStatus::Fulfilled,
            AppointmentStatus::Arrived,
        ] {
            let p = plan_appointment(&appt(s, now() + Duration::hours(5)), None, now(), &[2]);
            assert!(p.withdraw_pending && p.send.is_empty(), "{s}");
        }
        let booked_then_pending = plan_appointment(
            &appt(AppointmentStatus::Pending, now() + Duration::hours(5)),
            Some(&appt(AppointmentStatus::Booked, now() + Duration::hours(5))),
            now(),
            &[2],
        );
        assert!(booked_then_pending.withdraw_pending);
    }

    fn med(
        status: &str,
        authored_days_ago: u64,
        supply: u32,
        repeats: Option<u32>,
    ) -> MedicationFacts {
        MedicationFacts {
            id: "m1".into(),
            version: Some("1".into()),
            status: status.into(),
            patient_id: "p1".into(),
            authored_on: now()
                .date_naive()
                .checked_sub_days(Days::new(authored_days_ago)),
            supply_days: Some(supply),
            repeats_allowed: repeats,
            valid_until: None,
            ready_for_pickup: false,
        }
    }

    #[test]
    fn refill_reminder_before_each_runout_while_refills_remain() {
        // Authored 27 days ago, 30-day supply, 2 refills: runs out in 3 days
        // (inside the 5-day lead: due now) and again 30 days later.
        let p = plan_medication(&med("active", 27, 30, Some(2)), now(), 5);
        assert_eq!(
            kinds(&p),
            vec![MessageKind::RefillReminder, MessageKind::RefillReminder]
        );
        assert_eq!(p.send[0].due_at, now(), "inside the lead window: due now");
        assert_eq!(
            Some(p.send[1].due_at),
            p.send[0]
                .expires_at
                .map(|runout| runout + Duration::days(25))
        );
        assert!(
            p.replaces_pending,
            "a changed prescription moves its reminders"
        );
        let later = plan_medication(&med("active", 1, 30, Some(2)), now(), 5);
        assert!(later.send[0].due_at > now());
        assert!(
            plan_medication(&med("active", 1, 30, Some(0)), now(), 5)
                .send
                .is_empty(),
            "no refills allowed: nothing to remind"
        );
        // 40 days in with 3 refills: the first supply ran out already; the
        // second and third remain.
        assert_eq!(
            plan_medication(&med("active", 40, 30, Some(3)), now(), 5)
                .send
                .len(),
            2
        );
        // validityPeriod ends before the second runout: one reminder.
        let mut short = med("active", 27, 30, Some(5));
        short.valid_until = Some(now().date_naive() + Days::new(20));
        assert_eq!(plan_medication(&short, now(), 5).send.len(), 1);
        let stopped = plan_medication(&med("stopped", 1, 30, Some(3)), now(), 5);
        assert!(stopped.withdraw_pending && stopped.send.is_empty());
        let mut ready = med("active", 1, 30, Some(3));
        ready.ready_for_pickup = true;
        assert_eq!(
            kinds(&plan_medication(&ready, now(), 5)),
            vec![MessageKind::ReadyForPickup]
        );
    }

    #[test]
    fn kind_keys_round_trip() {
        for k in [
            MessageKind::Reminder(72),
            MessageKind::Confirmation,
            MessageKind::RefillReminder,
            MessageKind::NoShow,
        ] {
            assert_eq!(MessageKind::from_key(&k.key()), Some(k));
        }
    }
}
