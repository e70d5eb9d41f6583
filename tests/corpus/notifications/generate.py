#!/usr/bin/env python3
"""Writes the rest-hook notification corpus (refuse/ and accept/).

Each case is NN-name.json (the body, byte for byte) and NN-name.why, one line:
    <subscription> <element> <rule>
<subscription> is the test's subscription id (appt, meds: R4 rest-hook, payload
= the resource; bp-appt: Backport, payload = a notification Bundle); <element>
is what the OperationOutcome must name in issue.expression ("-" for accept/).
Rules are from FHIR R4 json.html (J), datatypes.html (D), the resources'
value sets (V), the Subscriptions R5 Backport IG 1.1.0 (B) and Herald's own
edge rules (H: same-origin references, followed types). Synthetic data only.
Run from this directory; the files are committed, this script is provenance.
"""
import json, os, shutil

BASE = "https://ehr.example.org/fhir/R4"
TOPIC = "http://example.org/fhir/SubscriptionTopic/appointment-booked"
HERE = os.path.dirname(os.path.abspath(__file__))


def appt(**kw):
    a = {
        "resourceType": "Appointment",
        "id": "a1",
        "meta": {"versionId": "3", "lastUpdated": "2026-12-01T15:00:00Z"},
        "status": "booked",
        "start": "2026-12-06T15:00:00Z",
        "end": "2026-12-06T15:30:00Z",
        "participant": [
            {"actor": {"reference": "Patient/p1"}, "status": "accepted"},
            {"actor": {"reference": "Location/loc1"}, "status": "accepted"},
        ],
    }
    for k, v in kw.items():
        if v is DROP:
            a.pop(k, None)
        else:
            a[k] = v
    return a


def medreq(**kw):
    m = {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "meta": {"versionId": "1", "lastUpdated": "2026-12-01T15:00:00Z"},
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197361"}]},
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2026-12-01",
        "dispenseRequest": {"validityPeriod": {"start": "2026-12-01", "end": "2027-06-01"}, "numberOfRepeatsAllowed": 3},
    }
    for k, v in kw.items():
        if v is DROP:
            m.pop(k, None)
        else:
            m[k] = v
    return m


DROP = object()


def r4_status(kind="event-notification", since="2", event=None, sub_ref=BASE + "/Subscription/r1", extra=None, drop=()):
    params = [
        {"name": "subscription", "valueReference": {"reference": sub_ref}},
        {"name": "topic", "valueCanonical": TOPIC},
        {"name": "status", "valueCode": "active"},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": since},
    ]
    params = [p for p in params if p["name"] not in drop]
    if event is not None:
        params.append({"name": "notification-event", "part": event})
    if extra:
        params = [extra(p) for p in params]
    return {
        "fullUrl": "urn:uuid:2d4a6c1e-0b52-4f3e-9a53-6c2e8f0d1a01",
        "resource": {
            "resourceType": "Parameters",
            "id": "2d4a6c1e-0b52-4f3e-9a53-6c2e8f0d1a01",
            "meta": {"profile": ["http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4"]},
            "parameter": params,
        },
        "request": {"method": "GET", "url": BASE + "/Subscription/r1/$status"},
        "response": {"status": "200"},
    }


def event(n="2", focus=BASE + "/Appointment/a1", ts="2026-12-01T15:00:01.1234567-05:00"):
    parts = [{"name": "event-number", "valueString": n}, {"name": "timestamp", "valueInstant": ts}]
    if focus is not None:
        parts.append({"name": "focus", "valueReference": {"reference": focus}})
    return parts


def r4b_status(kind="event-notification", status="active", focus=BASE + "/Appointment/a1", n="2", drop=()):
    s = {
        "resourceType": "SubscriptionStatus",
        "id": "7f1c2b3a-4d5e-4f60-8a71-92b3c4d5e6f7",
        "status": status,
        "type": kind,
        "eventsSinceSubscriptionStart": n,
        "subscription": {"reference": BASE + "/Subscription/r1"},
        "topic": TOPIC,
    }
    if kind == "event-notification":
        ev = {"eventNumber": n, "timestamp": "2026-12-01T15:00:01Z"}
        if focus is not None:
            ev["focus"] = {"reference": focus}
        s["notificationEvent"] = [ev]
    for d in drop:
        s.pop(d, None)
    return {
        "fullUrl": "urn:uuid:7f1c2b3a-4d5e-4f60-8a71-92b3c4d5e6f7",
        "resource": s,
        "request": {"method": "GET", "url": BASE + "/Subscription/r1/$status"},
        "response": {"status": "200"},
    }


def full_entry(res, rtype="Appointment", rid="a1"):
    return {
        "fullUrl": f"{BASE}/{rtype}/{rid}",
        "resource": res,
        "request": {"method": "PUT", "url": f"{rtype}/{rid}"},
        "response": {"status": "200"},
    }


def bundle(entries, btype="history", ts="2026-12-01T15:00:02Z", **kw):
    b = {"resourceType": "Bundle", "id": "b7e0c1d2-3f4a-4b5c-8d6e-7f8091a2b3c4", "type": btype, "timestamp": ts, "entry": entries}
    for k, v in kw.items():
        if v is DROP:
            b.pop(k, None)
        else:
            b[k] = v
    return b


def j(v):
    return json.dumps(v, indent=2, ensure_ascii=False)


ACCEPT = []
REFUSE = []


def accept(name, sub, body, why):
    ACCEPT.append((name, sub, "-", body if isinstance(body, str) else j(body), why))


def refuse(name, sub, element, body, why):
    REFUSE.append((name, sub, element, body if isinstance(body, str) else j(body), why))


# ----------------------------------------------------------------- accept
accept("r4-appointment-full", "appt", appt(
    extension=[{"url": "http://vendor.example/fhir/StructureDefinition/priority-score", "valueInteger": 7}],
    serviceType=[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/service-type", "code": "57"}]}],
    created="2026-11-30T09:12:44-05:00",
    minutesDuration=30,
), "HAPI/Medplum R4 rest-hook with payload: the full Appointment (N2)")
accept("r4-empty-body", "appt", "", "R4 rest-hook without payload: an empty POST (N2), re-fetched later")
accept("r4-appointment-same-origin-absolute", "appt", appt(participant=[
    {"actor": {"reference": BASE + "/Patient/p1", "display": "the patient"}, "status": "accepted"},
    {"actor": {"reference": BASE + "/Location/loc1/_history/2"}, "status": "accepted"},
]), "absolute references on the configured base, one versioned (H)")
accept("r4-appointment-primitive-extensions", "appt", appt(
    _status={"extension": [{"url": "http://vendor.example/fhir/StructureDefinition/status-reason", "valueString": "kiosk"}]},
    _start={"id": "s1"},
    comment="Rückfragen bitte an die Rezeption — 👋",
    patientInstruction="Bring your card",
    supportingInformation=[{"reference": "#q1"}],
    contained=[{"resourceType": "QuestionnaireResponse", "id": "q1", "status": "completed",
                "extension": [{"url": "http://vendor.example/fhir/StructureDefinition/seen", "valueDateTime": "2026-12"}]}],
), "primitive extensions (_status), a contained resource, a local #ref, non-ASCII text, a partial dateTime (J, D)")
accept("r4-medicationrequest-full", "meds", medreq(
    dosageInstruction=[{"text": "1 tablet daily", "timing": {"event": ["2026-12-02T08:00:00+01:00"],
                        "repeat": {"boundsPeriod": {"start": "2026-12-02", "end": "2027-01-02"}, "frequency": 1, "period": 1, "periodUnit": "d"}}}],
    requester={"reference": "Practitioner/dr-7"},
), "full MedicationRequest (status active, intent order), date-only authoredOn (D, V)")
accept("r4-appointment-leap-day-7-digit-fraction", "appt", appt(
    id="appt-2028.02.29", start="2028-02-29T09:00:00.1234567-05:00", end="2028-02-29T09:30:00.000+14:00",
    meta={"versionId": "1", "lastUpdated": "2028-02-01T00:00:00.5Z"}),
    "29 February of a leap year, .NET-style 7-digit fraction, +14:00 zone, dots inside an id (D)")
accept("medplum-appointment-meta", "appt", appt(meta={
    "versionId": "0b4e7f6a-2a1c-4d7e-9f3b-1c2d3e4f5a6b", "lastUpdated": "2026-12-01T15:00:00.123Z",
    "author": {"reference": "Practitioner/0a1b2c3d", "display": "Front desk"},
    "project": "5f0a1b2c-3d4e-4f5a-8b6c-7d8e9f0a1b2c",
    "compartment": [{"reference": "Project/5f0a1b2c-3d4e-4f5a-8b6c-7d8e9f0a1b2c"}, {"reference": "Patient/p1"}],
}), "Medplum adds meta.author, meta.project, meta.compartment (Project/… is Medplum's own type): elements Herald does not know")
accept("hapi-appointment-meta-source", "appt", appt(meta={"versionId": "4", "lastUpdated": "2026-12-01T15:00:00.000+00:00", "source": "#Kq3Vn0bX8rT2"},
    status="cancelled", cancelationReason={"coding": [{"system": "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason", "code": "pat"}]}),
    "HAPI full resource: meta.source, a cancellation (V)")
accept("bp-r4-handshake", "bp-appt", bundle([r4_status(kind="handshake", since="0")]),
       "R4 Backport handshake: history Bundle, Parameters status first, no event (B, N8)")
accept("bp-r4-heartbeat", "bp-appt", bundle([r4_status(kind="heartbeat", since="5")]),
       "R4 Backport heartbeat: status only, counter unchanged (B, N7)")
accept("bp-r4-empty-event", "bp-appt", bundle([r4_status(event=[{"name": "event-number", "valueString": "2"}])]),
       "R4 Backport payload empty: event number, no focus, no other entries (B, N9)")
accept("bp-r4-id-only", "bp-appt", bundle([r4_status(event=event()),
        {"fullUrl": BASE + "/Appointment/a1", "request": {"method": "PUT", "url": "Appointment/a1"}, "response": {"status": "200"}}]),
       "R4 Backport id-only: focus, and an entry with only fullUrl/request (B, N9)")
accept("bp-r4-full-resource-with-context", "bp-appt", bundle([
    r4_status(event=event() + [{"name": "additional-context", "valueReference": {"reference": BASE + "/Patient/p1"}}]),
    full_entry(appt()),
    full_entry({"resourceType": "Patient", "id": "p1", "name": [{"family": "Ruiz", "given": ["Ana", None], "_given": [None, {"extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier", "valueCode": "CL"}]}]}],
        "birthDate": "1980-02-29"}, "Patient", "p1"),
]), "R4 Backport full-resource with additional context; null only where J allows it (array alignment with _given)")
accept("bp-r4-hapi-relative-subscription", "bp-appt", bundle([r4_status(event=event(focus="Appointment/a1"), sub_ref="Subscription/r1"),
        full_entry(appt())]), "HAPI writes the subscription and focus relative (H)")
accept("bp-r4b-history", "bp-appt", bundle([r4b_status(), full_entry(appt())]),
       "R4B Backport: SubscriptionStatus first in a history Bundle, full resource (B)")
accept("bp-r4b-subscription-notification-id-only", "bp-appt", bundle([r4b_status(),
        {"fullUrl": BASE + "/Appointment/a1", "request": {"method": "GET", "url": BASE + "/Appointment/a1"}}], btype="subscription-notification"),
       "R4B Bundle.type subscription-notification, id-only (B)")
accept("bp-r4b-heartbeat", "bp-appt", bundle([r4b_status(kind="heartbeat")], btype="subscription-notification"),
       "R4B heartbeat (B)")
accept("r4-medicationrequest-on-hold", "meds", medreq(status="on-hold", intent="filler-order", authoredOn="2026-12-01T23:59:60+14:00",
       id="M.2026-0001"), "on-hold / filler-order, leap-second 60 and +14:00 allowed by the R4 dateTime regex (D, V)")
accept("r4-appointment-all-statuses-waitlist", "appt", appt(status="waitlist", start=DROP, end=DROP,
       requestedPeriod=[{"start": "2026-12-10", "end": "2026-12-20T17:00:00-05:00"}]),
       "waitlist without start (start/end are optional unless booked), requestedPeriod as dates (V, D)")

# ----------------------------------------------------------------- refuse
# H: a type the subscription does not follow; J/V: resourceType spelled right
refuse("wrong-type-patient", "appt", "Patient.resourceType", {"resourceType": "Patient", "id": "p1", "name": [{"family": "Ruiz"}]},
       "H: the appt subscription follows Appointment")
refuse("wrong-type-medicationrequest", "appt", "MedicationRequest.resourceType", medreq(), "H: followed type is Appointment")
refuse("wrong-type-appointment-to-meds", "meds", "Appointment.resourceType", appt(), "H: followed type is MedicationRequest")
refuse("misspelled-resourcetype", "appt", "Resource.resourceType", appt(resourceType="Apointment"), "J: resourceType must name an R4 resource")
refuse("lowercase-resourcetype", "appt", "Resource.resourceType", appt(resourceType="appointment"), "J: resourceType is case-sensitive")
refuse("resourcetype-missing", "appt", "Resource.resourceType", appt(resourceType=DROP), "J: a resource carries resourceType")
refuse("resourcetype-number", "appt", "Resource.resourceType", appt(resourceType=42), "J: resourceType is a string")
refuse("plain-bundle-searchset-to-r4", "appt", "Bundle.resourceType",
       bundle([{"fullUrl": BASE + "/Appointment/a1", "resource": appt(), "search": {"mode": "match"}}], btype="searchset"),
       "H: an R4 payload subscription gets the followed resource, not a Bundle")
# H: references and fullUrls on another server
refuse("foreign-reference", "appt", "Appointment.participant[0].actor.reference",
       appt(participant=[{"actor": {"reference": "https://evil.example.com/fhir/Patient/p1"}, "status": "accepted"}]),
       "H: an absolute reference off ehr.base_url")
refuse("foreign-reference-lookalike-host", "appt", "Appointment.participant[1].actor.reference",
       appt(participant=[{"actor": {"reference": "Patient/p1"}, "status": "accepted"},
                         {"actor": {"reference": "https://ehr.example.org.evil.example/fhir/R4/Location/loc1"}, "status": "accepted"}]),
       "H: a host that only starts like the EHR's")
refuse("foreign-reference-http-downgrade", "appt", "Appointment.participant[0].actor.reference",
       appt(participant=[{"actor": {"reference": "http://ehr.example.org/fhir/R4/Patient/p1"}, "status": "accepted"}]),
       "H: same host, other scheme")
refuse("foreign-reference-userinfo", "appt", "Appointment.participant[0].actor.reference",
       appt(participant=[{"actor": {"reference": "https://ehr.example.org@evil.example.com/fhir/R4/Patient/p1"}, "status": "accepted"}]),
       "H: userinfo trick")
refuse("reference-path-traversal", "appt", "Appointment.participant[0].actor.reference",
       appt(participant=[{"actor": {"reference": "Patient/../../admin/Patient/p1"}, "status": "accepted"}]),
       "D/H: a relative reference is Type/id; .. is no id")
refuse("reference-outside-base-path", "appt", "Appointment.participant[0].actor.reference",
       appt(participant=[{"actor": {"reference": "https://ehr.example.org/other/Patient/p1"}, "status": "accepted"}]),
       "H: same origin but outside the FHIR base")
refuse("bp-foreign-fullurl", "bp-appt", "Bundle.entry[1].fullUrl",
       bundle([r4_status(event=event()), {**full_entry(appt()), "fullUrl": "https://evil.example.com/fhir/Appointment/a1"}]),
       "H: fullUrl on another server")
refuse("bp-foreign-focus", "bp-appt", "Bundle.entry[0].resource.parameter[5].part[2].valueReference.reference",
       bundle([r4_status(event=event(focus="https://evil.example.com/fhir/Appointment/a1"))]),
       "H: the focus on another server")
refuse("bp-foreign-subscription", "bp-appt", "Bundle.entry[0].resource.parameter[0].valueReference.reference",
       bundle([r4_status(kind="heartbeat", sub_ref="https://evil.example.com/fhir/Subscription/r1")]),
       "H: the status names a subscription on another server")
# J: duplicate keys
DUP_STATUS = j(appt()).replace('"status": "booked",', '"status": "booked",\n  "status": "cancelled",', 1)
refuse("dup-key-status", "appt", "Appointment.status", DUP_STATUS, "J: a JSON object has unique keys (serde keeps the last)")
DUP_RT = j(appt()).replace('"resourceType": "Appointment",', '"resourceType": "Appointment",\n  "resourceType": "Patient",', 1)
refuse("dup-key-resourcetype", "appt", "Resource.resourceType", DUP_RT, "J: which resource is it?")
DUP_REF = j(appt()).replace('"reference": "Patient/p1"', '"reference": "Patient/p1", "reference": "Patient/p2"', 1)
refuse("dup-key-nested-reference", "appt", "Appointment.participant[0].actor.reference", DUP_REF, "J: duplicate key deep inside")
DUP_BP = j(bundle([r4_status(event=event()), full_entry(appt())]))
i = DUP_BP.index('"status": "booked"')
DUP_BP = DUP_BP[:i] + '"status": "cancelled",\n        ' + DUP_BP[i:]
refuse("bp-dup-key-entry-status", "bp-appt", "Bundle.entry[1].resource.status", DUP_BP, "J: duplicate key inside a Bundle entry")
# D: impossible dates, instants without a zone
refuse("date-feb-30", "appt", "Appointment.start", appt(start="2026-02-30T09:00:00Z"), "D: no 30 February")
refuse("date-month-13", "appt", "Appointment.start", appt(start="2026-13-01T09:00:00Z"), "D: no month 13")
refuse("time-24-61", "appt", "Appointment.end", appt(end="2026-12-06T24:61:00Z"), "D: hh 00-23, mm 00-59")
refuse("date-feb-29-non-leap", "appt", "Appointment.created", appt(created="2026-02-29"), "D: 2026 is no leap year")
refuse("date-day-00", "meds", "MedicationRequest.dispenseRequest.validityPeriod.end",
       medreq(dispenseRequest={"validityPeriod": {"start": "2026-12-01", "end": "2027-06-00"}}), "D: day 00")
refuse("instant-without-zone", "appt", "Appointment.start", appt(start="2026-12-06T15:00:00"), "D: instant requires a zone")
refuse("lastupdated-without-zone", "appt", "Appointment.meta.lastUpdated", appt(meta={"versionId": "3", "lastUpdated": "2026-12-01T15:00:00.000"}),
       "D: meta.lastUpdated is an instant")
refuse("instant-date-only", "appt", "Appointment.start", appt(start="2026-12-06"), "D: an instant has a time")
refuse("datetime-time-without-zone", "meds", "MedicationRequest.authoredOn", medreq(authoredOn="2026-12-01T10:00:00"),
       "D: a dateTime with a time has a zone")
refuse("datetime-bad-zone", "meds", "MedicationRequest.authoredOn", medreq(authoredOn="2026-12-01T10:00:00+25:00"), "D: zone beyond +14:00")
refuse("bp-timestamp-without-zone", "bp-appt", "Bundle.timestamp", bundle([r4_status(kind="heartbeat")], ts="2026-12-01T15:00:02"),
       "D: Bundle.timestamp is an instant")
refuse("bp-event-timestamp-impossible", "bp-appt", "Bundle.entry[0].resource.parameter[5].part[1].valueInstant",
       bundle([r4_status(event=event(ts="2026-12-32T15:00:01Z"))]), "D: no 32nd day")
refuse("extension-datetime-impossible", "appt", "Appointment.extension[0].valueDateTime",
       appt(extension=[{"url": "http://vendor.example/fhir/StructureDefinition/seen", "valueDateTime": "2026-04-31"}]),
       "D: value[x] names its type; no 31 April")
# J: null / empty / U+0000
refuse("null-body", "appt", "Resource", "null", "J: the body is a resource")
refuse("empty-object-body", "appt", "Resource", "{}", "J: no empty objects")
refuse("array-body", "appt", "Resource", "[]", "J: the body is a resource")
refuse("string-body", "appt", "Resource", '"Appointment"', "J: the body is a resource")
refuse("null-status", "appt", "Appointment.status", appt(status=None), "J: no null values")
refuse("empty-string-status", "appt", "Appointment.status", appt(status=""), "J: no empty strings")
refuse("empty-participant-array", "appt", "Appointment.participant", appt(participant=[]), "J: no empty arrays")
refuse("empty-object-actor", "appt", "Appointment.participant[0].actor",
       appt(participant=[{"actor": {}, "status": "accepted"}]), "J: no empty objects")
refuse("null-in-array-without-extension", "appt", "Appointment.participant[1]",
       appt(participant=[{"actor": {"reference": "Patient/p1"}, "status": "accepted"}, None]), "J: null in an array only to align with _name")
refuse("nul-in-comment", "appt", "Appointment.comment", appt(comment="call first\u0000DROP"), "J/D: U+0000 is not allowed in a string")
refuse("nul-in-reference", "appt", "Appointment.participant[0].actor.reference",
       appt(participant=[{"actor": {"reference": "Patient/p1\u0000"}, "status": "accepted"}]), "J/D: U+0000")
refuse("bp-null-entry", "bp-appt", "Bundle.entry[1]", bundle([r4_status(event=event()), None]), "J: null where a resource entry must be")
refuse("bp-empty-entry-resource", "bp-appt", "Bundle.entry[1].resource",
       bundle([r4_status(event=event()), {"fullUrl": BASE + "/Appointment/a1", "resource": {}, "request": {"method": "PUT", "url": "Appointment/a1"}}]),
       "J: an empty object where a resource must be")
refuse("bp-empty-entry-array", "bp-appt", "Bundle.entry", bundle([]), "J: no empty arrays; B: the status entry is required")
# V: codes outside the value set, missing required status
refuse("appointment-status-unknown", "appt", "Appointment.status", appt(status="scheduled"), "V: appointmentstatus has no 'scheduled'")
refuse("appointment-status-case", "appt", "Appointment.status", appt(status="Booked"), "V: codes are case-sensitive")
refuse("appointment-status-missing", "appt", "Appointment.status", appt(status=DROP), "V: Appointment.status is 1..1")
refuse("appointment-status-not-string", "appt", "Appointment.status", appt(status=True), "J: a code is a JSON string")
refuse("appointment-status-padded", "appt", "Appointment.status", appt(status=" booked"), "D: a code has no leading whitespace")
refuse("participant-status-unknown", "appt", "Appointment.participant[0].status",
       appt(participant=[{"actor": {"reference": "Patient/p1"}, "status": "acepted"}]), "V: participationstatus")
refuse("medreq-status-unknown", "meds", "MedicationRequest.status", medreq(status="in-progress"), "V: medicationrequest-status")
refuse("medreq-status-missing", "meds", "MedicationRequest.status", medreq(status=DROP), "V: MedicationRequest.status is 1..1")
refuse("medreq-intent-unknown", "meds", "MedicationRequest.intent", medreq(intent="prescription"), "V: medicationrequest-intent")
refuse("medreq-intent-missing", "meds", "MedicationRequest.intent", medreq(intent=DROP), "V: MedicationRequest.intent is 1..1")
refuse("bp-bundle-type-misspelled", "bp-appt", "Bundle.type", bundle([r4_status(kind="heartbeat")], btype="histroy"), "V: bundle-type")
refuse("bp-bundle-type-missing", "bp-appt", "Bundle.type", bundle([r4_status(kind="heartbeat")], type=DROP), "V: Bundle.type is 1..1")
refuse("bp-transaction-bundle", "bp-appt", "Bundle.type", bundle([r4_status(event=event()),
       {"fullUrl": "urn:uuid:0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "resource": appt(id=DROP), "request": {"method": "POST", "url": "Appointment"}}],
       btype="transaction", timestamp=DROP), "B: a notification is a history (R4B: subscription-notification) Bundle, not a transaction")
refuse("bp-batch-bundle", "bp-appt", "Bundle.type", bundle([full_entry(appt())], btype="batch", timestamp=DROP),
       "B: a batch is no notification")
refuse("bp-r4-status-type-unknown", "bp-appt", "Bundle.entry[0].resource.parameter[3].valueCode",
       bundle([r4_status(kind="event")]), "V/B: subscription-notification-type")
refuse("bp-r4-status-type-missing", "bp-appt", "Bundle.entry[0].resource.parameter.where(name='type')",
       bundle([r4_status(kind="heartbeat", drop=("type",))]), "B: the status parameters carry type")
refuse("bp-r4-status-status-missing", "bp-appt", "Bundle.entry[0].resource.parameter.where(name='status')",
       bundle([r4_status(kind="heartbeat", drop=("status",))]), "B: the status parameters carry status")
refuse("bp-r4b-type-unknown", "bp-appt", "Bundle.entry[0].resource.type", bundle([r4b_status(kind="notification")]),
       "V/B: SubscriptionStatus.type")
refuse("bp-r4b-type-missing", "bp-appt", "Bundle.entry[0].resource.type", bundle([r4b_status(drop=("type",))]),
       "B: SubscriptionStatus.type is 1..1")
refuse("bp-r4b-status-unknown", "bp-appt", "Bundle.entry[0].resource.status", bundle([r4b_status(status="activ")]),
       "V: subscription-status")
refuse("bp-entry-appointment-status-unknown", "bp-appt", "Bundle.entry[1].resource.status",
       bundle([r4_status(event=event()), full_entry(appt(status="confirmed"))]), "V: the focus inside the Bundle too")
# FHIR ids
refuse("id-with-slash", "appt", "Appointment.id", appt(id="a/b"), "D: id is [A-Za-z0-9\\-\\.]{1,64}")
refuse("id-dotdot", "appt", "Appointment.id", appt(id=".."), "H: an id of dots only is a path trick")
refuse("id-too-long", "appt", "Appointment.id", appt(id="a" * 65), "D: at most 64 characters")
refuse("id-whitespace", "appt", "Appointment.id", appt(id="a 1"), "D: no whitespace")
refuse("id-non-ascii", "appt", "Appointment.id", appt(id="appté"), "D: ASCII letters, digits, - and . only")
refuse("id-number", "appt", "Appointment.id", appt(id=7), "J: id is a JSON string")
refuse("bp-entry-id-slash", "bp-appt", "Bundle.entry[1].resource.id",
       bundle([r4_status(event=event()), full_entry(appt(id="../Patient/p1"))]), "D: id inside a Bundle entry")
# B: backport ordering
refuse("bp-r4-status-not-first", "bp-appt", "Bundle.entry[0]",
       bundle([full_entry(appt()), r4_status(event=event())]), "B: entry[0] is the subscription status")
refuse("bp-r4b-status-not-first", "bp-appt", "Bundle.entry[0]",
       bundle([full_entry(appt()), r4b_status()], btype="subscription-notification"), "B: entry[0] is the SubscriptionStatus")
refuse("bp-no-status-at-all", "bp-appt", "Bundle.entry[0]", bundle([full_entry(appt())]), "B: a notification without status")
refuse("bp-two-status-entries", "bp-appt", "Bundle.entry[1]",
       bundle([r4_status(event=event()), r4_status(event=event())]), "B: one status per notification")
refuse("bp-entry-misspelled-type", "bp-appt", "Bundle.entry[1].resource.resourceType",
       bundle([r4_status(event=event()), full_entry(appt(resourceType="Apointment"))]), "J: resourceType inside a Bundle")
refuse("bp-focus-wrong-type", "bp-appt", "Bundle.entry[0].resource.parameter[5].part[2].valueReference.reference",
       bundle([r4_status(event=event(focus=BASE + "/Patient/p1"))]), "H: bp-appt follows Appointment")
refuse("bp-r4b-focus-wrong-type", "bp-appt", "Bundle.entry[0].resource.notificationEvent[0].focus.reference",
       bundle([r4b_status(focus="MedicationRequest/m1"), full_entry(medreq(), "MedicationRequest", "m1")]),
       "H: a MedicationRequest focus on an Appointment subscription (R4B)")

# added after the first run of the edge check (rules the first list missed)
refuse("appointment-participant-missing", "appt", "Appointment.participant", appt(participant=DROP), "V: Appointment.participant is 1..*")
refuse("appointment-booked-without-start", "appt", "Appointment.start", appt(start=DROP), "app-2/app-3: start and end together; booked has both")
refuse("appointment-booked-without-times", "appt", "Appointment.start", appt(start=DROP, end=DROP), "app-3: only proposed/cancelled/waitlist lack times")
refuse("medreq-subject-missing", "meds", "MedicationRequest.subject", medreq(subject=DROP), "V: MedicationRequest.subject is 1..1")
refuse("bp-response-lastmodified-without-zone", "bp-appt", "Bundle.entry[1].response.lastModified",
       bundle([r4_status(event=event()), {**full_entry(appt()), "response": {"status": "200", "lastModified": "2026-12-01T15:00:00"}}]),
       "D: Bundle.entry.response.lastModified is an instant")
refuse("reference-type-misspelled", "appt", "Appointment.participant[0].actor.reference",
       appt(participant=[{"actor": {"reference": "Patinet/p1"}, "status": "accepted"}]), "J/H: a reference names an R4 resource type")
refuse("bp-fullurl-type-misspelled", "bp-appt", "Bundle.entry[1].fullUrl",
       bundle([r4_status(event=event()), {**full_entry(appt()), "fullUrl": BASE + "/Apointment/a1"}]), "H: fullUrl names an R4 resource type")
accept("bp-r4-handshake-to-r4-subscription", "appt", bundle([r4_status(kind="handshake", since="0")]),
       "a Backport handshake on a subscription Herald made as R4: processed by shape, so accepted (B)")
accept("r4-appointment-to-backport-subscription", "bp-appt", appt(),
       "the followed resource on a Backport subscription: processed by shape (it is valid FHIR), so accepted")


def write(kind, cases):
    d = os.path.join(HERE, kind)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for n, (name, sub, element, body, why) in enumerate(cases, 1):
        stem = f"{n:02d}-{name}"
        with open(os.path.join(d, stem + ".json"), "w", encoding="utf-8") as f:
            f.write(body)
        with open(os.path.join(d, stem + ".why"), "w", encoding="utf-8") as f:
            f.write(f"{sub} {element} {why}\n")


write("accept", ACCEPT)
write("refuse", REFUSE)
print(len(ACCEPT), "accept,", len(REFUSE), "refuse")
