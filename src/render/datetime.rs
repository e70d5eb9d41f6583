//! Dates and times for every shipped locale, in the appointment's zone,
//! formatted by ICU4X from CLDR data compiled into the binary (Fluent has no
//! DATETIME). Formatters are built once per locale and shared.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use icu::calendar::{Date, Gregorian};
use icu::datetime::fieldsets::{MDE, T};
use icu::datetime::{FixedCalendarDateTimeFormatter, NoCalendarFormatter};
use icu::locale::Locale;
use icu::time::Time;

/// A locale's date ("Thursday, December 3") and time ("9:30 AM") formatters.
#[derive(Debug)]
pub struct DateTimeFormats {
    date: FixedCalendarDateTimeFormatter<Gregorian, MDE>,
    time: NoCalendarFormatter<T>,
}

/// The CLDR locale ICU4X should use for a Herald locale tag.
fn cldr_locale(lang: &str) -> Locale {
    // Tagalog is "fil" in CLDR; the others parse as they are.
    let tag = match lang {
        "tl" | "tl-PH" => "fil",
        other => other,
    };
    tag.parse().unwrap_or(Locale::UNKNOWN)
}

/// CLDR puts a narrow no-break space before "AM"; outside GSM-7 it would
/// turn every English SMS into UCS-2 and halve its length (messaging.md C6).
fn plain_spaces(s: String) -> String {
    if s.contains(['\u{202f}', '\u{a0}']) {
        s.replace(['\u{202f}', '\u{a0}'], " ")
    } else {
        s
    }
}

impl DateTimeFormats {
    /// Builds the formatters for `lang` (CLDR fallback applies for tags
    /// without their own data).
    pub fn new(lang: &str) -> Result<Self, String> {
        let locale = cldr_locale(lang);
        let date = FixedCalendarDateTimeFormatter::try_new((&locale).into(), MDE::long())
            .map_err(|e| format!("{lang}: no CLDR date format: {e}"))?;
        let time = NoCalendarFormatter::try_new((&locale).into(), T::hm())
            .map_err(|e| format!("{lang}: no CLDR time format: {e}"))?;
        Ok(Self { date, time })
    }

    /// The date of `at` in `tz`, e.g. "Thursday, December 3" or "jueves, 3 de diciembre".
    pub fn date(&self, at: DateTime<Utc>, tz: Tz) -> String {
        let l = at.with_timezone(&tz);
        let y = l.year();
        let (Ok(m), Ok(d)) = (u8::try_from(l.month()), u8::try_from(l.day())) else {
            return String::new();
        };
        match Date::try_new_gregorian(y, m, d) {
            Ok(date) => plain_spaces(self.date.format(&date).to_string()),
            Err(_) => String::new(),
        }
    }

    /// The time of `at` in `tz`, e.g. "9:30 AM" or "9:30 a.m.".
    pub fn time(&self, at: DateTime<Utc>, tz: Tz) -> String {
        let l = at.with_timezone(&tz);
        let (Ok(h), Ok(m)) = (u8::try_from(l.hour()), u8::try_from(l.minute())) else {
            return String::new();
        };
        match Time::try_new(h, m, 0, 0) {
            Ok(t) => plain_spaces(self.time.format(&t).to_string()),
            Err(_) => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn cldr_dates_and_times_per_locale_in_the_zone() {
        // 14:30Z on 3 Dec 2026 is 09:30 in New York, 06:30 in Los Angeles.
        let at = Utc.with_ymd_and_hms(2026, 12, 3, 14, 30, 0).unwrap();
        let ny = chrono_tz::America::New_York;
        for lang in [
            "en-US", "es-US", "zh-Hans", "vi", "tl", "ko", "ru", "ar", "ht",
        ] {
            let f = DateTimeFormats::new(lang).unwrap();
            eprintln!("{lang}: {} | {}", f.date(at, ny), f.time(at, ny));
        }
        let en = DateTimeFormats::new("en-US").unwrap();
        assert_eq!(en.date(at, ny), "Thursday, December 3");
        assert_eq!(en.time(at, ny), "9:30 AM");
        assert_eq!(en.time(at, chrono_tz::America::Los_Angeles), "6:30 AM");
        let es = DateTimeFormats::new("es-US").unwrap();
        assert!(
            es.date(at, ny).contains("3 de diciembre"),
            "{}",
            es.date(at, ny)
        );
    }
}
