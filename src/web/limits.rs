//! Request rate limits (issue 11 F5c–e): per client address on `POST
//! /login`, `/smart/*`, `/hooks/*` and `/p/*`, and per submitted user name on
//! `POST /login`; the bound on password checks running at once; and the
//! background tick that prunes the limiters and purges expired sessions.
//!
//! The address limit is checked by the access table's gate
//! ([`super::access::enforce`]) before anything else, so a refused request
//! costs no database read, no audit record and no argon2 run. The account
//! limit needs the form, so the sign-in handler checks it. A refusal is 429
//! with `Retry-After`, as problem+json (an OperationOutcome on `/hooks/fhir`),
//! and at most one `security` log line per client (or name) per minute.
//!
//! The client is the TCP peer; `X-Forwarded-For` is read only when the peer
//! is one of `limits.trusted_proxies`. IPv6 clients are counted by their /64.
//! Names are kept only as keyed hashes. Memory is bounded: each limiter
//! forgets clients idle for a full window (pruned on [`tick`] and whenever it
//! holds `limits.max_keys`), and starts afresh if a flood of distinct clients
//! still fills it.
//!
//! Must not: write to the database or the audit log for a refused request.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, ResponseError as _};
use governor::clock::{Clock as _, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::{ApiError, AppState};
use crate::config::LimitsSettings;
use crate::error::AppError;

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;

/// The routes that are limited per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// `POST /login`.
    Login,
    /// `/smart/*`.
    Smart,
    /// `/hooks/*`.
    Hooks,
    /// `/p/*`.
    PatientLink,
}

impl Group {
    /// The group a route belongs to, if it is limited.
    pub fn of(method: &actix_web::http::Method, path: &str) -> Option<Self> {
        if path == "/login" {
            (method == actix_web::http::Method::POST).then_some(Self::Login)
        } else if path.starts_with("/smart/") {
            Some(Self::Smart)
        } else if path.starts_with("/hooks/") {
            Some(Self::Hooks)
        } else if path.starts_with("/p/") {
            Some(Self::PatientLink)
        } else {
            None
        }
    }

    fn code(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Smart => "smart",
            Self::Hooks => "hooks",
            Self::PatientLink => "patient-link",
        }
    }
}

/// One keyed limiter with a bound on the keys it remembers.
struct Bucket<K: Hash + Eq + Clone> {
    quota: Quota,
    inner: RwLock<Arc<Keyed<K>>>,
    max_keys: usize,
    calls: AtomicU64,
}

impl<K: Hash + Eq + Clone> Bucket<K> {
    fn new(per_minute: u32, max_keys: usize) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
        Self {
            quota,
            inner: RwLock::new(Arc::new(RateLimiter::keyed(quota))),
            max_keys,
            calls: AtomicU64::new(0),
        }
    }

    fn current(&self) -> Arc<Keyed<K>> {
        match self.inner.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// `Ok` when `key` is within its quota, else how long until it is.
    fn check(&self, key: &K) -> Result<(), Duration> {
        // Counting the keys walks every shard, so look every 256 calls.
        if self.calls.fetch_add(1, Ordering::Relaxed) % 256 == 255
            && self.current().len() >= self.max_keys
        {
            self.prune();
        }
        let limiter = self.current();
        limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets keys idle for a whole window; starts afresh when the bound is
    /// still exceeded (a flood of distinct clients).
    fn prune(&self) -> usize {
        let limiter = self.current();
        limiter.retain_recent();
        limiter.shrink_to_fit();
        let kept = limiter.len();
        if kept >= self.max_keys {
            tracing::warn!(target: "security", keys = kept, "rate limiter full of distinct clients; starting afresh");
            let fresh = Arc::new(RateLimiter::keyed(self.quota));
            match self.inner.write() {
                Ok(mut g) => *g = fresh,
                Err(poisoned) => *poisoned.into_inner() = fresh,
            }
            return 0;
        }
        kept
    }
}

/// What the security log has been told about, once a minute at most.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Noted {
    Address(Group, IpAddr),
    Account(String),
}

/// Every limiter of a server, and the password-check slots.
pub struct Limits {
    login: Bucket<IpAddr>,
    account: Bucket<String>,
    smart: Bucket<IpAddr>,
    hooks: Bucket<IpAddr>,
    patient_link: Bucket<IpAddr>,
    noted: Bucket<Noted>,
    proxies: Vec<IpAddr>,
    /// Password checks (argon2id) that may run at once.
    pub password_slots: Arc<tokio::sync::Semaphore>,
    /// How long a sign-in waits for a slot.
    pub password_wait: Duration,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("proxies", &self.proxies)
            .finish_non_exhaustive()
    }
}

/// A refusal: how long the caller should wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// Seconds for `Retry-After` (at least 1).
    pub retry_after: u64,
}

fn refused(wait: Duration) -> Refused {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Refused {
        retry_after: secs.max(1),
    }
}

/// The key an address is counted under: IPv4 as is (also when mapped into
/// IPv6), IPv6 by its /64 (one host usually holds a whole /64).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Limits {
    /// The limiters for these settings.
    pub fn new(s: &LimitsSettings) -> Self {
        let max = usize::try_from(s.max_keys).unwrap_or(100_000);
        Self {
            login: Bucket::new(s.login_per_minute, max),
            account: Bucket::new(s.login_per_account_per_minute, max),
            smart: Bucket::new(s.smart_per_minute, max),
            hooks: Bucket::new(s.hooks_per_minute, max),
            patient_link: Bucket::new(s.patient_link_per_minute, max),
            noted: Bucket::new(1, max),
            proxies: s.proxies(),
            password_slots: Arc::new(tokio::sync::Semaphore::new(s.password_slots())),
            password_wait: Duration::from_millis(s.password_wait_ms),
        }
    }

    /// The client's address: the TCP peer, or, when the peer is a trusted
    /// proxy, the nearest address in `X-Forwarded-For` that is not one.
    pub fn client(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.proxies.contains(&peer) {
            return Some(peer);
        }
        let forwarded: Vec<IpAddr> = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|a| a.trim().parse::<IpAddr>())
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        Some(
            forwarded
                .into_iter()
                .rev()
                .find(|a| !self.proxies.contains(a))
                .unwrap_or(peer),
        )
    }

    /// Counts a request of `group` from the request's client.
    pub fn check_address(&self, group: Group, req: &HttpRequest) -> Result<(), Refused> {
        let Some(ip) = self.client(req) else {
            return Ok(());
        };
        let key = client_key(ip);
        let bucket = match group {
            Group::Login => &self.login,
            Group::Smart => &self.smart,
            Group::Hooks => &self.hooks,
            Group::PatientLink => &self.patient_link,
        };
        bucket.check(&key).map_err(|wait| {
            if self.noted.check(&Noted::Address(group, key)).is_ok() {
                tracing::warn!(target: "security", limit = group.code(), path = req.path(), "requests refused: over the per-address rate limit (logged once a minute per client)");
            }
            refused(wait)
        })
    }

    /// Counts a sign-in attempt for a user name, given as its keyed hash.
    pub fn check_account(&self, name_key: String) -> Result<(), Refused> {
        self.account.check(&name_key).map_err(|wait| {
            if self.noted.check(&Noted::Account(name_key)).is_ok() {
                tracing::warn!(target: "security", limit = "login-account", "sign-ins refused: over the per-account rate limit (logged once a minute per name)");
            }
            refused(wait)
        })
    }

    /// Forgets clients idle for a whole window; returns how many remain.
    pub fn prune(&self) -> usize {
        self.login.prune()
            + self.account.prune()
            + self.smart.prune()
            + self.hooks.prune()
            + self.patient_link.prune()
            + self.noted.prune()
    }
}

/// The 429 for a refusal: problem+json (an OperationOutcome on
/// `/hooks/fhir`) with `Retry-After`.
pub fn too_many(req: &HttpRequest, r: Refused) -> HttpResponse {
    let mut res = ApiError::new(req, AppError::TooManyRequests).error_response();
    if let Ok(v) = HeaderValue::from_str(&r.retry_after.to_string()) {
        res.headers_mut().insert(RETRY_AFTER, v);
    }
    res
}

/// How often `herald serve` runs [`tick`].
pub const TICK_EVERY: Duration = Duration::from_secs(300);

/// One round of the server's housekeeping: prunes the limiters and purges
/// expired SMART launches and sessions and expired staff sessions
/// (issue 11 F5d). `herald serve` runs it every [`TICK_EVERY`].
pub async fn tick(state: &AppState) -> Result<crate::service::housekeeping::Purged, AppError> {
    let kept = state.limits.prune();
    let st = state.clone();
    let purged = actix_web::web::block(
        move || -> Result<crate::service::housekeeping::Purged, crate::db::DbError> {
            let mut c = st.pool.get()?;
            crate::service::housekeeping::purge_expired(&mut c, &st.settings, st.clock.now())
        },
    )
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?
    .map_err(AppError::from)?;
    tracing::debug!(
        limiter.keys = kept,
        purged.smart = purged.smart,
        purged.staff = purged.staff,
        "housekeeping done"
    );
    Ok(purged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_keyed_by_address_and_ipv6_by_its_64() {
        let check = |ip: &str, want: &str| {
            assert_eq!(
                client_key(ip.parse().unwrap()),
                want.parse::<IpAddr>().unwrap(),
                "{ip}"
            );
        };
        check("192.0.2.7", "192.0.2.7");
        check("::ffff:192.0.2.7", "192.0.2.7");
        check("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::");
    }

    #[test]
    fn a_bucket_refuses_past_its_quota_and_prunes_to_its_bound() {
        let b: Bucket<u32> = Bucket::new(3, 1000);
        for _ in 0..3 {
            assert!(b.check(&1).is_ok());
        }
        let wait = b.check(&1).unwrap_err();
        assert!(wait <= Duration::from_secs(20), "{wait:?}");
        assert!(refused(wait).retry_after >= 1);
        assert!(b.check(&2).is_ok(), "another key has its own quota");
        // A flood of distinct keys never grows the map past its bound.
        for k in 0..5000 {
            let _ = b.check(&k);
        }
        assert!(b.current().len() <= 1000 + 256, "{}", b.current().len());
    }
}
