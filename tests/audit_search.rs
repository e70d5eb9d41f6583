//! Issue 6 §5: the auditor's search over a 100,000-event log. Each search
//! parameter and date prefix returns exactly the events a brute-force filter
//! over the stored AuditEvent JSON finds (the oracle reads the JSON, not the
//! search columns); paging returns every event once while events are added;
//! each read of the log adds its own AuditEvent; the chain still verifies.
//! SQLite always, PostgreSQL when TEST_DATABASE_URL is set.
//!
//! The fixture goes through the real append path (`audit::append` in a
//! `write_tx`, 1,000 records per transaction), so its rows are chained exactly
//! as Herald's own.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use actix_web::test;
use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

use herald::audit::{self, Verdict};
use herald::config::Settings;
use herald::db::audit_store;
use herald::domain::audit::{Activity, Actor, AuditRecord, Outcome, RestInteraction};
use herald::domain::{Channel, Purpose};
use herald::web::{AppState, app};

use super::support::{self, TestDb};

const N: u32 = 100_000;
const PATIENTS: u64 = 500;
const USERS: u64 = 20;

/// A small deterministic generator (xorshift64*), so every run builds the same log.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}

/// Event i: about 20 s apart from 2026-11-01 (23 days in all), with jitter
/// that puts some out of chain order and every 7th at its predecessor's
/// instant (ties broken by seq).
fn fixture_record(i: u32, rng: &mut Rng, last: &mut DateTime<Utc>) -> AuditRecord {
    let recorded = if i % 7 == 3 {
        *last
    } else {
        start()
            + Duration::seconds(i64::from(i) * 20)
            + Duration::microseconds(i64::try_from(rng.below(60_000_000)).unwrap() - 30_000_000)
    };
    *last = recorded;
    let patient = (rng.below(10) != 0).then(|| format!("p{}", rng.below(PATIENTS)));
    let actor = match rng.below(10) {
        0..=4 => Actor::System,
        5..=8 => Actor::Staff(format!("u{}", rng.below(USERS))),
        _ => Actor::Anonymous(format!("10.0.0.{}", rng.below(8))),
    };
    let channel =
        [Channel::Sms, Channel::Email, Channel::Voice][usize::try_from(rng.below(3)).unwrap()];
    let purpose = [Purpose::Appointment, Purpose::Medication, Purpose::Billing]
        [usize::try_from(rng.below(3)).unwrap()];
    let activity = match rng.below(20) {
        0..=5 => Activity::Disclosure {
            intent_id: format!("i{i}"),
            channel,
            purpose,
            about: format!("Appointment/a{}", rng.below(2000)),
        },
        6..=10 => Activity::ConsentDecision {
            intent_id: format!("i{i}"),
            channel,
            purpose,
            permit: rng.below(4) != 0,
            consent_id: (rng.below(3) != 0).then(|| format!("c{}", rng.below(3000))),
        },
        11..=15 => Activity::EhrRest {
            interaction: [
                RestInteraction::Read,
                RestInteraction::Read,
                RestInteraction::Search,
                RestInteraction::Search,
                RestInteraction::Vread,
                RestInteraction::Create,
                RestInteraction::Update,
                RestInteraction::Operation,
            ][usize::try_from(rng.below(8)).unwrap()],
            resource_type: ["Appointment", "MedicationRequest", "Patient"]
                [usize::try_from(rng.below(3)).unwrap()]
            .into(),
            id: (rng.below(4) != 0).then(|| format!("r{}", rng.below(2000))),
            query: (rng.below(2) == 0).then(|| "_lastUpdated=gt2026-11-01".to_string()),
            token_jti: None,
        },
        16 => Activity::EhrRead {
            resource_type: "MedicationRequest".into(),
            id: format!("m{}", rng.below(1000)),
        },
        17 => Activity::ConsentRecorded {
            consent_id: format!("c{}", rng.below(3000)),
        },
        18 => Activity::InboundMessage {
            message_ref: format!("SM{i}"),
            reading: "stop".into(),
        },
        _ => Activity::RecordQuery {
            resource_type: "Communication".into(),
            query: "patient=x".into(),
        },
    };
    let outcome = match rng.below(200) {
        0..=5 => Outcome::MinorFailure,
        6..=7 => Outcome::SeriousFailure,
        8 => Outcome::MajorFailure,
        _ => Outcome::Success,
    };
    AuditRecord {
        recorded,
        activity,
        actor,
        outcome,
        outcome_desc: (outcome != Outcome::Success).then(|| "provider refused".to_string()),
        patient_id: patient,
        request_id: None,
        ehr: Some("https://ehr.example.org/fhir".into()),
    }
}

/// Appends `n` fixture events through the real path, 1,000 per transaction.
fn build_log(db: &TestDb, n: u32, seed: u64) {
    let mut c = db.conn();
    herald::db::migrate(&mut c).unwrap();
    let mut rng = Rng(seed);
    let mut last = start();
    let mut i = 0;
    while i < n {
        let batch: Vec<AuditRecord> = (i..(i + 1000).min(n))
            .map(|k| fixture_record(k, &mut rng, &mut last))
            .collect();
        herald::db::write_tx(&mut c, |c| audit::append(c, &batch)).unwrap();
        i += 1000;
    }
}

/// What the oracle reads from one stored AuditEvent's JSON.
#[derive(Debug, Clone)]
struct Ev {
    seq: i64,
    id: String,
    recorded: NaiveDateTime,
    type_: (String, String),
    subtype: (String, String),
    action: String,
    outcome: String,
    patients: Vec<String>,
    entities: Vec<String>,
    agent: (Option<String>, Option<String>),
}

fn ev_of(seq: i64, json: &str) -> Ev {
    let v: Value = serde_json::from_str(json).unwrap();
    let s = |x: &Value| x.as_str().unwrap_or("").to_string();
    let entities: Vec<&Value> = v["entity"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let requestor = v["agent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["requestor"] == true)
        .unwrap();
    Ev {
        seq,
        id: s(&v["id"]),
        recorded: DateTime::parse_from_rfc3339(v["recorded"].as_str().unwrap())
            .unwrap()
            .naive_utc(),
        type_: (s(&v["type"]["system"]), s(&v["type"]["code"])),
        subtype: (s(&v["subtype"][0]["system"]), s(&v["subtype"][0]["code"])),
        action: s(&v["action"]),
        outcome: s(&v["outcome"]),
        patients: entities
            .iter()
            .filter(|e| e["type"]["code"] == "1" && e["role"]["code"] == "1")
            .filter_map(|e| e["what"]["reference"].as_str().map(String::from))
            .collect(),
        entities: entities
            .iter()
            .filter_map(|e| e["what"]["reference"].as_str().map(String::from))
            .collect(),
        agent: (
            requestor["who"]["identifier"]["system"]
                .as_str()
                .map(String::from),
            requestor["who"]["identifier"]["value"]
                .as_str()
                .map(String::from),
        ),
    }
}

/// The log as the oracle sees it, indexed by id.
struct Snapshot {
    events: Vec<Ev>,
    by_id: HashMap<String, usize>,
}

fn snapshot(db: &TestDb) -> Snapshot {
    let events = all_events(db);
    let by_id = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id.clone(), i))
        .collect();
    Snapshot { events, by_id }
}

fn all_events(db: &TestDb) -> Vec<Ev> {
    let mut c = db.conn();
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let rows = audit_store::scan(&mut c, after, 5000).unwrap();
        let Some(last) = rows.last() else { break };
        after = last.seq;
        out.extend(rows.iter().map(|r| ev_of(r.seq, &r.resource)));
    }
    out
}

const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const AET: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const REST: &str = "http://hl7.org/fhir/restful-interaction";

fn t(s: &str) -> NaiveDateTime {
    DateTime::parse_from_rfc3339(s).unwrap().naive_utc()
}

type Pred = Box<dyn Fn(&Ev) -> bool>;

fn has(v: &[String], x: &str) -> bool {
    v.iter().any(|s| s == x)
}

fn in_range(lo: &str, hi: &str) -> Pred {
    let (lo, hi) = (t(lo), t(hi));
    Box::new(move |e: &Ev| e.recorded >= lo && e.recorded < hi)
}

fn who(system: &'static str, value: String) -> Pred {
    Box::new(move |e: &Ev| {
        e.agent.0.as_deref() == Some(system) && e.agent.1.as_deref() == Some(value.as_str())
    })
}

fn and(a: Pred, b: Pred) -> Pred {
    Box::new(move |e: &Ev| a(e) && b(e))
}

/// The searches to check: (query string, brute-force predicate). Each is
/// bounded to at most a few thousand events so the test stays quick.
fn cases() -> Vec<(String, Pred)> {
    let day = in_range("2026-11-05T00:00:00Z", "2026-11-06T00:00:00Z");
    let mut v: Vec<(String, Pred)> = vec![
        (
            "patient=p7".into(),
            Box::new(|e: &Ev| has(&e.patients, "Patient/p7")),
        ),
        (
            "patient=Patient/p123".into(),
            Box::new(|e: &Ev| has(&e.patients, "Patient/p123")),
        ),
        (
            "patient=p1,p2,Patient/p3".into(),
            Box::new(|e: &Ev| {
                e.patients
                    .iter()
                    .any(|p| ["Patient/p1", "Patient/p2", "Patient/p3"].contains(&p.as_str()))
            }),
        ),
        ("patient=p1&patient=p2".into(), Box::new(|_: &Ev| false)),
        ("agent=user:u3".into(), who("urn:herald:user", "u3".into())),
        (
            "agent:identifier=urn:herald:user|u5".into(),
            who("urn:herald:user", "u5".into()),
        ),
        (
            "agent=user:u4,user:u6".into(),
            Box::new(|e: &Ev| {
                e.agent.0.as_deref() == Some("urn:herald:user")
                    && matches!(e.agent.1.as_deref(), Some("u4" | "u6"))
            }),
        ),
        (
            "agent=anonymous&date=2026-11-05".into(),
            and(
                Box::new(|e: &Ev| e.agent.1.is_none()),
                in_range("2026-11-05T00:00:00Z", "2026-11-06T00:00:00Z"),
            ),
        ),
        (
            "agent=herald&date=2026-11-06".into(),
            and(
                who("urn:herald:system", "herald".into()),
                in_range("2026-11-06T00:00:00Z", "2026-11-07T00:00:00Z"),
            ),
        ),
        (
            "entity=Appointment/a17".into(),
            Box::new(|e: &Ev| has(&e.entities, "Appointment/a17")),
        ),
        (
            "entity=Consent/c42,MedicationRequest/r9".into(),
            Box::new(|e: &Ev| {
                e.entities
                    .iter()
                    .any(|x| x == "Consent/c42" || x == "MedicationRequest/r9")
            }),
        ),
        (
            "entity=Patient/p9".into(),
            Box::new(|e: &Ev| has(&e.entities, "Patient/p9")),
        ),
        (
            "type=110106&date=2026-11-05".into(),
            and(
                Box::new(|e: &Ev| e.type_.1 == "110106"),
                in_range("2026-11-05T00:00:00Z", "2026-11-06T00:00:00Z"),
            ),
        ),
        (
            format!("type={DCM}|110113&date=2026-11-05"),
            and(
                Box::new(|e: &Ev| e.type_ == (DCM.to_string(), "110113".to_string())),
                in_range("2026-11-05T00:00:00Z", "2026-11-06T00:00:00Z"),
            ),
        ),
        (format!("type={AET}|110106"), Box::new(|_: &Ev| false)),
        (
            format!("type={AET}|,110106&patient=p11"),
            Box::new(|e: &Ev| {
                (e.type_.0 == AET || e.type_.1 == "110106") && has(&e.patients, "Patient/p11")
            }),
        ),
        (
            "subtype=update".into(),
            Box::new(|e: &Ev| e.subtype.1 == "update"),
        ),
        (
            format!("subtype={REST}|vread,operation&date=ge2026-11-20"),
            Box::new(|e: &Ev| {
                (e.subtype == (REST.to_string(), "vread".to_string()) || e.subtype.1 == "operation")
                    && e.recorded >= t("2026-11-20T00:00:00Z")
            }),
        ),
        (
            "subtype=disclose&patient=p5".into(),
            Box::new(|e: &Ev| e.subtype.1 == "disclose" && has(&e.patients, "Patient/p5")),
        ),
        ("action=C".into(), Box::new(|e: &Ev| e.action == "C")),
        (
            "action=U,D&date=ge2026-11-10&date=lt2026-11-15".into(),
            Box::new(|e: &Ev| {
                matches!(e.action.as_str(), "U" | "D")
                    && e.recorded >= t("2026-11-10T00:00:00Z")
                    && e.recorded < t("2026-11-15T00:00:00Z")
            }),
        ),
        ("outcome=8".into(), Box::new(|e: &Ev| e.outcome == "8")),
        (
            "outcome=4,12".into(),
            Box::new(|e: &Ev| e.outcome == "4" || e.outcome == "12"),
        ),
        (
            "outcome=0&patient=p40".into(),
            Box::new(|e: &Ev| e.outcome == "0" && has(&e.patients, "Patient/p40")),
        ),
        (
            "agent=user:u2&subtype=read&outcome=0".into(),
            and(
                who("urn:herald:user", "u2".into()),
                Box::new(|e: &Ev| e.subtype.1 == "read" && e.outcome == "0"),
            ),
        ),
        ("date=2026-11-05".into(), day),
        (
            "date=eq2026-11-05T10:00Z".into(),
            in_range("2026-11-05T10:00:00Z", "2026-11-05T10:01:00Z"),
        ),
        (
            "date=2026-11-05T10:00:20Z".into(),
            in_range("2026-11-05T10:00:20Z", "2026-11-05T10:00:21Z"),
        ),
        (
            "date=ge2026-11-23T12:00:00Z".into(),
            in_range("2026-11-23T12:00:00Z", "2030-01-01T00:00:00Z"),
        ),
        (
            "date=gt2026-11-23".into(),
            in_range("2026-11-24T00:00:00Z", "2030-01-01T00:00:00Z"),
        ),
        (
            "date=lt2026-11-01T12:00:00Z".into(),
            in_range("2000-01-01T00:00:00Z", "2026-11-01T12:00:00Z"),
        ),
        (
            "date=le2026-10".into(),
            in_range("2000-01-01T00:00:00Z", "2026-11-01T00:00:00Z"),
        ),
        (
            "date=le2026-11-01T06:00Z".into(),
            in_range("2000-01-01T00:00:00Z", "2026-11-01T06:01:00Z"),
        ),
        (
            "date=gt2026-11-12T08:00:00-05:00&date=lt2026-11-12T15:00:00.5Z".into(),
            in_range("2026-11-12T13:00:01Z", "2026-11-12T15:00:00.5Z"),
        ),
        (
            "patient=p8&date=ge2026-11-03&date=le2026-11-09".into(),
            and(
                Box::new(|e: &Ev| has(&e.patients, "Patient/p8")),
                in_range("2026-11-03T00:00:00Z", "2026-11-10T00:00:00Z"),
            ),
        ),
    ];
    // Every prefix at day precision, for one patient (a few hundred events).
    for (prefix, lo, hi) in [
        ("eq", "2026-11-10T00:00:00Z", "2026-11-11T00:00:00Z"),
        ("ge", "2026-11-10T00:00:00Z", "2030-01-01T00:00:00Z"),
        ("gt", "2026-11-11T00:00:00Z", "2030-01-01T00:00:00Z"),
        ("le", "2000-01-01T00:00:00Z", "2026-11-11T00:00:00Z"),
        ("lt", "2000-01-01T00:00:00Z", "2026-11-10T00:00:00Z"),
    ] {
        v.push((
            format!("patient=p77&date={prefix}2026-11-10"),
            and(
                Box::new(|e: &Ev| has(&e.patients, "Patient/p77")),
                in_range(lo, hi),
            ),
        ));
    }
    v
}

fn state(db: &TestDb) -> AppState {
    let (ring, _) = support::ready(db);
    support::auditor(db, &ring);
    AppState::new(
        Arc::new(Settings::default()),
        db.pool.clone(),
        Arc::new(ring),
        Arc::new(support::clock()),
    )
}

async fn get<S, B>(app: &S, uri: &str) -> (u16, Value)
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let res = test::call_service(
        app,
        support::as_auditor(test::TestRequest::get())
            .uri(uri)
            .to_request(),
    )
    .await;
    let status = res.status().as_u16();
    let body = test::read_body(res).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn path_of(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    format!("/{}", rest.split_once('/').unwrap().1)
}

/// Every page of a search: the ids in order, and how many requests it took.
async fn all_pages<S, B>(
    app: &S,
    query: &str,
    mut between: impl FnMut(usize),
) -> (Vec<(String, String)>, usize)
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let mut url = format!("/fhir/AuditEvent?{query}");
    let mut out = Vec::new();
    let mut pages = 0;
    loop {
        let (s, body) = get(app, &url).await;
        assert_eq!(s, 200, "{url}: {body}");
        assert_eq!(body["type"], "searchset");
        for e in body["entry"].as_array().unwrap() {
            out.push((
                e["resource"]["id"].as_str().unwrap().to_string(),
                e["resource"]["recorded"].as_str().unwrap().to_string(),
            ));
        }
        pages += 1;
        assert!(pages < 500, "{query}: runaway paging");
        between(pages);
        let next = body["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| path_of(l["url"].as_str().unwrap()));
        match next {
            Some(n) => url = n,
            None => {
                if pages == 1 {
                    assert_eq!(
                        body["total"].as_u64(),
                        Some(u64::try_from(out.len()).unwrap()),
                        "{query}: a complete first page says its total"
                    );
                } else {
                    assert!(
                        body.get("total").is_none(),
                        "{query}: no total beyond one page"
                    );
                }
                break;
            }
        }
    }
    (out, pages)
}

/// Checks one search: exactly the snapshot events the predicate picks, each
/// once, in (recorded, seq) order; anything newer it returned also matches.
fn check_result(
    db: &TestDb,
    query: &str,
    pred: &Pred,
    snapshot: &Snapshot,
    got: &[(String, String)],
    descending: bool,
) {
    let mut seen = HashSet::new();
    for (id, _) in got {
        assert!(
            seen.insert(id.as_str()),
            "{}: {query}: {id} returned twice",
            db.backend
        );
    }
    let want: Vec<i64> = snapshot
        .events
        .iter()
        .filter(|e| pred(e))
        .map(|e| e.seq)
        .collect();
    let mut got_old: Vec<i64> = got
        .iter()
        .filter_map(|(id, _)| snapshot.by_id.get(id.as_str()))
        .map(|&i| snapshot.events[i].seq)
        .collect();
    got_old.sort_unstable();
    if want != got_old {
        let (w, g): (BTreeSet<i64>, BTreeSet<i64>) = (
            want.iter().copied().collect(),
            got_old.iter().copied().collect(),
        );
        let missing: Vec<_> = w.difference(&g).take(3).collect();
        let extra: Vec<_> = g.difference(&w).take(3).collect();
        panic!(
            "{}: {query}: {} expected, {} returned; missing e.g. {missing:?}, extra e.g. {extra:?}",
            db.backend,
            want.len(),
            got_old.len()
        );
    }
    // Events appended during the search (the auditor's own among them) match too.
    let mut c = db.conn();
    let mut keys = Vec::new();
    for (id, _) in got {
        let e = match snapshot.by_id.get(id.as_str()) {
            Some(&i) => snapshot.events[i].clone(),
            None => {
                let row = audit_store::get(&mut c, id).unwrap().unwrap();
                let e = ev_of(row.seq, &row.resource);
                assert!(
                    pred(&e),
                    "{}: {query}: a newer event {id} does not match",
                    db.backend
                );
                e
            }
        };
        keys.push((e.recorded, e.seq));
    }
    let mut sorted = keys.clone();
    sorted.sort();
    if descending {
        sorted.reverse();
    }
    assert_eq!(keys, sorted, "{}: {query}: order", db.backend);
}

#[actix_web::test]
async fn audit_search_on_100k_events_matches_brute_force() {
    for db in support::backends() {
        let st = state(&db);
        // The auditor's account and token are on the log before the fixture.
        let pre = match audit::verify(&mut db.conn()).unwrap() {
            Verdict::Intact { count } => count,
            other => panic!("{other:?}"),
        };
        let t0 = Instant::now();
        build_log(&db, N, 0x5EED);
        let built = t0.elapsed();
        let t1 = Instant::now();
        assert_eq!(
            audit::verify(&mut db.conn()).unwrap(),
            Verdict::Intact {
                count: i64::from(N) + pre
            },
            "{}",
            db.backend
        );
        let verified = t1.elapsed();
        let snapshot = snapshot(&db);
        assert_eq!(
            snapshot.events.len(),
            usize::try_from(i64::from(N) + pre).unwrap()
        );
        let app = test::init_service(app(st)).await;
        let t2 = Instant::now();
        let mut returned = 0;
        let mut requests = 0;
        for (query, pred) in cases() {
            // Oldest first always; newest first too where the set is small.
            for (sort, desc) in [("", false), ("&_sort=-date", true)] {
                let q = format!("{query}&_count=1000{sort}");
                let (got, pages) = all_pages(&app, &q, |_| {}).await;
                check_result(&db, &q, &pred, &snapshot, &got, desc);
                returned += got.len();
                requests += pages;
                if got.len() > 2000 {
                    break;
                }
            }
        }
        eprintln!(
            "{}: built {N} events in {built:.1?}, verified in {verified:.1?}; {requests} searches returned {returned} events in {:.1?}",
            db.backend,
            t2.elapsed()
        );
        // Every search added its own AuditEvent (A9), and the chain still holds.
        let after = all_events(&db);
        let own = after.iter().filter(|e| e.seq > i64::from(N)).count();
        assert!(
            own >= requests,
            "{}: {own} records for {requests} searches",
            db.backend
        );
        assert!(matches!(
            audit::verify(&mut db.conn()).unwrap(),
            Verdict::Intact { .. }
        ));
    }
}

#[actix_web::test]
async fn audit_paging_returns_every_event_once_while_events_are_added() {
    for db in support::backends() {
        let st = state(&db);
        build_log(&db, 20_000, 0xFEED);
        let snapshot = snapshot(&db);
        let app = test::init_service(app(st)).await;
        // Two days (~8,600 events) in pages of 500; between pages, new events
        // arrive inside the window (before and after the cursor) and outside it.
        let pred = in_range("2026-11-02T00:00:00Z", "2026-11-04T00:00:00Z");
        for sort in ["date", "-date"] {
            let q = format!("date=ge2026-11-02&date=lt2026-11-04&_count=500&_sort={sort}");
            let mut rng = Rng(7);
            let pool = db.pool.clone();
            let (got, pages) = all_pages(&app, &q, |page| {
                let mut c = pool.get().unwrap();
                let mut last = start();
                let batch: Vec<AuditRecord> = (0..5)
                    .map(|k| {
                        let mut r = fixture_record(5000 + k, &mut rng, &mut last);
                        r.recorded = start()
                            + Duration::hours(i64::try_from(rng.below(100)).unwrap())
                            + Duration::seconds(i64::try_from(page).unwrap());
                        r
                    })
                    .collect();
                herald::db::write_tx(&mut c, |c| audit::append(c, &batch)).unwrap();
            })
            .await;
            assert!(pages > 10, "{pages} pages");
            check_result(&db, &q, &pred, &snapshot, &got, sort == "-date");
        }
        assert!(matches!(
            audit::verify(&mut db.conn()).unwrap(),
            Verdict::Intact { .. }
        ));
    }
}

#[actix_web::test]
async fn an_auditors_query_adds_its_own_audit_event() {
    for db in support::backends() {
        let st = state(&db);
        build_log(&db, 3000, 1);
        let app = test::init_service(app(st)).await;
        let head = |db: &TestDb| audit_store::head(&mut db.conn()).unwrap().0;
        let before = head(&db);
        let (s, body) = get(
            &app,
            "/fhir/AuditEvent?patient=p7&date=ge2026-11-01&_count=2",
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(
            head(&db),
            before + 1,
            "{}: one record per search",
            db.backend
        );
        let row = audit_store::scan(&mut db.conn(), before, 10)
            .unwrap()
            .remove(0);
        let e: Value = serde_json::from_str(&row.resource).unwrap();
        assert_eq!(e["subtype"][0]["code"], "search-type");
        assert_eq!(e["action"], "E");
        assert_eq!(
            row.patient_ref.as_deref(),
            Some("Patient/p7"),
            "the search names the patient (BALP)"
        );
        let query = e["entity"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|x| x["query"].as_str())
            .unwrap();
        use base64::Engine as _;
        let query = String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(query)
                .unwrap(),
        )
        .unwrap();
        assert!(
            query.starts_with("AuditEvent?patient=p7&date=ge2026-11-01"),
            "{query}"
        );
        // A read by id, the page, and an export each add theirs.
        let id = body["entry"][0]["resource"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (s, _) = get(&app, &format!("/fhir/AuditEvent/{id}")).await;
        assert_eq!(s, 200);
        assert_eq!(head(&db), before + 2);
        let res = test::call_service(
            &app,
            support::as_auditor(test::TestRequest::get())
                .uri("/audit?patient=p7")
                .to_request(),
        )
        .await;
        assert_eq!(res.status().as_u16(), 200);
        assert_eq!(head(&db), before + 3);
        let res = test::call_service(
            &app,
            support::as_auditor(test::TestRequest::get())
                .uri("/audit/export?format=csv&patient=p7")
                .to_request(),
        )
        .await;
        assert_eq!(res.status().as_u16(), 200);
        let _ = test::read_body(res).await;
        assert_eq!(head(&db), before + 4);
        // Several patients: one record each (BALP A5).
        let (s, _) = get(&app, "/fhir/AuditEvent?patient=p1,p2,p3").await;
        assert_eq!(s, 200);
        assert_eq!(head(&db), before + 7);
        // What Herald wrote is valid FHIR R4: a Bundle with a next link, one
        // complete with its total, and the AuditEvents the reads added.
        let (_, complete) = get(&app, "/fhir/AuditEvent?patient=p7&_count=1000").await;
        assert!(complete["total"].as_u64().is_some());
        let mut ndjson = format!("{body}\n{complete}\n");
        for r in audit_store::scan(&mut db.conn(), before, 100).unwrap() {
            ndjson.push_str(&r.resource);
            ndjson.push('\n');
        }
        let out = super::demo::validate(&ndjson);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let before = head(&db) - 7;
        // A refused search reads nothing and adds nothing.
        let (s, body) = get(&app, "/fhir/AuditEvent?patient=p7&purpose=TREAT").await;
        assert_eq!(s, 400);
        assert_eq!(body["resourceType"], "OperationOutcome");
        let msg = body["issue"][0]["details"]["text"].as_str().unwrap();
        assert!(
            msg.contains("\"purpose\"") && msg.contains("subtype") && msg.contains("outcome"),
            "{msg}"
        );
        assert_eq!(head(&db), before + 7);
    }
}

#[actix_web::test]
async fn the_audit_page_filters_pages_shows_the_chain_and_exports() {
    let db = support::sqlite();
    let st = state(&db);
    build_log(&db, 3000, 2);
    let app = test::init_service(app(st.clone())).await;
    let page = |uri: &str| {
        let app = &app;
        let uri = uri.to_string();
        async move {
            let res = test::call_service(
                app,
                support::as_auditor(test::TestRequest::get())
                    .uri(&uri)
                    .to_request(),
            )
            .await;
            let status = res.status().as_u16();
            let csp = res
                .headers()
                .get("content-security-policy")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let body = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
            (status, csp, body)
        }
    };
    // No full verification yet: the page walks the (small) chain itself.
    let (s, csp, body) = page("/audit").await;
    assert_eq!(s, 200);
    assert!(
        csp.contains("default-src 'none'") && csp.contains("style-src 'self'"),
        "{csp}"
    );
    assert!(
        !body.contains("<script") && !body.contains("style="),
        "no scripts, no inline style"
    );
    assert!(
        body.contains("id=\"chain-status\"") && body.contains("records chain intact (checked now)"),
        "{body}"
    );
    assert!(
        body.contains("id=\"next\""),
        "3000 events make more than one page"
    );
    // A full verification is shown with its time; what came after is checked in place.
    audit::verify_and_record(&mut db.conn(), st.clock.as_ref()).unwrap();
    build_log(&db, 10, 3);
    let (_, _, body) =
        page("/audit?patient=p7&from=2026-11-01T00:00&to=2026-11-30&sort=date&count=50").await;
    assert!(
        body.contains("Full verification at 2026-12-01 17:00:00 UTC"),
        "{body}"
    );
    assert!(
        body.contains("records appended since chain onto it"),
        "{body}"
    );
    assert!(
        body.contains("Patient/p7") && !body.contains("Patient/p8<"),
        "filtered by patient"
    );
    assert!(
        body.contains("href=\"/audit/export?format=csv&amp;patient=p7&amp;from=2026-11-01T00:00"),
        "{body}"
    );
    // Values are escaped.
    let (s, _, body) = page("/audit?agent=%3Cscript%3Ealert(1)%3C/script%3E").await;
    assert_eq!(s, 200);
    assert!(
        !body.contains("<script>") && body.contains("&lt;script&gt;"),
        "{body}"
    );
    let (s, _, body) = page("/audit?colour=red").await;
    assert_eq!(s, 400);
    assert!(body.contains("not a filter of this page"));
    // Paging through the page's own links reaches every event of the filter once.
    let want = all_events(&db)
        .iter()
        .filter(|e| has(&e.patients, "Patient/p3"))
        .count();
    let mut url = "/audit?patient=p3&count=50".to_string();
    let mut ids = Vec::new();
    loop {
        let (s, _, body) = page(&url).await;
        assert_eq!(s, 200);
        let rows: Vec<&str> = body.split("<tr><td class=\"mono\">").skip(1).collect();
        ids.extend(rows.iter().map(|r| {
            r.rsplit("<td class=\"mono\">")
                .next()
                .unwrap()
                .split('<')
                .next()
                .unwrap()
                .to_string()
        }));
        match body.split("id=\"next\" href=\"").nth(1) {
            Some(rest) => url = rest.split('"').next().unwrap().replace("&amp;", "&"),
            None => break,
        }
    }
    let unique: BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    assert_eq!(
        ids.len(),
        want,
        "newest first: the page views' own records are newer than the first page"
    );
    // Exports: every matching event, CSV with a header, NDJSON one AuditEvent a line.
    let res = test::call_service(
        &app,
        support::as_auditor(test::TestRequest::get())
            .uri("/audit/export?format=ndjson&from=2026-11-01T00:00")
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(
        res.headers()
            .get("content-disposition")
            .unwrap()
            .to_str()
            .unwrap()
            .contains(".ndjson")
    );
    let body = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    let lines: Vec<&str> = body.lines().collect();
    let nov1 = t("2026-11-01T00:00:00Z");
    let want = all_events(&db)
        .iter()
        .filter(|e| e.recorded >= nov1)
        .count();
    assert_eq!(
        lines.len(),
        want,
        "every event from Nov 1, the export's own record included"
    );
    for l in &lines {
        assert_eq!(
            serde_json::from_str::<Value>(l).unwrap()["resourceType"],
            "AuditEvent"
        );
    }
    let res = test::call_service(
        &app,
        support::as_auditor(test::TestRequest::get())
            .uri("/audit/export?format=csv&outcome=8")
            .to_request(),
    )
    .await;
    let body = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    let want = all_events(&db).iter().filter(|e| e.outcome == "8").count();
    assert!(
        body.starts_with("seq,id,recorded,type,subtype,action,outcome,patient,agent,entity,hash\n")
    );
    assert_eq!(body.lines().count(), want + 1);
    let res = test::call_service(
        &app,
        support::as_auditor(test::TestRequest::get())
            .uri("/audit/export?format=xml")
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 400);
    let res = test::call_service(
        &app,
        support::as_auditor(test::TestRequest::get())
            .uri("/audit/audit.css")
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
}

#[actix_web::test]
async fn search_uses_the_index_that_leads_with_its_filter_and_never_counts() {
    for db in support::backends() {
        build_log(&db, 3000, 4);
        let mut c = db.conn();
        if db.backend == "postgres" {
            // As autovacuum would; and ask which index the query can use rather
            // than whether a 3,000-row table is cheaper to read whole.
            use diesel::connection::SimpleConnection as _;
            c.batch_execute("ANALYZE audit_events; SET enable_seqscan = off")
                .unwrap();
        }
        // SQLite gets no ANALYZE: Herald never runs one, and the plan must not
        // depend on statistics.
        for (query, index) in [
            (
                "patient=p1&date=ge2026-11-01&date=lt2026-11-08&agent=herald&type=rest",
                "audit_events_patient_recorded",
            ),
            (
                "agent=user:u1&subtype=read&date=2026-11",
                "audit_events_agent_recorded",
            ),
            (
                "entity=Appointment/a1&outcome=4",
                "audit_events_entity_recorded",
            ),
            ("subtype=update&action=U", "audit_events_subtype_recorded"),
            ("outcome=8&type=rest", "audit_events_failures_recorded"),
            ("date=2026-11-01&type=110106", "audit_events_recorded"),
        ] {
            let pairs: Vec<(String, String)> = query
                .split('&')
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap();
                    (k.to_string(), v.to_string())
                })
                .collect();
            let mut q = herald::audit::search::parse(&pairs).unwrap();
            q.cursor = Some((t("2026-11-01T00:00:01Z"), 10));
            let plan = audit_store::explain(&mut c, &q).unwrap().join("\n");
            assert!(plan.contains(index), "{}: {query}:\n{plan}", db.backend);
            // Never a count, never a whole-table scan; on SQLite (no statistics)
            // the index also yields page order, so no sort either. PostgreSQL may
            // sort the few rows a selective index found (a bitmap scan).
            let lower = plan.to_lowercase();
            assert!(
                !lower.contains("count") && !lower.contains("seq scan"),
                "{}: {query}: no count, no full scan:\n{plan}",
                db.backend
            );
            if db.backend == "sqlite" {
                assert!(!lower.contains("temp b-tree"), "{query}: no sort:\n{plan}");
            }
        }
    }
}
