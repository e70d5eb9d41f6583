//! Sending-time policy (messaging.md T2, T4, W5): quiet hours in the
//! recipient's local time, stricter state windows, frequency caps, and how
//! long a provider may hold a message. A message outside the window or over
//! the cap is deferred to the first moment both allow, never dropped; it
//! expires only when that moment is past its validity.

use chrono::{DateTime, Days, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::nanp;

/// The hours during which messages may be delivered, local to the recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendingWindow {
    /// Opening (e.g. 08:00).
    pub opens: NaiveTime,
    /// Closing (e.g. 21:00), exclusive.
    pub closes: NaiveTime,
}

impl SendingWindow {
    /// `None` when `now` is inside the window in `tz`; otherwise the next opening.
    pub fn defer_until(&self, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&tz);
        let t = local.time();
        if t >= self.opens && t < self.closes {
            return None;
        }
        let day = if t < self.opens {
            local.date_naive()
        } else {
            local.date_naive().checked_add_days(Days::new(1))?
        };
        let opening = day.and_time(self.opens);
        // On a DST gap the opening may not exist; take the first instant after it.
        let at = tz.from_local_datetime(&opening).earliest().or_else(|| {
            tz.from_local_datetime(&(opening + chrono::Duration::hours(1)))
                .earliest()
        })?;
        Some(at.with_timezone(&Utc))
    }
}

impl SendingWindow {
    /// The stricter of two windows (later opening, earlier closing).
    pub fn intersect(self, other: Self) -> Self {
        Self {
            opens: self.opens.max(other.opens),
            closes: self.closes.min(other.closes),
        }
    }

    /// Whether `at` is inside the window in `tz`.
    pub fn contains(&self, at: DateTime<Utc>, tz: Tz) -> bool {
        let t = at.with_timezone(&tz).time();
        t >= self.opens && t < self.closes
    }

    /// When the window that contains `at` closes in `tz` (`None` if closed).
    pub fn closes_after(&self, at: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        if !self.contains(at, tz) {
            return None;
        }
        let local = at.with_timezone(&tz);
        let close = local.date_naive().and_time(self.closes);
        tz.from_local_datetime(&close)
            .earliest()
            .map(|c| c.with_timezone(&Utc))
    }
}

/// Where the recipient is, as far as Herald can tell: the zones their
/// local time may be in (several when an area code spans zones) and their
/// state, for state windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// Candidate zones; the window must hold in all of them.
    pub zones: Vec<Tz>,
    /// State or province code, e.g. "FL".
    pub region: Option<String>,
    /// Where the zone came from: "address", "area code" or "practice".
    pub source: &'static str,
}

impl Recipient {
    /// The recipient's zone from the Patient's address, else the phone's
    /// area code, else the practice's zone (messaging.md T4, §2.1).
    pub fn resolve(
        address_tz: Option<Tz>,
        address_region: Option<&str>,
        phone: Option<&str>,
        practice: Tz,
    ) -> Self {
        let area = phone.and_then(nanp::area_code);
        if let Some(tz) = address_tz {
            return Self {
                zones: vec![tz],
                region: address_region
                    .map(str::to_string)
                    .or_else(|| area.and_then(|a| a.region.clone())),
                source: "address",
            };
        }
        if let Some(a) = area.filter(|a| !a.zones.is_empty()) {
            return Self {
                zones: a.zones.clone(),
                region: a.region.clone(),
                source: "area code",
            };
        }
        Self {
            zones: vec![practice],
            region: address_region.map(str::to_string),
            source: "practice",
        }
    }
}

/// Frequency caps per recipient (T2: at most 1 a day and 3 a week per
/// provider); 0 turns a cap off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// In any 24 hours.
    pub per_day: u32,
    /// In any 7 days.
    pub per_week: u32,
}

/// When a message may go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Now.
    Now,
    /// Not before `until`.
    Defer {
        /// First moment the window and the caps allow.
        until: DateTime<Utc>,
        /// "quiet hours" or "frequency cap".
        reason: &'static str,
    },
}

/// The sending policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The federal window (08:00-21:00 by default).
    pub window: SendingWindow,
    /// Stricter windows by state, e.g. ("FL", 08:00-20:00).
    pub state_windows: Vec<(String, SendingWindow)>,
    /// Frequency caps.
    pub caps: Caps,
}

impl Policy {
    /// The window that applies to a recipient in `region`.
    pub fn window_for(&self, region: Option<&str>) -> SendingWindow {
        let mut w = self.window;
        if let Some(r) = region {
            for (state, sw) in &self.state_windows {
                if state.eq_ignore_ascii_case(r) {
                    w = w.intersect(*sw);
                }
            }
        }
        w
    }

    /// The first moment at or after `now` when the message may go out: inside
    /// the window in every candidate zone, and (unless `capped` is false)
    /// under the caps given the recipient's earlier sends in `history`.
    pub fn when(
        &self,
        now: DateTime<Utc>,
        to: &Recipient,
        history: &[DateTime<Utc>],
        capped: bool,
    ) -> Timing {
        let window = self.window_for(to.region.as_deref());
        let zones: &[Tz] = if to.zones.is_empty() {
            &[chrono_tz::UTC]
        } else {
            &to.zones
        };
        let mut t = now;
        let mut reason = None;
        // Each step moves t forward to an opening or past a cap; a few
        // dozen steps settle any real combination. Zones whose windows never
        // meet (e.g. Guam and New York) fall back to the first zone alone.
        let mut settled = false;
        for _ in 0..64 {
            let mut moved = false;
            for z in zones {
                if let Some(u) = window.defer_until(t, *z) {
                    t = u;
                    reason.get_or_insert("quiet hours");
                    moved = true;
                }
            }
            if capped && let Some(u) = self.cap_clears(t, history) {
                t = u;
                reason = Some(reason.unwrap_or("frequency cap"));
                moved = true;
            }
            if !moved {
                settled = true;
                break;
            }
        }
        if !settled {
            let single = Recipient {
                zones: zones.iter().take(1).copied().collect(),
                ..to.clone()
            };
            return self.when(now, &single, history, capped);
        }
        match reason {
            Some(reason) if t > now => Timing::Defer { until: t, reason },
            _ => Timing::Now,
        }
    }

    /// `None` when a send at `t` stays under the caps; else the moment the
    /// oldest send that blocks it leaves the window.
    fn cap_clears(&self, t: DateTime<Utc>, history: &[DateTime<Utc>]) -> Option<DateTime<Utc>> {
        let mut latest: Option<DateTime<Utc>> = None;
        for (cap, span) in [
            (self.caps.per_day, Duration::days(1)),
            (self.caps.per_week, Duration::days(7)),
        ] {
            if cap == 0 {
                continue;
            }
            let mut within: Vec<DateTime<Utc>> = history
                .iter()
                .copied()
                .filter(|h| *h <= t && t - *h < span)
                .collect();
            let cap = usize::try_from(cap).unwrap_or(usize::MAX);
            if within.len() >= cap {
                within.sort_unstable();
                // After the (len - cap + 1) oldest have aged out, one more fits.
                let idx = within.len() - cap;
                if let Some(oldest) = within.get(idx) {
                    let clear = *oldest + span;
                    latest = Some(latest.map_or(clear, |l: DateTime<Utc>| l.max(clear)));
                }
            }
        }
        latest
    }

    /// How long the provider may hold the message (Twilio ValidityPeriod,
    /// 1-36,000 s; W5): never past the message's own expiry (a reminder's
    /// appointment) nor past the close of the recipient's window. `None`
    /// means it must not be sent at all.
    pub fn validity(
        &self,
        now: DateTime<Utc>,
        to: &Recipient,
        expires_at: Option<DateTime<Utc>>,
    ) -> Option<u32> {
        let window = self.window_for(to.region.as_deref());
        let mut end = now + Duration::seconds(36_000);
        if let Some(e) = expires_at {
            end = end.min(e);
        }
        for z in &to.zones {
            if let Some(c) = window.closes_after(now, *z) {
                end = end.min(c);
            }
        }
        let secs = (end - now).num_seconds();
        u32::try_from(secs).ok().filter(|s| *s >= 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> SendingWindow {
        SendingWindow {
            opens: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            closes: NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
        }
    }

    fn check(now: &str, tz: Tz, expect: Option<&str>) {
        let now = DateTime::parse_from_rfc3339(now)
            .unwrap()
            .with_timezone(&Utc);
        let got = window().defer_until(now, tz).map(|d| d.to_rfc3339());
        assert_eq!(got.as_deref(), expect, "{now} in {tz}");
    }

    fn policy(per_day: u32, per_week: u32) -> Policy {
        Policy {
            window: window(),
            state_windows: vec![(
                "FL".into(),
                SendingWindow {
                    opens: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
                    closes: NaiveTime::from_hms_opt(20, 0, 0).unwrap(),
                },
            )],
            caps: Caps { per_day, per_week },
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn zone_from_address_then_area_code_then_practice() {
        let ny = chrono_tz::America::New_York;
        let la = chrono_tz::America::Los_Angeles;
        let r = Recipient::resolve(Some(la), Some("CA"), Some("+12125550100"), ny);
        assert_eq!((r.zones.clone(), r.source), (vec![la], "address"));
        let r = Recipient::resolve(None, None, Some("+18085550100"), ny);
        assert_eq!(r.zones, vec![chrono_tz::Pacific::Honolulu]);
        assert_eq!(r.source, "area code");
        let r = Recipient::resolve(None, None, Some("+18005550100"), ny);
        assert_eq!((r.zones.clone(), r.source), (vec![ny], "practice"));
    }

    #[test]
    fn state_window_and_area_code_zones_intersect() {
        // 850 spans Central and Eastern time and is in Florida (20:00 close).
        let to = Recipient::resolve(None, None, Some("+18505550100"), chrono_tz::UTC);
        // 00:30Z = 19:30 Eastern (open) but 18:30 Central; FL closes at 20:00
        // Eastern = 01:00Z, so the shared window is open.
        assert_eq!(
            policy(0, 0).when(utc("2026-12-02T00:30:00Z"), &to, &[], true),
            Timing::Now
        );
        // 01:30Z is 20:30 Eastern: closed in Florida until 08:00 Central = 14:00Z
        // (08:00 Eastern = 13:00Z is still 07:00 Central).
        assert_eq!(
            policy(0, 0).when(utc("2026-12-02T01:30:00Z"), &to, &[], true),
            Timing::Defer {
                until: utc("2026-12-02T14:00:00Z"),
                reason: "quiet hours"
            }
        );
    }

    #[test]
    fn caps_defer_until_the_oldest_send_ages_out() {
        let to = Recipient::resolve(
            Some(chrono_tz::America::New_York),
            None,
            None,
            chrono_tz::UTC,
        );
        let now = utc("2026-12-02T15:00:00Z");
        let history = [utc("2026-12-02T13:30:00Z")];
        assert_eq!(
            policy(1, 3).when(now, &to, &history, true),
            Timing::Defer {
                until: utc("2026-12-03T13:30:00Z"),
                reason: "frequency cap"
            }
        );
        assert_eq!(policy(1, 3).when(now, &to, &history, false), Timing::Now);
        assert_eq!(policy(0, 0).when(now, &to, &history, true), Timing::Now);
        // Three this week: the fourth waits until the first is a week old.
        let week = [
            utc("2026-11-27T14:00:00Z"),
            utc("2026-11-29T14:00:00Z"),
            utc("2026-12-01T14:00:00Z"),
        ];
        assert_eq!(
            policy(1, 3).when(now, &to, &week, true),
            Timing::Defer {
                until: utc("2026-12-04T14:00:00Z"),
                reason: "frequency cap"
            }
        );
    }

    #[test]
    fn validity_ends_at_the_appointment_and_at_the_window_close() {
        let to = Recipient::resolve(
            Some(chrono_tz::America::New_York),
            None,
            None,
            chrono_tz::UTC,
        );
        let p = policy(1, 3);
        // 15:00Z = 10:00 in New York; window closes 21:00 = 02:00Z next day (11 h > 36,000 s cap).
        assert_eq!(
            p.validity(utc("2026-12-02T15:00:00Z"), &to, None),
            Some(36_000)
        );
        assert_eq!(
            p.validity(
                utc("2026-12-02T15:00:00Z"),
                &to,
                Some(utc("2026-12-02T17:00:00Z"))
            ),
            Some(7_200)
        );
        // 20:00 local: one hour left in the window.
        assert_eq!(
            p.validity(utc("2026-12-03T01:00:00Z"), &to, None),
            Some(3_600)
        );
        assert_eq!(
            p.validity(
                utc("2026-12-02T15:00:00Z"),
                &to,
                Some(utc("2026-12-02T15:00:00Z"))
            ),
            None
        );
    }

    #[test]
    fn quiet_hours_in_local_time() {
        // 17:00Z is noon in New York, 07:00 in Honolulu.
        check("2026-12-01T17:00:00Z", chrono_tz::America::New_York, None);
        check(
            "2026-12-01T17:00:00Z",
            chrono_tz::Pacific::Honolulu,
            Some("2026-12-01T18:00:00+00:00"),
        );
        // 21:00 is already closed; deferred to 08:00 next day.
        check(
            "2026-12-02T02:00:00Z",
            chrono_tz::America::New_York,
            Some("2026-12-02T13:00:00+00:00"),
        );
        check("2026-12-01T13:00:00Z", chrono_tz::America::New_York, None);
    }
}

/// Property tests across zones and DST changes (issue 4 acceptance): no
/// message leaves inside quiet hours or above the caps.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    const ZONES: &[Tz] = &[
        chrono_tz::America::New_York,
        chrono_tz::America::Chicago,
        chrono_tz::America::Denver,
        chrono_tz::America::Phoenix,
        chrono_tz::America::Los_Angeles,
        chrono_tz::America::Anchorage,
        chrono_tz::Pacific::Honolulu,
        chrono_tz::America::Puerto_Rico,
        chrono_tz::America::St_Johns,
        chrono_tz::America::Indiana::Knox,
    ];

    fn policy(per_day: u32, per_week: u32, fl_close: u32) -> Policy {
        Policy {
            window: SendingWindow {
                opens: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
                closes: NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
            },
            state_windows: vec![(
                "FL".into(),
                SendingWindow {
                    opens: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
                    closes: NaiveTime::from_hms_opt(fl_close, 0, 0).unwrap(),
                },
            )],
            caps: Caps { per_day, per_week },
        }
    }

    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        // 2026-01-01 .. 2028-01-01 covers four DST changes in each zone;
        // half the draws land within a day of a US change.
        let any =
            (1_767_225_600i64..1_830_297_600).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap());
        let near_dst = (
            prop::sample::select(vec![
                1_773_025_200i64, // 2026-03-08 07:00Z
                1_793_584_800,    // 2026-11-01 06:00Z
                1_804_474_800,    // 2027-03-14 07:00Z
                1_825_034_400,    // 2027-11-07 06:00Z
            ]),
            -86_400i64..86_400,
        )
            .prop_map(|(b, d)| DateTime::from_timestamp(b + d, 0).unwrap());
        prop_oneof![any, near_dst]
    }

    fn recipient() -> impl Strategy<Value = Recipient> {
        (
            prop::sample::subsequence(ZONES.to_vec(), 1..=2),
            prop::option::of(prop::sample::select(vec!["FL", "NY", "TX"])),
        )
            .prop_map(|(zones, region)| Recipient {
                zones,
                region: region.map(String::from),
                source: "test",
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn a_send_never_lands_in_quiet_hours(now in instant(), to in recipient(), fl_close in 19u32..=21) {
            let p = policy(0, 0, fl_close);
            let at = match p.when(now, &to, &[], true) {
                Timing::Now => now,
                Timing::Defer { until, .. } => {
                    prop_assert!(until > now);
                    until
                }
            };
            let w = p.window_for(to.region.as_deref());
            // Either every candidate zone is open, or (zones that never share
            // a window) at least the first one is.
            let all_open = to.zones.iter().all(|z| w.contains(at, *z));
            prop_assert!(all_open || w.contains(at, to.zones[0]), "{at} for {to:?}");
            prop_assert!(at - now < Duration::days(3));
        }

        #[test]
        fn a_stream_of_sends_respects_quiet_hours_and_caps(
            start in instant(),
            to in recipient(),
            gaps in prop::collection::vec(0i64..40_000, 1..12),
            per_day in 1u32..=2,
            per_week in 2u32..=4,
        ) {
            let p = policy(per_day, per_week, 21);
            let w = p.window_for(to.region.as_deref());
            let mut history: Vec<DateTime<Utc>> = Vec::new();
            let mut now = start;
            for g in gaps {
                now += Duration::seconds(g);
                let at = match p.when(now, &to, &history, true) {
                    Timing::Now => now,
                    Timing::Defer { until, .. } => until,
                };
                prop_assert!(to.zones.iter().all(|z| w.contains(at, *z)) || w.contains(at, to.zones[0]));
                let day = history.iter().filter(|h| at - **h < Duration::days(1)).count();
                let week = history.iter().filter(|h| at - **h < Duration::days(7)).count();
                prop_assert!(day < usize::try_from(per_day).unwrap(), "{day} today at {at}: {history:?}");
                prop_assert!(week < usize::try_from(per_week).unwrap(), "{week} this week at {at}: {history:?}");
                history.push(at);
                now = at;
            }
        }

        #[test]
        fn validity_never_outlives_the_appointment_or_the_window(
            now in instant(), to in recipient(), left in 0i64..100_000,
        ) {
            let p = policy(0, 0, 21);
            let expires = now + Duration::seconds(left);
            if let Some(v) = p.validity(now, &to, Some(expires)) {
                let end = now + Duration::seconds(i64::from(v));
                prop_assert!(end <= expires);
                prop_assert!(v <= 36_000);
                let w = p.window_for(to.region.as_deref());
                for z in &to.zones {
                    if w.contains(now, *z) {
                        prop_assert!(w.contains(end - Duration::seconds(1), *z), "{end} {z}");
                    }
                }
            } else {
                prop_assert!(left < 1);
            }
        }
    }
}
