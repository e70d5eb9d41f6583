//! Following the EHR: Herald's signing keys, `herald subscribe`, receiving
//! and processing notifications (R4 rest-hook and Backport topic-based), and
//! the poller per preset. Every resource, however it arrives (notification,
//! poll, replay), goes through `ingest`, where a version is processed once
//! and an older one never rolls state back (N12).
// serde_json::Value indexing yields Null for a missing key or index; it never panics.
#![allow(clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

use super::ingest::{self, IngestCtx, Ingested};
use crate::audit;
use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::KeyRing;
use crate::db::{self, DbConn, DbError, Pool, ehr as store, patients, resources};
use crate::domain::audit::{Activity, Actor, AuditRecord, Outcome};
use crate::fhir::client::{ClientConfig, FhirClient, FhirError, patients_of};
use crate::fhir::notification;
use crate::smart::backend::{BackendAuth, BackendConfig};
use crate::smart::jwt;

const BACKPORT_PROFILE: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription";
const BP: &str = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition";
const MEDPLUM_SECRET: &str = "https://www.medplum.com/fhir/StructureDefinition/subscription-secret";
/// The identifier system of the Consents Herald writes to the EHR.
pub const HERALD_CONSENT_SYSTEM: &str = "urn:herald:consent";
/// Processing attempts before a notification is parked as failed.
const MAX_ATTEMPTS: i32 = 5;
/// Statuses of an Appointment Herald still has plans for.
const LIVE_APPOINTMENT: [&str; 5] = ["proposed", "pending", "booked", "arrived", "checked-in"];

/// Why following the EHR failed.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// Configuration is missing something.
    #[error("{0}")]
    Config(String),
    /// A FHIR call failed.
    #[error(transparent)]
    Fhir(#[from] FhirError),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Ingest failed.
    #[error(transparent)]
    Ingest(#[from] ingest::IngestError),
    /// Keys.
    #[error("{0}")]
    Keys(String),
}

// ------------------------------------------------------------------ keys

/// Creates one RS384 and one ES384 key pair unless published keys exist.
/// Returns the kids made.
pub fn init_signing_keys(
    conn: &mut DbConn,
    ring: &KeyRing,
    now: DateTime<Utc>,
) -> Result<Vec<String>, FollowError> {
    let have = store::published_keys(conn, ring)?;
    let mut made = Vec::new();
    for alg in ["RS384", "ES384"] {
        if have.iter().any(|k| k.alg == alg) {
            continue;
        }
        made.push(add_signing_key(conn, ring, alg, now, now)?);
    }
    Ok(made)
}

fn add_signing_key(
    conn: &mut DbConn,
    ring: &KeyRing,
    alg: &str,
    now: DateTime<Utc>,
    sign_from: DateTime<Utc>,
) -> Result<String, FollowError> {
    let k = jwt::generate(alg).map_err(|e| FollowError::Keys(e.to_string()))?;
    store::insert_signing_key(
        conn,
        ring,
        &store::SigningKey {
            kid: k.kid.clone(),
            alg: k.alg,
            private_pem: k.private_pem,
            public_jwk: k.public_jwk.to_string(),
            created_at: now,
            sign_from,
        },
    )?;
    Ok(k.kid)
}

/// Rotation (S18): the new key is published now and signs only from
/// `now + publish_ahead`, so every EHR that caches Herald's JWKS has seen it
/// first. Keys of that algorithm older than the previous one are retired.
pub fn rotate_signing_key(
    conn: &mut DbConn,
    ring: &KeyRing,
    alg: &str,
    now: DateTime<Utc>,
    publish_ahead: chrono::Duration,
) -> Result<String, FollowError> {
    let have: Vec<_> = store::published_keys(conn, ring)?
        .into_iter()
        .filter(|k| k.alg == alg)
        .collect();
    // Keep the key that signs now and the newest one (which may not sign
    // yet); retire the rest.
    let mut keep = Vec::new();
    if let Some(k) = have
        .iter()
        .filter(|k| k.sign_from <= now)
        .max_by_key(|k| (k.sign_from, k.created_at))
    {
        keep.push(k.kid.clone());
    }
    if let Some(k) = have.iter().max_by_key(|k| (k.created_at, k.sign_from)) {
        keep.push(k.kid.clone());
    }
    store::retire_signing_keys_except(conn, alg, &keep, now)?;
    add_signing_key(conn, ring, alg, now, now + publish_ahead)
}

/// The public JWK Set (`/.well-known/jwks.json`).
pub fn jwks(conn: &mut DbConn) -> Result<Value, DbError> {
    let keys: Vec<Value> = store::public_jwks(conn)?
        .iter()
        .filter_map(|k| serde_json::from_str(k).ok())
        .collect();
    Ok(json!({ "keys": keys }))
}

// ------------------------------------------------------------------ follower

/// Everything needed to talk to the configured EHR.
pub struct Follower {
    /// Settings.
    pub settings: Arc<Settings>,
    /// Database.
    pub pool: Pool,
    /// Key ring.
    pub ring: Arc<KeyRing>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Token source (None when the EHR needs no auth).
    pub auth: Option<Arc<BackendAuth>>,
    http: reqwest::blocking::Client,
    base: String,
    sleep: Arc<dyn Fn(Duration) + Send + Sync>,
}

#[allow(clippy::disallowed_methods)]
fn real_sleep(d: Duration) {
    std::thread::sleep(d);
}

/// What a poll or a batch of notifications did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Resources looked at.
    pub seen: usize,
    /// Versions planned (new or changed).
    pub planned: usize,
    /// Same version again.
    pub duplicates: usize,
    /// Older version arriving late.
    pub stale: usize,
    /// Unusable resources skipped (logged).
    pub skipped: usize,
    /// Followed resources gone from the EHR.
    pub vanished: usize,
    /// Notifications processed.
    pub notifications: usize,
    /// Backport events recovered after a gap.
    pub recovered: usize,
}

impl Report {
    fn add(&mut self, o: &Report) {
        self.seen += o.seen;
        self.planned += o.planned;
        self.duplicates += o.duplicates;
        self.stale += o.stale;
        self.skipped += o.skipped;
        self.vanished += o.vanished;
        self.notifications += o.notifications;
        self.recovered += o.recovered;
    }
}

impl Follower {
    /// A follower for `settings.ehr`.
    pub fn new(
        settings: Arc<Settings>,
        pool: Pool,
        ring: Arc<KeyRing>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, FollowError> {
        let e = &settings.ehr;
        let base = e
            .base_url
            .clone()
            .ok_or_else(|| {
                FollowError::Config("ehr.base_url is not set (HERALD_EHR__BASE_URL)".into())
            })?
            .trim_end_matches('/')
            .to_string();
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_millis(e.timeout_ms))
            .connect_timeout(Duration::from_millis(e.timeout_ms.min(5_000)))
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .user_agent(concat!("Herald/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| FollowError::Config(format!("HTTP client: {err}")))?;
        let auth = match e.auth.as_str() {
            "none" => None,
            _ => {
                let client_id = e.client_id.clone().ok_or_else(|| {
                    FollowError::Config(
                        "ehr.client_id is not set (HERALD_EHR__CLIENT_ID): Backend Services needs the registered client id".into(),
                    )
                })?;
                let jku = settings
                    .server
                    .public_url
                    .as_ref()
                    .map(|u| format!("{}/.well-known/jwks.json", u.trim_end_matches('/')));
                let (kpool, kring) = (pool.clone(), Arc::clone(&ring));
                let keys = Box::new(move |alg: &str, now: DateTime<Utc>| {
                    let mut c = kpool.get()?;
                    let keys = store::published_keys(&mut c, &kring)?;
                    Ok(keys
                        .into_iter()
                        .filter(|k| k.alg == alg && k.sign_from <= now)
                        .max_by_key(|k| k.sign_from))
                });
                Some(Arc::new(BackendAuth::new(
                    BackendConfig {
                        base_url: base.clone(),
                        client_id,
                        scope: e.scope.clone(),
                        alg: e.signing_alg.clone(),
                        token_url: e.token_url.clone(),
                        jku,
                    },
                    http.clone(),
                    keys,
                    Arc::clone(&clock),
                )))
            }
        };
        Ok(Self {
            settings,
            pool,
            ring,
            clock,
            auth,
            http,
            base,
            sleep: Arc::new(real_sleep),
        })
    }

    /// Replaces how the follower waits (retries, rate limits) — tests.
    pub fn with_sleep(mut self, f: Arc<dyn Fn(Duration) + Send + Sync>) -> Self {
        self.sleep = f;
        self
    }

    /// The EHR base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A FHIR client (one per thread: its audit journal is its caller's).
    pub fn client(&self) -> FhirClient {
        let sleep = Arc::clone(&self.sleep);
        FhirClient::new(
            ClientConfig {
                base_url: self.base.clone(),
                max_retries: self.settings.ehr.max_retries,
                retry_base: Duration::from_millis(250),
                retry_max: Duration::from_secs(30),
            },
            self.http.clone(),
            self.auth.clone(),
            Arc::clone(&self.clock),
        )
        .with_sleep(Box::new(move |d| sleep(d)))
    }

    fn ictx(&self) -> IngestCtx<'_> {
        IngestCtx {
            ring: &self.ring,
            clock: self.clock.as_ref(),
            messaging: &self.settings.messaging,
            ehr: &self.base,
        }
    }

    fn conn(&self) -> Result<db::PooledConn, FollowError> {
        self.pool
            .get()
            .map_err(|e| FollowError::Db(DbError::Other(e.into())))
    }

    fn append_leftover(
        &self,
        conn: &mut DbConn,
        calls: Vec<AuditRecord>,
    ) -> Result<(), FollowError> {
        if calls.is_empty() {
            return Ok(());
        }
        db::write_tx(conn, |c| {
            audit::append(c, &calls)
                .map(|_| ())
                .map_err(FollowError::Db)
        })
    }

    // -------------------------------------------------------------- ingest

    /// Makes sure Herald holds every patient a resource names (reading the
    /// Patient from the EHR when not).
    fn ensure_patients(
        &self,
        conn: &mut DbConn,
        client: &FhirClient,
        r: &Value,
    ) -> Result<(), FollowError> {
        for p in patients_of(r) {
            if patients::exists(conn, &p)? {
                continue;
            }
            match client.read("Patient", &p)? {
                Some(pat) => {
                    let calls = client.take_audit();
                    if let Err(e) = ingest::patient(conn, &self.ictx(), &pat, &calls) {
                        tracing::warn!(error = %e, "a Patient from the EHR was skipped");
                        self.append_leftover(conn, calls)?;
                    }
                }
                None => self.append_leftover(conn, client.take_audit())?,
            }
        }
        Ok(())
    }

    /// The time zone of each Location an Appointment names (read once per pass).
    fn location_zones(
        &self,
        conn: &mut DbConn,
        client: &FhirClient,
        r: &Value,
        cache: &mut HashMap<String, Option<Tz>>,
    ) -> Result<(), FollowError> {
        for p in r["participant"].as_array().into_iter().flatten() {
            if let Some(id) = crate::fhir::reference_id(&p["actor"], "Location")
                && !cache.contains_key(&id)
            {
                let tz = match client.read("Location", &id) {
                    Ok(Some(loc)) => crate::fhir::location_timezone(&loc),
                    Ok(None) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "a Location could not be read; the practice zone applies");
                        None
                    }
                };
                self.append_leftover(conn, client.take_audit())?;
                cache.insert(id, tz);
            }
        }
        Ok(())
    }

    /// A Consent the EHR holds goes into the ledger (issue 5 §2: imported
    /// from the EHR); one Herald wrote there itself is skipped.
    fn absorb_consent(
        &self,
        conn: &mut DbConn,
        r: &Value,
        calls: Vec<AuditRecord>,
        report: &mut Report,
    ) -> Result<(), FollowError> {
        let ours = r["identifier"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|i| i["system"] == HERALD_CONSENT_SYSTEM);
        if ours || !self.settings.ehr.import_consents {
            return self.append_leftover(conn, calls);
        }
        report.seen += 1;
        self.append_leftover(conn, calls)?;
        match ingest::consent(conn, &self.ictx(), r, "ehr-import") {
            Ok(true) => report.planned += 1,
            Ok(false) => report.duplicates += 1,
            Err(e @ (ingest::IngestError::Parse(_) | ingest::IngestError::Refused { .. })) => {
                tracing::info!(error = %e, "an EHR Consent Herald cannot read as a messaging consent was skipped");
                report.skipped += 1;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Ingests one resource from the EHR, with `calls` (the audit records of
    /// the FHIR calls that brought it) in the same transaction.
    fn absorb(
        &self,
        conn: &mut DbConn,
        client: &FhirClient,
        r: &Value,
        calls: Vec<AuditRecord>,
        zones: &mut HashMap<String, Option<Tz>>,
        report: &mut Report,
    ) -> Result<(), FollowError> {
        let rt = r["resourceType"].as_str().unwrap_or_default();
        if rt == "Consent" {
            return self.absorb_consent(conn, r, calls, report);
        }
        if !["Appointment", "MedicationRequest", "Patient"].contains(&rt) {
            return self.append_leftover(conn, calls);
        }
        report.seen += 1;
        if rt != "Patient" {
            self.ensure_patients(conn, client, r)?;
        }
        if rt == "Appointment" {
            self.location_zones(conn, client, r, zones)?;
        }
        let ctx = self.ictx();
        let result = match rt {
            "Appointment" => {
                let z = zones.clone();
                let tz = move |loc: &str| {
                    let id = loc.rsplit('/').next().unwrap_or(loc);
                    z.get(id).copied().flatten()
                };
                ingest::appointment(conn, &ctx, r, &tz, &calls)
            }
            "MedicationRequest" => ingest::medication(conn, &ctx, r, &calls),
            // A Patient refreshes contact facts; it plans nothing.
            _ => ingest::patient(conn, &ctx, r, &calls).map(|_| Ingested::Duplicate),
        };
        match result {
            Ok(Ingested::Duplicate) => report.duplicates += 1,
            Ok(Ingested::Stale) => report.stale += 1,
            Ok(Ingested::Planned { .. }) => report.planned += 1,
            Err(ingest::IngestError::Parse(e)) => {
                // Lenient on input: one unusable resource is logged and skipped.
                tracing::warn!(resource_type = rt, error = %e, "an unusable resource from the EHR was skipped");
                report.skipped += 1;
                self.append_leftover(conn, calls)?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Reads a Patient from the EHR and stores it, so the roster poller
    /// (Epic) follows them. Returns false when the EHR does not have it.
    pub fn enroll(&self, patient_id: &str) -> Result<bool, FollowError> {
        let mut conn = self.conn()?;
        let client = self.client();
        let found = client.read("Patient", patient_id)?;
        let calls = client.take_audit();
        match found {
            Some(p) => {
                ingest::patient(&mut conn, &self.ictx(), &p, &calls)?;
                Ok(true)
            }
            None => {
                self.append_leftover(&mut conn, calls)?;
                Ok(false)
            }
        }
    }

    // -------------------------------------------------------------- subscribe

    /// Creates, or refreshes, one Subscription per followed resource type
    /// (`herald subscribe`). Returns `(resource type, EHR id, created?)`.
    pub fn subscribe(&self) -> Result<Vec<(String, String, bool)>, FollowError> {
        let e = &self.settings.ehr;
        if e.subscription == "none" {
            return Err(FollowError::Config(format!(
                "the {} preset has no Subscriptions for Appointment or MedicationRequest; Herald polls it (herald poll --once, or the schedule in ehr.poll_schedule)",
                e.preset.as_deref().unwrap_or("configured")
            )));
        }
        let public = self.settings.server.public_url.clone().ok_or_else(|| {
            FollowError::Config(
                "server.public_url is not set (HERALD_SERVER__PUBLIC_URL): the EHR needs an https URL to notify".into(),
            )
        })?;
        let client = self.client();
        let mut conn = self.conn()?;
        let existing = store::subscriptions(&mut conn, &self.ring, &self.base)?;
        let mut out = Vec::new();
        let now = self.clock.now();
        for (rt, criteria, topic) in [
            ("Appointment", &e.criteria_appointment, &e.topic_appointment),
            (
                "MedicationRequest",
                &e.criteria_medication,
                &e.topic_medication,
            ),
        ] {
            let style = e.subscription.as_str();
            let topic = if style == "backport" {
                Some(topic.clone().ok_or_else(|| {
                    FollowError::Config(format!(
                        "backport subscriptions need ehr.topic_{} (the topic's canonical URL)",
                        if rt == "Appointment" {
                            "appointment"
                        } else {
                            "medication"
                        }
                    ))
                })?)
            } else {
                None
            };
            let mine = existing
                .iter()
                .find(|s| s.resource_type == rt && s.style == style);
            let (sub, created) = match mine {
                Some(s) => (s.clone(), false),
                None => {
                    let mut secret = [0u8; 32];
                    openssl::rand::rand_bytes(&mut secret)
                        .map_err(|err| FollowError::Keys(err.to_string()))?;
                    use base64::Engine as _;
                    let s = store::EhrSubscription {
                        id: uuid::Uuid::new_v4().simple().to_string(),
                        resource_type: rt.into(),
                        style: style.into(),
                        ehr: self.base.clone(),
                        remote_id: None,
                        secret: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
                        status: "requested".into(),
                        topic: topic.clone(),
                        last_event: 0,
                        last_seen_at: None,
                        heartbeat_secs: (style == "backport")
                            .then(|| i32::try_from(e.heartbeat_secs).unwrap_or(i32::MAX)),
                    };
                    // Stored before the EHR hears of it, so an immediate
                    // handshake finds it.
                    db::write_tx(&mut conn, |c| {
                        store::insert_subscription(c, &self.ring, &s, now)
                    })?;
                    (s, true)
                }
            };
            let endpoint = format!("{}/hooks/fhir/{}", public.trim_end_matches('/'), sub.id);
            let mut resource =
                subscription_resource(&sub, criteria, &endpoint, &e.payload, e.heartbeat_secs);
            let remote = match &sub.remote_id {
                Some(rid) if client.read("Subscription", rid)?.is_some() => {
                    resource["id"] = json!(rid);
                    client.update(&resource, None)?;
                    rid.clone()
                }
                _ => client.create(&resource, None)?.id.ok_or_else(|| {
                    FhirError::Invalid("the created Subscription has no id".into())
                })?,
            };
            let calls = client.take_audit();
            db::write_tx(&mut conn, |c| {
                store::set_subscription_remote(c, &sub.id, Some(&remote), "requested", now)?;
                audit::append(c, &calls)?;
                Ok::<_, FollowError>(())
            })?;
            out.push((rt.to_string(), remote, created || sub.remote_id.is_none()));
        }
        Ok(out)
    }

    /// Runs `work` under the instance-wide lease `{kind}|{base}` with a
    /// fresh client; None when another instance holds it. The client's
    /// leftover audit records are committed and the lease given back
    /// whatever `work` returns.
    fn leased<T>(
        &self,
        kind: &str,
        holder: &str,
        hold: chrono::Duration,
        work: impl FnOnce(&mut DbConn, &FhirClient) -> Result<T, FollowError>,
    ) -> Result<Option<T>, FollowError> {
        let mut conn = self.conn()?;
        let lease = format!("{kind}|{}", self.base);
        let now = self.clock.now();
        if !store::try_lease(&mut conn, &lease, holder, now + hold, now)? {
            return Ok(None);
        }
        let client = self.client();
        let result = work(&mut conn, &client);
        let flushed = self.append_leftover(&mut conn, client.take_audit());
        store::release_lease(&mut conn, &lease, holder)?;
        let out = result?;
        flushed?;
        Ok(Some(out))
    }

    // -------------------------------------------------------------- notifications

    /// Processes stored notifications (oldest first) under the instance-wide
    /// lease, so several Herald instances do not process the same EHR at once.
    pub fn process_notifications(&self, holder: &str, limit: i64) -> Result<Report, FollowError> {
        let done = self.leased("notifications", holder, chrono::Duration::minutes(5), |conn, client| {
        let now = self.clock.now();
        let mut report = Report::default();
        let notes = store::pending_notifications(conn, &self.ring, limit)?;
        for n in notes {
            let Some(sub) = store::subscription(conn, &self.ring, &n.subscription_id)? else {
                store::finish_notification(
                    conn,
                    &n.id,
                    "failed",
                    Some("unknown subscription"),
                    now,
                )?;
                continue;
            };
            let mut one = Report::default();
            match self.handle(conn, client, &sub, &n, &mut one) {
                Ok(()) => {
                    store::finish_notification(conn, &n.id, "done", None, self.clock.now())?;
                    one.notifications += 1;
                    report.add(&one);
                }
                Err(err) => {
                    let state = if n.attempts + 1 >= MAX_ATTEMPTS {
                        "failed"
                    } else {
                        "pending"
                    };
                    tracing::warn!(notification = %n.id, error = %err, state, "a notification could not be processed");
                    store::finish_notification(
                        conn,
                        &n.id,
                        state,
                        Some(&err.to_string()),
                        self.clock.now(),
                    )?;
                    self.append_leftover(conn, client.take_audit())?;
                }
            }
        }
        Ok(report)
        })?;
        Ok(done.unwrap_or_default())
    }

    fn handle(
        &self,
        conn: &mut DbConn,
        client: &FhirClient,
        sub: &store::EhrSubscription,
        n: &store::Notification,
        report: &mut Report,
    ) -> Result<(), FollowError> {
        let mut zones = HashMap::new();
        let body = n.body.trim();
        if body.is_empty() {
            // N2: an empty notification — fetch what changed.
            if let Some((rt, id)) = n.path.as_deref().and_then(|p| p.split_once('/')) {
                return self.fetch_and_absorb(conn, client, rt, id, &mut zones, report);
            }
            let r = self.resync(conn, client, &sub.resource_type)?;
            report.add(&r);
            return Ok(());
        }
        let v: Value = serde_json::from_str(body)
            .map_err(|e| FollowError::Config(format!("stored notification is not JSON: {e}")))?;
        match v["resourceType"].as_str() {
            Some("Bundle") if is_backport(&v) => {
                self.handle_backport(conn, client, sub, &v, report)
            }
            Some("Bundle") => {
                for entry in v["entry"].as_array().into_iter().flatten() {
                    if entry["resource"].is_object() {
                        self.absorb(
                            conn,
                            client,
                            &entry["resource"],
                            Vec::new(),
                            &mut zones,
                            report,
                        )?;
                    }
                }
                Ok(())
            }
            Some(_) => self.absorb(conn, client, &v, Vec::new(), &mut zones, report),
            None => Err(FollowError::Config(
                "stored notification has no resourceType".into(),
            )),
        }
    }

    fn fetch_and_absorb(
        &self,
        conn: &mut DbConn,
        client: &FhirClient,
        rt: &str,
        id: &str,
        zones: &mut HashMap<String, Option<Tz>>,
        report: &mut Report,
    ) -> Result<(), FollowError> {
        match client.read(rt, id)? {
            Some(r) => {
                let calls = client.take_audit();
                self.absorb(conn, client, &r, calls, zones, report)
            }
            None => {
                let calls = client.take_audit();
                if resources::get(conn, &self.ring, rt, id)?.is_some() {
                    ingest::vanished(conn, &self.ictx(), rt, id, &calls)?;
                    report.vanished += 1;
                } else {
                    self.append_leftover(conn, calls)?;
                }
                Ok(())
            }
        }
    }

    fn handle_backport(
        &self,
        conn: &mut DbConn,
        client: &FhirClient,
        sub: &store::EhrSubscription,
        bundle: &Value,
        report: &mut Report,
    ) -> Result<(), FollowError> {
        let status = BackportStatus::read(bundle);
        if matches!(
            status.kind.as_str(),
            "handshake" | "heartbeat" | "query-status"
        ) {
            if status.kind == "handshake" {
                store::set_subscription_remote(
                    conn,
                    &sub.id,
                    sub.remote_id.as_deref(),
                    "active",
                    self.clock.now(),
                )?;
            }
            // A heartbeat says how many events there have been: catch up on a gap.
            if let Some(total) = status.events_since_start
                && total > current_event(conn, &self.ring, &sub.id)?
            {
                self.recover(conn, client, sub, total, report)?;
            }
            return Ok(());
        }
        let mut zones = HashMap::new();
        let mut events = status.events.clone();
        events.sort_by_key(|e| e.0);
        if events.is_empty()
            && let Some(total) = status.events_since_start
        {
            // empty payload: only the count — fetch what is missing.
            if total > current_event(conn, &self.ring, &sub.id)? {
                self.recover(conn, client, sub, total, report)?;
            }
            return Ok(());
        }
        for (number, focus) in events {
            let last = current_event(conn, &self.ring, &sub.id)?;
            if number <= last {
                continue; // N12: a duplicate or replayed event.
            }
            if number > last + 1 {
                // N10: a gap — recover the missing events first.
                self.recover(conn, client, sub, number - 1, report)?;
            }
            if let Some(focus) = focus {
                self.absorb_focus(conn, client, bundle, &focus, &mut zones, report)?;
            }
            store::advance_event(conn, &sub.id, number)?;
        }
        Ok(())
    }

    /// Ingests an event's focus: from the bundle (full-resource), else read
    /// from the EHR (id-only, empty).
    fn absorb_focus(
        &self,
        conn: &mut DbConn,
        client: &FhirClient,
        bundle: &Value,
        focus: &str,
        zones: &mut HashMap<String, Option<Tz>>,
        report: &mut Report,
    ) -> Result<(), FollowError> {
        let carried = bundle["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| {
                e["resource"].is_object() && same_ref(e["fullUrl"].as_str().unwrap_or(""), focus)
            })
            .map(|e| e["resource"].clone());
        match (carried, split_ref(focus)) {
            (Some(r), _) => self.absorb(conn, client, &r, Vec::new(), zones, report),
            (None, Some((rt, id))) => self.fetch_and_absorb(conn, client, &rt, &id, zones, report),
            (None, None) => Ok(()),
        }
    }

    /// Recovers events after the last one processed up to `until` through
    /// `$events` (N10), or by a resync query when the server lacks it.
    fn recover(
        &self,
        conn: &mut DbConn,
        client: &FhirClient,
        sub: &store::EhrSubscription,
        until: i64,
        report: &mut Report,
    ) -> Result<(), FollowError> {
        let since = current_event(conn, &self.ring, &sub.id)? + 1;
        if since > until {
            return Ok(());
        }
        let via_events = sub.remote_id.as_ref().map(|rid| {
            client.operation(
                "Subscription",
                &format!(
                    "Subscription/{rid}/$events?eventsSinceNumber={since}&eventsUntilNumber={until}&content=full-resource"
                ),
            )
        });
        match via_events {
            Some(Ok(b)) if b["resourceType"] == "Bundle" => {
                self.append_leftover(conn, client.take_audit())?;
                let st = BackportStatus::read(&b);
                let mut zones = HashMap::new();
                let mut evs = st.events;
                evs.sort_by_key(|e| e.0);
                for (number, focus) in evs {
                    if number < since || number > until {
                        continue;
                    }
                    if let Some(focus) = focus {
                        self.absorb_focus(conn, client, &b, &focus, &mut zones, report)?;
                    }
                    report.recovered += 1;
                    store::advance_event(conn, &sub.id, number)?;
                }
                if current_event(conn, &self.ring, &sub.id)? < until {
                    // The server no longer holds some events: resync.
                    let r = self.resync(conn, client, &sub.resource_type)?;
                    report.add(&r);
                    store::advance_event(conn, &sub.id, until)?;
                }
                Ok(())
            }
            _ => {
                tracing::info!(subscription = %sub.id, "no $events: recovering by a resync query");
                self.append_leftover(conn, client.take_audit())?;
                let r = self.resync(conn, client, &sub.resource_type)?;
                report.add(&r);
                store::advance_event(conn, &sub.id, until)?;
                Ok(())
            }
        }
    }

    /// N11: for each backport subscription whose heartbeat is overdue, ask
    /// `$status`, catch up on missed events, and re-activate one in error.
    pub fn check_liveness(&self) -> Result<Report, FollowError> {
        let mut conn = self.conn()?;
        let client = self.client();
        let now = self.clock.now();
        let mut report = Report::default();
        for sub in store::subscriptions(&mut conn, &self.ring, &self.base)? {
            let (Some(hb), Some(rid)) = (sub.heartbeat_secs, sub.remote_id.clone()) else {
                continue;
            };
            let overdue = sub
                .last_seen_at
                .is_none_or(|t| now - t > chrono::Duration::seconds(i64::from(hb) * 2));
            if !overdue {
                continue;
            }
            let status =
                match client.operation("Subscription", &format!("Subscription/{rid}/$status")) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(subscription = %sub.id, error = %e, "$status failed");
                        continue;
                    }
                };
            self.append_leftover(&mut conn, client.take_audit())?;
            let st = BackportStatus::read(&status);
            if matches!(st.status.as_deref(), Some("error" | "off")) {
                if let Some(mut remote) = client.read("Subscription", &rid)? {
                    remote["status"] = json!("requested");
                    client.update(&remote, None)?;
                }
                self.append_leftover(&mut conn, client.take_audit())?;
            }
            store::touch_subscription(&mut conn, &sub.id, now)?;
            if let Some(total) = st.events_since_start
                && total > sub.last_event
            {
                self.recover(&mut conn, &client, &sub, total, &mut report)?;
            }
        }
        self.append_leftover(&mut conn, client.take_audit())?;
        Ok(report)
    }

    // -------------------------------------------------------------- polling

    /// One polling pass over every followed type, under the instance-wide
    /// lease (`herald poll --once`; the schedule runs the same).
    pub fn poll_once(&self, holder: &str) -> Result<Option<Report>, FollowError> {
        let mut types = vec!["Appointment", "MedicationRequest"];
        if self.settings.ehr.import_consents {
            types.push("Consent");
        }
        self.leased(
            "poll",
            holder,
            chrono::Duration::minutes(30),
            |conn, client| {
                let mut report = Report::default();
                for rt in types {
                    report.add(&self.resync(conn, client, rt)?);
                }
                Ok(report)
            },
        )
    }

    /// Bulk Data reconcile (V13, V14): `Group/{id}/$export` with `_since` the
    /// last export's `transactionTime`, waiting as the server asks, then
    /// every NDJSON line through the same ingest (one bad line skipped);
    /// the export is deleted when done. None when another instance holds it
    /// or no group is configured.
    pub fn bulk_reconcile(&self, holder: &str) -> Result<Option<Report>, FollowError> {
        let e = &self.settings.ehr;
        let Some(group) = e.bulk_group.clone() else {
            return Ok(None);
        };
        let hold = chrono::Duration::seconds(i64::try_from(e.bulk_max_wait_secs).unwrap_or(3600))
            + chrono::Duration::minutes(30);
        self.leased("bulk", holder, hold, |conn, client| {
            self.bulk_pass(conn, client, &group)
        })
    }

    fn bulk_pass(
        &self,
        conn: &mut DbConn,
        client: &FhirClient,
        group: &str,
    ) -> Result<Report, FollowError> {
        let e = &self.settings.ehr;
        let name = format!("{}|bulk|{group}", self.base);
        let mut q = "_type=Patient,Appointment,MedicationRequest".to_string();
        if let Some(since) = store::checkpoint(conn, &name)? {
            q.push_str(&format!("&_since={since}"));
        }
        let status_url = client.bulk_kickoff(group, &q)?;
        let deadline = self.clock.now()
            + chrono::Duration::seconds(i64::try_from(e.bulk_max_wait_secs).unwrap_or(3600));
        let manifest = loop {
            match client.bulk_status(&status_url)? {
                crate::fhir::client::BulkStatus::Done(m) => break m,
                crate::fhir::client::BulkStatus::Running(wait) => {
                    if self.clock.now() > deadline {
                        let _ = client.bulk_delete(&status_url);
                        return Err(FollowError::Config(format!(
                            "the Bulk Data export did not finish within ehr.bulk_max_wait_secs ({} s); it was cancelled",
                            e.bulk_max_wait_secs
                        )));
                    }
                    (self.sleep)(wait.min(Duration::from_secs(60)));
                }
            }
        };
        let mut report = Report::default();
        let mut zones = HashMap::new();
        // Patients first, so every appointment finds its patient held.
        let mut outputs: Vec<&Value> = manifest["output"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        outputs.sort_by_key(|o| match o["type"].as_str() {
            Some("Patient") => 0,
            Some("Appointment") => 1,
            _ => 2,
        });
        for out in outputs {
            let Some(url) = out["url"].as_str() else {
                continue;
            };
            let text = client.bulk_download(url)?;
            let mut calls = client.take_audit();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                match serde_json::from_str::<Value>(line) {
                    Ok(r) if r["resourceType"].is_string() => {
                        self.absorb(
                            conn,
                            client,
                            &r,
                            std::mem::take(&mut calls),
                            &mut zones,
                            &mut report,
                        )?;
                    }
                    _ => {
                        tracing::warn!("a Bulk Data line that is not a FHIR resource was skipped");
                        report.skipped += 1;
                    }
                }
            }
            self.append_leftover(conn, calls)?;
        }
        if let Some(t) = manifest["transactionTime"].as_str() {
            store::set_checkpoint(conn, &name, t, self.clock.now())?;
        }
        if let Err(err) = client.bulk_delete(&status_url) {
            tracing::warn!(error = %err, "the finished export could not be deleted on the server");
        }
        Ok(report)
    }

    /// Writes back what Herald owes the EHR (issue 5): each Consent it
    /// recorded (conditional create on Herald's identifier, so a retry never
    /// duplicates it), a patient's confirmation (participant status
    /// accepted) and, when replies cancel, the cancellation — each an update
    /// with If-Match on the version just read. A type the preset does not
    /// accept is skipped (the staff queue keeps the reply). Retries back off.
    pub fn process_writes(&self, holder: &str, limit: i64) -> Result<usize, FollowError> {
        use crate::db::writes::{self, WriteKind};
        let done = self.leased("writes", holder, chrono::Duration::minutes(5), |conn, client| {
        let now = self.clock.now();
        let accepts = |t: &str| self.settings.ehr.writes.iter().any(|w| w == t);
        let mut done = 0;
        for w in writes::due(conn, now, limit)? {
            let wanted = match w.kind {
                WriteKind::Consent => "Consent",
                _ => "Appointment",
            };
            if !accepts(wanted) {
                writes::finish(
                    conn,
                    &w.id,
                    "skipped",
                    None,
                    Some("the EHR preset does not accept this write"),
                    None,
                    now,
                )?;
                continue;
            }
            let result = match w.kind {
                WriteKind::Consent => self.write_consent(conn, client, &w.target),
                WriteKind::AppointmentAccept | WriteKind::AppointmentCancel => self
                    .write_appointment(
                        client,
                        &w.target,
                        &w.patient_id,
                        w.kind == WriteKind::AppointmentCancel,
                    ),
            };
            let calls = client.take_audit();
            let now = self.clock.now();
            match result {
                Ok(remote) => {
                    db::write_tx(conn, |c| {
                        writes::finish(c, &w.id, "done", remote.as_deref(), None, None, now)?;
                        if let Some(k) = &w.inbound_key {
                            crate::db::inbound::mark_handled(c, k, "ehr-writeback", now)?;
                        }
                        audit::append(c, &calls)?;
                        Ok::<_, FollowError>(())
                    })?;
                    done += 1;
                }
                Err(err) => {
                    let attempts = w.attempts + 1;
                    let retry = (attempts < 8)
                        .then(|| now + chrono::Duration::seconds(30i64 << attempts.min(10)));
                    if retry.is_none() {
                        tracing::warn!(alert = "ehr-writeback", write = %w.id, error = %err, "a write-back to the EHR failed for good");
                    }
                    db::write_tx(conn, |c| {
                        writes::finish(
                            c,
                            &w.id,
                            "failed",
                            None,
                            Some(&err.to_string()),
                            retry,
                            now,
                        )?;
                        audit::append(c, &calls)?;
                        Ok::<_, FollowError>(())
                    })?;
                }
            }
        }
        Ok(done)
        })?;
        Ok(done.unwrap_or(0))
    }

    fn write_consent(
        &self,
        conn: &mut DbConn,
        client: &FhirClient,
        target: &str,
    ) -> Result<Option<String>, FollowError> {
        let id = target.trim_start_matches("Consent/");
        let Some(text) = crate::db::consents::resource_of(conn, &self.ring, id)? else {
            return Err(FollowError::Config(format!("no ledger row {id}")));
        };
        let mut consent: Value = serde_json::from_str(&text)
            .map_err(|e| FollowError::Config(format!("ledger Consent is not JSON: {e}")))?;
        // The EHR assigns its own id; Herald's is the identifier the
        // conditional create matches on.
        if let Some(o) = consent.as_object_mut() {
            o.remove("id");
            o.remove("meta");
            o.insert(
                "identifier".into(),
                json!([{ "system": HERALD_CONSENT_SYSTEM, "value": id }]),
            );
        }
        let created = client.create(
            &consent,
            Some(&format!("identifier={HERALD_CONSENT_SYSTEM}|{id}")),
        )?;
        Ok(created.id)
    }

    fn write_appointment(
        &self,
        client: &FhirClient,
        target: &str,
        patient: &str,
        cancel: bool,
    ) -> Result<Option<String>, FollowError> {
        let id = target.trim_start_matches("Appointment/");
        let Some(mut appt) = client.read("Appointment", id)? else {
            return Err(FollowError::Config(format!(
                "{target} is gone from the EHR"
            )));
        };
        let version = appt["meta"]["versionId"].as_str().map(String::from);
        let status = appt["status"].as_str().unwrap_or_default().to_string();
        if cancel {
            if ["cancelled", "fulfilled", "noshow", "entered-in-error"].contains(&status.as_str()) {
                return Ok(Some(id.to_string()));
            }
            appt["status"] = json!("cancelled");
            appt["cancelationReason"] = json!({ "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason",
                "code": "pat", "display": "Patient" }] });
        } else {
            let me = format!("Patient/{patient}");
            let mut changed = false;
            for p in appt["participant"].as_array_mut().into_iter().flatten() {
                if p["actor"]["reference"]
                    .as_str()
                    .is_some_and(|r| r == me || r.ends_with(&format!("/{me}")))
                    && p["status"] != "accepted"
                {
                    p["status"] = json!("accepted");
                    changed = true;
                }
            }
            if !changed {
                return Ok(Some(id.to_string()));
            }
        }
        // Herald edits only what it means to: the rest of the resource,
        // vendor elements included, goes back as the EHR sent it.
        client.update(&appt, version.as_deref())?;
        Ok(Some(id.to_string()))
    }

    /// Brings Herald up to date on one resource type, the preset's way.
    fn resync(
        &self,
        conn: &mut DbConn,
        client: &FhirClient,
        rt: &str,
    ) -> Result<Report, FollowError> {
        let e = &self.settings.ehr;
        match (e.poll.as_str(), rt) {
            ("last-updated", _) => self.poll_last_updated(conn, client, rt),
            ("location-window", "Appointment") => {
                let mut report = Report::default();
                let mut sweeps: Vec<(&str, &String)> =
                    e.poll_locations.iter().map(|l| ("location", l)).collect();
                sweeps.extend(e.poll_practitioners.iter().map(|p| ("practitioner", p)));
                for (param, value) in sweeps {
                    let r = self.poll_window(conn, client, param, value)?;
                    report.add(&r);
                }
                Ok(report)
            }
            _ => self.poll_roster(conn, client, rt),
        }
    }

    fn poll_last_updated(
        &self,
        conn: &mut DbConn,
        client: &FhirClient,
        rt: &str,
    ) -> Result<Report, FollowError> {
        let e = &self.settings.ehr;
        let name = format!("{}|{rt}|_lastUpdated", self.base);
        let checkpoint = store::checkpoint(conn, &name)?
            .and_then(|c| DateTime::parse_from_rfc3339(&c).ok())
            .map(|c| c.with_timezone(&Utc));
        let mut q = format!("_count={}&_sort=_lastUpdated", e.page_size);
        if let Some(cp) = checkpoint {
            // The overlap window catches writes that committed late with an
            // earlier lastUpdated; re-reading them is a duplicate, no more.
            let since =
                cp - chrono::Duration::seconds(i64::try_from(e.poll_overlap_secs).unwrap_or(300));
            q.push_str(&format!(
                "&_lastUpdated=gt{}",
                since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            ));
        }
        let mut newest = checkpoint;
        let mut report = Report::default();
        let mut zones = HashMap::new();
        self.sweep(conn, client, rt, &q, &mut zones, &mut report, |r| {
            if let Some(lu) = ingest::last_updated(r) {
                newest = Some(newest.map_or(lu, |n: DateTime<Utc>| n.max(lu)));
            }
        })?;
        if let Some(n) = newest {
            store::set_checkpoint(
                conn,
                &name,
                &n.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                self.clock.now(),
            )?;
        }
        Ok(report)
    }

    /// Searches `rt?q` to the last page and ingests each match, with each
    /// page's audit records in the transaction of its first resource;
    /// `each` sees every match first (checkpoints, the set seen).
    #[allow(clippy::too_many_arguments)]
    fn sweep(
        &self,
        conn: &mut DbConn,
        client: &FhirClient,
        rt: &str,
        q: &str,
        zones: &mut HashMap<String, Option<Tz>>,
        report: &mut Report,
        mut each: impl FnMut(&Value),
    ) -> Result<(), FollowError> {
        client.search(rt, q, |c, page| {
            let mut calls = c.take_audit();
            report.skipped += page.skipped;
            for r in page.resources.iter().filter(|r| r["resourceType"] == rt) {
                each(r);
                self.absorb(conn, c, r, std::mem::take(&mut calls), zones, report)?;
            }
            self.append_leftover(conn, calls)
        })?;
        Ok(())
    }

    fn window(&self) -> (String, String) {
        let now = self.clock.now();
        let end = now + chrono::Duration::days(i64::from(self.settings.ehr.poll_window_days));
        let f = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        (f(now - chrono::Duration::hours(12)), f(end))
    }

    /// Oracle Health (V12): one location or practitioner over a forward
    /// window; what Herald holds there but the sweep no longer returns is
    /// read by id (moved, cancelled, or gone).
    fn poll_window(
        &self,
        conn: &mut DbConn,
        client: &FhirClient,
        param: &str,
        value: &str,
    ) -> Result<Report, FollowError> {
        let (from, to) = self.window();
        let q = format!(
            "{param}={value}&date=ge{from}&date=lt{to}&_count={}",
            self.settings.ehr.page_size
        );
        let mut report = Report::default();
        let mut seen = BTreeSet::new();
        let mut zones = HashMap::new();
        self.sweep(
            conn,
            client,
            "Appointment",
            &q,
            &mut zones,
            &mut report,
            |r| {
                if let Some(id) = r["id"].as_str() {
                    seen.insert(id.to_string());
                }
            },
        )?;
        let (from_t, to_t) = (parse_t(&from), parse_t(&to));
        let held =
            resources::list_by_status(conn, &self.ring, "Appointment", &LIVE_APPOINTMENT, None)?;
        for (id, t) in held {
            if seen.contains(&id) {
                continue;
            }
            let Ok(body) = serde_json::from_str::<Value>(&t.body) else {
                continue;
            };
            let here = body["participant"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| {
                    p["actor"]["reference"]
                        .as_str()
                        .is_some_and(|r| r == value || r.ends_with(&format!("/{value}")))
                });
            let start = body["start"]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|s| s.with_timezone(&Utc));
            let in_window = match (start, from_t, to_t) {
                (Some(s), Some(f), Some(t)) => s >= f && s < t,
                _ => false,
            };
            if here && in_window {
                self.fetch_and_absorb(conn, client, "Appointment", &id, &mut zones, &mut report)?;
            }
        }
        Ok(report)
    }

    /// Epic (V15) and per-patient types elsewhere: walk the roster of
    /// patients Herald serves, rate-limited, over the forward window.
    fn poll_roster(
        &self,
        conn: &mut DbConn,
        client: &FhirClient,
        rt: &str,
    ) -> Result<Report, FollowError> {
        let e = &self.settings.ehr;
        let pause = Duration::from_millis(1000 / u64::from(e.poll_rate_per_sec.max(1)));
        let (from, to) = self.window();
        let mut report = Report::default();
        let mut zones = HashMap::new();
        for patient in patients::ids(conn)? {
            let q = match rt {
                "Appointment" => format!(
                    "patient=Patient/{patient}&date=ge{from}&date=lt{to}&_count={}",
                    e.page_size
                ),
                _ => format!("patient=Patient/{patient}&_count={}", e.page_size),
            };
            let mut seen = BTreeSet::new();
            self.sweep(conn, client, rt, &q, &mut zones, &mut report, |r| {
                if let Some(id) = r["id"].as_str() {
                    seen.insert(id.to_string());
                }
            })?;
            if rt == "Appointment" {
                let (from_t, to_t) = (parse_t(&from), parse_t(&to));
                for (id, t) in resources::list_by_status(
                    conn,
                    &self.ring,
                    rt,
                    &LIVE_APPOINTMENT,
                    Some(&patient),
                )? {
                    if seen.contains(&id) {
                        continue;
                    }
                    let start = serde_json::from_str::<Value>(&t.body)
                        .ok()
                        .and_then(|b| {
                            b["start"]
                                .as_str()
                                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                        })
                        .map(|s| s.with_timezone(&Utc));
                    if let (Some(s), Some(f), Some(t)) = (start, from_t, to_t)
                        && s >= f
                        && s < t
                    {
                        self.fetch_and_absorb(conn, client, rt, &id, &mut zones, &mut report)?;
                    }
                }
            }
            (self.sleep)(pause);
        }
        Ok(report)
    }
}

fn parse_t(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn current_event(conn: &mut DbConn, ring: &KeyRing, id: &str) -> Result<i64, FollowError> {
    Ok(store::subscription(conn, ring, id)?.map_or(0, |s| s.last_event))
}

/// `Appointment/1` from an absolute or relative reference.
fn split_ref(r: &str) -> Option<(String, String)> {
    let r = r.split("/_history/").next().unwrap_or(r);
    let mut parts = r.rsplit('/');
    let id = parts.next()?;
    let rt = parts.next()?;
    (!id.is_empty() && rt.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
        .then(|| (rt.to_string(), id.to_string()))
}

fn same_ref(full_url: &str, focus: &str) -> bool {
    match (split_ref(full_url), split_ref(focus)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Builds the Subscription Herald asks for.
pub fn subscription_resource(
    sub: &store::EhrSubscription,
    criteria: &str,
    endpoint: &str,
    payload: &str,
    heartbeat_secs: u32,
) -> Value {
    let header = vec![format!("Authorization: Bearer {}", sub.secret)];
    let mut r = json!({
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "Herald patient messaging: appointment and medication changes",
        "criteria": criteria,
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "header": header,
        },
        // Medplum signs each notification with this secret (X-Signature).
        "extension": [{ "url": MEDPLUM_SECRET, "valueString": sub.secret }],
    });
    if payload != "empty" || sub.style == "backport" {
        r["channel"]["payload"] = json!("application/fhir+json");
    }
    if sub.style == "backport" {
        r["meta"] = json!({ "profile": [BACKPORT_PROFILE] });
        r["criteria"] = json!(sub.topic.clone().unwrap_or_default());
        r["channel"]["_payload"] = json!({ "extension": [{
            "url": format!("{BP}/backport-payload-content"), "valueCode": payload }] });
        r["channel"]["extension"] = json!([
            { "url": format!("{BP}/backport-heartbeat-period"), "valueUnsignedInt": heartbeat_secs },
            { "url": format!("{BP}/backport-timeout"), "valueUnsignedInt": 30 },
        ]);
    }
    r
}

fn is_backport(bundle: &Value) -> bool {
    matches!(
        bundle["type"].as_str(),
        Some("history" | "subscription-notification")
    ) && matches!(
        bundle["entry"][0]["resource"]["resourceType"].as_str(),
        Some("Parameters" | "SubscriptionStatus")
    )
}

fn number(v: &Value) -> Option<i64> {
    for k in [
        "valueString",
        "valueInteger",
        "valueUnsignedInt",
        "valueInteger64",
        "valuePositiveInt",
        "valueDecimal",
    ] {
        match &v[k] {
            Value::String(s) => return s.trim().parse().ok(),
            Value::Number(n) => return n.as_i64(),
            _ => {}
        }
    }
    None
}

/// The status entry of a Backport notification (N6, N7): R4 Parameters or
/// R4B SubscriptionStatus.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackportStatus {
    /// handshake | heartbeat | event-notification | query-status | query-event.
    pub kind: String,
    /// The Subscription's status, when given.
    pub status: Option<String>,
    /// events-since-subscription-start.
    pub events_since_start: Option<i64>,
    /// (event number, focus reference).
    pub events: Vec<(i64, Option<String>)>,
}

impl BackportStatus {
    /// Reads the status from a notification or `$status`/`$events` Bundle.
    pub fn read(bundle: &Value) -> Self {
        let mut out = Self::default();
        let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
        let Some(st) = entries.iter().map(|e| &e["resource"]).find(|r| {
            matches!(
                r["resourceType"].as_str(),
                Some("Parameters" | "SubscriptionStatus")
            )
        }) else {
            return out;
        };
        if st["resourceType"] == "SubscriptionStatus" {
            out.kind = st["type"].as_str().unwrap_or_default().into();
            out.status = st["status"].as_str().map(String::from);
            out.events_since_start = number(
                &json!({"valueString": st["eventsSinceSubscriptionStart"].to_string().trim_matches('"')}),
            );
            for ev in st["notificationEvent"].as_array().into_iter().flatten() {
                if let Some(n) =
                    number(&json!({"valueString": ev["eventNumber"].to_string().trim_matches('"')}))
                {
                    out.events
                        .push((n, ev["focus"]["reference"].as_str().map(String::from)));
                }
            }
            return out;
        }
        let mut by_name: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
        for p in st["parameter"].as_array().into_iter().flatten() {
            if let Some(n) = p["name"].as_str() {
                by_name.entry(n).or_default().push(p);
            }
        }
        let first = |n: &str| by_name.get(n).and_then(|v| v.first().copied());
        out.kind = first("type")
            .and_then(|p| p["valueCode"].as_str())
            .unwrap_or_default()
            .into();
        out.status = first("status")
            .and_then(|p| p["valueCode"].as_str())
            .map(String::from);
        out.events_since_start = first("events-since-subscription-start").and_then(number);
        for ev in by_name.get("notification-event").into_iter().flatten() {
            let mut num = None;
            let mut focus = None;
            for part in ev["part"].as_array().into_iter().flatten() {
                match part["name"].as_str() {
                    Some("event-number") => num = number(part),
                    Some("focus") => {
                        focus = part["valueReference"]["reference"]
                            .as_str()
                            .map(String::from)
                    }
                    _ => {}
                }
            }
            if let Some(n) = num {
                out.events.push((n, focus));
            }
        }
        out
    }
}

// ------------------------------------------------------------------ receiving

/// Why a notification was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// No such subscription (404 would tell a prober which ids exist: 401).
    #[error("unknown subscription")]
    Unknown,
    /// The secret or signature is missing or wrong.
    #[error("the notification does not carry the subscription's secret")]
    Unauthenticated,
    /// The body is not FHIR JSON.
    #[error("{0}")]
    Malformed(String),
    /// The body fails the edge check (issue 11): nothing was stored.
    #[error("invalid notification ({} issues)", .0.issues.len())]
    Invalid(notification::Refusal),
    /// Storage.
    #[error(transparent)]
    Db(#[from] DbError),
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

/// Authenticates a notification (N4: the channel.header secret, or
/// Medplum's X-Signature HMAC-SHA256 of the body), checks it at the edge
/// (`fhir::notification::check` against the subscription's type and style
/// and `base_url`, issue 11), and stores it before Herald answers. Refusals
/// are audited, by kind only: never the caller's text.
#[allow(clippy::too_many_arguments)]
pub fn receive(
    conn: &mut DbConn,
    ring: &KeyRing,
    now: DateTime<Utc>,
    sub_id: &str,
    authorization: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    path: Option<&str>,
    peer: &str,
    base_url: Option<&str>,
) -> Result<String, ReceiveError> {
    // The subscription id comes from the URL: recorded as sent only when it
    // names one of Herald's subscriptions, else as a keyed hash (F6c).
    let refuse = |conn: &mut DbConn, known: bool, why: &str| -> Result<(), DbError> {
        let sub = if known {
            sub_id.to_string()
        } else {
            ring.untrusted_ref("fhir-subscription", sub_id)
        };
        let rec = AuditRecord {
            recorded: now,
            activity: Activity::InboundMessage {
                message_ref: format!("fhir-notification:{sub}"),
                reading: why.into(),
            },
            actor: Actor::Anonymous(peer.into()),
            outcome: Outcome::MinorFailure,
            outcome_desc: Some(why.into()),
            patient_id: None,
            request_id: None,
            ehr: None,
        };
        db::write_tx(conn, |c| audit::append(c, &[rec]).map(|_| ()))
    };
    let Some(sub) = store::subscription(conn, ring, sub_id)? else {
        refuse(conn, false, "refused: unknown subscription")?;
        return Err(ReceiveError::Unknown);
    };
    // F4: fail closed — a subscription without a secret accepts nothing (an
    // empty bearer would otherwise equal an empty secret), and an HMAC that
    // cannot be computed matches no signature.
    let secret = sub.secret.as_bytes();
    let bearer_ok = !secret.is_empty()
        && authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(str::trim)
            .is_some_and(|t| !t.is_empty() && constant_eq(t.as_bytes(), secret));
    let signature_ok = !secret.is_empty()
        && signature.is_some_and(|s| match crate::crypto::hmac_sha256(secret, body) {
            Ok(mac) => {
                let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
                constant_eq(hex.as_bytes(), s.trim().to_ascii_lowercase().as_bytes())
            }
            Err(_) => false,
        });
    if !bearer_ok && !signature_ok {
        refuse(conn, true, "refused: bad or missing secret")?;
        return Err(ReceiveError::Unauthenticated);
    }
    let Ok(text) = std::str::from_utf8(body) else {
        refuse(conn, true, "refused: the body is not UTF-8")?;
        return Err(ReceiveError::Malformed("The body is not UTF-8.".into()));
    };
    let expect = notification::Expect {
        resource_type: &sub.resource_type,
        backport: sub.style == "backport",
        base_url,
    };
    if let Err(refusal) = notification::check(text, &expect) {
        // The issue kinds only (fixed words): the expressions may hold the
        // caller's element names.
        let mut kinds: Vec<&str> = refusal.issues.iter().map(|i| i.code).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let status = if refusal.unprocessable { 422 } else { 400 };
        refuse(
            conn,
            true,
            &format!(
                "refused: {status} failed the edge check ({})",
                kinds.join(", ")
            ),
        )?;
        return Err(ReceiveError::Invalid(refusal));
    }
    let path = path.filter(|p| split_ref(p).is_some()).map(String::from);
    let id = uuid::Uuid::new_v4().to_string();
    db::write_tx(conn, |c| {
        store::insert_notification(
            c,
            ring,
            &store::Notification {
                id: id.clone(),
                subscription_id: sub.id.clone(),
                path: path.clone(),
                body: text.to_string(),
                attempts: 0,
            },
            now,
        )?;
        store::touch_subscription(c, &sub.id, now)
    })?;
    Ok(id)
}

// ------------------------------------------------------------------ running

/// The follower's thread inside `herald serve`: processes notifications as
/// they are stored, checks backport liveness, and polls on the cron
/// schedule (also in subscribe mode: R4 criteria never notify a delete, N3,
/// and a receiver outage is recovered this way).
pub struct Running {
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Starts the thread.
    pub fn start(follower: Arc<Follower>, holder: String) -> std::io::Result<Self> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = Arc::clone(&stop);
        let schedule: Option<cron::Schedule> = follower.settings.ehr.poll_schedule.parse().ok();
        let bulk: Option<cron::Schedule> = follower
            .settings
            .ehr
            .bulk_group
            .as_ref()
            .and_then(|_| follower.settings.ehr.bulk_schedule.parse().ok());
        let handle = std::thread::Builder::new()
            .name("herald-ehr".into())
            .spawn(move || {
                let mut next_poll = schedule
                    .as_ref()
                    .and_then(|s| s.after(&follower.clock.now()).next());
                let mut next_liveness = follower.clock.now();
                let mut next_bulk = bulk
                    .as_ref()
                    .and_then(|s| s.after(&follower.clock.now()).next());
                while !s2.load(Ordering::SeqCst) {
                    if let Err(e) = follower.process_notifications(&holder, 100) {
                        tracing::warn!(error = %e, "notification processing failed");
                    }
                    if let Err(e) = follower.process_writes(&holder, 50) {
                        tracing::warn!(error = %e, "write-back failed");
                    }
                    let now = follower.clock.now();
                    if now >= next_liveness {
                        if let Err(e) = follower.check_liveness() {
                            tracing::warn!(error = %e, "subscription liveness check failed");
                        }
                        next_liveness = now + chrono::Duration::seconds(30);
                    }
                    if let Some(at) = next_poll
                        && now >= at
                    {
                        match follower.poll_once(&holder) {
                            Ok(Some(r)) => tracing::info!(
                                seen = r.seen,
                                planned = r.planned,
                                vanished = r.vanished,
                                "poll pass"
                            ),
                            Ok(None) => tracing::debug!("another instance is polling"),
                            Err(e) => tracing::warn!(error = %e, "poll pass failed"),
                        }
                        next_poll = schedule
                            .as_ref()
                            .and_then(|s| s.after(&follower.clock.now()).next());
                    }
                    if let Some(at) = next_bulk
                        && follower.clock.now() >= at
                    {
                        match follower.bulk_reconcile(&holder) {
                            Ok(Some(r)) => {
                                tracing::info!(seen = r.seen, planned = r.planned, "bulk reconcile")
                            }
                            Ok(None) => {}
                            Err(e) => tracing::warn!(error = %e, "bulk reconcile failed"),
                        }
                        next_bulk = bulk
                            .as_ref()
                            .and_then(|s| s.after(&follower.clock.now()).next());
                    }
                    super::worker::sleep_unless_stopped(Duration::from_millis(500), &s2);
                }
            })?;
        Ok(Self {
            stop,
            handle: Some(handle),
        })
    }

    /// Stops after the current step.
    pub fn stop(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backport_status_reads_r4_parameters_and_r4b_subscription_status() {
        // N6/N7, shaped after the Backport IG's R4 notification examples.
        let b = json!({"resourceType": "Bundle", "type": "history", "entry": [
            {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Parameters", "parameter": [
                {"name": "subscription", "valueReference": {"reference": "Subscription/s1"}},
                {"name": "topic", "valueCanonical": "http://example.org/topic"},
                {"name": "status", "valueCode": "active"},
                {"name": "type", "valueCode": "event-notification"},
                {"name": "events-since-subscription-start", "valueString": "3"},
                {"name": "notification-event", "part": [
                    {"name": "event-number", "valueString": "3"},
                    {"name": "focus", "valueReference": {"reference": "http://ehr/fhir/Appointment/a1"}}]}]},
             "request": {"method": "GET", "url": "Subscription/s1/$status"}},
            {"fullUrl": "http://ehr/fhir/Appointment/a1", "request": {"method": "PUT", "url": "Appointment/a1"}}]});
        assert!(is_backport(&b));
        let s = BackportStatus::read(&b);
        assert_eq!(s.kind, "event-notification");
        assert_eq!(s.events_since_start, Some(3));
        assert_eq!(
            s.events,
            vec![(3, Some("http://ehr/fhir/Appointment/a1".into()))]
        );
        let r4b = json!({"resourceType": "Bundle", "type": "history", "entry": [{"resource": {
            "resourceType": "SubscriptionStatus", "type": "heartbeat", "status": "active",
            "eventsSinceSubscriptionStart": "7"}}]});
        let s = BackportStatus::read(&r4b);
        assert_eq!(
            (s.kind.as_str(), s.events_since_start),
            ("heartbeat", Some(7))
        );
    }

    #[test]
    fn references_compare_by_type_and_id() {
        assert!(same_ref("http://ehr/fhir/Appointment/a1", "Appointment/a1"));
        assert!(same_ref("Appointment/a1/_history/2", "Appointment/a1"));
        assert!(!same_ref("urn:uuid:1", "Appointment/a1"));
        assert_eq!(
            split_ref("Appointment/a1"),
            Some(("Appointment".into(), "a1".into()))
        );
    }
}
