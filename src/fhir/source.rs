//! EHR sources. [`FixtureEhr`] serves the bundled synthetic data in
//! `fixtures/fhir/demo` as if it were an EHR's FHIR API (`herald demo`).
// serde_json::Value indexing yields Null for a missing key or index; it never panics.
#![allow(clippy::indexing_slicing)]

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The practice details the fixture manifest gives.
#[derive(Debug, Clone)]
pub struct Practice {
    /// Brand name.
    pub name: String,
    /// Phone.
    pub phone: String,
    /// Portal link.
    pub portal: String,
}

/// The bundled synthetic EHR.
#[derive(Debug, Clone)]
pub struct FixtureEhr {
    /// Where it was loaded from.
    pub dir: PathBuf,
    /// The instant the fixtures are written around.
    pub now: DateTime<Utc>,
    /// Practice details.
    pub practice: Practice,
    patients: BTreeMap<String, Value>,
    locations: BTreeMap<String, Value>,
    appointments: Vec<Value>,
    medication_requests: Vec<Value>,
    consents: Vec<Value>,
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not JSON: {e}", path.display()))
}

fn by_id(bundle: &Value) -> BTreeMap<String, Value> {
    super::bundle_resources(bundle)
        .into_iter()
        .filter_map(|r| r["id"].as_str().map(String::from).map(|id| (id, r)))
        .collect()
}

impl FixtureEhr {
    /// The base URL reported in audit records.
    pub const BASE: &'static str = "urn:herald:fixture-ehr";

    /// Loads `dir` (e.g. `fixtures/fhir/demo`).
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let manifest = read_json(&dir.join("manifest.json"))?;
        let now = manifest["now"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .ok_or_else(|| anyhow::anyhow!("{}: manifest.json needs \"now\"", dir.display()))?
            .with_timezone(&Utc);
        let p = &manifest["practice"];
        let s = |v: &Value, d: &str| v.as_str().unwrap_or(d).to_string();
        Ok(Self {
            dir: dir.to_path_buf(),
            now,
            practice: Practice {
                name: s(&p["name"], "Herald Demo Health"),
                phone: s(&p["phone"], "+18005550100"),
                portal: s(&p["portal"], "https://portal.example.org"),
            },
            patients: by_id(&read_json(&dir.join("patients.json"))?),
            locations: by_id(&read_json(&dir.join("locations.json"))?),
            appointments: super::bundle_resources(&read_json(&dir.join("appointments.json"))?),
            medication_requests: super::bundle_resources(&read_json(
                &dir.join("medication-requests.json"),
            )?),
            consents: super::bundle_resources(&read_json(&dir.join("consents.json"))?),
        })
    }

    /// GET Patient/{id}.
    pub fn read_patient(&self, id: &str) -> Option<&Value> {
        self.patients.get(id)
    }

    /// The zone of Location/{id}.
    pub fn location_tz(&self, id: &str) -> Option<Tz> {
        self.locations.get(id).and_then(super::location_timezone)
    }

    /// GET Appointment (everything).
    pub fn appointments(&self) -> &[Value] {
        &self.appointments
    }

    /// GET MedicationRequest (everything).
    pub fn medication_requests(&self) -> &[Value] {
        &self.medication_requests
    }

    /// GET Consent (everything).
    pub fn consents(&self) -> &[Value] {
        &self.consents
    }

    /// Every patient id.
    pub fn patient_ids(&self) -> impl Iterator<Item = &String> {
        self.patients.keys()
    }
}
