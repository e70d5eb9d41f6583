//! Dates and times for the locales Herald ships, in the appointment's zone.
//! (Fluent has no DATETIME; a full CLDR formatter such as ICU4X replaces this
//! table when more locales arrive.)

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;

const EN_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const ES_DAYS: [&str; 7] = [
    "lunes",
    "martes",
    "miércoles",
    "jueves",
    "viernes",
    "sábado",
    "domingo",
];
const ES_MONTHS: [&str; 12] = [
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
];

fn pick<'a>(table: &'a [&'a str], i: u32) -> &'a str {
    usize::try_from(i)
        .ok()
        .and_then(|i| table.get(i))
        .copied()
        .unwrap_or_default()
}

/// The date, e.g. "Thursday, December 3" or "jueves 3 de diciembre".
pub fn date(lang: &str, at: DateTime<Utc>, tz: Tz) -> String {
    let l = at.with_timezone(&tz);
    let wd = l.weekday().num_days_from_monday();
    let m = l.month0();
    if lang.starts_with("es") {
        format!(
            "{} {} de {}",
            pick(&ES_DAYS, wd),
            l.day(),
            pick(&ES_MONTHS, m)
        )
    } else {
        format!(
            "{}, {} {}",
            pick(&EN_DAYS, wd),
            pick(&EN_MONTHS, m),
            l.day()
        )
    }
}

/// The time, e.g. "9:30 AM" or "9:30 a. m.".
pub fn time(lang: &str, at: DateTime<Utc>, tz: Tz) -> String {
    let l = at.with_timezone(&tz);
    let (pm, h12) = l.hour12();
    if lang.starts_with("es") {
        format!(
            "{}:{:02} {}",
            h12,
            l.minute(),
            if pm { "p. m." } else { "a. m." }
        )
    } else {
        format!("{}:{:02} {}", h12, l.minute(), if pm { "PM" } else { "AM" })
    }
}
