//! Sending-time policy: TCPA quiet hours in the recipient's local time.
//! A message outside the window is deferred to the next opening, never dropped.

use chrono::{DateTime, Days, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

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
