//! One story, told on every backend: a patient, a consent, a booking, its
//! messages, a reschedule, a cancellation, an opt-out, a key rotation — with
//! the audit chain intact and no PHI in plaintext at rest.

use herald::domain::audit::Actor;
use herald::providers::MemorySender;
use herald::service::send::SendOutcome;
use herald::service::{ingest, send};
use serde_json::{Value, json};

use super::support::{self, TestDb};

const PHONE: &str = "+12125550142";
const EMAIL: &str = "zelda.story@example.org";
const GIVEN: &str = "Zelda";
const FAMILY: &str = "Quixotestory";

fn patient() -> Value {
    json!({
        "resourceType": "Patient", "id": "pat-story",
        "name": [{"use": "official", "family": FAMILY, "given": [GIVEN]}],
        "telecom": [{"system": "phone", "value": PHONE, "use": "mobile"}, {"system": "email", "value": EMAIL}],
        "address": [{"use": "home", "state": "NY"}],
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-US"}]}, "preferred": true}]
    })
}

fn consent(id: &str, permit: bool, at: &str) -> Value {
    json!({
        "resourceType": "Consent", "id": id, "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/pat-story"}, "dateTime": at,
        "provision": {
            "type": if permit { "permit" } else { "deny" },
            "extension": [
                {"url": herald::fhir::EXT_CHANNEL, "valueCode": "sms"},
                {"url": herald::fhir::EXT_ADDRESS, "valueString": PHONE}
            ]
        }
    })
}

fn appointment(version: &str, status: &str, start: &str) -> Value {
    json!({
        "resourceType": "Appointment", "id": "appt-story", "meta": {"versionId": version},
        "status": status, "start": start,
        "reasonCode": [{"coding": [{"system": "http://snomed.info/sct", "code": "44054006", "display": "Diabetes mellitus type 2"}]}],
        "participant": [
            {"actor": {"reference": "Patient/pat-story", "display": format!("{GIVEN} {FAMILY}")}, "status": "accepted"},
            {"actor": {"reference": "Practitioner/prac-1", "display": "Dr. Ada Lovelace"}, "status": "accepted"},
            {"actor": {"reference": "Location/loc-1", "display": "Downtown Clinic"}, "status": "accepted"}
        ]
    })
}

fn story(db: &TestDb) {
    let (ring, master) = support::ready(db);
    let clock = support::clock();
    let parts = support::Parts::new();
    let sender = MemorySender::default();
    let ctx = parts.ctx(&ring, &clock, &sender);
    let ny = |_: &str| Some(chrono_tz::America::New_York);
    let mut c = db.conn();

    ingest::patient(&mut c, &ctx, &patient(), &[]).unwrap();
    // No consent yet: the confirmation is suppressed with the reason.
    let planned = ingest::appointment(
        &mut c,
        &ctx,
        &appointment("1", "booked", "2026-12-03T09:30:00-05:00"),
        &ny,
        &[],
    )
    .unwrap();
    assert_eq!(
        planned,
        ingest::Ingested::Planned {
            enqueued: 3,
            withdrawn: 0
        },
        "{}",
        db.backend
    );
    let r = send::run_due(&mut c, &ctx, &sender, "w1").unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0].outcome,
        SendOutcome::Suppressed {
            reason: "no consent".into()
        }
    );

    // Consent given; a reschedule plans anew and the new confirmation goes out.
    assert!(
        ingest::consent(
            &mut c,
            &ctx,
            &consent("c-permit", true, "2026-12-01T16:00:00Z"),
            "clinician"
        )
        .unwrap()
    );
    assert!(
        !ingest::consent(
            &mut c,
            &ctx,
            &consent("c-permit", true, "2026-12-01T16:00:00Z"),
            "clinician"
        )
        .unwrap()
    );
    let moved = ingest::appointment(
        &mut c,
        &ctx,
        &appointment("2", "booked", "2026-12-04T10:00:00-05:00"),
        &ny,
        &[],
    )
    .unwrap();
    assert_eq!(
        moved,
        ingest::Ingested::Planned {
            enqueued: 3,
            withdrawn: 2
        }
    );
    // The same version again is a duplicate.
    let dup = ingest::appointment(
        &mut c,
        &ctx,
        &appointment("2", "booked", "2026-12-04T10:00:00-05:00"),
        &ny,
        &[],
    )
    .unwrap();
    assert_eq!(dup, ingest::Ingested::Duplicate);
    let r = send::run_due(&mut c, &ctx, &sender, "w1").unwrap();
    assert_eq!(r.len(), 1);
    assert!(
        matches!(r[0].outcome, SendOutcome::Sent { .. }),
        "{:?}",
        r[0].outcome
    );
    {
        let sent = sender.sent.lock().unwrap();
        let text = &sent[0].text;
        assert!(text.contains("Friday, December 4 at 10:00 AM"), "{text}");
        assert!(text.contains("Herald Demo Health") && text.contains("STOP"));
        for phi in [GIVEN, FAMILY, "Diabetes", "44054006"] {
            assert!(!text.contains(phi), "message carries {phi}: {text}");
        }
    }

    // A booking whose location names a condition-revealing department: the
    // compliance guard blocks the text, records why, and nothing is sent (H9, P2).
    let mut onc = appointment("1", "booked", "2026-12-05T11:00:00-05:00");
    onc["id"] = json!("appt-onc");
    onc["participant"][1]["actor"]["display"] = json!("Dr. Ada Lovelace, Oncology");
    ingest::appointment(&mut c, &ctx, &onc, &ny, &[]).unwrap();
    let r = send::run_due(&mut c, &ctx, &sender, "w1").unwrap();
    assert_eq!(r.len(), 1, "{r:?}");
    match &r[0].outcome {
        SendOutcome::Suppressed { reason } => {
            assert!(reason.starts_with("compliance guard: phi:"), "{reason}");
            assert!(reason.contains("specialty"), "{reason}");
        }
        other => panic!("not blocked: {other:?}"),
    }
    assert_eq!(
        sender.sent.lock().unwrap().len(),
        1,
        "the blocked text went out"
    );
    assert!(
        db.dump()
            .contains("Blocked before sending: compliance guard"),
        "no AuditEvent for the block"
    );
    ingest::appointment(
        &mut c,
        &ctx,
        &{
            let mut x = onc.clone();
            x["status"] = json!("entered-in-error");
            x["meta"]["versionId"] = json!("2");
            x
        },
        &ny,
        &[],
    )
    .unwrap();
    let _ = send::run_due(&mut c, &ctx, &sender, "w1").unwrap();

    // Time passes to the 24 h reminder (10:30 in New York); the patient replied STOP before it.
    clock.advance(chrono::Duration::minutes(46 * 60 + 30));
    assert!(
        ingest::consent(
            &mut c,
            &ctx,
            &consent("c-stop", false, "2026-12-02T12:00:00Z"),
            "sms-keyword"
        )
        .unwrap()
    );
    let r = send::run_due(&mut c, &ctx, &sender, "w1").unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0].outcome,
        SendOutcome::Suppressed {
            reason: "no consent (opted out)".into()
        }
    );

    // Cancelled: the last reminder is withdrawn and a notice is planned.
    let cancelled = ingest::appointment(
        &mut c,
        &ctx,
        &appointment("3", "cancelled", "2026-12-04T10:00:00-05:00"),
        &ny,
        &[],
    )
    .unwrap();
    assert_eq!(
        cancelled,
        ingest::Ingested::Planned {
            enqueued: 1,
            withdrawn: 1
        }
    );
    assert_eq!(
        sender.sent.lock().unwrap().len(),
        1,
        "nothing more was sent after STOP"
    );

    // A second worker finds nothing to claim twice.
    assert_eq!(send::run_due(&mut c, &ctx, &sender, "w2").unwrap().len(), 1);
    assert!(
        send::run_due(&mut c, &ctx, &sender, "w2")
            .unwrap()
            .is_empty()
    );

    // Audit: every step recorded, chain intact, the disclosure and consent decisions present.
    let rows = herald::db::audit_store::scan(&mut c, 0, 10_000).unwrap();
    assert!(
        rows.iter()
            .any(|r| r.type_code == "110106"
                && r.patient_ref.as_deref() == Some("Patient/pat-story"))
    );
    assert!(
        rows.iter()
            .any(|r| r.subtype_code.as_deref() == Some("AuthZ-Consent") && r.outcome == "8")
    );
    assert!(
        rows.iter()
            .any(|r| r.subtype_code.as_deref() == Some("AuthZ-Consent") && r.outcome == "0")
    );
    assert!(matches!(
        herald::audit::verify(&mut c).unwrap(),
        herald::audit::Verdict::Intact { .. }
    ));
    let _ = Actor::System;

    // Key rotation: a new key seals new writes; old rows are re-encrypted; data still reads.
    drop(c);
    let mut c = db.conn();
    let master_b64 = master.to_base64();
    let mut settings = herald::config::Settings::default();
    settings.crypto.master_key = Some(herald::config::Secret::new(master_b64));
    let new_id = herald::service::keys::rotate(&mut c, &settings, &clock).unwrap();
    assert_eq!(new_id, 2);
    let ring2 = herald::service::keys::open_ring(&mut c, &settings).unwrap();
    assert_eq!(ring2.active_id(), 2);
    let mut done = 0;
    while let Ok(n) = herald::service::keys::reencrypt_batch(&mut c, &ring2, &clock, 2) {
        if n == 0 {
            break;
        }
        done += n;
    }
    assert!(done >= 4, "re-encrypted {done}");
    let p = herald::db::patients::get(&mut c, &ring2, "pat-story")
        .unwrap()
        .unwrap();
    assert_eq!(p.phone.unwrap().expose(), PHONE);
    assert_eq!(
        herald::db::patients::find_by_phone(&mut c, &ring2, "(212) 555-0142").unwrap(),
        vec!["pat-story"]
    );
    drop(c);

    // No PHI in plaintext at rest, anywhere in the store.
    let dump = db.dump();
    for phi in [
        PHONE,
        "2125550142",
        EMAIL,
        GIVEN,
        FAMILY,
        "Diabetes",
        "Downtown Clinic",
    ] {
        assert!(!dump.contains(phi), "{}: {phi} found at rest", db.backend);
    }
    assert!(
        dump.contains("pat-story"),
        "the dump is real (opaque ids are there)"
    );
}

#[test]
fn story_on_every_backend() {
    for db in support::backends() {
        story(&db);
    }
}

#[test]
fn refuses_to_open_the_ring_without_a_key() {
    let db = support::sqlite();
    let mut c = db.conn();
    herald::db::migrate(&mut c).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = herald::config::Settings {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let err = herald::service::keys::open_ring(&mut c, &settings)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("HERALD_MASTER_KEY") && err.contains("herald keys init"),
        "{err}"
    );
}

/// A changed prescription moves its refill reminders: the old ones are
/// withdrawn and the new ones planned, on every backend.
#[test]
fn a_changed_prescription_moves_its_refill_reminders() {
    for db in support::backends() {
        let (ring, _) = support::ready(&db);
        let clock = support::clock();
        let parts = support::Parts::new();
        let sender = MemorySender::default();
        let ctx = parts.ctx(&ring, &clock, &sender);
        let mut c = db.conn();
        ingest::patient(&mut c, &ctx, &patient(), &[]).unwrap();
        let med = |version: &str, days: u32| {
            json!({
                "resourceType": "MedicationRequest", "id": "mr-story", "meta": {"versionId": version},
                "status": "active", "intent": "order", "subject": {"reference": "Patient/pat-story"},
                "authoredOn": "2026-11-20",
                "medicationCodeableConcept": {"text": "synthetic"},
                "dispenseRequest": {"numberOfRepeatsAllowed": 2,
                    "expectedSupplyDuration": {"value": days, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}}
            })
        };
        let pending = |c: &mut herald::db::PooledConn| {
            let mut keys: Vec<String> = herald::db::outbox::list(c)
                .unwrap()
                .into_iter()
                .filter(|i| i.about == "MedicationRequest/mr-story" && i.state == "pending")
                .map(|i| i.dedupe_key)
                .collect();
            keys.sort();
            keys
        };
        assert_eq!(
            ingest::medication(&mut c, &ctx, &med("1", 30), &[]).unwrap(),
            ingest::Ingested::Planned {
                enqueued: 2,
                withdrawn: 0
            },
            "{}",
            db.backend
        );
        let before = pending(&mut c);
        assert!(before[0].ends_with("2026-12-20"), "{before:?}");
        assert_eq!(
            ingest::medication(&mut c, &ctx, &med("2", 60), &[]).unwrap(),
            ingest::Ingested::Planned {
                enqueued: 1,
                withdrawn: 1
            },
            "{}",
            db.backend
        );
        // 30-day fills ran out on 12-20 and 01-19; 60-day fills on 01-19 and
        // 03-20: the shared date stays, the others move.
        let after = pending(&mut c);
        assert!(
            after[0].ends_with("2027-01-19") && after[1].ends_with("2027-03-20"),
            "{after:?}"
        );
        assert!(!after.contains(&before[0]));
    }
}
