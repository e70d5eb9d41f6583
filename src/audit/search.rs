//! FHIR R4 AuditEvent search (reference/fhir.md §1.4 A10): the parameters an
//! auditor may use, parsed into a [`AuditQuery`], and one page of results with
//! its keyset paging token. `GET /fhir/AuditEvent`, the /audit page, its
//! export and `herald audit report` all search through [`parse`] and [`run`].
//!
//! Semantics, by parameter (values are matched against the search columns
//! that `balp::columns_of` derives from each AuditEvent and `herald audit
//! verify` re-derives):
//! - `date` (`eq` — the default —, `ge`, `gt`, `le`, `lt`): `recorded` against
//!   the value's implicit range, whose width is the value's precision (a year,
//!   a month, a day, a minute, a second, or the fraction given), in UTC when the
//!   value has no offset; a day, month or year is a UTC one. Repeats are ANDed.
//! - `patient`: `Patient/x`, `x`, or an absolute URL ending in `Patient/x`.
//! - `entity`: a typed reference (`Appointment/123`); `Patient/x` matches the
//!   patient entity, any other type the data entity.
//! - `agent`: the requesting agent as Herald stores it: `user:<id>` for staff,
//!   `herald` for Herald itself, `anonymous` for an unauthenticated caller;
//!   `agent:identifier=urn:herald:user|<id>` (or `urn:herald:system|herald`)
//!   says the same in FHIR's identifier form.
//! - `type`, `subtype`, `action`, `outcome`: tokens, `code` or `system|code`
//!   (also `system|` for any code of a system; `|code`, a code without a
//!   system, matches nothing: Herald always writes the system).
//! - A comma within one value is OR; repeating a parameter is AND.
//! - `_count` (1..=1000, default 50), `_sort` (`date`, `-date`), `_total=none`,
//!   `_format=json`, and `_cursor` (a token from a `next` link).
//!
//! Anything else is refused with a message naming what is supported: a
//! filter silently dropped would show an auditor more than they asked for.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use super::balp;
use crate::db::audit_store::{self, AuditQuery, AuditRow, DateBound, Field, Filter};
use crate::db::{DbConn, DbError};

/// Page size when `_count` is absent.
pub const DEFAULT_COUNT: i64 = 50;
/// The largest page.
pub const MAX_COUNT: i64 = 1000;
/// What the search accepts, for error messages and the CapabilityStatement.
pub const SUPPORTED: &str = "date (eq, ge, gt, le, lt), patient, agent, agent:identifier, entity, \
     type, subtype, action, outcome, _count, _sort (date, -date), _total=none, _format=json, _cursor";

const ACTION_SYSTEM: &str = "http://hl7.org/fhir/audit-event-action";
const OUTCOME_SYSTEM: &str = "http://hl7.org/fhir/audit-event-outcome";
const ACTIONS: [&str; 5] = ["C", "R", "U", "D", "E"];
const OUTCOMES: [&str; 4] = ["0", "4", "8", "12"];

/// Why a search was refused (the message names the parameter and holds no
/// value beyond what the caller sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SearchError(pub String);

fn bad(msg: impl Into<String>) -> SearchError {
    SearchError(msg.into())
}

/// Splits a parameter value at commas not escaped with `\` and unescapes
/// `\,`, `\|`, `\$` and `\\` (FHIR search escaping).
fn split_or(raw: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n @ (',' | '|' | '$' | '\\')) => push(&mut out, n),
                Some(n) => {
                    push(&mut out, '\\');
                    push(&mut out, n);
                }
                None => push(&mut out, '\\'),
            },
            ',' => out.push(String::new()),
            c => push(&mut out, c),
        }
    }
    out
}

fn push(out: &mut [String], c: char) {
    if let Some(last) = out.last_mut() {
        last.push(c);
    }
}

/// The implicit range [lo, hi) of a FHIR date search value.
fn implicit_range(value: &str) -> Option<(NaiveDateTime, NaiveDateTime)> {
    let midnight = NaiveTime::MIN;
    let ym = |y: i32, m: u32| NaiveDate::from_ymd_opt(y, m, 1).map(|d| d.and_time(midnight));
    let next_month = |y: i32, m: u32| if m == 12 { ym(y + 1, 1) } else { ym(y, m + 1) };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let (date, time) = match value.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (value, None),
    };
    let parts: Vec<&str> = date.split('-').collect();
    match (parts.as_slice(), time) {
        ([y], None) if digits(y, 4) => {
            let y: i32 = y.parse().ok()?;
            Some((ym(y, 1)?, ym(y + 1, 1)?))
        }
        ([y, m], None) if digits(y, 4) && digits(m, 2) => {
            let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
            Some((ym(y, m)?, next_month(y, m)?))
        }
        ([_, _, _], None) => {
            let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
            Some((
                d.and_time(midnight),
                d.and_time(midnight) + Duration::days(1),
            ))
        }
        ([_, _, _], Some(t)) => {
            // The offset: Z, ±hh:mm, or none (UTC, Herald's time zone).
            let (clock, offset) = match t.find(['Z', 'z', '+', '-']) {
                Some(i) => (t.get(..i)?, t.get(i..)?),
                None => (t, "Z"),
            };
            let offset = if offset.eq_ignore_ascii_case("z") {
                "+00:00"
            } else {
                offset
            };
            // Precision: minutes, seconds, or the fraction's digits.
            let (clock_full, width) = match clock.len() {
                5 => (format!("{clock}:00"), Duration::minutes(1)),
                8 => (clock.to_string(), Duration::seconds(1)),
                n if n > 9 && clock.as_bytes().get(8) == Some(&b'.') => {
                    let frac = n - 9;
                    if frac > 9 || !clock.get(9..)?.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    let nanos = 10i64.checked_pow(u32::try_from(9 - frac).ok()?)?;
                    (clock.to_string(), Duration::nanoseconds(nanos))
                }
                _ => return None,
            };
            let lo = DateTime::parse_from_rfc3339(&format!("{date}T{clock_full}{offset}"))
                .ok()?
                .with_timezone(&Utc)
                .naive_utc();
            // `recorded` holds microseconds: round a finer width up to one.
            let width = width.max(Duration::microseconds(1));
            Some((lo, lo + width))
        }
        _ => None,
    }
}

/// Parses a FHIR date search value with its prefix into bounds on `recorded`
/// (FHIR R4 search §3.1.1.4: the value's precision sets its implicit range).
pub fn date_bounds(raw: &str) -> Result<Vec<DateBound>, SearchError> {
    let (prefix, value) = match raw.get(..2) {
        Some(p) if p.bytes().all(|b| b.is_ascii_lowercase()) => (p, raw.get(2..).unwrap_or("")),
        _ => ("eq", raw),
    };
    if !matches!(prefix, "eq" | "ge" | "gt" | "le" | "lt") {
        return Err(bad(format!(
            "date prefix {prefix:?} is not supported; use eq, ge, gt, le or lt"
        )));
    }
    let (lo, hi) = implicit_range(value).ok_or_else(|| {
        bad(format!(
            "date={raw:?} is not a FHIR date search value such as ge2026-12-01, 2026-12 or lt2026-12-01T17:00:00Z"
        ))
    })?;
    Ok(match prefix {
        "ge" => vec![DateBound::Ge(lo)],
        "gt" => vec![DateBound::Ge(hi)],
        "le" => vec![DateBound::Lt(hi)],
        "lt" => vec![DateBound::Lt(lo)],
        _ => vec![DateBound::Ge(lo), DateBound::Lt(hi)],
    })
}

/// `Type/id` from `Type/id` or an absolute URL ending in it.
fn typed_reference(v: &str) -> Option<(&str, &str)> {
    let mut segs = v.rsplit('/');
    let id = segs.next()?;
    let ty = segs.next()?;
    let ok_type = ty.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && ty.chars().all(|c| c.is_ascii_alphanumeric());
    let ok_id = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    (ok_type && ok_id).then_some((ty, id))
}

fn patient_values(raw: &str) -> Result<Vec<String>, SearchError> {
    split_or(raw)
        .iter()
        .map(|v| match typed_reference(v) {
            Some(("Patient", id)) => Ok(format!("Patient/{id}")),
            Some(_) => Err(bad("patient must name a Patient, e.g. patient=Patient/123")),
            None if typed_reference(&format!("Patient/{v}")).is_some() => {
                Ok(format!("Patient/{v}"))
            }
            None => Err(bad("patient must name a Patient, e.g. patient=Patient/123")),
        })
        .collect()
}

fn entity_filter(raw: &str) -> Result<Filter, SearchError> {
    let refs = split_or(raw)
        .iter()
        .map(|v| {
            typed_reference(v)
                .map(|(t, id)| (t == "Patient", format!("{t}/{id}")))
                .ok_or_else(|| bad("entity needs a typed reference such as entity=Appointment/123"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let patients = refs.iter().filter(|(p, _)| *p).count();
    if patients != 0 && patients != refs.len() {
        return Err(bad(
            "entity: give Patient references and other references in separate searches",
        ));
    }
    Ok(Filter {
        field: if patients == 0 {
            Field::Entity
        } else {
            Field::Patient
        },
        any_of: refs.into_iter().map(|(_, r)| r).collect(),
    })
}

fn agent_values(raw: &str, identifier: bool) -> Result<Vec<String>, SearchError> {
    let mut out = Vec::new();
    for v in split_or(raw) {
        if v.is_empty() {
            return Err(bad(
                "agent needs a value, e.g. agent=user:alice, agent=herald or agent=anonymous",
            ));
        }
        if !identifier {
            out.push(v);
            continue;
        }
        match v.split_once('|') {
            Some((balp::HERALD_USER, id)) if !id.is_empty() => out.push(format!("user:{id}")),
            Some((balp::HERALD_SYSTEM, id)) if !id.is_empty() => out.push(id.to_string()),
            // Another system: Herald wrote none, so it matches nothing.
            Some((_, id)) if !id.is_empty() => {}
            _ => {
                return Err(bad(
                    "agent:identifier takes system|value, e.g. urn:herald:user|alice",
                ));
            }
        }
    }
    Ok(out)
}

/// Resolves a token value against the codings Herald writes for a column.
fn token_values(
    name: &str,
    raw: &str,
    codings: &[(&str, &str)],
    validate: bool,
) -> Result<Vec<String>, SearchError> {
    let mut out = Vec::new();
    for v in split_or(raw) {
        match v.split_once('|') {
            None => {
                if validate && !codings.iter().any(|(_, c)| *c == v) {
                    let codes: Vec<&str> = codings.iter().map(|(_, c)| *c).collect();
                    return Err(bad(format!("{name} must be one of {}", codes.join(", "))));
                }
                if v.is_empty() {
                    return Err(bad(format!("{name} needs a code")));
                }
                out.push(v);
            }
            Some(("", _)) => {} // a code without a system: Herald never writes one
            Some((system, "")) => out.extend(
                codings
                    .iter()
                    .filter(|(s, _)| *s == system)
                    .map(|(_, c)| (*c).to_string()),
            ),
            Some((system, code)) => {
                if codings.iter().any(|(s, c)| *s == system && *c == code) {
                    out.push(code.to_string());
                } else if validate && codings.iter().any(|(s, _)| *s == system) {
                    let codes: Vec<&str> = codings.iter().map(|(_, c)| *c).collect();
                    return Err(bad(format!("{name} must be one of {}", codes.join(", "))));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Parses the query string of an AuditEvent search.
pub fn parse(pairs: &[(String, String)]) -> Result<AuditQuery, SearchError> {
    let mut q = AuditQuery {
        limit: DEFAULT_COUNT,
        ..AuditQuery::default()
    };
    let action_codings: Vec<(&str, &str)> = ACTIONS.iter().map(|c| (ACTION_SYSTEM, *c)).collect();
    let outcome_codings: Vec<(&str, &str)> =
        OUTCOMES.iter().map(|c| (OUTCOME_SYSTEM, *c)).collect();
    for (k, v) in pairs {
        let filter = |field: Field, any_of: Vec<String>| Filter { field, any_of };
        match k.as_str() {
            "patient" => q.filters.push(filter(Field::Patient, patient_values(v)?)),
            "entity" => q.filters.push(entity_filter(v)?),
            "agent" => q
                .filters
                .push(filter(Field::Agent, agent_values(v, false)?)),
            "agent:identifier" => q.filters.push(filter(Field::Agent, agent_values(v, true)?)),
            "type" => q.filters.push(filter(
                Field::Type,
                token_values("type", v, balp::TYPE_CODINGS, false)?,
            )),
            "subtype" => q.filters.push(filter(
                Field::Subtype,
                token_values("subtype", v, balp::SUBTYPE_CODINGS, false)?,
            )),
            "action" => q.filters.push(filter(
                Field::Action,
                token_values("action", v, &action_codings, true)?,
            )),
            "outcome" => q.filters.push(filter(
                Field::Outcome,
                token_values("outcome", v, &outcome_codings, true)?,
            )),
            "date" => q.dates.extend(date_bounds(v)?),
            "_count" => {
                let n: i64 = v
                    .parse()
                    .map_err(|_| bad("_count must be a whole number"))?;
                q.limit = n.clamp(1, MAX_COUNT);
            }
            "_sort" => match v.as_str() {
                "date" | "_lastUpdated" => q.descending = false,
                "-date" | "-_lastUpdated" => q.descending = true,
                _ => return Err(bad("_sort supports date and -date")),
            },
            "_cursor" => {
                q.cursor = Some(
                    parse_cursor(v)
                        .ok_or_else(|| bad("_cursor is not a paging token Herald issued"))?,
                )
            }
            "_total" if v == "none" => {}
            "_total" => {
                return Err(bad(
                    "_total: Herald never counts the log; only _total=none is supported",
                ));
            }
            "_format"
                if matches!(
                    v.as_str(),
                    "json" | "application/fhir+json" | "application/json"
                ) => {}
            "_format" => return Err(bad("_format: only json is supported")),
            other => {
                // Silently ignoring a filter would mislead an auditor.
                let name = other.split(':').next().unwrap_or(other);
                let what = if name != other && SUPPORTED.contains(name) {
                    format!("modifier {other:?}")
                } else {
                    format!("search parameter {other:?}")
                };
                return Err(bad(format!(
                    "{what} is not supported; supported: {SUPPORTED}"
                )));
            }
        }
    }
    Ok(q)
}

/// Paging token: microseconds since the epoch and seq of the last entry.
pub fn cursor_token(recorded: NaiveDateTime, seq: i64) -> String {
    format!("{}.{}", recorded.and_utc().timestamp_micros(), seq)
}

/// Reads a token made by [`cursor_token`].
pub fn parse_cursor(s: &str) -> Option<(NaiveDateTime, i64)> {
    let (t, seq) = s.split_once('.')?;
    let t = DateTime::from_timestamp_micros(t.parse().ok()?)?.naive_utc();
    Some((t, seq.parse().ok()?))
}

/// The patients a search names (by patient or entity), each "Patient/" stripped:
/// the audit record of the search names each (BALP: one record per patient).
pub fn patients(q: &AuditQuery) -> Vec<String> {
    let mut v: Vec<String> = q
        .filters
        .iter()
        .filter(|f| f.field == Field::Patient)
        .flat_map(|f| f.any_of.iter())
        .map(|p| p.trim_start_matches("Patient/").to_string())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// One page of a search.
#[derive(Debug, Clone)]
pub struct Page {
    /// The rows, in the search's order.
    pub rows: Vec<AuditRow>,
    /// The token for the next page, when there is one.
    pub next: Option<String>,
}

/// Runs one page of a search: reads one row past the page to know whether
/// another page follows; never counts.
pub fn run(conn: &mut DbConn, q: &AuditQuery) -> Result<Page, DbError> {
    let mut probe = q.clone();
    probe.limit = q.limit.saturating_add(1);
    let mut rows = audit_store::search(conn, &probe)?;
    let page = usize::try_from(q.limit).unwrap_or(0);
    let more = rows.len() > page;
    rows.truncate(page);
    let next = if more {
        rows.last().map(|r| cursor_token(r.recorded, r.seq))
    } else {
        None
    };
    Ok(Page { rows, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> NaiveDateTime {
        DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&Utc)
            .naive_utc()
    }

    fn check_date(raw: &str, expect: &[(&str, &str)]) {
        let want: Vec<DateBound> = expect
            .iter()
            .map(|(op, t)| match *op {
                "ge" => DateBound::Ge(dt(t)),
                "lt" => DateBound::Lt(dt(t)),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(date_bounds(raw).unwrap(), want, "{raw}");
    }

    #[test]
    fn date_precision_and_prefixes() {
        let day = [
            ("ge", "2026-12-01T00:00:00Z"),
            ("lt", "2026-12-02T00:00:00Z"),
        ];
        check_date("2026-12-01", &day);
        check_date("eq2026-12-01", &day);
        check_date("ge2026-12-01", &day[..1]);
        check_date("gt2026-12-01", &[("ge", "2026-12-02T00:00:00Z")]);
        check_date("le2026-12-01", &[("lt", "2026-12-02T00:00:00Z")]);
        check_date("lt2026-12-01", &[("lt", "2026-12-01T00:00:00Z")]);
        check_date(
            "2026",
            &[
                ("ge", "2026-01-01T00:00:00Z"),
                ("lt", "2027-01-01T00:00:00Z"),
            ],
        );
        check_date(
            "2026-12",
            &[
                ("ge", "2026-12-01T00:00:00Z"),
                ("lt", "2027-01-01T00:00:00Z"),
            ],
        );
        check_date(
            "2026-12-01T17:00:00Z",
            &[
                ("ge", "2026-12-01T17:00:00Z"),
                ("lt", "2026-12-01T17:00:01Z"),
            ],
        );
        check_date(
            "2026-12-01T17:00Z",
            &[
                ("ge", "2026-12-01T17:00:00Z"),
                ("lt", "2026-12-01T17:01:00Z"),
            ],
        );
        check_date(
            "2026-12-01T12:00:00-05:00",
            &[
                ("ge", "2026-12-01T17:00:00Z"),
                ("lt", "2026-12-01T17:00:01Z"),
            ],
        );
        check_date(
            "gt2026-12-01T17:00:00.25Z",
            &[("ge", "2026-12-01T17:00:00.26Z")],
        );
        check_date(
            "2026-12-01T17:00:00.123456Z",
            &[
                ("ge", "2026-12-01T17:00:00.123456Z"),
                ("lt", "2026-12-01T17:00:00.123457Z"),
            ],
        );
        check_date("lt2026-12-01T17:00:00", &[("lt", "2026-12-01T17:00:00Z")]);
        for bad in [
            "yesterday",
            "ne2026-12-01",
            "sa2026-12-01",
            "2026-13",
            "2026-12-01T25:00:00Z",
            "2026-12-01T17",
            "",
        ] {
            assert!(date_bounds(bad).is_err(), "{bad}");
        }
    }

    fn q(s: &str) -> Result<AuditQuery, SearchError> {
        let pairs: Vec<(String, String)> = s
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        parse(&pairs)
    }

    fn filters(s: &str) -> Vec<(Field, Vec<&'static str>)> {
        q(s).unwrap()
            .filters
            .into_iter()
            .map(|f| {
                let vals = f
                    .any_of
                    .into_iter()
                    .map(|v| &*Box::leak(v.into_boxed_str()))
                    .collect();
                (f.field, vals)
            })
            .collect()
    }

    #[test]
    fn parameters_become_filters() {
        use Field::*;
        let check = |s: &str, want: Vec<(Field, Vec<&str>)>| assert_eq!(filters(s), want, "{s}");
        check("patient=p1", vec![(Patient, vec!["Patient/p1"])]);
        check(
            "patient=Patient/p1,https://ehr.example/fhir/Patient/p2",
            vec![(Patient, vec!["Patient/p1", "Patient/p2"])],
        );
        check("entity=Patient/p1", vec![(Patient, vec!["Patient/p1"])]);
        check(
            "entity=Appointment/a1",
            vec![(Entity, vec!["Appointment/a1"])],
        );
        check(
            "agent=user:alice,herald",
            vec![(Agent, vec!["user:alice", "herald"])],
        );
        check(
            "agent:identifier=urn:herald:user|alice",
            vec![(Agent, vec!["user:alice"])],
        );
        check("type=110106", vec![(Type, vec!["110106"])]);
        check(
            "type=http://dicom.nema.org/resources/ontology/DCM|110106",
            vec![(Type, vec!["110106"])],
        );
        check(
            "type=http://dicom.nema.org/resources/ontology/DCM|",
            vec![(Type, vec!["110106", "110113", "110114"])],
        );
        // The right code under another system, or no system: nothing matches.
        check(
            "type=http://terminology.hl7.org/CodeSystem/audit-event-type|110106",
            vec![(Type, vec![])],
        );
        check("type=|rest", vec![(Type, vec![])]);
        check(
            "subtype=read,create",
            vec![(Subtype, vec!["create", "read"])],
        );
        check(
            "action=R,E&outcome=4",
            vec![(Action, vec!["E", "R"]), (Outcome, vec!["4"])],
        );
        check(
            "action=http://hl7.org/fhir/audit-event-action|C",
            vec![(Action, vec!["C"])],
        );
        check(
            "type=rest&type=110106",
            vec![(Type, vec!["rest"]), (Type, vec!["110106"])],
        );
    }

    #[test]
    fn refusals_name_what_is_supported() {
        for (s, says) in [
            ("foo=1", "search parameter \"foo\""),
            ("patient:missing=true", "modifier \"patient:missing\""),
            ("_include=AuditEvent:agent", "_include"),
            ("_total=accurate", "never counts"),
            ("action=X", "action must be one of C, R, U, D, E"),
            ("outcome=1", "outcome must be one of 0, 4, 8, 12"),
            ("patient=Group/1", "patient must name a Patient"),
            ("entity=123", "typed reference"),
            ("entity=Patient/1,Appointment/2", "separate"),
            ("_sort=_id", "_sort supports"),
            ("_cursor=abc", "_cursor"),
            ("date=ne2026-01-01", "prefix"),
            ("_format=xml", "_format"),
        ] {
            let e = q(s).unwrap_err().0;
            assert!(e.contains(says), "{s}: {e}");
        }
        let e = q("foo=1").unwrap_err().0;
        for p in ["patient", "agent", "entity", "subtype", "outcome", "_count"] {
            assert!(e.contains(p), "{e}");
        }
        assert_eq!(q("_count=5000").unwrap().limit, MAX_COUNT);
        assert_eq!(q("_count=0").unwrap().limit, 1);
        assert!(q("_total=none&_format=json").is_ok());
    }

    #[test]
    fn commas_split_unless_escaped() {
        assert_eq!(split_or("a,b"), vec!["a", "b"]);
        assert_eq!(split_or(r"a\,b,c"), vec!["a,b", "c"]);
        assert_eq!(split_or(r"a\\"), vec![r"a\"]);
    }

    #[test]
    fn cursor_round_trips() {
        let t = dt("2026-12-01T17:00:00.123456Z");
        assert_eq!(parse_cursor(&cursor_token(t, 42)), Some((t, 42)));
        assert_eq!(parse_cursor("x.1"), None);
    }

    #[test]
    fn the_driving_index_follows_the_priority() {
        let d = |s: &str| q(s).unwrap().driver();
        assert_eq!(d("agent=herald&patient=p1&type=rest"), Some(Field::Patient));
        assert_eq!(d("agent=herald&entity=Appointment/1"), Some(Field::Entity));
        assert_eq!(d("subtype=read&agent=user:a"), Some(Field::Agent));
        assert_eq!(d("subtype=read&outcome=8"), Some(Field::Subtype));
        assert_eq!(d("subtype=read,create&outcome=8"), Some(Field::Outcome));
        assert_eq!(d("outcome=0"), None);
        assert_eq!(d("type=rest&action=R&date=2026"), None);
    }
}
