//! The edge check of a rest-hook notification (issue 11): what
//! `POST /hooks/fhir/{subscription}` must refuse before anything is stored.
//!
//! [`check`] reads the body with [`strict`](super::strict) (no duplicate
//! keys, null, empty values or U+0000: 400) and then checks the shapes Herald
//! relies on (422): `resourceType` spelled as R4 spells it and the type this
//! subscription follows; resource ids (`[A-Za-z0-9\-\.]{1,64}`, not dots
//! only); references and `fullUrl`s relative, bundle-local (`urn:uuid:`,
//! `#id`) or on `ehr.base_url`; date, dateTime, instant and time by the R4
//! grammar with a real calendar day and a zone where one is required; the
//! required codes Herald reads (Appointment.status and participant.status,
//! MedicationRequest.status and intent, Bundle.type, the subscription
//! status's type and status); and for a Backport subscription a history
//! (R4B: subscription-notification) Bundle whose first entry, and only it,
//! is the status (Parameters or SubscriptionStatus), with a focus of the
//! followed type. Each issue names its element by a FHIRPath-like
//! expression; messages are fixed text, never the caller's values.
//!
//! It must not: refuse what the specification allows (extensions, elements
//! and resources Herald does not know pass), or read anything for
//! processing — that stays lenient, in `fhir/` and `service::ehr`.

use super::strict::{self, Json};
use crate::error::ElementIssue;

/// What the subscription the notification is for expects.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The resource type it follows ("Appointment").
    pub resource_type: &'a str,
    /// A Backport subscription (a notification Bundle), else R4 (the resource).
    pub backport: bool,
    /// `ehr.base_url`: absolute references must be under it.
    pub base_url: Option<&'a str>,
}

/// Why a notification is refused: the issues, and whether the JSON itself
/// was unusable (400) or well-formed but invalid (422).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// 422 when true, else 400.
    pub unprocessable: bool,
    /// At most [`LIMIT`] issues, each naming its element.
    pub issues: Vec<ElementIssue>,
}

/// The most issues one refusal lists.
pub const LIMIT: usize = 20;

/// R4 (4.0.1) resource types, and R4B's SubscriptionStatus and SubscriptionTopic
/// (Backport notifications from R4B servers).
const RESOURCE_TYPES: &[&str] = &[
    "Account",
    "ActivityDefinition",
    "AdverseEvent",
    "AllergyIntolerance",
    "Appointment",
    "AppointmentResponse",
    "AuditEvent",
    "Basic",
    "Binary",
    "BiologicallyDerivedProduct",
    "BodyStructure",
    "Bundle",
    "CapabilityStatement",
    "CarePlan",
    "CareTeam",
    "CatalogEntry",
    "ChargeItem",
    "ChargeItemDefinition",
    "Claim",
    "ClaimResponse",
    "ClinicalImpression",
    "CodeSystem",
    "Communication",
    "CommunicationRequest",
    "CompartmentDefinition",
    "Composition",
    "ConceptMap",
    "Condition",
    "Consent",
    "Contract",
    "Coverage",
    "CoverageEligibilityRequest",
    "CoverageEligibilityResponse",
    "DetectedIssue",
    "Device",
    "DeviceDefinition",
    "DeviceMetric",
    "DeviceRequest",
    "DeviceUseStatement",
    "DiagnosticReport",
    "DocumentManifest",
    "DocumentReference",
    "EffectEvidenceSynthesis",
    "Encounter",
    "Endpoint",
    "EnrollmentRequest",
    "EnrollmentResponse",
    "EpisodeOfCare",
    "EventDefinition",
    "Evidence",
    "EvidenceVariable",
    "ExampleScenario",
    "ExplanationOfBenefit",
    "FamilyMemberHistory",
    "Flag",
    "Goal",
    "GraphDefinition",
    "Group",
    "GuidanceResponse",
    "HealthcareService",
    "ImagingStudy",
    "Immunization",
    "ImmunizationEvaluation",
    "ImmunizationRecommendation",
    "ImplementationGuide",
    "InsurancePlan",
    "Invoice",
    "Library",
    "Linkage",
    "List",
    "Location",
    "Measure",
    "MeasureReport",
    "Media",
    "Medication",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationKnowledge",
    "MedicationRequest",
    "MedicationStatement",
    "MedicinalProduct",
    "MedicinalProductAuthorization",
    "MedicinalProductContraindication",
    "MedicinalProductIndication",
    "MedicinalProductIngredient",
    "MedicinalProductInteraction",
    "MedicinalProductManufactured",
    "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect",
    "MessageDefinition",
    "MessageHeader",
    "MolecularSequence",
    "NamingSystem",
    "NutritionOrder",
    "Observation",
    "ObservationDefinition",
    "OperationDefinition",
    "OperationOutcome",
    "Organization",
    "OrganizationAffiliation",
    "Parameters",
    "Patient",
    "PaymentNotice",
    "PaymentReconciliation",
    "Person",
    "PlanDefinition",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "Questionnaire",
    "QuestionnaireResponse",
    "RelatedPerson",
    "RequestGroup",
    "ResearchDefinition",
    "ResearchElementDefinition",
    "ResearchStudy",
    "ResearchSubject",
    "RiskAssessment",
    "RiskEvidenceSynthesis",
    "Schedule",
    "SearchParameter",
    "ServiceRequest",
    "Slot",
    "Specimen",
    "SpecimenDefinition",
    "StructureDefinition",
    "StructureMap",
    "Subscription",
    "SubscriptionStatus",
    "SubscriptionTopic",
    "Substance",
    "SubstanceNucleicAcid",
    "SubstancePolymer",
    "SubstanceProtein",
    "SubstanceReferenceInformation",
    "SubstanceSourceMaterial",
    "SubstanceSpecification",
    "SupplyDelivery",
    "SupplyRequest",
    "Task",
    "TerminologyCapabilities",
    "TestReport",
    "TestScript",
    "ValueSet",
    "VerificationResult",
    "VisionPrescription",
];

/// R4 appointmentstatus (required binding).
const APPOINTMENT_STATUS: &[&str] = &[
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
];
/// R4 participationstatus.
const PARTICIPATION_STATUS: &[&str] = &["accepted", "declined", "tentative", "needs-action"];
/// R4 medicationrequest-status.
const MEDREQ_STATUS: &[&str] = &[
    "active",
    "on-hold",
    "cancelled",
    "completed",
    "entered-in-error",
    "stopped",
    "draft",
    "unknown",
];
/// R4 medicationrequest-intent.
const MEDREQ_INTENT: &[&str] = &[
    "proposal",
    "plan",
    "order",
    "original-order",
    "reflex-order",
    "filler-order",
    "instance-order",
    "option",
];
/// R4 bundle-type, and R4B's subscription-notification.
const BUNDLE_TYPE: &[&str] = &[
    "document",
    "message",
    "transaction",
    "transaction-response",
    "batch",
    "batch-response",
    "history",
    "searchset",
    "collection",
    "subscription-notification",
];
/// Backport / R4B subscription-notification-type.
const NOTIFICATION_TYPE: &[&str] = &[
    "handshake",
    "heartbeat",
    "event-notification",
    "query-status",
    "query-event",
];
/// Backport / R4B subscription-status (R5 adds entered-in-error).
const SUBSCRIPTION_STATUS: &[&str] = &["requested", "active", "error", "off", "entered-in-error"];

/// Checks a notification body for the subscription `expect` describes. An
/// empty body (R4 without payload, N2) passes.
pub fn check(text: &str, expect: &Expect<'_>) -> Result<(), Refusal> {
    if text.trim().is_empty() {
        return Ok(());
    }
    let json = strict::parse(text).map_err(|e| Refusal {
        unprocessable: false,
        issues: vec![ElementIssue {
            expression: "Resource".into(),
            code: "invalid",
            message: format!(
                "The body is not JSON (line {}, column {}).",
                e.line, e.column
            ),
        }],
    })?;
    let root = root_name(&json);
    let breaches = strict::representation(&json, root, LIMIT);
    if !breaches.is_empty() {
        return Err(Refusal {
            unprocessable: false,
            issues: breaches
                .into_iter()
                .map(|(expression, b)| ElementIssue {
                    expression,
                    code: "structure",
                    message: b.message().into(),
                })
                .collect(),
        });
    }
    if json.as_object().is_none() {
        return Err(Refusal {
            unprocessable: false,
            issues: vec![issue(
                "Resource",
                "invalid",
                "The body must be a FHIR resource: a JSON object with resourceType.",
            )],
        });
    }
    let mut cx = Cx {
        issues: Vec::new(),
        base: expect.base_url.map(|b| b.trim_end_matches('/')),
    };
    cx.resource(&json, root);
    // Judged by shape, as `service::ehr` processes it: the followed resource
    // (R4 with payload, N2), or a notification Bundle (Backport, N6).
    let rt = json.get("resourceType").and_then(Json::as_str);
    let follows = format!(
        "This subscription follows {}; the notification carries another type.",
        expect.resource_type
    );
    if rt == Some("Bundle") && expect.resource_type != "Bundle" {
        let before = cx.issues.len();
        cx.backport(&json, expect.resource_type);
        if cx.issues.len() > before && !expect.backport {
            cx.push("Bundle.resourceType", "not-supported", &follows);
        }
    } else if rt != Some(expect.resource_type) && root != "Resource" {
        cx.push(&format!("{root}.resourceType"), "not-supported", &follows);
    }
    if cx.issues.is_empty() {
        Ok(())
    } else {
        Err(Refusal {
            unprocessable: true,
            issues: cx.issues,
        })
    }
}

fn issue(expression: &str, code: &'static str, message: &str) -> ElementIssue {
    ElementIssue {
        expression: expression.into(),
        code,
        message: message.into(),
    }
}

/// The root of every expression: the resource type when the body names one
/// known type once, else `Resource` (so no caller text leads an expression).
fn root_name(json: &Json) -> &'static str {
    match json.get("resourceType").and_then(Json::as_str) {
        Some(t) if json.count("resourceType") == 1 => known_type(t).unwrap_or("Resource"),
        _ => "Resource",
    }
}

fn known_type(t: &str) -> Option<&'static str> {
    RESOURCE_TYPES.iter().find(|k| **k == t).copied()
}

/// A FHIR id: `[A-Za-z0-9\-\.]{1,64}`, and not dots only (`.`, `..` are path
/// segments, never ids Herald would put in a URL).
pub fn is_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !s.chars().all(|c| c == '.')
}

fn is_type_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// `Type/id` or `Type/id/_history/vid`: the type.
fn relative_type(r: &str) -> Option<&str> {
    let parts: Vec<&str> = r.split('/').collect();
    match parts.as_slice() {
        [t, id] if is_type_name(t) && is_id(id) => Some(*t),
        [t, id, "_history", v] if is_type_name(t) && is_id(id) && is_id(v) => Some(*t),
        _ => None,
    }
}

fn is_urn(r: &str) -> bool {
    if let Some(u) = r.strip_prefix("urn:uuid:") {
        // A UUID; some servers drop the dashes or write upper case.
        return (1..=64).contains(&u.len()) && u.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    }
    if let Some(o) = r.strip_prefix("urn:oid:") {
        return !o.is_empty()
            && o.chars().all(|c| c.is_ascii_digit() || c == '.')
            && !o.starts_with('.')
            && !o.ends_with('.');
    }
    false
}

/// What a reference or fullUrl points at.
enum Target<'a> {
    /// A resource of this type on the EHR (relative, or under the base).
    Ehr(&'a str),
    /// Inside the Bundle or the resource (`urn:uuid:`, `#id`).
    Local,
    /// Absolute, but not under `ehr.base_url`.
    Foreign,
    /// Not a reference at all.
    Malformed,
}

fn target<'a>(r: &'a str, base: Option<&str>) -> Target<'a> {
    if let Some(local) = r.strip_prefix('#') {
        return if local.is_empty() || is_id(local) {
            Target::Local
        } else {
            Target::Malformed
        };
    }
    if r.starts_with("urn:") {
        return if is_urn(r) {
            Target::Local
        } else {
            Target::Malformed
        };
    }
    if r.contains(':') {
        // Absolute: the scheme, host, port and base path must be the EHR's.
        let rest = base.and_then(|b| {
            let head = r.get(..b.len())?;
            let tail = r.get(b.len()..)?;
            (head.eq_ignore_ascii_case(b))
                .then_some(tail)?
                .strip_prefix('/')
        });
        return match rest {
            Some(rel) => relative_type(rel).map_or(Target::Malformed, Target::Ehr),
            None => Target::Foreign,
        };
    }
    relative_type(r).map_or(Target::Malformed, Target::Ehr)
}

/// The datatypes of temporal elements Herald can tell by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Temporal {
    Date,
    DateTime,
    Instant,
    Time,
    /// A date, dateTime or instant (elements named `date`/`…Date`, whose type
    /// differs by resource).
    Any,
}

/// Who holds an element: a resource of a type, or an element by its key.
#[derive(Clone, Copy)]
enum Owner<'a> {
    Resource(&'a str),
    Element(&'a str),
}

fn temporal(key: &str, owner: Owner<'_>) -> Option<Temporal> {
    match key {
        "lastUpdated" | "lastModified" | "ifModifiedSince" | "timestamp" | "valueInstant"
        | "issued" | "recorded" => {
            return Some(Temporal::Instant);
        }
        "birthDate" | "valueDate" => return Some(Temporal::Date),
        "valueTime" => return Some(Temporal::Time),
        "authoredOn" | "created" | "dateTime" => return Some(Temporal::DateTime),
        "start" | "end" => {
            return match owner {
                Owner::Resource("Appointment" | "Slot") => Some(Temporal::Instant),
                Owner::Resource("Subscription") if key == "end" => Some(Temporal::Instant),
                Owner::Element(k) if k.ends_with("eriod") => Some(Temporal::DateTime),
                _ => None,
            };
        }
        "event" => {
            return matches!(owner, Owner::Element("timing")).then_some(Temporal::DateTime);
        }
        _ => {}
    }
    if key.ends_with("DateTime") {
        Some(Temporal::DateTime)
    } else if key.ends_with("Instant") {
        Some(Temporal::Instant)
    } else if key == "date" || key.ends_with("Date") {
        Some(Temporal::Any)
    } else {
        None
    }
}

/// Exactly `n` ASCII digits at the front of `s`.
fn digits(s: &str, n: usize) -> Option<(u32, &str)> {
    let head = s.get(..n)?;
    if !head.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, s.get(n..)?))
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (a real day): the rest and whether the
/// date was complete.
fn date_part(s: &str) -> Option<(&str, bool)> {
    let (y, rest) = digits(s, 4)?;
    if y == 0 {
        return None;
    }
    let Some(rest) = rest.strip_prefix('-') else {
        return Some((rest, false));
    };
    let (m, rest) = digits(rest, 2)?;
    if !(1..=12).contains(&m) {
        return None;
    }
    let Some(rest) = rest.strip_prefix('-') else {
        return Some((rest, false));
    };
    let (d, rest) = digits(rest, 2)?;
    chrono::NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)?;
    Some((rest, true))
}

/// `hh:mm:ss(.fraction)?` with hh ≤ 23, mm ≤ 59, ss ≤ 60 (R4 allows a leap second).
fn time_part(s: &str) -> Option<&str> {
    let (h, rest) = digits(s, 2)?;
    let (m, rest) = digits(rest.strip_prefix(':')?, 2)?;
    let (sec, rest) = digits(rest.strip_prefix(':')?, 2)?;
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    match rest.strip_prefix('.') {
        Some(f) => {
            let n = f.chars().take_while(char::is_ascii_digit).count();
            (n > 0).then(|| f.get(n..)).flatten()
        }
        None => Some(rest),
    }
}

/// `Z` or `±hh:mm` up to ±14:00, and nothing after.
fn zone(s: &str) -> bool {
    if s == "Z" {
        return true;
    }
    let Some(rest) = s.strip_prefix('+').or_else(|| s.strip_prefix('-')) else {
        return false;
    };
    let Some((h, rest)) = digits(rest, 2) else {
        return false;
    };
    let Some((m, rest)) = rest.strip_prefix(':').and_then(|r| digits(r, 2)) else {
        return false;
    };
    rest.is_empty() && ((h <= 13 && m <= 59) || (h == 14 && m == 0))
}

fn valid_temporal(s: &str, kind: Temporal) -> bool {
    if kind == Temporal::Time {
        return time_part(s).is_some_and(str::is_empty);
    }
    let Some((rest, full)) = date_part(s) else {
        return false;
    };
    if rest.is_empty() {
        return match kind {
            Temporal::Date | Temporal::DateTime | Temporal::Any => true,
            Temporal::Instant | Temporal::Time => false,
        };
    }
    if kind == Temporal::Date || !full {
        return false;
    }
    rest.strip_prefix('T').and_then(time_part).is_some_and(zone)
}

fn temporal_message(kind: Temporal) -> &'static str {
    match kind {
        Temporal::Date => "Not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD, a real day).",
        Temporal::DateTime => {
            "Not a FHIR dateTime (a real date; with a time, hh ≤ 23, mm ≤ 59 and a zone)."
        }
        Temporal::Instant => {
            "Not a FHIR instant (YYYY-MM-DDThh:mm:ss with a real date and time, and a zone)."
        }
        Temporal::Time => "Not a FHIR time (hh:mm:ss, hh ≤ 23, mm ≤ 59).",
        Temporal::Any => "Not a FHIR date, dateTime or instant (a real date; a time needs a zone).",
    }
}

/// Decimal digits only (event numbers, which R4 carries as strings).
fn is_count(v: &Json) -> bool {
    match v {
        Json::String(s) => !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()),
        Json::Number(n) => n.is_u64(),
        _ => false,
    }
}

struct Cx<'b> {
    issues: Vec<ElementIssue>,
    base: Option<&'b str>,
}

impl Cx<'_> {
    fn push(&mut self, expression: &str, code: &'static str, message: &str) {
        if self.issues.len() < LIMIT && !self.issues.iter().any(|i| i.expression == expression) {
            self.issues.push(issue(expression, code, message));
        }
    }

    /// A resource at `path`: its type, id, required codes, and its elements.
    fn resource(&mut self, v: &Json, path: &str) {
        let Some(members) = v.as_object() else {
            self.push(
                path,
                "invalid",
                "A resource is a JSON object with resourceType.",
            );
            return;
        };
        let rt = v.get("resourceType").and_then(Json::as_str);
        let Some(rt) = rt.and_then(known_type) else {
            self.push(
                &format!("{path}.resourceType"),
                "invalid",
                "resourceType must name a FHIR R4 resource type, spelled as FHIR spells it.",
            );
            return;
        };
        match v.get("id") {
            None => {}
            Some(Json::String(id)) if is_id(id) => {}
            Some(_) => self.push(
                &format!("{path}.id"),
                "value",
                "Not a FHIR id ([A-Za-z0-9-.]{1,64}, not dots only).",
            ),
        }
        match rt {
            "Appointment" => {
                self.code(v, path, "status", APPOINTMENT_STATUS, true);
                self.appointment_times(v, path);
                if v.get("participant").is_none() {
                    self.push(
                        &format!("{path}.participant"),
                        "required",
                        "An Appointment has at least one participant (R4 1..*).",
                    );
                }
                for (i, p) in v
                    .get("participant")
                    .and_then(Json::as_array)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    self.code(
                        p,
                        &format!("{path}.participant[{i}]"),
                        "status",
                        PARTICIPATION_STATUS,
                        true,
                    );
                }
            }
            "MedicationRequest" => {
                self.code(v, path, "status", MEDREQ_STATUS, true);
                self.code(v, path, "intent", MEDREQ_INTENT, true);
                if v.get("subject").is_none() {
                    self.push(
                        &format!("{path}.subject"),
                        "required",
                        "A MedicationRequest names its subject (R4 1..1).",
                    );
                }
                if v.get("medicationCodeableConcept").is_none()
                    && v.get("medicationReference").is_none()
                {
                    self.push(
                        &format!("{path}.medication[x]"),
                        "required",
                        "A MedicationRequest names its medication (R4 1..1).",
                    );
                }
            }
            "Bundle" => self.code(v, path, "type", BUNDLE_TYPE, true),
            "SubscriptionStatus" => {
                self.code(v, path, "type", NOTIFICATION_TYPE, true);
                self.code(v, path, "status", SUBSCRIPTION_STATUS, false);
            }
            _ => {}
        }
        self.members(members, path, Owner::Resource(rt));
    }

    /// app-2: start and end together or neither; app-3: only proposed,
    /// cancelled or waitlist appointments may lack them.
    fn appointment_times(&mut self, v: &Json, path: &str) {
        let status = v.get("status").and_then(Json::as_str);
        let open = matches!(status, Some("proposed" | "cancelled" | "waitlist"));
        for (key, other) in [("start", "end"), ("end", "start")] {
            let missing = v.get(key).is_none();
            if missing && (v.get(other).is_some() || (!open && status.is_some())) {
                self.push(
                    &format!("{path}.{key}"),
                    "invariant",
                    "start and end come together, and only proposed, cancelled or waitlist appointments may lack them (app-2, app-3).",
                );
            }
        }
    }

    /// A code element bound to a required value set.
    fn code(&mut self, v: &Json, path: &str, key: &str, set: &[&str], required: bool) {
        let at = format!("{path}.{key}");
        match v.get(key) {
            None if required => self.push(&at, "required", "This element is required."),
            None => {}
            Some(Json::String(c)) if set.contains(&c.as_str()) => {}
            Some(_) => self.push(&at, "code-invalid", "Not a code of the required value set."),
        }
    }

    fn members(&mut self, members: &[(String, Json)], path: &str, owner: Owner<'_>) {
        for (k, v) in members {
            let at = format!("{path}.{}", strict::segment(k));
            match (k.as_str(), v) {
                ("reference", Json::String(r)) => self.reference(r, &at),
                ("fullUrl", Json::String(r)) => {
                    let bad = match target(r, self.base) {
                        Target::Ehr(t) => known_type(t).is_none(),
                        Target::Local => r.starts_with('#'),
                        Target::Foreign | Target::Malformed => true,
                    };
                    if bad {
                        self.push(
                            &at,
                            "value",
                            "fullUrl must be urn:uuid:/urn:oid: or Type/id on the EHR's base URL.",
                        );
                    }
                }
                ("resource", Json::Object(_)) => self.resource(v, &at),
                ("contained", Json::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        self.resource(item, &format!("{at}[{i}]"));
                    }
                }
                _ => {
                    if let Some(kind) = temporal(k, owner) {
                        self.check_temporal(v, &at, kind);
                    }
                    self.element(v, &at, k);
                }
            }
        }
    }

    fn element(&mut self, v: &Json, path: &str, key: &str) {
        match v {
            Json::Object(m) => self.members(m, path, Owner::Element(key)),
            Json::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Json::Object(m) = item {
                        self.members(m, &format!("{path}[{i}]"), Owner::Element(key));
                    }
                }
            }
            _ => {}
        }
    }

    fn check_temporal(&mut self, v: &Json, path: &str, kind: Temporal) {
        match v {
            Json::String(s) if !valid_temporal(s, kind) => {
                self.push(path, "value", temporal_message(kind));
            }
            Json::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Json::String(s) = item
                        && !valid_temporal(s, kind)
                    {
                        self.push(&format!("{path}[{i}]"), "value", temporal_message(kind));
                    }
                }
            }
            _ => {}
        }
    }

    fn reference(&mut self, r: &str, path: &str) {
        // Medplum writes `meta.author` as {"reference": "system"} for its own
        // writes: a bare word in meta points nowhere, so it is let through.
        if path.contains(".meta.") && !r.contains('/') && !r.contains(':') && is_id(r) {
            return;
        }
        match target(r, self.base) {
            // Outside meta (where Medplum keeps Project/… compartments) a
            // reference names an R4 resource type: "Patinet/1" is refused.
            Target::Ehr(t) if known_type(t).is_none() && !path.contains(".meta.") => self.push(
                path,
                "value",
                "The reference's type is not a FHIR R4 resource type.",
            ),
            Target::Ehr(_) | Target::Local => {}
            Target::Foreign => self.push(
                path,
                "value",
                "The reference is on another server: references must be relative or on the EHR's base URL.",
            ),
            Target::Malformed => self.push(
                path,
                "value",
                "Not a FHIR reference (Type/id, Type/id/_history/vid, urn:uuid:, #id).",
            ),
        }
    }

    /// A focus must be of the followed type (when its type can be told).
    fn focus(&mut self, r: Option<&str>, path: &str, follows: &str) {
        if let Some(Target::Ehr(t)) = r.map(|r| target(r, self.base))
            && t != follows
        {
            self.push(
                path,
                "not-supported",
                &format!("This subscription follows {follows}; the focus is another type."),
            );
        }
    }

    /// A Backport notification Bundle (N6, B: notifications.html).
    fn backport(&mut self, b: &Json, follows: &str) {
        let btype = b.get("type").and_then(Json::as_str);
        if let Some(t) = btype
            && BUNDLE_TYPE.contains(&t)
            && !matches!(t, "history" | "subscription-notification")
        {
            self.push(
                "Bundle.type",
                "not-supported",
                "A notification is a history Bundle (R4B: subscription-notification).",
            );
        }
        let Some(entries) = b.get("entry").and_then(Json::as_array) else {
            self.push(
                "Bundle.entry",
                "required",
                "A notification Bundle carries the subscription status as its first entry.",
            );
            return;
        };
        let is_status = |e: &Json| {
            matches!(
                e.get("resource")
                    .and_then(|r| r.get("resourceType"))
                    .and_then(Json::as_str),
                Some("Parameters" | "SubscriptionStatus")
            )
        };
        for (i, e) in entries.iter().enumerate().skip(1) {
            if is_status(e) {
                self.push(
                    &format!("Bundle.entry[{i}]"),
                    "invariant",
                    "Only the first entry of a notification is the subscription status.",
                );
            }
        }
        let first = entries.first().and_then(|e| e.get("resource"));
        let path = "Bundle.entry[0].resource";
        match first.and_then(|r| r.get("resourceType")).and_then(Json::as_str) {
            Some("Parameters") if btype != Some("subscription-notification") => {
                if let Some(p) = first {
                    self.status_parameters(p, path, follows);
                }
            }
            Some("SubscriptionStatus") => {
                if let Some(s) = first {
                    self.subscription_status(s, path, follows);
                }
            }
            _ => self.push(
                "Bundle.entry[0]",
                "invariant",
                "The first entry of a notification is the subscription status (R4: Parameters, R4B: SubscriptionStatus).",
            ),
        }
    }

    /// R4: Parameters with the backport-subscription-status-r4 profile.
    fn status_parameters(&mut self, p: &Json, path: &str, follows: &str) {
        let params = p
            .get("parameter")
            .and_then(Json::as_array)
            .unwrap_or_default();
        for (name, set) in [
            ("subscription", None),
            ("status", Some(SUBSCRIPTION_STATUS)),
            ("type", Some(NOTIFICATION_TYPE)),
        ] {
            let found: Vec<(usize, &Json)> = named(params, name).collect();
            if found.is_empty() {
                self.push(
                    &format!("{path}.parameter.where(name='{name}')"),
                    "required",
                    "The subscription status carries subscription, status and type.",
                );
            }
            if let Some(set) = set {
                for (i, x) in found {
                    match x.get("valueCode") {
                        Some(Json::String(c)) if set.contains(&c.as_str()) => {}
                        _ => self.push(
                            &format!("{path}.parameter[{i}].valueCode"),
                            "code-invalid",
                            "Not a code of the required value set.",
                        ),
                    }
                }
            }
        }
        for (i, x) in named(params, "events-since-subscription-start") {
            if let Some((k, v)) = value_of(x)
                && !is_count(v)
            {
                self.push(
                    &format!("{path}.parameter[{i}].{k}"),
                    "value",
                    "An event count is a non-negative whole number.",
                );
            }
        }
        for (i, x) in named(params, "notification-event") {
            let parts = x.get("part").and_then(Json::as_array).unwrap_or_default();
            for (j, part) in parts.iter().enumerate() {
                let at = format!("{path}.parameter[{i}].part[{j}]");
                match part.get("name").and_then(Json::as_str) {
                    Some("event-number") if value_of(part).is_none_or(|(_, v)| !is_count(v)) => {
                        self.push(
                            &format!("{at}.valueString"),
                            "value",
                            "An event number is a non-negative whole number.",
                        );
                    }
                    Some("focus") => {
                        let r = part
                            .get("valueReference")
                            .and_then(|v| v.get("reference"))
                            .and_then(Json::as_str);
                        self.focus(r, &format!("{at}.valueReference.reference"), follows);
                    }
                    _ => {}
                }
            }
        }
    }

    /// R4B: SubscriptionStatus (type and status are checked as a resource).
    fn subscription_status(&mut self, s: &Json, path: &str, follows: &str) {
        if s.get("subscription").is_none() {
            self.push(
                &format!("{path}.subscription"),
                "required",
                "The subscription status names its subscription.",
            );
        }
        if let Some(n) = s.get("eventsSinceSubscriptionStart")
            && !is_count(n)
        {
            self.push(
                &format!("{path}.eventsSinceSubscriptionStart"),
                "value",
                "An event count is a non-negative whole number.",
            );
        }
        let events = s
            .get("notificationEvent")
            .and_then(Json::as_array)
            .unwrap_or_default();
        for (i, ev) in events.iter().enumerate() {
            let at = format!("{path}.notificationEvent[{i}]");
            if ev.get("eventNumber").is_none_or(|n| !is_count(n)) {
                self.push(
                    &format!("{at}.eventNumber"),
                    "value",
                    "An event number is a non-negative whole number.",
                );
            }
            let r = ev
                .get("focus")
                .and_then(|f| f.get("reference"))
                .and_then(Json::as_str);
            self.focus(r, &format!("{at}.focus.reference"), follows);
        }
    }
}

/// The parameters called `name`, with their index.
fn named<'a>(params: &'a [Json], name: &'a str) -> impl Iterator<Item = (usize, &'a Json)> + 'a {
    params
        .iter()
        .enumerate()
        .filter(move |(_, x)| x.get("name").and_then(Json::as_str) == Some(name))
}

/// A parameter's `value[x]`: its key and value.
fn value_of(p: &Json) -> Option<(&str, &Json)> {
    p.as_object()?
        .iter()
        .find(|(k, _)| k.starts_with("value"))
        .map(|(k, v)| (strict::segment(k), v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporal_grammar_and_calendar() {
        use Temporal::*;
        for (s, kind, ok) in [
            ("2026", DateTime, true),
            ("2026-12", DateTime, true),
            ("2026-12-06", DateTime, true),
            ("2026-12-06T15:00:00Z", DateTime, true),
            ("2026-12-06T15:00:00.1234567-05:00", Instant, true),
            ("2028-02-29T09:00:00+14:00", Instant, true),
            ("2026-12-01T23:59:60Z", DateTime, true),
            ("2026-12-06", Date, true),
            ("10:15:00", Time, true),
            ("2026-12-06", Any, true),
            ("2026-12-06T15:00:00Z", Any, true),
            ("2026-02-30", Date, false),
            ("2026-02-29", Date, false),
            ("2026-13-01", DateTime, false),
            ("2026-00-10", DateTime, false),
            ("2026-04-31", DateTime, false),
            ("2026-06-00", Date, false),
            ("0000-01-01", Date, false),
            ("2026-12-06T24:00:00Z", Instant, false),
            ("2026-12-06T23:61:00Z", Instant, false),
            ("2026-12-06T15:00:00", Instant, false),
            ("2026-12-06T15:00:00", DateTime, false),
            ("2026-12-06", Instant, false),
            ("2026-12-06T15:00Z", Instant, false),
            ("2026-12-06T15:00:00+14:30", Instant, false),
            ("2026-12-06T15:00:00+25:00", DateTime, false),
            ("2026-12-06T15:00:00.Z", Instant, false),
            ("2026-12-06T15:00:00Z ", Instant, false),
            ("2026-12T15:00:00Z", DateTime, false),
            ("2026-12-06T15:00:00Z", Date, false),
            ("26-12-06", Date, false),
            ("２０２６-12-06", Date, false),
            ("24:00:00", Time, false),
        ] {
            assert_eq!(valid_temporal(s, kind), ok, "{s} as {kind:?}");
        }
    }

    #[test]
    fn ids_and_references() {
        let (long, too_long) = ("a".repeat(64), "a".repeat(65));
        for (id, ok) in [
            ("a1", true),
            ("A-b.C", true),
            (long.as_str(), true),
            ("", false),
            (".", false),
            ("..", false),
            ("a/b", false),
            ("a b", false),
            ("é", false),
            (too_long.as_str(), false),
        ] {
            assert_eq!(is_id(id), ok, "{id:?}");
        }
        let base = Some("https://ehr.example.org/fhir/R4");
        let kind = |r: &str| match target(r, base) {
            Target::Ehr(t) => format!("ehr {t}"),
            Target::Local => "local".into(),
            Target::Foreign => "foreign".into(),
            Target::Malformed => "malformed".into(),
        };
        for (r, want) in [
            ("Patient/p1", "ehr Patient"),
            ("Patient/p1/_history/2", "ehr Patient"),
            ("https://ehr.example.org/fhir/R4/Patient/p1", "ehr Patient"),
            ("HTTPS://EHR.example.org/fhir/R4/Location/l", "ehr Location"),
            ("urn:uuid:2d4a6c1e-0b52-4f3e-9a53-6c2e8f0d1a01", "local"),
            ("urn:oid:1.2.3", "local"),
            ("#q1", "local"),
            ("https://evil.example.com/fhir/Patient/p1", "foreign"),
            (
                "https://ehr.example.org.evil.example/fhir/R4/Patient/p1",
                "foreign",
            ),
            ("https://ehr.example.org/fhir/R4x/Patient/p1", "foreign"),
            ("http://ehr.example.org/fhir/R4/Patient/p1", "foreign"),
            (
                "https://ehr.example.org@evil.example.com/fhir/R4/Patient/p1",
                "foreign",
            ),
            ("https://ehr.example.org/fhir/R4/../Patient/p1", "malformed"),
            ("Patient/../../admin", "malformed"),
            ("Patient/p1?x=1", "malformed"),
            ("patient/p1", "malformed"),
            ("Patient", "malformed"),
            ("urn:uuid:nope", "malformed"),
        ] {
            assert_eq!(kind(r), want, "{r}");
        }
        // Medplum's meta.author "system" is no reference, but harmless in meta.
        let e = Expect {
            resource_type: "Appointment",
            backport: false,
            base_url: None,
        };
        let medplum = r#"{"resourceType":"Appointment","id":"a1","status":"proposed",
            "meta":{"author":{"reference":"system"}},"participant":[{"status":"needs-action","actor":{"reference":"Patient/p1"}}]}"#;
        assert_eq!(check(medplum, &e), Ok(()));
        assert!(check(&medplum.replace("meta", "subject"), &e).is_err());
        // No base configured: absolute references cannot be vouched for.
        assert!(matches!(
            target("https://ehr.example.org/fhir/R4/Patient/p1", None),
            Target::Foreign
        ));
    }

    fn refused(text: &str, backport: bool) -> Vec<String> {
        let e = Expect {
            resource_type: "Appointment",
            backport,
            base_url: Some("https://ehr.example.org/fhir/R4/"),
        };
        match check(text, &e) {
            Ok(()) => Vec::new(),
            Err(r) => r.issues.into_iter().map(|i| i.expression).collect(),
        }
    }

    #[test]
    fn a_resource_is_checked_where_herald_reads_it() {
        let ok = r#"{"resourceType":"Appointment","id":"a1","status":"booked",
            "start":"2026-12-06T15:00:00Z","end":"2026-12-06T15:30:00Z","participant":[{"actor":{"reference":"Patient/p1"},"status":"accepted"}],
            "extension":[{"url":"http://x.example/e","valueString":"anything"}],"vendorThing":{"whatever":1}}"#;
        assert!(refused(ok, false).is_empty());
        assert!(refused("", false).is_empty(), "N2: an empty notification");
        assert_eq!(
            refused(
                &ok.replace("\"booked\"", "\"booked\",\"status\":\"booked\""),
                false
            ),
            ["Appointment.status"]
        );
        assert_eq!(
            refused(&ok.replace("Patient/p1", "Patinet/p1"), false),
            ["Appointment.participant[0].actor.reference"]
        );
        assert_eq!(
            refused(&ok.replace("Appointment", "Patient"), false),
            ["Patient.resourceType"]
        );
        assert_eq!(
            refused(&ok.replace("\"a1\"", "\"..\""), false),
            ["Appointment.id"]
        );
        assert!(refused(ok, true).is_empty(), "processed by shape");
        assert_eq!(
            refused(
                &ok.replace("\"start\":\"2026-12-06T15:00:00Z\",", ""),
                false
            ),
            ["Appointment.start"],
            "app-3: a booked appointment has a start"
        );
        assert_eq!(refused("{\"a\":", false), ["Resource"]);
        assert_eq!(refused("42", false), ["Resource"]);
    }

    #[test]
    fn backport_bundles_put_the_status_first() {
        let status = r#"{"resource":{"resourceType":"Parameters","parameter":[
            {"name":"subscription","valueReference":{"reference":"Subscription/r1"}},
            {"name":"status","valueCode":"active"},{"name":"type","valueCode":"event-notification"},
            {"name":"notification-event","part":[{"name":"event-number","valueString":"3"},
              {"name":"focus","valueReference":{"reference":"Appointment/a1"}}]}]},
            "request":{"method":"GET","url":"Subscription/r1/$status"}}"#;
        let appt = r#"{"fullUrl":"https://ehr.example.org/fhir/R4/Appointment/a1",
            "resource":{"resourceType":"Appointment","id":"a1","status":"booked",
              "start":"2026-12-06T15:00:00Z","end":"2026-12-06T15:30:00Z","participant":[{"status":"accepted","actor":{"reference":"Patient/p1"}}]},
            "request":{"method":"PUT","url":"Appointment/a1"}}"#;
        let bundle = |t: &str, entries: &[&str]| {
            format!(
                r#"{{"resourceType":"Bundle","type":"{t}","entry":[{}]}}"#,
                entries.join(",")
            )
        };
        assert!(refused(&bundle("history", &[status, appt]), true).is_empty());
        assert_eq!(
            refused(&bundle("history", &[appt, status]), true),
            ["Bundle.entry[1]", "Bundle.entry[0]"]
        );
        assert_eq!(
            refused(&bundle("transaction", &[status, appt]), true),
            ["Bundle.type"]
        );
        assert_eq!(
            refused(
                &bundle(
                    "history",
                    &[&status.replace("Appointment/a1", "Patient/p1")]
                ),
                true
            ),
            ["Bundle.entry[0].resource.parameter[3].part[1].valueReference.reference"]
        );
        assert_eq!(
            refused(
                &bundle(
                    "history",
                    &[status, &appt.replace("https://ehr", "https://evil")]
                ),
                true
            ),
            ["Bundle.entry[1].fullUrl"]
        );
        assert_eq!(
            refused(&bundle("subscription-notification", &[status]), true),
            ["Bundle.entry[0]"],
            "R4B's Bundle type carries an R4B SubscriptionStatus"
        );
    }
}
