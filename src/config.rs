//! Typed settings, loaded once in `main` and passed down (no global static).
//!
//! Load order: built-in defaults → `herald.toml` → `HERALD_SECTION__KEY`
//! environment → `HERALD_SECTION__KEY_FILE` (a secret read from a file).
//! Unknown keys are refused. Secrets are [`Secret`]s: `***` in Debug and logs.
//! [`Settings::validate`] lists every problem, one line each, for `herald check`.

use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A secret string: never printed, only [`Secret::expose`]d where it is used.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A database URL whose password never shows in Debug.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct DbUrl(String);

impl DbUrl {
    /// Wraps a URL.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The URL, password included.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url_password(&self.0)
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut out = String::new();
    let redacted = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    // A libpq keyword password in the query string is redacted too.
    let tail = tail
        .split('&')
        .map(|kv| {
            if kv.contains("password=") {
                let (k, _) = kv.split_once("password=").unwrap_or((kv, ""));
                format!("{k}password=***")
            } else {
                kv.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&");
    out.push_str(scheme);
    out.push_str("://");
    out.push_str(&redacted);
    out.push_str(&tail);
    out
}

/// Deployment environment; production refuses development-only settings.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// A laptop or test machine.
    #[default]
    Development,
    /// Real patients.
    Production,
}

/// All of Herald's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// development or production.
    pub environment: Environment,
    /// Where SQLite, the key file and other local state live.
    pub data_dir: PathBuf,
    /// The HTTP listener.
    pub server: ServerSettings,
    /// The store.
    pub database: DatabaseSettings,
    /// Encryption at rest.
    pub crypto: CryptoSettings,
    /// The EHR Herald follows.
    pub ehr: EhrSettings,
    /// The SMS provider.
    pub sms: SmsSettings,
    /// Email.
    pub email: EmailSettings,
    /// Voice calls.
    pub voice: VoiceSettings,
    /// Outbox workers.
    pub outbox: OutboxSettings,
    /// SMART app launch.
    pub smart: SmartSettings,
    /// API clients of Herald's own FHIR endpoints (SMART Backend Services).
    pub api: ApiSettings,
    /// What and when to send.
    pub messaging: MessagingSettings,
    /// Staff sign-in and break-glass.
    pub staff: StaffSettings,
    /// Request rate limits and the bound on password checks (issue 11 F5).
    pub limits: LimitsSettings,
    /// The audit log's signed checkpoints.
    pub audit: AuditSettings,
    /// Logging.
    pub log: LogSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            environment: Environment::Development,
            data_dir: PathBuf::from("./data"),
            server: ServerSettings::default(),
            database: DatabaseSettings::default(),
            crypto: CryptoSettings::default(),
            ehr: EhrSettings::default(),
            sms: SmsSettings::default(),
            email: EmailSettings::default(),
            voice: VoiceSettings::default(),
            outbox: OutboxSettings::default(),
            smart: SmartSettings::default(),
            api: ApiSettings::default(),
            limits: LimitsSettings::default(),
            messaging: MessagingSettings::default(),
            staff: StaffSettings::default(),
            audit: AuditSettings::default(),
            log: LogSettings::default(),
        }
    }
}

/// The HTTP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to listen on; loopback by default.
    pub bind: String,
    /// The https URL the EHR and the SMS provider call back.
    pub public_url: Option<String>,
    /// Allow plain HTTP on a non-loopback address (never in production:
    /// H8, S21 — configure tls_cert and tls_key instead).
    pub allow_non_loopback: bool,
    /// HTTP worker threads (0 = one per core).
    pub workers: usize,
    /// PEM certificate chain: with tls_key, Herald serves HTTPS (TLS 1.2+).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for tls_cert.
    pub tls_key: Option<PathBuf>,
    /// Strict-Transport-Security max-age, seconds (sent under TLS).
    pub hsts_max_age: u64,
}

impl ServerSettings {
    /// Herald's own base URL (F8b): `public_url`, else this listener's own
    /// address (https when Herald serves TLS). Never the request's `Host` or
    /// `X-Forwarded-*`: redirect URIs, cookie `Secure` and Bundle links come
    /// from here.
    pub fn base_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim().trim_end_matches('/').to_string(),
            None => {
                let scheme = if self.tls_cert.is_some() && self.tls_key.is_some() {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{}", self.bind)
            }
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            public_url: None,
            allow_non_loopback: false,
            workers: 0,
            tls_cert: None,
            tls_key: None,
            hsts_max_age: 31_536_000,
        }
    }
}

/// The store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://...`; default SQLite in the data dir.
    pub url: Option<DbUrl>,
    /// Connections in the pool.
    pub pool_size: u32,
    /// Seconds to wait for a connection.
    pub connect_timeout_secs: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            pool_size: 8,
            connect_timeout_secs: 5,
        }
    }
}

/// Encryption at rest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CryptoSettings {
    /// Base64 of 32 bytes (`HERALD_MASTER_KEY`); else the key file.
    pub master_key: Option<Secret>,
    /// Key file; default `<data_dir>/master.key`.
    pub key_file: Option<PathBuf>,
}

/// Which EHR and how Herald follows it. A preset (`profiles/ehr/*.toml`,
/// embedded) fills every key herald.toml and the environment leave unset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EhrSettings {
    /// epic | oracle-health | hapi | medplum.
    pub preset: Option<String>,
    /// FHIR base URL.
    pub base_url: Option<String>,
    /// Backend Services client id.
    pub client_id: Option<String>,
    /// subscribe | poll.
    pub mode: Option<String>,
    /// backend-services (SMART client_credentials with a signed assertion) | none.
    pub auth: String,
    /// Scopes asked for (SMART v2 system scopes).
    pub scope: String,
    /// Token URL; when unset, from `{base}/.well-known/smart-configuration`.
    pub token_url: Option<String>,
    /// RS384 | ES384: the key that signs client assertions.
    pub signing_alg: String,
    /// r4 (criteria) | backport (topic-based) | none.
    pub subscription: String,
    /// full-resource | id-only | empty.
    pub payload: String,
    /// R4 criteria for Appointment (all statuses: N3).
    pub criteria_appointment: String,
    /// R4 criteria for MedicationRequest.
    pub criteria_medication: String,
    /// Backport topic canonical for Appointment.
    pub topic_appointment: Option<String>,
    /// Backport topic canonical for MedicationRequest.
    pub topic_medication: Option<String>,
    /// Backport heartbeat period asked for, seconds.
    pub heartbeat_secs: u32,
    /// last-updated | location-window | patient-roster.
    pub poll: String,
    /// When the poller runs (cron, six fields, seconds first).
    pub poll_schedule: String,
    /// How far behind the checkpoint each `_lastUpdated` pass starts, seconds.
    pub poll_overlap_secs: u64,
    /// The forward window swept by location and roster polling, days.
    pub poll_window_days: u32,
    /// Locations swept (Oracle Health), as `Location/{id}`.
    #[serde(deserialize_with = "string_list")]
    pub poll_locations: Vec<String>,
    /// Practitioners swept (Oracle Health), as `Practitioner/{id}`.
    #[serde(deserialize_with = "string_list")]
    pub poll_practitioners: Vec<String>,
    /// Requests per second at most (patient-roster polling).
    pub poll_rate_per_sec: u32,
    /// Bulk Data group for a nightly reconcile (`Group/{id}`), where enabled.
    pub bulk_group: Option<String>,
    /// When the Bulk Data reconcile runs (cron, six fields).
    pub bulk_schedule: String,
    /// Longest wait for an export to finish, seconds.
    pub bulk_max_wait_secs: u64,
    /// `_count` asked for.
    pub page_size: u32,
    /// Per-request timeout, milliseconds.
    pub timeout_ms: u64,
    /// Retries on 429/5xx and network errors.
    pub max_retries: u32,
    /// Resource types the server accepts writes of (Consent, AuditEvent,
    /// Communication, Appointment).
    #[serde(deserialize_with = "string_list")]
    pub writes: Vec<String>,
    /// Largest notification body accepted, bytes (413 beyond).
    pub max_notification_bytes: usize,
    /// Import the EHR's Consents into the ledger (those Herald wrote are skipped).
    pub import_consents: bool,
}

impl Default for EhrSettings {
    fn default() -> Self {
        Self {
            preset: None,
            base_url: None,
            client_id: None,
            mode: None,
            auth: "backend-services".into(),
            scope: "system/Patient.rs system/Appointment.rs system/MedicationRequest.rs \
                    system/Location.rs"
                .into(),
            token_url: None,
            signing_alg: "RS384".into(),
            subscription: "none".into(),
            payload: "full-resource".into(),
            criteria_appointment: "Appointment".into(),
            criteria_medication: "MedicationRequest".into(),
            topic_appointment: None,
            topic_medication: None,
            heartbeat_secs: 300,
            poll: "last-updated".into(),
            poll_schedule: "0 */5 * * * *".into(),
            poll_overlap_secs: 300,
            poll_window_days: 14,
            poll_locations: Vec::new(),
            poll_practitioners: Vec::new(),
            poll_rate_per_sec: 5,
            bulk_group: None,
            bulk_schedule: "0 0 3 * * *".into(),
            bulk_max_wait_secs: 3600,
            page_size: 100,
            timeout_ms: 10_000,
            max_retries: 4,
            writes: Vec::new(),
            max_notification_bytes: 1 << 20,
            import_consents: false,
        }
    }
}

/// The embedded EHR presets (`profiles/ehr/`).
pub const EHR_PRESETS: [(&str, &str); 4] = [
    ("epic", include_str!("../profiles/ehr/epic.toml")),
    (
        "oracle-health",
        include_str!("../profiles/ehr/oracle-health.toml"),
    ),
    ("hapi", include_str!("../profiles/ehr/hapi.toml")),
    ("medplum", include_str!("../profiles/ehr/medplum.toml")),
];

/// Fills `[ehr]` keys left unset from the named preset's `[ehr]` table.
fn apply_preset(root: &mut toml::Table) -> Result<(), LoadError> {
    let Some(name) = root
        .get("ehr")
        .and_then(|e| e.get("preset"))
        .and_then(|p| p.as_str())
        .map(String::from)
    else {
        return Ok(());
    };
    // An unknown name is reported by validate(), with the others.
    let Some((_, text)) = EHR_PRESETS.iter().find(|(n, _)| *n == name) else {
        return Ok(());
    };
    let preset: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        LoadError::Invalid(format!("preset {name}: {}", e.message()))
    })?;
    let Some(toml::Value::Table(defaults)) = preset.get("ehr") else {
        return Ok(());
    };
    if let Some(toml::Value::Table(ehr)) = root.get_mut("ehr") {
        for (k, v) in defaults {
            ehr.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    Ok(())
}

/// The SMS provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsSettings {
    /// twilio | console.
    pub provider: String,
    /// The provider's API base URL.
    pub base_url: String,
    /// Twilio account SID.
    pub account_sid: Option<String>,
    /// Twilio auth token.
    pub auth_token: Option<Secret>,
    /// Sending number or messaging service.
    pub from: Option<String>,
    /// Per-request timeout in milliseconds.
    pub timeout_ms: u64,
    /// Send Herald's one confirmation after STOP/START. Set false when the
    /// provider answers keywords itself (Twilio Advanced Opt-Out), so the
    /// patient gets one confirmation, not two (TCPA T9, CTIA C3).
    pub keyword_confirmations: bool,
}

impl Default for SmsSettings {
    fn default() -> Self {
        Self {
            provider: "console".into(),
            base_url: "https://api.twilio.com".into(),
            account_sid: None,
            auth_token: None,
            from: None,
            timeout_ms: 10_000,
            keyword_confirmations: true,
        }
    }
}

/// Email.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailSettings {
    /// smtp | console.
    pub provider: String,
    /// `smtp://host:port?tls=required`, `smtps://user:pass@host`, ...
    pub smtp_url: Option<DbUrl>,
    /// Sender, e.g. `Herald Demo Health <no-reply@example.org>`.
    pub from: String,
    /// Per-message timeout in milliseconds.
    pub timeout_ms: u64,
}

impl Default for EmailSettings {
    fn default() -> Self {
        Self {
            provider: "console".into(),
            smtp_url: None,
            from: "Herald Demo Health <no-reply@example.org>".into(),
            timeout_ms: 10_000,
        }
    }
}

/// Voice calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VoiceSettings {
    /// twilio (uses the sms account and number) | console.
    pub provider: String,
}

impl Default for VoiceSettings {
    fn default() -> Self {
        Self {
            provider: "console".into(),
        }
    }
}

/// Outbox workers (issue 4 §6).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxSettings {
    /// Worker threads per process (each sends one message at a time).
    pub workers: u32,
    /// Intents claimed per lease.
    pub batch: u32,
    /// How long a claim lasts before another worker may take it over.
    pub lease_secs: u32,
    /// First retry delay; doubles per attempt, with ±50% jitter.
    pub retry_base_ms: u64,
    /// Longest retry delay.
    pub retry_max_secs: u64,
    /// Attempts before a message is given up as failed.
    pub max_attempts: u32,
    /// How often an idle worker looks for due work.
    pub poll_ms: u64,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            workers: 4,
            batch: 20,
            lease_secs: 120,
            retry_base_ms: 30_000,
            retry_max_secs: 3_600,
            max_attempts: 8,
            poll_ms: 1_000,
        }
    }
}

/// API clients: the authorization servers whose access tokens Herald's FHIR
/// endpoints accept (`[[api.issuers]]` in `herald.toml`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    /// The issuers, in order (the first one's token endpoint is advertised).
    pub issuers: Vec<ApiIssuer>,
}

/// One authorization server whose tokens Herald accepts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiIssuer {
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// The `aud` its tokens must carry: Herald's FHIR base URL.
    pub audience: String,
    /// Its JWKS; discovered from `{issuer}/.well-known/openid-configuration`
    /// (then `smart-configuration`) when unset.
    pub jwks_uri: Option<String>,
    /// Its token endpoint (advertised in the CapabilityStatement).
    pub token_endpoint: Option<String>,
    /// RFC 7662 introspection, for opaque tokens.
    pub introspection_endpoint: Option<String>,
    /// Herald's client id at the introspection endpoint.
    pub client_id: Option<String>,
    /// Herald's client secret at the introspection endpoint.
    pub client_secret: Option<Secret>,
    /// A file holding that secret (instead of `client_secret`).
    pub client_secret_file: Option<PathBuf>,
}

/// SMART app launch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmartSettings {
    /// Issuers allowed to launch Herald (comma-separated in the environment).
    #[serde(deserialize_with = "string_list")]
    pub allowed_iss: Vec<String>,
    /// OAuth client id.
    pub client_id: Option<String>,
    /// OAuth client secret (confidential clients).
    pub client_secret: Option<Secret>,
    /// Origins allowed to frame /app (the EHR's), for CSP frame-ancestors.
    #[serde(deserialize_with = "string_list")]
    pub frame_ancestors: Vec<String>,
    /// Clinician session: minutes idle before it ends.
    pub idle_minutes: u32,
    /// Scopes for the EHR launch with SMART v2 (v1 equivalents are derived).
    pub scope: String,
}

impl Default for SmartSettings {
    fn default() -> Self {
        Self {
            allowed_iss: Vec::new(),
            client_id: None,
            client_secret: None,
            frame_ancestors: Vec::new(),
            idle_minutes: 15,
            scope: "openid fhirUser offline_access patient/Patient.rs patient/Appointment.rs"
                .into(),
        }
    }
}

/// What to send and when.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessagingSettings {
    /// Practice name shown in every message (the brand, CTIA).
    pub practice_name: String,
    /// Practice phone shown in messages.
    pub practice_phone: String,
    /// Patient portal link.
    pub portal_url: String,
    /// Reminder offsets before an appointment, in hours.
    #[serde(deserialize_with = "u32_list")]
    pub reminder_offsets_hours: Vec<u32>,
    /// Refill reminder lead time, in days before the supply runs out.
    pub refill_lead_days: u32,
    /// Start of the sending window, local time of the recipient (HH:MM).
    pub quiet_end: String,
    /// End of the sending window, local time of the recipient (HH:MM).
    pub quiet_start: String,
    /// Zone used when the recipient's is unknown.
    pub default_timezone: String,
    /// Language used when the patient's is unknown or unsupported.
    pub default_language: String,
    /// Messages per recipient in any 24 hours (0: no cap; TCPA T2).
    pub cap_per_day: u32,
    /// Messages per recipient in any 7 days (0: no cap).
    pub cap_per_week: u32,
    /// Hours staff have to read a text Herald cannot act on alone (T6, T8).
    pub reply_review_hours: u32,
    /// What a patient's "cancel" reply does: `staff` (a task in the inbox)
    /// or `cancel` (Herald cancels the Appointment on the EHR, where the
    /// preset accepts Appointment writes; staff are told either way).
    pub reply_cancel: String,
    /// Stricter windows by state, e.g. `["FL=08:00-20:00"]` (T4).
    #[serde(deserialize_with = "string_list")]
    pub state_windows: Vec<String>,
}

impl MessagingSettings {
    /// The portal's host ("portal.example.org"): links there are allowed in
    /// messages (messaging.md C8).
    pub fn portal_domain(&self) -> &str {
        let url = self.portal_url.as_str();
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        rest.split(['/', '?', '#', ':']).next().unwrap_or_default()
    }
}

impl Default for MessagingSettings {
    fn default() -> Self {
        Self {
            practice_name: "Herald Demo Health".into(),
            practice_phone: "+18005550100".into(),
            portal_url: "https://portal.example.org".into(),
            reminder_offsets_hours: vec![72, 24, 2],
            refill_lead_days: 5,
            quiet_end: "08:00".into(),
            quiet_start: "21:00".into(),
            default_timezone: "America/New_York".into(),
            default_language: "en-US".into(),
            cap_per_day: 1,
            cap_per_week: 3,
            reply_review_hours: 24,
            reply_cancel: "staff".into(),
            state_windows: vec!["FL=08:00-20:00".into(), "OK=08:00-20:00".into()],
        }
    }
}

/// Staff sign-in and break-glass (issue 6; HIPAA 164.312(a)(2), messaging.md H2, H3, H7).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaffSettings {
    /// A session unused this long ends (automatic logoff).
    pub idle_minutes: u32,
    /// A session ends this long after sign-in, however busy.
    pub absolute_hours: u32,
    /// Failed sign-ins in a row that lock an account.
    pub lockout_after: u32,
    /// How long a locked account stays locked.
    pub lockout_minutes: u32,
    /// How long a break-glass grant lasts.
    pub break_glass_minutes: u32,
    /// The most break-glass grants one identity may open in an hour (F2).
    pub break_glass_per_hour: u32,
    /// Where a break-glass alert is POSTed as JSON (opaque ids only); https,
    /// or http on loopback. A secret: webhook URLs often embed a token.
    pub alert_webhook: Option<Secret>,
}

impl Default for StaffSettings {
    fn default() -> Self {
        Self {
            idle_minutes: 15,
            absolute_hours: 12,
            lockout_after: 5,
            lockout_minutes: 15,
            break_glass_minutes: 60,
            break_glass_per_hour: 5,
            alert_webhook: None,
        }
    }
}

/// The audit log's external anchor (security review F8h): Herald signs the
/// chain head with its own ES384 key into files outside the database, so a
/// database owner who rewrites the log and its head is caught by
/// `herald audit verify --checkpoints DIR`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// Where checkpoints are written (hourly and at shutdown by `herald
    /// serve`, and by `herald audit checkpoint`); default
    /// `<data_dir>/checkpoints`. Point it at storage the database's owners
    /// cannot write.
    pub checkpoint_dir: Option<PathBuf>,
    /// The signing key (PKCS#8 PEM, P-384, made on first need with mode
    /// 0600); default `<data_dir>/audit-checkpoint.pem`. Never in the database.
    pub checkpoint_key: Option<PathBuf>,
    /// Where each checkpoint is also POSTed as JSON; https, or http on
    /// loopback. A secret: webhook URLs often embed a token.
    pub checkpoint_webhook: Option<Secret>,
}

impl AuditSettings {
    fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if let Some(u) = self.checkpoint_webhook.as_ref().map(Secret::expose) {
            let u = u.trim();
            if u.is_empty() {
                out.push(Problem {
                    key: "audit.checkpoint_webhook".into(),
                    message: "is set but empty; unset it or give the URL".into(),
                });
            } else if !(u.starts_with("https://")
                || u.starts_with("http://127.0.0.1")
                || u.starts_with("http://localhost"))
            {
                out.push(Problem {
                    key: "audit.checkpoint_webhook".into(),
                    message: "must be an https:// URL (plain http only on loopback)".into(),
                });
            }
        }
        out
    }
}

impl Settings {
    /// The checkpoint directory in effect.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.audit
            .checkpoint_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("checkpoints"))
    }

    /// The checkpoint signing key file in effect.
    pub fn checkpoint_key(&self) -> PathBuf {
        self.audit
            .checkpoint_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit-checkpoint.pem"))
    }
}

/// Request rate limits and the bound on password checks (issue 11 F5c–e).
/// Quotas are per minute, per client address (the TCP peer, or the address a
/// trusted proxy forwards) and, for `POST /login`, per submitted user name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSettings {
    /// `POST /login` per client address, per minute.
    pub login_per_minute: u32,
    /// `POST /login` per submitted user name (kept only as a keyed hash), per minute.
    pub login_per_account_per_minute: u32,
    /// `/smart/*` per client address, per minute.
    pub smart_per_minute: u32,
    /// `/hooks/*` (the EHR, the SMS provider) per client address, per minute.
    pub hooks_per_minute: u32,
    /// `/p/*` (patients' preference links) per client address, per minute.
    pub patient_link_per_minute: u32,
    /// Proxies (IP addresses) whose `X-Forwarded-For` names the client;
    /// comma-separated in the environment. Empty: the peer is the client.
    #[serde(deserialize_with = "string_list")]
    pub trusted_proxies: Vec<String>,
    /// Password checks (argon2id, 19 MiB each) that may run at once; 0 means
    /// twice the number of cores (4 when that is unknown).
    pub password_checks: u32,
    /// How long a sign-in waits for a password-check slot before it is
    /// answered 503 with Retry-After (milliseconds).
    pub password_wait_ms: u64,
    /// Distinct clients and names each limiter remembers before it prunes
    /// (memory bound).
    pub max_keys: u32,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        Self {
            login_per_minute: 30,
            login_per_account_per_minute: 10,
            smart_per_minute: 60,
            hooks_per_minute: 1200,
            patient_link_per_minute: 60,
            trusted_proxies: Vec::new(),
            password_checks: 0,
            password_wait_ms: 500,
            max_keys: 100_000,
        }
    }
}

impl LimitsSettings {
    /// Password checks allowed at once (`password_checks`, or 2 × cores).
    pub fn password_slots(&self) -> usize {
        match self.password_checks {
            0 => std::thread::available_parallelism().map_or(4, |n| n.get().saturating_mul(2)),
            n => usize::try_from(n).unwrap_or(4),
        }
    }

    /// The trusted proxies as addresses (unparsable entries are a
    /// [`Settings::validate`] problem and skipped here).
    pub fn proxies(&self) -> Vec<std::net::IpAddr> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| p.trim().parse().ok())
            .collect()
    }

    /// Problems with these limits (for [`Settings::validate`]).
    fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let quotas = [
            ("limits.login_per_minute", self.login_per_minute),
            (
                "limits.login_per_account_per_minute",
                self.login_per_account_per_minute,
            ),
            ("limits.smart_per_minute", self.smart_per_minute),
            ("limits.hooks_per_minute", self.hooks_per_minute),
            (
                "limits.patient_link_per_minute",
                self.patient_link_per_minute,
            ),
        ];
        for (key, v) in quotas {
            if !(1..=1_000_000).contains(&v) {
                out.push(Problem {
                    key: key.into(),
                    message: "must be between 1 and 1000000 requests per minute".into(),
                });
            }
        }
        if self.password_checks > 1024 {
            out.push(Problem {
                key: "limits.password_checks".into(),
                message: "must be at most 1024 (each check holds 19 MiB); 0 means 2 × cores".into(),
            });
        }
        if !(1..=10_000).contains(&self.password_wait_ms) {
            out.push(Problem {
                key: "limits.password_wait_ms".into(),
                message: "must be between 1 and 10000 milliseconds".into(),
            });
        }
        if !(1_000..=10_000_000).contains(&self.max_keys) {
            out.push(Problem {
                key: "limits.max_keys".into(),
                message: "must be between 1000 and 10000000".into(),
            });
        }
        for p in &self.trusted_proxies {
            if p.trim().parse::<std::net::IpAddr>().is_err() {
                out.push(Problem {
                    key: "limits.trusted_proxies".into(),
                    message: "must list IP addresses (no names, no ranges)".into(),
                });
            }
        }
        out
    }
}

/// Logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// An env-filter directive, e.g. `info` or `herald=debug`.
    pub level: String,
    /// text | json.
    pub format: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        One(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::List(v) => v,
        Either::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
    })
}

fn u32_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<u32>),
        One(u32),
        Text(String),
    }
    match Either::deserialize(d)? {
        Either::List(v) => Ok(v),
        Either::One(n) => Ok(vec![n]),
        Either::Text(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u32>().map_err(serde::de::Error::custom))
            .collect(),
    }
}

/// Parses `FL=08:00-20:00` into (state, opens, closes).
pub fn parse_state_window(s: &str) -> Option<(String, chrono::NaiveTime, chrono::NaiveTime)> {
    let (state, range) = s.split_once('=')?;
    let (a, b) = range.split_once('-')?;
    let t = |x: &str| chrono::NaiveTime::parse_from_str(x.trim(), "%H:%M").ok();
    let (opens, closes) = (t(a)?, t(b)?);
    let state = state.trim().to_ascii_uppercase();
    (state.len() == 2 && opens < closes).then_some((state, opens, closes))
}

/// A configuration problem, reported on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key, e.g. `server.bind`.
    pub key: String,
    /// What is wrong and how to mend it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Why settings could not be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file or environment does not fit the settings.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Loads settings from an optional TOML file and the given environment
    /// (pass `std::env::vars()` from `main`, a map in tests).
    pub fn load(file: Option<&Path>, env: &BTreeMap<String, String>) -> Result<Self, LoadError> {
        let mut root = toml::Table::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
                path: path.display().to_string(),
                source,
            })?;
            root = text
                .parse::<toml::Table>()
                .map_err(|e| LoadError::Invalid(format!("{}: {}", path.display(), e.message())))?;
        }
        for (name, value) in env {
            let Some(key) = name.strip_prefix("HERALD_") else {
                continue;
            };
            if key == "CONFIG" {
                continue;
            }
            let (key, value) = if let Some(k) = key.strip_suffix("_FILE") {
                let text = std::fs::read_to_string(value).map_err(|source| LoadError::Read {
                    path: value.clone(),
                    source,
                })?;
                (k, text.trim_end_matches(['\n', '\r']).to_string())
            } else {
                (key, value.clone())
            };
            let path: Vec<String> = match key {
                "MASTER_KEY" => vec!["crypto".into(), "master_key".into()],
                "DATA_DIR" => vec!["data_dir".into()],
                "ENVIRONMENT" => vec!["environment".into()],
                other => other.split("__").map(str::to_ascii_lowercase).collect(),
            };
            set_path(&mut root, &path, env_value(&value))
                .map_err(|e| LoadError::Invalid(format!("{name}: {e}")))?;
        }
        apply_preset(&mut root)?;
        toml::Value::Table(root)
            .try_into::<Settings>()
            .map_err(|e| LoadError::Invalid(one_line(&e.to_string())))
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> DbUrl {
        match &self.database.url {
            Some(u) => u.clone(),
            None => DbUrl::new(format!(
                "sqlite://{}",
                self.data_dir.join("herald.db").display()
            )),
        }
    }

    /// The key file in effect.
    pub fn key_file(&self) -> PathBuf {
        self.crypto
            .key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    /// Every problem with these settings; empty when they are usable.
    pub fn validate(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |key: &str, message: String| {
            out.push(Problem {
                key: key.into(),
                message,
            })
        };
        // F4: a secret that is set but empty (e.g. a `*_FILE` pointing at an
        // empty file, a secret-mount race) is a configuration error, never
        // "no secret": every check it feeds would fail open or refuse all.
        for (key, secret) in [
            ("crypto.master_key", &self.crypto.master_key),
            ("sms.auth_token", &self.sms.auth_token),
            ("smart.client_secret", &self.smart.client_secret),
            ("staff.alert_webhook", &self.staff.alert_webhook),
        ] {
            if secret
                .as_ref()
                .is_some_and(|s| s.expose().trim().is_empty())
            {
                bad(
                    key,
                    "is set but empty (an empty *_FILE?); give the secret or unset it".into(),
                );
            }
        }
        if let Some(url) = &self.email.smtp_url
            && let Some(rest) = url.expose().split_once("://").map(|(_, r)| r)
            && let Some((userinfo, _)) = rest.split_once('@')
            && userinfo
                .split_once(':')
                .is_none_or(|(_, pass)| pass.is_empty())
        {
            bad(
                "email.smtp_url",
                "names a user but no password (an empty *_FILE?)".into(),
            );
        }
        let tls = self.server.tls_cert.is_some() && self.server.tls_key.is_some();
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            bad(
                "server.tls_cert",
                "set both server.tls_cert and server.tls_key (PEM files), or neither".into(),
            );
        }
        for (key, path) in [
            ("server.tls_cert", &self.server.tls_cert),
            ("server.tls_key", &self.server.tls_key),
        ] {
            if let Some(p) = path
                && !p.is_file()
            {
                bad(key, format!("{} is not a readable file", p.display()));
            }
        }
        match self.server.bind.parse::<SocketAddr>() {
            Ok(addr) if !addr.ip().is_loopback() && !tls && !self.server.allow_non_loopback => bad(
                "server.bind",
                format!(
                    "{addr} is not a loopback address: plain HTTP is served on loopback only (H8); set server.tls_cert and server.tls_key for HTTPS"
                ),
            ),
            Ok(_) => {}
            Err(_) => bad(
                "server.bind",
                format!(
                    "{:?} is not an address:port such as 127.0.0.1:8080",
                    self.server.bind
                ),
            ),
        }
        if let Some(url) = &self.server.public_url
            && !(url.starts_with("https://")
                || url.starts_with("http://127.0.0.1")
                || url.starts_with("http://localhost"))
        {
            bad("server.public_url", "must be an https:// URL".into());
        }
        // F8b: callbacks and the SMART redirect_uri are built from
        // public_url, never from the request's Host or X-Forwarded-*.
        let smart_on = !self.smart.allowed_iss.is_empty();
        let webhooks_on = self.sms.provider == "twilio" || self.ehr.subscription != "none";
        if self.server.public_url.is_none() && (smart_on || webhooks_on) {
            bad(
                "server.public_url",
                "required when SMART launch (smart.allowed_iss), SMS provider webhooks or FHIR subscriptions (ehr.subscription) are on".into(),
            );
        }
        let url = self.database_url();
        let u = url.expose();
        if !(u.starts_with("sqlite://")
            || u.starts_with("postgres://")
            || u.starts_with("postgresql://"))
        {
            bad(
                "database.url",
                format!(
                    "{} must start with sqlite:// or postgres://",
                    url.redacted()
                ),
            );
        }
        if self.database.pool_size == 0 {
            bad("database.pool_size", "must be at least 1".into());
        }
        if let Some(k) = &self.crypto.master_key
            && crate::crypto::MasterKey::from_base64(k.expose()).is_err()
        {
            bad(
                "crypto.master_key",
                "HERALD_MASTER_KEY must be base64 of exactly 32 bytes (make one with `openssl rand -base64 32`)".into(),
            );
        }
        if let Some(p) = &self.ehr.preset
            && !["epic", "oracle-health", "hapi", "medplum"].contains(&p.as_str())
        {
            bad(
                "ehr.preset",
                format!("{p:?} is not one of epic, oracle-health, hapi, medplum"),
            );
        }
        if let Some(m) = &self.ehr.mode
            && !["subscribe", "poll"].contains(&m.as_str())
        {
            bad("ehr.mode", format!("{m:?} is not one of subscribe, poll"));
        }
        let one_of = |key: &str, v: &str, allowed: &[&str], bad: &mut dyn FnMut(&str, String)| {
            if !allowed.contains(&v) {
                bad(key, format!("{v:?} is not one of {}", allowed.join(", ")));
            }
        };
        one_of(
            "ehr.auth",
            &self.ehr.auth,
            &["backend-services", "none"],
            &mut bad,
        );
        one_of(
            "ehr.signing_alg",
            &self.ehr.signing_alg,
            &["RS384", "ES384"],
            &mut bad,
        );
        one_of(
            "ehr.subscription",
            &self.ehr.subscription,
            &["r4", "backport", "none"],
            &mut bad,
        );
        one_of(
            "ehr.payload",
            &self.ehr.payload,
            &["full-resource", "id-only", "empty"],
            &mut bad,
        );
        one_of(
            "ehr.poll",
            &self.ehr.poll,
            &["last-updated", "location-window", "patient-roster"],
            &mut bad,
        );
        if self.ehr.poll_schedule.parse::<cron::Schedule>().is_err() {
            bad(
                "ehr.poll_schedule",
                format!(
                    "{:?} is not a cron schedule with six fields, seconds first (e.g. \"0 */5 * * * *\")",
                    self.ehr.poll_schedule
                ),
            );
        }
        if self.ehr.poll == "location-window"
            && self.ehr.poll_locations.is_empty()
            && self.ehr.poll_practitioners.is_empty()
            && self.ehr.base_url.is_some()
        {
            bad(
                "ehr.poll_locations",
                "location-window polling needs ehr.poll_locations or ehr.poll_practitioners (the customer gives the ids)".into(),
            );
        }
        if !["staff", "cancel"].contains(&self.messaging.reply_cancel.as_str()) {
            bad(
                "messaging.reply_cancel",
                format!(
                    "{:?} is not one of staff, cancel",
                    self.messaging.reply_cancel
                ),
            );
        }
        if self.ehr.bulk_schedule.parse::<cron::Schedule>().is_err() {
            bad(
                "ehr.bulk_schedule",
                format!(
                    "{:?} is not a cron schedule with six fields, seconds first",
                    self.ehr.bulk_schedule
                ),
            );
        }
        if let Some(g) = &self.ehr.bulk_group
            && !g.starts_with("Group/")
        {
            bad(
                "ehr.bulk_group",
                format!("{g:?} must look like Group/{{id}}"),
            );
        }
        if self.ehr.page_size == 0 || self.ehr.poll_rate_per_sec == 0 {
            bad(
                "ehr.page_size",
                "page_size and poll_rate_per_sec must be at least 1".into(),
            );
        }
        if let Some(b) = &self.ehr.base_url
            && !b.starts_with("https://")
            && !b.starts_with("http://127.0.0.1")
            && !b.starts_with("http://localhost")
        {
            bad(
                "ehr.base_url",
                "must be an https:// URL (plain http only on loopback)".into(),
            );
        }
        match self.sms.provider.as_str() {
            "console" => {
                if self.environment == Environment::Production {
                    bad(
                        "sms.provider",
                        "the console provider is for development; choose twilio in production"
                            .into(),
                    );
                }
            }
            "twilio" => {
                if self.sms.account_sid.is_none() {
                    bad(
                        "sms.account_sid",
                        "required with the twilio provider".into(),
                    );
                }
                if self.sms.auth_token.is_none() {
                    bad(
                        "sms.auth_token",
                        "required with the twilio provider (or HERALD_SMS__AUTH_TOKEN_FILE)".into(),
                    );
                }
                if self.sms.from.is_none() {
                    bad("sms.from", "required with the twilio provider".into());
                }
            }
            other => bad(
                "sms.provider",
                format!("{other:?} is not one of twilio, console"),
            ),
        }
        let url_ok = |u: &str| {
            u.starts_with("https://")
                || u.starts_with("http://127.0.0.1")
                || u.starts_with("http://localhost")
        };
        for (i, a) in self.api.issuers.iter().enumerate() {
            if !url_ok(&a.issuer) {
                bad(
                    &format!("api.issuers[{i}].issuer"),
                    format!("{:?} must be an https:// URL", a.issuer),
                );
            }
            if a.audience.trim().is_empty() {
                bad(
                    &format!("api.issuers[{i}].audience"),
                    "required: Herald's FHIR base URL, the aud its tokens carry".into(),
                );
            }
            for (name, u) in [
                ("jwks_uri", &a.jwks_uri),
                ("token_endpoint", &a.token_endpoint),
                ("introspection_endpoint", &a.introspection_endpoint),
            ] {
                if let Some(u) = u
                    && !url_ok(u)
                {
                    bad(
                        &format!("api.issuers[{i}].{name}"),
                        format!("{u:?} must be an https:// URL"),
                    );
                }
            }
            if a.introspection_endpoint.is_some() {
                if a.client_id.as_deref().is_none_or(|c| c.trim().is_empty()) {
                    bad(
                        &format!("api.issuers[{i}].client_id"),
                        "required with introspection_endpoint".into(),
                    );
                }
                let secret = a
                    .client_secret
                    .as_ref()
                    .is_some_and(|s| !s.expose().is_empty());
                if !secret && a.client_secret_file.is_none() {
                    bad(
                        &format!("api.issuers[{i}].client_secret"),
                        "required (or client_secret_file) with introspection_endpoint".into(),
                    );
                }
            }
            if self
                .api
                .issuers
                .iter()
                .take(i)
                .any(|o| o.issuer == a.issuer)
            {
                bad(
                    &format!("api.issuers[{i}].issuer"),
                    format!("{:?} is listed twice", a.issuer),
                );
            }
        }
        for iss in &self.smart.allowed_iss {
            if !iss.starts_with("https://")
                && !iss.starts_with("http://127.0.0.1")
                && !iss.starts_with("http://localhost")
            {
                bad(
                    "smart.allowed_iss",
                    format!("{iss:?} must be an https:// URL"),
                );
            }
        }
        if self.messaging.reminder_offsets_hours.is_empty() {
            bad(
                "messaging.reminder_offsets_hours",
                "give at least one offset, e.g. [72, 24, 2]".into(),
            );
        }
        for (key, v) in [
            ("messaging.quiet_end", &self.messaging.quiet_end),
            ("messaging.quiet_start", &self.messaging.quiet_start),
        ] {
            if chrono::NaiveTime::parse_from_str(v, "%H:%M").is_err() {
                bad(key, format!("{v:?} is not a time of day such as 08:00"));
            }
        }
        if self
            .messaging
            .default_timezone
            .parse::<chrono_tz::Tz>()
            .is_err()
        {
            bad(
                "messaging.default_timezone",
                format!(
                    "{:?} is not an IANA time zone such as America/New_York",
                    self.messaging.default_timezone
                ),
            );
        }
        for sw in &self.messaging.state_windows {
            if parse_state_window(sw).is_none() {
                bad(
                    "messaging.state_windows",
                    format!("{sw:?} is not STATE=HH:MM-HH:MM, e.g. FL=08:00-20:00"),
                );
            }
        }
        if self.voice.provider == "twilio" && self.sms.provider != "twilio" {
            for (key, missing) in [
                ("sms.account_sid", self.sms.account_sid.is_none()),
                ("sms.auth_token", self.sms.auth_token.is_none()),
                ("sms.from", self.sms.from.is_none()),
            ] {
                if missing {
                    bad(key, "required when a channel uses twilio".into());
                }
            }
        }
        if !["twilio", "console"].contains(&self.voice.provider.as_str()) {
            bad("voice.provider", "must be twilio or console".into());
        }
        match self.email.provider.as_str() {
            "console" => {}
            "smtp" if self.email.smtp_url.is_none() => bad(
                "email.smtp_url",
                "required when email.provider = smtp, e.g. smtp://mail.example.org:587?tls=required".into(),
            ),
            "smtp" => {}
            _ => bad("email.provider", "must be smtp or console".into()),
        }
        if self.outbox.workers == 0 || self.outbox.batch == 0 || self.outbox.max_attempts == 0 {
            bad(
                "outbox",
                "workers, batch and max_attempts must be at least 1".into(),
            );
        }
        let mut slowest_ms = 0;
        if self.sms.provider == "twilio" || self.voice.provider == "twilio" {
            slowest_ms = self.sms.timeout_ms;
        }
        if self.email.provider == "smtp" {
            slowest_ms = slowest_ms.max(self.email.timeout_ms);
        }
        if u64::from(self.outbox.lease_secs) * 1000 < 4 * slowest_ms {
            bad(
                "outbox.lease_secs",
                format!(
                    "must be at least four times the slowest provider timeout ({slowest_ms} ms) so a lease never ends mid-send"
                ),
            );
        }
        let st = &self.staff;
        if st.idle_minutes == 0
            || st.absolute_hours == 0
            || st.lockout_after == 0
            || st.lockout_minutes == 0
            || st.break_glass_minutes == 0
        {
            bad(
                "staff",
                "idle_minutes, absolute_hours, lockout_after, lockout_minutes and break_glass_minutes must be at least 1".into(),
            );
        }
        if u64::from(st.idle_minutes) > u64::from(st.absolute_hours) * 60 {
            bad(
                "staff.idle_minutes",
                "must not be longer than staff.absolute_hours".into(),
            );
        }
        if let Some(u) = st.alert_webhook.as_ref().map(Secret::expose)
            && !(u.starts_with("https://")
                || u.starts_with("http://127.0.0.1")
                || u.starts_with("http://localhost"))
        {
            bad(
                "staff.alert_webhook",
                "must be an https:// URL (plain http only on loopback)".into(),
            );
        }
        if !["text", "json"].contains(&self.log.format.as_str()) {
            bad("log.format", "must be text or json".into());
        }
        out.extend(self.limits.problems());
        out.extend(self.audit.problems());
        out
    }

    /// The effective settings as TOML-like lines, secrets shown as `***`.
    pub fn redacted_dump(&self) -> String {
        format!("{self:#?}")
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn env_value(s: &str) -> toml::Value {
    if let Ok(b) = s.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    // Only a canonical decimal is a number: "+18005550100" (a phone number)
    // and "0123" stay text.
    if let Ok(i) = s.parse::<i64>()
        && i.to_string() == s
    {
        return toml::Value::Integer(i);
    }
    toml::Value::String(s.to_string())
}

fn set_path(root: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    match path {
        [] => Err("empty key".into()),
        [last] => {
            // A string where the file has a string keeps being a string ("8080" stays text).
            let value = match (root.get(last), value) {
                (
                    Some(toml::Value::String(_)),
                    v @ (toml::Value::Integer(_) | toml::Value::Boolean(_)),
                ) => toml::Value::String(v.to_string()),
                (_, v) => v,
            };
            root.insert(last.clone(), value);
            Ok(())
        }
        [head, rest @ ..] => {
            let entry = root
                .entry(head.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set_path(t, rest, value),
                _ => Err(format!("{head} is not a section")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid_and_loopback() {
        let s = Settings::load(None, &env(&[])).unwrap();
        assert_eq!(s.server.bind, "127.0.0.1:8080");
        assert!(s.database_url().expose().starts_with("sqlite://"));
        assert_eq!(s.validate(), vec![]);
    }

    #[test]
    fn env_overrides_sections_and_lists() {
        let s = Settings::load(
            None,
            &env(&[
                ("HERALD_SERVER__BIND", "127.0.0.1:0"),
                (
                    "HERALD_DATABASE__URL",
                    "postgres://herald:pw@localhost/herald",
                ),
                (
                    "HERALD_SMART__ALLOWED_ISS",
                    "https://a.example, https://b.example",
                ),
                ("HERALD_MESSAGING__REMINDER_OFFSETS_HOURS", "48,4"),
                ("HERALD_DATA_DIR", "/tmp/x"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(s.server.bind, "127.0.0.1:0");
        assert_eq!(
            s.smart.allowed_iss,
            vec!["https://a.example", "https://b.example"]
        );
        assert_eq!(s.messaging.reminder_offsets_hours, vec![48, 4]);
        // A phone number in the environment stays a string.
        let env = BTreeMap::from([("HERALD_SMS__FROM".to_string(), "+18005550199".to_string())]);
        assert_eq!(
            Settings::load(None, &env).unwrap().sms.from.as_deref(),
            Some("+18005550199")
        );
        assert_eq!(s.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(
            s.database_url().redacted(),
            "postgres://herald:***@localhost/herald"
        );
    }

    #[test]
    fn secrets_never_print() {
        let s = Settings::load(
            None,
            &env(&[
                ("HERALD_SMS__AUTH_TOKEN", "tok-very-secret"),
                (
                    "HERALD_MASTER_KEY",
                    "c2VjcmV0LW1hc3Rlci1rZXktbWF0ZXJpYWwtMzJieXQ=",
                ),
                (
                    "HERALD_DATABASE__URL",
                    "postgres://u:hunter2@db/herald?password=hunter3",
                ),
            ]),
        )
        .unwrap();
        let dump = s.redacted_dump();
        for secret in ["tok-very-secret", "c2VjcmV0", "hunter2", "hunter3"] {
            assert!(!dump.contains(secret), "{secret} leaked");
        }
    }

    #[test]
    fn staff_settings_are_checked_and_the_webhook_is_secret() {
        let s = Settings::load(
            None,
            &env(&[
                ("HERALD_STAFF__IDLE_MINUTES", "0"),
                (
                    "HERALD_STAFF__ALERT_WEBHOOK",
                    "http://hooks.example.org/T0K3N",
                ),
            ]),
        )
        .unwrap();
        let keys: Vec<String> = s.validate().into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["staff", "staff.alert_webhook"]);
        assert!(!s.redacted_dump().contains("T0K3N"));
        let d = Settings::default().staff;
        assert_eq!(
            (
                d.idle_minutes,
                d.absolute_hours,
                d.lockout_after,
                d.lockout_minutes,
                d.break_glass_minutes
            ),
            (15, 12, 5, 15, 60)
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Settings::load(None, &env(&[("HERALD_SERVER__BINDD", "x")])).unwrap_err();
        assert!(err.to_string().contains("bindd"), "{err}");
    }

    #[test]
    fn every_problem_is_one_line() {
        let s = Settings::load(
            None,
            &env(&[
                ("HERALD_SERVER__BIND", "0.0.0.0:8080"),
                ("HERALD_EHR__PRESET", "allscripts"),
                ("HERALD_SMS__PROVIDER", "twilio"),
                ("HERALD_MASTER_KEY", "short"),
            ]),
        )
        .unwrap();
        let problems = s.validate();
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        for k in [
            "server.bind",
            "ehr.preset",
            "sms.account_sid",
            "sms.auth_token",
            "sms.from",
            "crypto.master_key",
        ] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
        assert!(problems.iter().all(|p| !p.to_string().contains('\n')));
    }

    #[test]
    fn api_issuers_load_from_toml_and_are_validated() {
        // fhir.md SMART Backend Services: Herald accepts tokens of configured issuers only,
        // with its own FHIR base as the audience; introspection needs Herald's credentials.
        let dir = std::env::temp_dir().join(format!("herald-api-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("herald.toml");
        std::fs::write(
            &file,
            r#"
[[api.issuers]]
issuer = "https://auth.hospital.example"
audience = "https://herald.hospital.example/fhir"
jwks_uri = "https://auth.hospital.example/jwks"

[[api.issuers]]
issuer = "http://auth.elsewhere.example"
audience = ""
introspection_endpoint = "https://auth.elsewhere.example/introspect"
"#,
        )
        .unwrap();
        let s = Settings::load(Some(&file), &BTreeMap::new()).unwrap();
        assert_eq!(s.api.issuers.len(), 2);
        assert_eq!(
            s.api.issuers[0].audience,
            "https://herald.hospital.example/fhir"
        );
        let keys: Vec<String> = s.validate().into_iter().map(|p| p.key).collect();
        for k in [
            "api.issuers[1].issuer",
            "api.issuers[1].audience",
            "api.issuers[1].client_id",
            "api.issuers[1].client_secret",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} missing from {keys:?}");
        }
        assert!(
            !keys.iter().any(|x| x.starts_with("api.issuers[0]")),
            "{keys:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn limits_have_sane_defaults_env_overrides_and_are_validated() {
        let s = Settings::load(None, &env(&[])).unwrap();
        assert_eq!(s.limits.login_per_minute, 30);
        assert_eq!(s.limits.login_per_account_per_minute, 10);
        assert!(s.limits.password_slots() >= 2);
        assert!(s.limits.proxies().is_empty());
        assert!(s.validate().iter().all(|p| !p.key.starts_with("limits")));
        let s = Settings::load(
            None,
            &env(&[
                ("HERALD_LIMITS__LOGIN_PER_MINUTE", "7"),
                ("HERALD_LIMITS__PASSWORD_CHECKS", "3"),
                ("HERALD_LIMITS__TRUSTED_PROXIES", "10.0.0.1, ::1"),
            ]),
        )
        .unwrap();
        assert_eq!(s.limits.login_per_minute, 7);
        assert_eq!(s.limits.password_slots(), 3);
        assert_eq!(s.limits.proxies().len(), 2);
        let s = Settings::load(
            None,
            &env(&[
                ("HERALD_LIMITS__HOOKS_PER_MINUTE", "0"),
                ("HERALD_LIMITS__PASSWORD_WAIT_MS", "0"),
                ("HERALD_LIMITS__TRUSTED_PROXIES", "proxy.example"),
            ]),
        )
        .unwrap();
        let keys: Vec<String> = s.validate().into_iter().map(|p| p.key).collect();
        for k in [
            "limits.hooks_per_minute",
            "limits.password_wait_ms",
            "limits.trusted_proxies",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} missing from {keys:?}");
        }
    }
}
