//! The audit log is append-only and tamper-evident: `verify` names the first
//! edited, deleted, inserted or reordered record (reference/fhir.md §1.4 A11).

use herald::audit::{self, Verdict};
use herald::domain::audit::{Activity, Actor, AuditRecord, Outcome};
use herald::domain::{Channel, Purpose};

use super::support::{self, TestDb};

pub fn record(i: u32) -> AuditRecord {
    AuditRecord {
        recorded: support::now() + chrono::Duration::seconds(i64::from(i)),
        activity: Activity::Disclosure {
            intent_id: format!("intent-{i}"),
            channel: Channel::Sms,
            purpose: Purpose::Appointment,
            about: format!("Appointment/a{i}"),
        },
        actor: Actor::System,
        outcome: Outcome::Success,
        outcome_desc: None,
        patient_id: Some(format!("p{}", i % 3)),
        request_id: None,
        ehr: None,
    }
}

fn log_of(db: &TestDb, n: u32) {
    let mut c = db.conn();
    herald::db::migrate(&mut c).unwrap();
    for i in 1..=n {
        audit::append_now(&mut c, &[record(i)]).unwrap();
    }
}

fn unlock(db: &TestDb) {
    if db.backend == "sqlite" {
        db.raw("DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;");
    } else {
        db.raw("ALTER TABLE audit_events DISABLE TRIGGER USER;");
    }
}

fn broken_at(db: &TestDb) -> i64 {
    match audit::verify(&mut db.conn()).unwrap() {
        Verdict::Broken(b) => {
            assert!(b.to_string().contains(&format!("seq {}", b.seq)));
            b.seq
        }
        Verdict::Intact { count } => {
            panic!("{}: tampering not detected ({count} records)", db.backend)
        }
    }
}

#[test]
fn untouched_log_verifies() {
    for db in support::backends() {
        log_of(&db, 10);
        assert_eq!(
            audit::verify(&mut db.conn()).unwrap(),
            Verdict::Intact { count: 10 }
        );
    }
}

#[test]
fn wall_clock_instants_with_nanoseconds_verify() {
    for db in support::backends() {
        let mut c = db.conn();
        herald::db::migrate(&mut c).unwrap();
        let mut r = record(1);
        r.recorded += chrono::Duration::nanoseconds(123_456_789);
        audit::append_now(&mut c, &[r]).unwrap();
        assert_eq!(
            audit::verify(&mut c).unwrap(),
            Verdict::Intact { count: 1 },
            "{}",
            db.backend
        );
    }
}

#[test]
fn the_application_cannot_update_or_delete_audit_rows() {
    use diesel::connection::SimpleConnection as _;
    for db in support::backends() {
        log_of(&db, 2);
        let mut c = db.conn();
        assert!(
            c.batch_execute("UPDATE audit_events SET outcome = '8'")
                .is_err(),
            "{}",
            db.backend
        );
        assert!(
            c.batch_execute("DELETE FROM audit_events").is_err(),
            "{}",
            db.backend
        );
        if db.backend == "postgres" {
            assert!(c.batch_execute("TRUNCATE audit_events").is_err());
        }
        drop(c);
        assert_eq!(
            audit::verify(&mut db.conn()).unwrap(),
            Verdict::Intact { count: 2 }
        );
    }
}

#[test]
fn edited_record_is_named() {
    for db in support::backends() {
        log_of(&db, 10);
        unlock(&db);
        db.raw("UPDATE audit_events SET resource = REPLACE(resource, '\"outcome\":\"0\"', '\"outcome\":\"8\"') WHERE seq = 4");
        assert_eq!(broken_at(&db), 4, "{}", db.backend);
    }
}

#[test]
fn edited_search_column_is_named() {
    for db in support::backends() {
        log_of(&db, 10);
        unlock(&db);
        db.raw("UPDATE audit_events SET patient_ref = 'Patient/someone-else' WHERE seq = 6");
        assert_eq!(broken_at(&db), 6, "{}", db.backend);
    }
}

#[test]
fn deleted_record_is_named() {
    for db in support::backends() {
        log_of(&db, 10);
        unlock(&db);
        db.raw("DELETE FROM audit_events WHERE seq = 5");
        assert_eq!(broken_at(&db), 5, "{}", db.backend);
    }
    for db in support::backends() {
        log_of(&db, 10);
        unlock(&db);
        db.raw("DELETE FROM audit_events WHERE seq = 10");
        assert_eq!(broken_at(&db), 10, "tail deletion: {}", db.backend);
    }
    for db in support::backends() {
        log_of(&db, 10);
        unlock(&db);
        db.raw("DELETE FROM audit_events WHERE seq = 1");
        assert_eq!(broken_at(&db), 1, "head deletion: {}", db.backend);
    }
}

#[test]
fn inserted_record_is_named() {
    for db in support::backends() {
        log_of(&db, 10);
        // A forged record chained correctly to the last one, without moving the head.
        let last = herald::db::audit_store::scan(&mut db.conn(), 9, 1)
            .unwrap()
            .remove(0);
        let mut forged = last.clone();
        forged.seq = 11;
        forged.id = "forged".into();
        forged.prev_hash = last.hash.clone();
        forged.resource = last.resource.replace(&last.id, "forged");
        forged.hash = audit::chain_hash(&forged.prev_hash, 11, "forged", &forged.resource);
        db.raw(&format!(
            "INSERT INTO audit_events (seq, id, recorded, type_code, subtype_code, action, outcome, patient_ref, agent_who, entity_ref, resource, prev_hash, hash) \
             SELECT 11, 'forged', recorded, type_code, subtype_code, action, outcome, patient_ref, agent_who, entity_ref, '{}', '{}', '{}' FROM audit_events WHERE seq = 10",
            forged.resource.replace('\'', "''"),
            forged.prev_hash,
            forged.hash
        ));
        assert_eq!(broken_at(&db), 11, "{}", db.backend);
    }
    for db in support::backends() {
        log_of(&db, 10);
        unlock(&db);
        // Make room in the middle and slip a record in.
        db.raw("UPDATE audit_events SET seq = seq + 100 WHERE seq >= 6");
        db.raw("INSERT INTO audit_events (seq, id, recorded, type_code, subtype_code, action, outcome, patient_ref, agent_who, entity_ref, resource, prev_hash, hash) \
                SELECT 6, 'slipped', recorded, type_code, subtype_code, action, outcome, patient_ref, agent_who, entity_ref, resource, prev_hash, hash FROM audit_events WHERE seq = 5");
        assert_eq!(broken_at(&db), 6, "{}", db.backend);
    }
}

#[test]
fn swapped_records_are_named() {
    for db in support::backends() {
        log_of(&db, 10);
        unlock(&db);
        db.raw("UPDATE audit_events SET seq = 1000 WHERE seq = 3; UPDATE audit_events SET seq = 3 WHERE seq = 7; UPDATE audit_events SET seq = 7 WHERE seq = 1000;");
        assert_eq!(broken_at(&db), 3, "{}", db.backend);
    }
}

/// One-record appends (a single statement on PostgreSQL, hashed by the
/// database) from several threads at once, some with non-ASCII text, chain
/// without gaps and verify with Herald's own hash, interleaved with batches.
#[test]
fn concurrent_single_appends_chain_and_verify() {
    for db in support::backends() {
        herald::db::migrate(&mut db.conn()).unwrap();
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let pool = db.pool.clone();
                s.spawn(move || {
                    let mut c = pool.get().unwrap();
                    for i in 0..25 {
                        let mut r = record(t * 100 + i);
                        r.outcome = Outcome::MinorFailure;
                        r.outcome_desc = Some(format!("réessayer — 再试 {t}/{i} \\ \"q\""));
                        if i % 10 == 9 {
                            audit::append_now(&mut c, &[r.clone(), record(i)]).unwrap();
                        } else {
                            audit::append_now(&mut c, &[r]).unwrap();
                        }
                    }
                });
            }
        });
        assert_eq!(
            audit::verify(&mut db.conn()).unwrap(),
            Verdict::Intact {
                count: 4 * 25 + 4 * 2
            },
            "{}",
            db.backend
        );
    }
}
