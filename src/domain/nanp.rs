//! North American area codes to regions and time zones, from libphonenumber's
//! metadata (see `data/README.md`; regenerate with `data/generate_nanp.py`).
//! Used when a patient's address gives no zone (messaging.md T4, §2.1).

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono_tz::Tz;

const TABLE: &str = include_str!("data/nanp_area_codes.tsv");

/// What an area code says about where a phone is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaCode {
    /// ISO 3166-1 country, e.g. "US".
    pub country: String,
    /// State or province, e.g. "NY"; `None` for non-geographic codes.
    pub region: Option<String>,
    /// Every zone the area code spans (several for e.g. 850 or 907).
    pub zones: Vec<Tz>,
}

fn table() -> &'static HashMap<u16, AreaCode> {
    static T: OnceLock<HashMap<u16, AreaCode>> = OnceLock::new();
    T.get_or_init(|| {
        let mut m = HashMap::new();
        for line in TABLE.lines().filter(|l| !l.starts_with('#')).skip(1) {
            let mut cols = line.split('\t');
            let (Some(npa), Some(country), region, zones) =
                (cols.next(), cols.next(), cols.next(), cols.next())
            else {
                continue;
            };
            let Ok(npa) = npa.parse::<u16>() else {
                continue;
            };
            m.insert(
                npa,
                AreaCode {
                    country: country.to_string(),
                    region: region.filter(|r| !r.is_empty()).map(str::to_string),
                    zones: zones
                        .unwrap_or_default()
                        .split(',')
                        .filter_map(|z| z.parse().ok())
                        .collect(),
                },
            );
        }
        m
    })
}

/// The area code of a NANP number (`+1 212 555 0100`, `(212) 555-0100`, ...).
pub fn area_code(phone: &str) -> Option<&'static AreaCode> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let national = match digits.len() {
        11 if digits.starts_with('1') => digits.get(1..)?,
        10 if !phone.trim_start().starts_with('+') => digits.as_str(),
        _ => return None,
    };
    let npa: u16 = national.get(..3)?.parse().ok()?;
    table().get(&npa)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_codes_give_regions_and_zones() {
        let ny = area_code("+12125550100").unwrap();
        assert_eq!(ny.region.as_deref(), Some("NY"));
        assert_eq!(ny.zones, vec![chrono_tz::America::New_York]);
        let hi = area_code("(808) 555-0100").unwrap();
        assert_eq!(hi.zones, vec![chrono_tz::Pacific::Honolulu]);
        let fl = area_code("+1 850 555 0100").unwrap();
        assert_eq!(fl.region.as_deref(), Some("FL"));
        assert!(fl.zones.contains(&chrono_tz::America::Chicago));
        assert!(fl.zones.contains(&chrono_tz::America::New_York));
        assert!(area_code("+18005550100").unwrap().zones.is_empty());
        assert_eq!(area_code("+442071234567"), None);
        assert!(table().len() > 400);
    }
}
