//! Discovery and the key-set cache (SPEC §8).
//!
//! Two bounded caches live in one immutable [`Snapshot`] behind an [`ArcSwap`]: issuer → discovery
//! result (the `jwks_uri`) and key-set URI → parsed keys. The hot path ([`KeyStore::cached`]) loads the
//! snapshot, does two map look-ups and bumps two last-used stamps: no lock, no I/O, no allocation.
//!
//! Everything else happens in [`KeyStore::fetch`], under a per-issuer async mutex so that concurrent
//! callers on a cold cache share one discovery fetch and one key-set fetch (each waiter re-checks the
//! snapshot after acquiring the mutex). The same mutex guards the per-issuer bookkeeping: when an
//! unknown `kid` last forced a refetch (at most once per cooldown) and how long to back off after a
//! failed fetch. A failed refresh keeps serving the last good keys for up to the stale limit
//! ([`STALE_LIMIT`] by default) past their expiry, retrying at most once per back-off period.
//!
//! Fetches run in tasks of their own, never in the future of the request that needed them: a
//! request that is dropped (client reset, timeout middleware) cannot stall a refresh, leave it
//! claimed, or spend the unknown-`kid` cooldown without fetching. Configured issuers are never
//! evicted, so no mix of tokens can turn cached issuers into fetches.
//!
//! Only the issuer's discovery document decides where keys come from: `jku`, `x5u` and `x5c` are never
//! looked at, from a token or from a key set.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use aws_lc_rs::signature::ParsedPublicKey;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use reqwest::header::{ACCEPT, CONNECTION};
use serde_json::Value;

use crate::Algorithm;
use crate::health::KeysState;
use crate::http::{MAX_RESPONSE_BYTES, max_age};
use crate::observe::chain;

mod jwk;

use jwk::parse_jwk;
#[cfg(all(test, feature = "testing"))]
use jwk::rsa_material;
#[cfg(test)]
use jwk::{der_header, der_unsigned_integer};

/// How long past its expiry a key set (or discovery result) may still be served while refreshes fail.
pub(crate) const STALE_LIMIT: Duration = Duration::from_secs(24 * 60 * 60);
/// Shortest lifetime given to a fetched document, whatever `max-age` says (so `max-age=0` cannot make
/// every request fetch).
const MIN_LIFETIME: Duration = Duration::from_secs(1);
/// Longest lifetime given to a fetched document (keeps `Instant` arithmetic far from overflow).
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 60 * 60);
/// Back-off after the first failed fetch; doubles with each further failure, up to [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest back-off between two fetch attempts for one issuer.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Keys considered in one key set; the rest are skipped.
const MAX_KEYS_PER_SET: usize = 64;
/// Longest `kid` kept.
const MAX_KID_LEN: usize = 256;
/// Prefix of the key-set "URI" of a static key set ([`KeyStore::preload`]).
#[cfg(feature = "testing")]
const STATIC_KEY_SET: &str = "static:";

/// base64url, padding tolerated (RFC 7518 says none, some servers add it anyway).
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Cache settings, from the validator's configuration.
#[derive(Debug, Clone)]
pub(crate) struct KeySettings {
    /// Upper bound of a document's lifetime; `Cache-Control: max-age` may lower it, never raise it.
    pub(crate) cache_ttl: Duration,
    /// Entries per cache (issuers, key-set URIs); least recently used entries are evicted first.
    pub(crate) cache_max_entries: usize,
    /// An unknown `kid` forces a refetch at most once per cooldown per issuer.
    pub(crate) refetch_cooldown: Duration,
    /// Algorithms accepted for access tokens; keys are pre-parsed for these only.
    pub(crate) algorithms: Vec<Algorithm>,
    /// The configured issuers: never evicted, whatever `cache_max_entries` says.
    pub(crate) pinned: Vec<String>,
    /// How long past its lifetime a document is still served while refreshes fail.
    pub(crate) stale_limit: Duration,
    /// Budget of fetches for issuers that are neither configured nor cached.
    pub(crate) new_issuers: NewIssuerBudget,
}

/// How many fetches for not-yet-cached, unconfigured issuers (those a domains resolver allowed)
/// may run at once, and how many may start per minute. A resolver that echoes the token's
/// unverified issuer would otherwise let anyone trigger one discovery fetch per forged token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NewIssuerBudget {
    pub(crate) concurrent: usize,
    pub(crate) per_minute: u32,
}

impl Default for NewIssuerBudget {
    fn default() -> Self {
        Self {
            concurrent: 4,
            per_minute: 60,
        }
    }
}

/// [`NewIssuerBudget`] at work: a semaphore for the fetches in flight, a token bucket for the
/// rate (full at start, refilled continuously).
#[derive(Debug)]
struct NewIssuerFetches {
    in_flight: Arc<tokio::sync::Semaphore>,
    per_minute: u32,
    /// Tokens left, and when they were counted.
    bucket: StdMutex<(f64, Instant)>,
}

impl NewIssuerFetches {
    fn new(budget: NewIssuerBudget) -> Self {
        Self {
            in_flight: Arc::new(tokio::sync::Semaphore::new(budget.concurrent)),
            per_minute: budget.per_minute,
            bucket: StdMutex::new((f64::from(budget.per_minute), Instant::now())),
        }
    }

    /// A permit for one fetch, held until it ends; `None` when the budget is spent.
    fn take(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let permit = Arc::clone(&self.in_flight).try_acquire_owned().ok()?;
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let rate = f64::from(self.per_minute) / 60.0;
        let elapsed = now.saturating_duration_since(bucket.1).as_secs_f64();
        let tokens = (bucket.0 + elapsed * rate).min(f64::from(self.per_minute));
        if tokens < 1.0 {
            *bucket = (tokens, now);
            return None;
        }
        *bucket = (tokens - 1.0, now);
        Some(permit)
    }
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(600),
            cache_max_entries: 100,
            refetch_cooldown: Duration::from_secs(30),
            algorithms: vec![Algorithm::RS256],
            pinned: Vec::new(),
            stale_limit: STALE_LIMIT,
            new_issuers: NewIssuerBudget::default(),
        }
    }
}

/// Why no key could be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyError {
    /// The key set was fetched (or a refetch is in cooldown) and has no usable key with this `kid`.
    #[error("no signing key with this key id")]
    UnknownKid,
    /// Nothing usable is cached and fetching failed.
    #[error("the issuer's signing keys are unavailable")]
    Unavailable,
    /// Nothing is cached for this (unconfigured) issuer and the budget of new-issuer fetches is
    /// spent for now.
    #[error("too many fetches for new issuers right now")]
    Busy,
}

/// One public key from a key set, pre-parsed for every allowed algorithm it can be used with.
pub(crate) struct VerifyingKey {
    kid: Box<str>,
    kty: &'static str,
    /// The encoded key material (PKCS#1 DER for RSA, the point for EC, the raw key for OKP); used to
    /// notice a key set change.
    material: Box<[u8]>,
    parsed: Vec<(Algorithm, ParsedPublicKey)>,
}

impl VerifyingKey {
    /// The key's `kid`.
    #[cfg(all(test, feature = "testing"))]
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// The key's `kty` (`RSA`, `EC` or `OKP`).
    #[cfg(all(test, feature = "testing"))]
    pub(crate) fn kty(&self) -> &'static str {
        self.kty
    }

    /// The pre-parsed key for `alg`, or `None` if this key cannot be used with it (`kty` or curve
    /// mismatch, the key's own `alg` differs, or `alg` is not allowed).
    pub(crate) fn for_alg(&self, alg: Algorithm) -> Option<&ParsedPublicKey> {
        self.parsed
            .iter()
            .find(|(candidate, _)| *candidate == alg)
            .map(|(_, key)| key)
    }

    fn same_key(&self, other: &Self) -> bool {
        self.kid == other.kid
            && self.kty == other.kty
            && self.material == other.material
            && self.parsed.len() == other.parsed.len()
            && self
                .parsed
                .iter()
                .zip(&other.parsed)
                .all(|((a, _), (b, _))| a == b)
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algs: Vec<Algorithm> = self.parsed.iter().map(|(alg, _)| *alg).collect();
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("kty", &self.kty)
            .field("algorithms", &algs)
            .finish_non_exhaustive()
    }
}

type KeyMap = HashMap<Box<str>, Arc<VerifyingKey>>;

/// A cached discovery result.
#[derive(Debug)]
struct IssuerEntry {
    jwks_uri: Arc<str>,
    /// The document's https `token_endpoint`, if it names one (token exchange uses it).
    token_endpoint: Option<Arc<str>>,
    /// Served by the hot path until then.
    refresh_at: Instant,
    /// Served as a fallback (refresh failing) until then.
    stale_until: Instant,
    /// Served past its lifetime after a failed refresh ([`KeyStore::extend_issuer`]).
    past_lifetime: bool,
    last_used: AtomicU64,
}

/// A cached key set.
#[derive(Debug)]
struct KeySetEntry {
    keys: Arc<KeyMap>,
    refresh_at: Instant,
    stale_until: Instant,
    /// Served past its lifetime after a failed refresh ([`KeyStore::extend_key_set`]).
    past_lifetime: bool,
    last_used: AtomicU64,
    /// Tick at which a caller took on refreshing this set (0: nobody); see [`KeyStore::cached`].
    refresh_claimed: AtomicU64,
}

trait Entry {
    fn last_used(&self) -> &AtomicU64;
}

impl Entry for IssuerEntry {
    fn last_used(&self) -> &AtomicU64 {
        &self.last_used
    }
}

impl Entry for KeySetEntry {
    fn last_used(&self) -> &AtomicU64 {
        &self.last_used
    }
}

/// How long a refresh claim holds before another caller may take it over.
const REFRESH_CLAIM_LAPSE: Duration = Duration::from_secs(30);

/// Takes on the refresh of a stale set unless someone else has, recently. Ticks are milliseconds
/// (+1, so that 0 can mean "unclaimed"). The refresh task releases the claim when it ends, on
/// every path ([`Release`]); the lapse only covers a task that never ran (runtime shut down).
fn claim(claimed: &AtomicU64, tick: u64) -> bool {
    let tick = tick.saturating_add(1);
    let previous = claimed.load(Ordering::Relaxed);
    let lapse = u64::try_from(REFRESH_CLAIM_LAPSE.as_millis()).unwrap_or(u64::MAX);
    (previous == 0 || tick.saturating_sub(previous) >= lapse)
        && claimed
            .compare_exchange(previous, tick, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
}

/// Releases a refresh claim when the refresh task ends, however it ends.
struct Release(Arc<KeySetEntry>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.refresh_claimed.store(0, Ordering::Release);
    }
}

fn touch(stamp: &AtomicU64, tick: u64) {
    // Write only when the stamp changes, so hot keys do not bounce a cache line on every request.
    if stamp.load(Ordering::Relaxed) < tick {
        stamp.store(tick, Ordering::Relaxed);
    }
}

/// The immutable state read by the hot path.
#[derive(Debug, Default, Clone)]
struct Snapshot {
    issuers: HashMap<Box<str>, Arc<IssuerEntry>>,
    key_sets: HashMap<Box<str>, Arc<KeySetEntry>>,
}

/// Per-issuer bookkeeping, guarded by the issuer's single-flight mutex.
#[derive(Debug, Default)]
struct FlightState {
    /// When an unknown `kid` last forced a key-set refetch.
    last_kid_refetch: Option<Instant>,
    /// Consecutive failed fetches.
    failures: u32,
    /// No fetch before this instant (after a failure).
    retry_at: Option<Instant>,
    /// How the last discovery fetch failed: what callers get while backing off from it.
    discovery_failure: Option<DiscoveryError>,
}

impl FlightState {
    fn in_backoff(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|at| now < at)
    }

    /// Records a failure; returns when the next attempt may happen.
    fn failed(&mut self, now: Instant) -> Instant {
        self.failures = self.failures.saturating_add(1);
        let doublings = self.failures.saturating_sub(1).min(16);
        let backoff = BACKOFF_START.saturating_mul(1 << doublings).min(BACKOFF_MAX);
        let at = now + backoff;
        self.retry_at = Some(at);
        at
    }

    fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = None;
        self.discovery_failure = None;
    }
}

/// Why a fetch failed; logged, never shown to clients.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("unexpected HTTP status {0}")]
    Status(u16),
    #[error("response larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("response is not JSON")]
    NotJson,
    #[error("discovery document has no string `issuer`, or it differs from the expected issuer")]
    IssuerMismatch,
    #[error("discovery document has no https `jwks_uri`")]
    BadJwksUri,
    #[error("response is not a JWK set (no `keys` array)")]
    NotAKeySet,
    #[error("key set has no key usable with the allowed algorithms")]
    NoUsableKey,
}

/// Why an issuer's discovery document is not at hand: what token exchange reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DiscoveryError {
    /// The tenant did not answer in time.
    Timeout,
    /// The tenant could not be reached, or answered with an error status.
    Network,
    /// The document is not a discovery document for this issuer.
    Unusable,
    /// The document names no https `token_endpoint`.
    NoTokenEndpoint,
}

impl From<&FetchError> for DiscoveryError {
    fn from(error: &FetchError) -> Self {
        match error {
            FetchError::Http(e) if e.is_timeout() => Self::Timeout,
            FetchError::Http(_) | FetchError::Status(_) => Self::Network,
            _ => Self::Unusable,
        }
    }
}

/// What a discovery document gave.
#[derive(Debug)]
struct Discovered {
    jwks_uri: Arc<str>,
    token_endpoint: Option<Arc<str>>,
    lifetime: Duration,
}

/// Which client a fetch goes through.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Via<'a> {
    /// The validator's shared client, on the caller's runtime.
    Shared,
    /// A client of the startup warm-up, on a runtime that ends with it: its requests say
    /// `Connection: close`, so no connection (nor the pool's idle reaper, which hyper starts on the
    /// runtime of the first pooled connection) outlives that runtime. See `crate::health`.
    WarmUp(&'a reqwest::Client),
}

/// The discovery and key-set cache of one validator.
pub(crate) struct KeyStore {
    http: reqwest::Client,
    settings: KeySettings,
    snapshot: ArcSwap<Snapshot>,
    /// Serialises snapshot writers (slow path only); readers never take it.
    write: StdMutex<()>,
    /// Single-flight mutexes and bookkeeping per issuer (slow path only).
    flights: StdMutex<HashMap<Box<str>, Arc<tokio::sync::Mutex<FlightState>>>>,
    generation: AtomicU64,
    /// Origin of the last-used stamps.
    epoch: Instant,
    new_issuers: NewIssuerFetches,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snapshot = self.snapshot.load();
        f.debug_struct("KeyStore")
            .field("settings", &self.settings)
            .field("issuers", &snapshot.issuers.len())
            .field("key_sets", &snapshot.key_sets.len())
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// A store fetching with `http` (which carries the timeouts and the redirect policy).
    pub(crate) fn new(http: reqwest::Client, mut settings: KeySettings) -> Self {
        settings.cache_max_entries = settings.cache_max_entries.max(2).max(settings.pinned.len());
        Self {
            http,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            write: StdMutex::new(()),
            flights: StdMutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            epoch: Instant::now(),
            new_issuers: NewIssuerFetches::new(settings.new_issuers),
            settings,
        }
    }

    /// Hot path: the cached key `kid` of `issuer`, without lock, I/O or allocation.
    ///
    /// `issuer` is the exact issuer string, already checked against the configured allow-list.
    /// Past its refresh time a set is still served (stale-while-revalidate) while one caller
    /// starts a refresh task, so requests never queue behind a routine refresh, nor behind an
    /// issuer that hangs. Past its stale limit nothing is served.
    pub(crate) fn cached(self: &Arc<Self>, issuer: &str, kid: &str) -> Option<Arc<VerifyingKey>> {
        let snapshot = self.snapshot.load();
        let now = Instant::now();
        let issuer_entry = snapshot.issuers.get(issuer)?;
        let set = snapshot.key_sets.get(&*issuer_entry.jwks_uri)?;
        let key = set.keys.get(kid)?;
        let tick = self.tick(now);
        if now >= issuer_entry.refresh_at || now >= set.refresh_at {
            let usable = now < issuer_entry.stale_until && now < set.stale_until;
            if !usable {
                return None;
            }
            // Outside a runtime nothing can run in the background: the claimer refreshes inline.
            if claim(&set.refresh_claimed, tick) && !self.refresh_in_background(issuer, kid, set) {
                return None;
            }
        }
        touch(&issuer_entry.last_used, tick);
        touch(&set.last_used, tick);
        Some(Arc::clone(key))
    }

    /// A fresh cached key, without claiming anything.
    fn fresh(&self, issuer: &str, kid: &str) -> Option<Arc<VerifyingKey>> {
        let snapshot = self.snapshot.load();
        let now = Instant::now();
        let issuer_entry = snapshot.issuers.get(issuer)?;
        let set = snapshot.key_sets.get(&*issuer_entry.jwks_uri)?;
        (now < issuer_entry.refresh_at && now < set.refresh_at).then(|| set.keys.get(kid).cloned())?
    }

    /// Starts the refresh of a stale set in a task of its own; `false` outside a tokio runtime.
    fn refresh_in_background(self: &Arc<Self>, issuer: &str, kid: &str, set: &Arc<KeySetEntry>) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            set.refresh_claimed.store(0, Ordering::Release);
            return false;
        };
        let release = Release(Arc::clone(set));
        let (store, issuer, kid) = (Arc::clone(self), issuer.to_owned(), kid.to_owned());
        runtime.spawn(async move {
            let _release = release;
            let _ = store.fetch_here(&issuer, &kid).await;
        });
        true
    }

    /// Slow path: fetches discovery and the key set of `issuer` when nothing fresh is cached (one fetch
    /// for any number of concurrent callers), or refetches the key set once when `kid` is unknown (at
    /// most once per cooldown).
    ///
    /// The work runs in a task of its own (when there is a runtime): dropping this future only
    /// stops waiting for it.
    pub(crate) async fn fetch(
        self: &Arc<Self>,
        issuer: &str,
        kid: &str,
    ) -> Result<Arc<VerifyingKey>, KeyError> {
        if let Some(key) = self.fresh(issuer, kid) {
            return Ok(key);
        }
        // An issuer with nothing cached that nobody configured (a domains resolver allowed it):
        // the fetch spends the new-issuer budget, unless another caller's fetch is under way
        // (then this one only waits for it).
        let mut budget = None;
        if !self.is_pinned(issuer) && !self.snapshot.load().issuers.contains_key(issuer) {
            let flight = self.flight(issuer);
            if let Ok(turn) = flight.try_lock_owned() {
                let permit = self.new_issuers.take().ok_or(KeyError::Busy)?;
                budget = Some((turn, permit));
            }
        }
        let (store, owned_issuer, owned_kid) = (Arc::clone(self), issuer.to_owned(), kid.to_owned());
        let work = async move {
            match budget {
                // Both held until the fetch ends, even if the request is gone.
                Some((mut turn, _permit)) => store.fetch_locked(&owned_issuer, &owned_kid, &mut turn).await,
                None => store.fetch_here(&owned_issuer, &owned_kid).await,
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime.spawn(work).await.unwrap_or(Err(KeyError::Unavailable)),
            Err(_) => work.await,
        }
    }

    /// [`Self::fetch`], in the calling task.
    async fn fetch_here(&self, issuer: &str, kid: &str) -> Result<Arc<VerifyingKey>, KeyError> {
        let flight = self.flight(issuer);
        let mut state = flight.lock().await;
        self.fetch_locked(issuer, kid, &mut state).await
    }

    /// Warm-up (and readiness probes): fetches the discovery document and the key set of `issuer`
    /// unless both are fresh, with no `kid` in mind, under the issuer's single-flight lock (a
    /// request arriving meanwhile waits for this fetch instead of starting its own). Returns how
    /// many keys are cached, or why they could not be fetched (the error's whole chain).
    ///
    /// With `back_off`, the attempt respects and records the issuer's back-off as a request's fetch
    /// does (readiness probes: a probe on a down tenant cannot hammer it). The startup warm-up
    /// leaves it alone, so that requests after a failed warm-up fetch at once.
    pub(crate) async fn warm(&self, issuer: &str, via: Via<'_>, back_off: bool) -> Result<usize, String> {
        let flight = self.flight(issuer);
        let mut state = flight.lock().await;
        let now = Instant::now();
        if back_off && state.in_backoff(now) {
            return Err("backing off after a failed fetch".to_owned());
        }
        let result = self.warm_locked(issuer, via, now).await;
        match &result {
            Ok(_) => state.succeeded(),
            Err(_) if back_off => {
                state.failed(Instant::now());
            }
            Err(_) => {}
        }
        result.map_err(|error| chain(&error))
    }

    async fn warm_locked(&self, issuer: &str, via: Via<'_>, now: Instant) -> Result<usize, FetchError> {
        let cached = self
            .snapshot
            .load()
            .issuers
            .get(issuer)
            .filter(|entry| now < entry.refresh_at && !entry.past_lifetime)
            .map(|entry| Arc::clone(&entry.jwks_uri));
        let jwks_uri = match cached {
            Some(uri) => uri,
            None => {
                let discovered = self.fetch_discovery(via, issuer).await?;
                Arc::clone(&self.store_issuer(issuer, discovered).jwks_uri)
            }
        };
        let fresh = self
            .snapshot
            .load()
            .key_sets
            .get(&*jwks_uri)
            .filter(|set| now < set.refresh_at && !set.past_lifetime)
            .map(|set| set.keys.len());
        if let Some(count) = fresh {
            return Ok(count);
        }
        let (keys, lifetime) = self.fetch_key_set(via, issuer, &jwks_uri).await?;
        Ok(self.store_key_set(&jwks_uri, keys, lifetime).len())
    }

    /// Where the keys of `issuer` stand, and how many are usable: fresh (within their lifetime),
    /// stale (past it, or kept after a failed refresh, but still served) or missing.
    pub(crate) fn readiness(&self, issuer: &str) -> (KeysState, usize) {
        let snapshot = self.snapshot.load();
        let now = Instant::now();
        let Some(entry) = snapshot.issuers.get(issuer) else {
            return (KeysState::Missing, 0);
        };
        let Some(set) = snapshot.key_sets.get(&*entry.jwks_uri) else {
            return (KeysState::Missing, 0);
        };
        let fresh = |refresh_at: Instant, past: bool| now < refresh_at && !past;
        if fresh(entry.refresh_at, entry.past_lifetime) && fresh(set.refresh_at, set.past_lifetime) {
            (KeysState::Fresh, set.keys.len())
        } else if now < entry.stale_until && now < set.stale_until {
            (KeysState::Stale, set.keys.len())
        } else {
            (KeysState::Missing, 0)
        }
    }

    /// Starts [`Self::warm`] (with back-off) in a task of its own, unless a fetch for `issuer` is
    /// already under way or there is no runtime to run it: a readiness probe keeps an idle
    /// instance's keys fresh, and fetches them when the warm-up could not.
    pub(crate) fn kick(self: &Arc<Self>, issuer: &str) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.flight(issuer).try_lock().is_err() {
            return;
        }
        let (store, issuer) = (Arc::clone(self), issuer.to_owned());
        runtime.spawn(async move {
            let _ = store.warm(&issuer, Via::Shared, true).await;
        });
    }

    /// Bumped whenever any cached key set changes (new keys, removed keys, or keys no longer served).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn tick(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    fn flight(&self, issuer: &str) -> Arc<tokio::sync::Mutex<FlightState>> {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(flight) = flights.get(issuer) {
            return Arc::clone(flight);
        }
        if flights.len() >= self.settings.cache_max_entries.saturating_mul(2) {
            // Forget idle issuers (nobody holds or waits for their mutex), except configured ones:
            // their back-off must survive.
            let pinned = &self.settings.pinned;
            flights
                .retain(|name, flight| Arc::strong_count(flight) > 1 || pinned.iter().any(|p| **p == **name));
        }
        let flight = Arc::new(tokio::sync::Mutex::new(FlightState::default()));
        flights.insert(issuer.into(), Arc::clone(&flight));
        flight
    }

    async fn fetch_locked(
        &self,
        issuer: &str,
        kid: &str,
        state: &mut FlightState,
    ) -> Result<Arc<VerifyingKey>, KeyError> {
        let now = Instant::now();
        let jwks_uri = self.jwks_uri(issuer, now, state).await?;
        #[cfg(feature = "testing")]
        if jwks_uri.starts_with(STATIC_KEY_SET) {
            // A static set never changes: an unknown `kid` is unknown, with no refetch.
            let snapshot = self.snapshot.load();
            let set = snapshot.key_sets.get(&*jwks_uri).ok_or(KeyError::Unavailable)?;
            return set.keys.get(kid).cloned().ok_or(KeyError::UnknownKid);
        }

        let (existing, fresh) = {
            let snapshot = self.snapshot.load();
            match snapshot.key_sets.get(&*jwks_uri) {
                Some(set) => (Some(Arc::clone(set)), now < set.refresh_at),
                None => (None, false),
            }
        };

        if let (Some(set), true) = (&existing, fresh) {
            if let Some(key) = set.keys.get(kid) {
                return Ok(Arc::clone(key));
            }
            // A fresh set without this kid: one refetch per cooldown (key rotation), never while
            // backing off from a failure.
            let cooling = state
                .last_kid_refetch
                .is_some_and(|at| now.saturating_duration_since(at) < self.settings.refetch_cooldown);
            if cooling || state.in_backoff(now) {
                return Err(KeyError::UnknownKid);
            }
            state.last_kid_refetch = Some(now);
            return match self.fetch_key_set(Via::Shared, issuer, &jwks_uri).await {
                Ok((keys, lifetime)) => {
                    state.succeeded();
                    let keys = self.store_key_set(&jwks_uri, keys, lifetime);
                    keys.get(kid).cloned().ok_or(KeyError::UnknownKid)
                }
                Err(error) => {
                    tracing::warn!(%issuer, url = %jwks_uri, error = %chain(&error), "refetching the key set for an unknown kid failed");
                    state.failed(Instant::now());
                    Err(KeyError::UnknownKid)
                }
            };
        }

        // Nothing fresh: fetch, or fall back to the stale set.
        let had_set = existing.is_some();
        let stale = existing.filter(|set| now < set.stale_until);
        if let Some(retry_at) = state.retry_at.filter(|at| now < *at) {
            let set = stale.ok_or(KeyError::Unavailable)?;
            self.extend_key_set(&jwks_uri, &set, retry_at);
            return set.keys.get(kid).cloned().ok_or(KeyError::UnknownKid);
        }
        match self.fetch_key_set(Via::Shared, issuer, &jwks_uri).await {
            Ok((keys, lifetime)) => {
                state.succeeded();
                let keys = self.store_key_set(&jwks_uri, keys, lifetime);
                let key = keys.get(kid).cloned();
                if key.is_none() {
                    // Just fetched: an immediate refetch for this kid would be pointless.
                    state.last_kid_refetch = Some(now);
                }
                key.ok_or(KeyError::UnknownKid)
            }
            Err(error) => {
                // Backing off counts from the failure, not from when the fetch began.
                let retry_at = state.failed(Instant::now());
                match stale {
                    Some(set) => {
                        tracing::warn!(%issuer, url = %jwks_uri, error = %chain(&error), "refreshing the key set failed; serving the last good keys");
                        self.extend_key_set(&jwks_uri, &set, retry_at);
                        set.keys.get(kid).cloned().ok_or(KeyError::UnknownKid)
                    }
                    None => {
                        tracing::warn!(%issuer, url = %jwks_uri, error = %chain(&error), "fetching the key set failed");
                        if had_set {
                            self.drop_key_set(&jwks_uri);
                        }
                        Err(KeyError::Unavailable)
                    }
                }
            }
        }
    }

    /// The `jwks_uri` of `issuer`: cached, fetched, or stale after a failed refresh.
    async fn jwks_uri(
        &self,
        issuer: &str,
        now: Instant,
        state: &mut FlightState,
    ) -> Result<Arc<str>, KeyError> {
        match self.issuer_entry(issuer, now, state).await {
            Ok(entry) => Ok(Arc::clone(&entry.jwks_uri)),
            Err(_) => Err(KeyError::Unavailable),
        }
    }

    /// The discovery result of `issuer`: cached, fetched, or stale after a failed refresh. While
    /// backing off from a failure, callers get that failure without a fetch.
    async fn issuer_entry(
        &self,
        issuer: &str,
        now: Instant,
        state: &mut FlightState,
    ) -> Result<Arc<IssuerEntry>, DiscoveryError> {
        let existing = self.snapshot.load().issuers.get(issuer).cloned();
        if let Some(entry) = &existing
            && now < entry.refresh_at
        {
            return Ok(Arc::clone(entry));
        }
        let stale = existing.filter(|entry| now < entry.stale_until);
        if let Some(retry_at) = state.retry_at.filter(|at| now < *at) {
            let entry = stale.ok_or(state.discovery_failure.unwrap_or(DiscoveryError::Network))?;
            self.extend_issuer(issuer, &entry, retry_at);
            return Ok(entry);
        }
        match self.fetch_discovery(Via::Shared, issuer).await {
            Ok(discovered) => Ok(self.store_issuer(issuer, discovered)),
            Err(error) => {
                // Backing off counts from the failure, not from when the fetch began.
                let retry_at = state.failed(Instant::now());
                state.discovery_failure = Some(DiscoveryError::from(&error));
                match stale {
                    Some(entry) => {
                        tracing::warn!(%issuer, error = %chain(&error), "refreshing the discovery document failed; using the last good one");
                        self.extend_issuer(issuer, &entry, retry_at);
                        Ok(entry)
                    }
                    None => {
                        tracing::warn!(%issuer, error = %chain(&error), "fetching the discovery document failed");
                        Err(DiscoveryError::from(&error))
                    }
                }
            }
        }
    }

    /// The https `token_endpoint` of `issuer`'s discovery document: from the same cached document
    /// as its keys, fetched under the same single flight and back-off. Like a key fetch, the work
    /// runs in a task of its own: dropping this future only stops waiting for it.
    pub(crate) async fn token_endpoint(self: &Arc<Self>, issuer: &str) -> Result<Arc<str>, DiscoveryError> {
        let now = Instant::now();
        if let Some(entry) = self.snapshot.load().issuers.get(issuer)
            && now < entry.refresh_at
        {
            return entry
                .token_endpoint
                .clone()
                .ok_or(DiscoveryError::NoTokenEndpoint);
        }
        let (store, issuer) = (Arc::clone(self), issuer.to_owned());
        let work = async move {
            let flight = store.flight(&issuer);
            let mut state = flight.lock().await;
            let entry = store.issuer_entry(&issuer, Instant::now(), &mut state).await?;
            entry
                .token_endpoint
                .clone()
                .ok_or(DiscoveryError::NoTokenEndpoint)
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime.spawn(work).await.unwrap_or(Err(DiscoveryError::Network)),
            Err(_) => work.await,
        }
    }

    async fn fetch_discovery(&self, via: Via<'_>, issuer: &str) -> Result<Discovered, FetchError> {
        let url = discovery_url(issuer);
        let started = Instant::now();
        let result = self.discovery_at(via, issuer, &url).await;
        fetched("discovery", issuer, &url, started, result.as_ref().err());
        result
    }

    async fn discovery_at(&self, via: Via<'_>, issuer: &str, url: &str) -> Result<Discovered, FetchError> {
        let (document, max_age) = self.get_json(via, url).await?;
        if document.get("issuer").and_then(Value::as_str) != Some(issuer) {
            return Err(FetchError::IssuerMismatch);
        }
        let jwks_uri = document
            .get("jwks_uri")
            .and_then(Value::as_str)
            .filter(|uri| is_https_url(uri))
            .ok_or(FetchError::BadJwksUri)?;
        let token_endpoint = document
            .get("token_endpoint")
            .and_then(Value::as_str)
            .filter(|uri| is_https_url(uri))
            .map(Arc::from);
        Ok(Discovered {
            jwks_uri: Arc::from(jwks_uri),
            token_endpoint,
            lifetime: self.lifetime(max_age),
        })
    }

    async fn fetch_key_set(
        &self,
        via: Via<'_>,
        issuer: &str,
        url: &str,
    ) -> Result<(KeyMap, Duration), FetchError> {
        let started = Instant::now();
        let result = async {
            let (document, max_age) = self.get_json(via, url).await?;
            let keys = self.parse_key_set(&document)?;
            Ok((keys, self.lifetime(max_age)))
        }
        .await;
        fetched("key_set", issuer, url, started, result.as_ref().err());
        result
    }

    /// GET `url`, 200 only, body capped at [`MAX_RESPONSE_BYTES`], parsed as JSON.
    async fn get_json(&self, via: Via<'_>, url: &str) -> Result<(Value, Option<Duration>), FetchError> {
        let request = match via {
            Via::Shared => self.http.get(url),
            // Not pooled: the connection would belong to a runtime that goes away.
            Via::WarmUp(http) => http.get(url).header(CONNECTION, "close"),
        };
        let mut response = request.header(ACCEPT, "application/json").send().await?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Err(FetchError::Status(status.as_u16()));
        }
        let too_large = |len: u64| usize::try_from(len).map_or(true, |len| len > MAX_RESPONSE_BYTES);
        if response.content_length().is_some_and(too_large) {
            return Err(FetchError::TooLarge);
        }
        let max_age = max_age(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len().saturating_add(chunk.len()) > MAX_RESPONSE_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let document = serde_json::from_slice(&body).map_err(|_| FetchError::NotJson)?;
        Ok((document, max_age))
    }

    fn lifetime(&self, max_age: Option<Duration>) -> Duration {
        let ttl = self.settings.cache_ttl;
        max_age
            .map_or(ttl, |max_age| max_age.min(ttl))
            .clamp(MIN_LIFETIME, MAX_LIFETIME)
    }

    fn parse_key_set(&self, document: &Value) -> Result<KeyMap, FetchError> {
        let jwks = document
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(FetchError::NotAKeySet)?;
        if jwks.len() > MAX_KEYS_PER_SET {
            tracing::warn!(
                keys = jwks.len(),
                "key set has more keys than {MAX_KEYS_PER_SET}; the rest are ignored"
            );
        }
        let mut keys = KeyMap::new();
        for (index, jwk) in jwks.iter().take(MAX_KEYS_PER_SET).enumerate() {
            match parse_jwk(jwk, &self.settings.algorithms) {
                Ok(key) if keys.contains_key(&key.kid) => {
                    tracing::warn!(index, kid = %key.kid, "skipping a key with a duplicate kid");
                }
                Ok(key) => {
                    keys.insert(key.kid.clone(), Arc::new(key));
                }
                Err(reason) => tracing::debug!(index, reason, "skipping a key in the key set"),
            }
        }
        if keys.is_empty() {
            return Err(FetchError::NoUsableKey);
        }
        Ok(keys)
    }

    /// Load, edit and store the snapshot (writers are serialised; readers are never blocked).
    fn update<R>(&self, edit: impl FnOnce(&mut Snapshot) -> R) -> R {
        let _writer = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = Snapshot::clone(&self.snapshot.load());
        let result = edit(&mut next);
        self.snapshot.store(Arc::new(next));
        result
    }

    fn store_issuer(&self, issuer: &str, discovered: Discovered) -> Arc<IssuerEntry> {
        let now = Instant::now();
        let Discovered {
            jwks_uri,
            token_endpoint,
            lifetime,
        } = discovered;
        let entry = Arc::new(IssuerEntry {
            jwks_uri,
            token_endpoint,
            refresh_at: now + lifetime,
            stale_until: now + lifetime + self.settings.stale_limit,
            past_lifetime: false,
            last_used: AtomicU64::new(self.tick(now)),
        });
        self.update(|snapshot| self.insert_issuer(snapshot, issuer, Arc::clone(&entry)));
        entry
    }

    fn is_pinned(&self, issuer: &str) -> bool {
        self.settings.pinned.iter().any(|p| p == issuer)
    }

    fn insert_issuer(&self, snapshot: &mut Snapshot, issuer: &str, entry: Arc<IssuerEntry>) {
        let max = self.settings.cache_max_entries;
        insert_bounded(&mut snapshot.issuers, issuer, entry, max, |name| {
            self.is_pinned(name)
        });
    }

    fn insert_key_set(&self, snapshot: &mut Snapshot, url: &str, entry: Arc<KeySetEntry>) {
        let max = self.settings.cache_max_entries;
        let issuers = &snapshot.issuers;
        let pinned = |uri: &str| {
            issuers
                .iter()
                .any(|(name, issuer)| &*issuer.jwks_uri == uri && self.is_pinned(name))
        };
        insert_bounded(&mut snapshot.key_sets, url, entry, max, pinned);
    }

    /// Serve a stale discovery result from the hot path until `retry_at` (bounded by its stale limit).
    fn extend_issuer(&self, issuer: &str, entry: &IssuerEntry, retry_at: Instant) {
        if entry.refresh_at >= retry_at.min(entry.stale_until) {
            return;
        }
        let extended = Arc::new(IssuerEntry {
            jwks_uri: Arc::clone(&entry.jwks_uri),
            token_endpoint: entry.token_endpoint.clone(),
            refresh_at: retry_at.min(entry.stale_until),
            stale_until: entry.stale_until,
            past_lifetime: true,
            last_used: AtomicU64::new(entry.last_used.load(Ordering::Relaxed)),
        });
        self.update(|snapshot| self.insert_issuer(snapshot, issuer, extended));
    }

    /// Stores a fetched key set; bumps the generation when it differs from the cached one.
    fn store_key_set(&self, url: &str, keys: KeyMap, lifetime: Duration) -> Arc<KeyMap> {
        let now = Instant::now();
        let keys = Arc::new(keys);
        let entry = Arc::new(KeySetEntry {
            keys: Arc::clone(&keys),
            refresh_at: now + lifetime,
            stale_until: now + lifetime + self.settings.stale_limit,
            past_lifetime: false,
            last_used: AtomicU64::new(self.tick(now)),
            refresh_claimed: AtomicU64::new(0),
        });
        let changed = self.update(|snapshot| {
            let changed = snapshot
                .key_sets
                .get(url)
                .is_none_or(|old| !same_keys(&old.keys, &keys));
            self.insert_key_set(snapshot, url, entry);
            changed
        });
        if changed {
            self.generation.fetch_add(1, Ordering::AcqRel);
            let kids: Vec<&str> = keys.keys().map(|k| &**k).collect();
            tracing::info!(target: "auth0_runtime", url, kids = ?kids, "key set changed (first fetch or rotation)");
        }
        keys
    }

    /// Serve a stale key set from the hot path until `retry_at` (bounded by its stale limit).
    fn extend_key_set(&self, url: &str, set: &KeySetEntry, retry_at: Instant) {
        if set.refresh_at >= retry_at.min(set.stale_until) {
            return;
        }
        let extended = Arc::new(KeySetEntry {
            keys: Arc::clone(&set.keys),
            refresh_at: retry_at.min(set.stale_until),
            stale_until: set.stale_until,
            past_lifetime: true,
            last_used: AtomicU64::new(set.last_used.load(Ordering::Relaxed)),
            refresh_claimed: AtomicU64::new(0),
        });
        self.update(|snapshot| self.insert_key_set(snapshot, url, extended));
    }

    /// Serves `jwks` as the key set of `issuer` for the life of the store, never fetching anything
    /// for it (the testing kit's offline validator, `TestIssuer::validator`). Returns how many keys
    /// are usable, or why none is.
    #[cfg(feature = "testing")]
    pub(crate) fn preload(&self, issuer: &str, jwks: &Value) -> Result<usize, &'static str> {
        let keys = self.parse_key_set(jwks).map_err(|error| match error {
            FetchError::NotAKeySet => "is not a JWK set (no `keys` array)",
            _ => "has no key usable with the allowed algorithms",
        })?;
        let usable = keys.len();
        // Not an https URL, so no discovery document can ever name it.
        let url: Arc<str> = Arc::from(format!("{STATIC_KEY_SET}{issuer}"));
        let now = Instant::now();
        let never = now + MAX_LIFETIME;
        let issuer_entry = Arc::new(IssuerEntry {
            jwks_uri: Arc::clone(&url),
            token_endpoint: None,
            refresh_at: never,
            stale_until: never,
            last_used: AtomicU64::new(self.tick(now)),
            past_lifetime: false,
        });
        let set = Arc::new(KeySetEntry {
            keys: Arc::new(keys),
            refresh_at: never,
            stale_until: never,
            last_used: AtomicU64::new(self.tick(now)),
            refresh_claimed: AtomicU64::new(0),
            past_lifetime: false,
        });
        self.update(|snapshot| {
            self.insert_issuer(snapshot, issuer, issuer_entry);
            self.insert_key_set(snapshot, &url, set);
        });
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(usable)
    }

    /// Forget a key set that is past its stale limit (tokens verified with it must be re-verified).
    fn drop_key_set(&self, url: &str) {
        let removed = self.update(|snapshot| snapshot.key_sets.remove(url).is_some());
        if removed {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Insert or replace `key`, evicting the least recently used entry that is not `pinned` when the
/// map is full (when all are pinned, the map grows past `max`).
fn insert_bounded<V: Entry>(
    map: &mut HashMap<Box<str>, Arc<V>>,
    key: &str,
    value: Arc<V>,
    max: usize,
    pinned: impl Fn(&str) -> bool,
) {
    if !map.contains_key(key) && map.len() >= max {
        let oldest = map
            .iter()
            .filter(|(name, _)| !pinned(name))
            .min_by_key(|(_, entry)| entry.last_used().load(Ordering::Relaxed))
            .map(|(name, _)| name.clone());
        if let Some(oldest) = oldest {
            map.remove(&oldest);
        }
    }
    map.insert(Box::from(key), value);
}

fn same_keys(old: &KeyMap, new: &KeyMap) -> bool {
    old.len() == new.len()
        && old
            .iter()
            .all(|(kid, key)| new.get(kid).is_some_and(|other| key.same_key(other)))
}

pub(crate) fn discovery_url(issuer: &str) -> String {
    if issuer.ends_with('/') {
        format!("{issuer}.well-known/openid-configuration")
    } else {
        format!("{issuer}/.well-known/openid-configuration")
    }
}

fn is_https_url(uri: &str) -> bool {
    reqwest::Url::parse(uri).is_ok_and(|url| url.scheme() == "https" && url.host().is_some())
}

/// The event (and metrics) of one fetch: issuer, URL, duration and outcome, with the error's whole
/// chain on failure.
fn fetched(document: &'static str, issuer: &str, url: &str, started: Instant, error: Option<&FetchError>) {
    let took = started.elapsed();
    let duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    match error {
        None => {
            tracing::debug!(target: "auth0_runtime", document, issuer, url, duration_ms, outcome = "success", "fetched")
        }
        Some(error) => tracing::debug!(
            target: "auth0_runtime",
            document,
            issuer,
            url,
            duration_ms,
            outcome = "failure",
            error = %chain(error),
            "fetch failed"
        ),
    }
    #[cfg(feature = "metrics")]
    crate::metrics::key_set_fetch(document, error.is_none(), took);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod der_tests {
    use super::*;

    #[test]
    fn der_integer_pads_high_bit_and_long_lengths() {
        let mut out = Vec::new();
        der_unsigned_integer(&mut out, &[0x80]);
        assert_eq!(out, [0x02, 0x02, 0x00, 0x80]);
        let mut out = Vec::new();
        der_unsigned_integer(&mut out, &[0x01, 0x00, 0x01]);
        assert_eq!(out, [0x02, 0x03, 0x01, 0x00, 0x01]);
        let mut out = Vec::new();
        der_header(&mut out, 0x30, 0x1234);
        assert_eq!(out, [0x30, 0x82, 0x12, 0x34]);
        let mut out = Vec::new();
        der_header(&mut out, 0x30, 0x81);
        assert_eq!(out, [0x30, 0x81, 0x81]);
    }

    #[test]
    fn discovery_url_appends_well_known() {
        assert_eq!(
            discovery_url("https://tenant.auth0.com/"),
            "https://tenant.auth0.com/.well-known/openid-configuration"
        );
    }
}

#[cfg(all(test, feature = "testing"))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
