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
//! failed fetch. A failed refresh keeps serving the last good keys for up to [`STALE_LIMIT`] past
//! their expiry, retrying at most once per back-off period.
//!
//! Only the issuer's discovery document decides where keys come from: `jku`, `x5u` and `x5c` are never
//! looked at, from a token or from a key set.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonwebtoken::Algorithm;
use reqwest::header::{ACCEPT, CACHE_CONTROL, HeaderMap};
use serde_json::Value;

/// Largest discovery document or key set accepted, in bytes.
pub(crate) const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// How long past its expiry a key set (or discovery result) may still be served while refreshes fail.
pub(crate) const STALE_LIMIT: Duration = Duration::from_secs(24 * 60 * 60);
/// Shortest lifetime given to a fetched document, whatever `max-age` says (so `max-age=0` cannot make
/// every request fetch).
const MIN_LIFETIME: Duration = Duration::from_secs(1);
/// Back-off after the first failed fetch; doubles with each further failure, up to [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest back-off between two fetch attempts for one issuer.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Keys considered in one key set; the rest are skipped.
const MAX_KEYS_PER_SET: usize = 64;
/// Longest `kid` kept.
const MAX_KID_LEN: usize = 256;

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
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(600),
            cache_max_entries: 100,
            refetch_cooldown: Duration::from_secs(30),
            algorithms: vec![Algorithm::RS256],
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
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// The key's `kty` (`RSA`, `EC` or `OKP`).
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
    /// Served by the hot path until then.
    refresh_at: Instant,
    /// Served as a fallback (refresh failing) until then.
    stale_until: Instant,
    last_used: AtomicU64,
}

/// A cached key set.
#[derive(Debug)]
struct KeySetEntry {
    keys: Arc<KeyMap>,
    refresh_at: Instant,
    stale_until: Instant,
    last_used: AtomicU64,
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
}

impl FlightState {
    fn in_backoff(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|at| now < at)
    }

    /// Records a failure; returns when the next attempt may happen.
    fn failed(&mut self, now: Instant) -> Instant {
        self.failures = self.failures.saturating_add(1);
        let doublings = self.failures.saturating_sub(1).min(16);
        let backoff = BACKOFF_START
            .saturating_mul(1 << doublings)
            .min(BACKOFF_MAX);
        let at = now + backoff;
        self.retry_at = Some(at);
        at
    }

    fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = None;
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
        settings.cache_max_entries = settings.cache_max_entries.max(2);
        Self {
            http,
            settings,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            write: StdMutex::new(()),
            flights: StdMutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Hot path: the fresh cached key `kid` of `issuer`, without lock, I/O or allocation.
    ///
    /// `issuer` is the exact issuer string, already checked against the configured allow-list.
    pub(crate) fn cached(&self, issuer: &str, kid: &str) -> Option<Arc<VerifyingKey>> {
        let snapshot = self.snapshot.load();
        let now = Instant::now();
        let issuer_entry = snapshot.issuers.get(issuer)?;
        if now >= issuer_entry.refresh_at {
            return None;
        }
        let set = snapshot.key_sets.get(&*issuer_entry.jwks_uri)?;
        if now >= set.refresh_at {
            return None;
        }
        let key = set.keys.get(kid)?;
        let tick = self.tick(now);
        touch(&issuer_entry.last_used, tick);
        touch(&set.last_used, tick);
        Some(Arc::clone(key))
    }

    /// Slow path: fetches discovery and the key set of `issuer` when nothing fresh is cached (one fetch
    /// for any number of concurrent callers), or refetches the key set once when `kid` is unknown (at
    /// most once per cooldown).
    pub(crate) async fn fetch(&self, issuer: &str, kid: &str) -> Result<Arc<VerifyingKey>, KeyError> {
        if let Some(key) = self.cached(issuer, kid) {
            return Ok(key);
        }
        let flight = self.flight(issuer);
        let mut state = flight.lock().await;
        self.fetch_locked(issuer, kid, &mut state).await
    }

    /// Bumped whenever any cached key set changes (new keys, removed keys, or keys no longer served).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The settings in force.
    pub(crate) fn settings(&self) -> &KeySettings {
        &self.settings
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
            // Forget idle issuers (nobody holds or waits for their mutex).
            flights.retain(|_, flight| Arc::strong_count(flight) > 1);
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
            return match self.fetch_key_set(&jwks_uri).await {
                Ok((keys, lifetime)) => {
                    state.succeeded();
                    let keys = self.store_key_set(&jwks_uri, keys, lifetime);
                    keys.get(kid).cloned().ok_or(KeyError::UnknownKid)
                }
                Err(error) => {
                    tracing::warn!(%issuer, url = %jwks_uri, %error, "refetching the key set for an unknown kid failed");
                    state.failed(now);
                    Err(KeyError::UnknownKid)
                }
            };
        }

        // Nothing fresh: fetch, or fall back to the stale set.
        let had_set = existing.is_some();
        let stale = existing.filter(|set| now < set.stale_until);
        if state.in_backoff(now) {
            let set = stale.ok_or(KeyError::Unavailable)?;
            return set.keys.get(kid).cloned().ok_or(KeyError::UnknownKid);
        }
        match self.fetch_key_set(&jwks_uri).await {
            Ok((keys, lifetime)) => {
                state.succeeded();
                let keys = self.store_key_set(&jwks_uri, keys, lifetime);
                keys.get(kid).cloned().ok_or(KeyError::UnknownKid)
            }
            Err(error) => {
                let retry_at = state.failed(now);
                match stale {
                    Some(set) => {
                        tracing::warn!(%issuer, url = %jwks_uri, %error, "refreshing the key set failed; serving the last good keys");
                        self.extend_key_set(&jwks_uri, &set, retry_at);
                        set.keys.get(kid).cloned().ok_or(KeyError::UnknownKid)
                    }
                    None => {
                        tracing::warn!(%issuer, url = %jwks_uri, %error, "fetching the key set failed");
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
        let existing = self.snapshot.load().issuers.get(issuer).cloned();
        if let Some(entry) = &existing {
            if now < entry.refresh_at {
                return Ok(Arc::clone(&entry.jwks_uri));
            }
        }
        let stale = existing.filter(|entry| now < entry.stale_until);
        if state.in_backoff(now) {
            return stale
                .map(|entry| Arc::clone(&entry.jwks_uri))
                .ok_or(KeyError::Unavailable);
        }
        match self.fetch_discovery(issuer).await {
            Ok((jwks_uri, lifetime)) => {
                self.store_issuer(issuer, Arc::clone(&jwks_uri), lifetime);
                Ok(jwks_uri)
            }
            Err(error) => {
                let retry_at = state.failed(now);
                match stale {
                    Some(entry) => {
                        tracing::warn!(%issuer, %error, "refreshing the discovery document failed; using the last good one");
                        self.extend_issuer(issuer, &entry, retry_at);
                        Ok(Arc::clone(&entry.jwks_uri))
                    }
                    None => {
                        tracing::warn!(%issuer, %error, "fetching the discovery document failed");
                        Err(KeyError::Unavailable)
                    }
                }
            }
        }
    }

    async fn fetch_discovery(&self, issuer: &str) -> Result<(Arc<str>, Duration), FetchError> {
        let url = discovery_url(issuer);
        let (document, max_age) = self.get_json(&url).await?;
        if document.get("issuer").and_then(Value::as_str) != Some(issuer) {
            return Err(FetchError::IssuerMismatch);
        }
        let jwks_uri = document
            .get("jwks_uri")
            .and_then(Value::as_str)
            .filter(|uri| is_https_url(uri))
            .ok_or(FetchError::BadJwksUri)?;
        Ok((Arc::from(jwks_uri), self.lifetime(max_age)))
    }

    async fn fetch_key_set(&self, url: &str) -> Result<(KeyMap, Duration), FetchError> {
        let (document, max_age) = self.get_json(url).await?;
        let keys = self.parse_key_set(&document)?;
        Ok((keys, self.lifetime(max_age)))
    }

    /// GET `url`, 200 only, body capped at [`MAX_RESPONSE_BYTES`], parsed as JSON.
    async fn get_json(&self, url: &str) -> Result<(Value, Option<Duration>), FetchError> {
        let mut response = self
            .http
            .get(url)
            .header(ACCEPT, "application/json")
            .send()
            .await?;
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
        max_age.map_or(ttl, |max_age| max_age.min(ttl)).max(MIN_LIFETIME)
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

    fn store_issuer(&self, issuer: &str, jwks_uri: Arc<str>, lifetime: Duration) {
        let now = Instant::now();
        let entry = Arc::new(IssuerEntry {
            jwks_uri,
            refresh_at: now + lifetime,
            stale_until: now + lifetime + STALE_LIMIT,
            last_used: AtomicU64::new(self.tick(now)),
        });
        let max = self.settings.cache_max_entries;
        self.update(|snapshot| insert_bounded(&mut snapshot.issuers, issuer, entry, max));
    }

    /// Serve a stale discovery result from the hot path until `retry_at` (bounded by its stale limit).
    fn extend_issuer(&self, issuer: &str, entry: &IssuerEntry, retry_at: Instant) {
        let extended = Arc::new(IssuerEntry {
            jwks_uri: Arc::clone(&entry.jwks_uri),
            refresh_at: retry_at.min(entry.stale_until),
            stale_until: entry.stale_until,
            last_used: AtomicU64::new(entry.last_used.load(Ordering::Relaxed)),
        });
        let max = self.settings.cache_max_entries;
        self.update(|snapshot| insert_bounded(&mut snapshot.issuers, issuer, extended, max));
    }

    /// Stores a fetched key set; bumps the generation when it differs from the cached one.
    fn store_key_set(&self, url: &str, keys: KeyMap, lifetime: Duration) -> Arc<KeyMap> {
        let now = Instant::now();
        let keys = Arc::new(keys);
        let entry = Arc::new(KeySetEntry {
            keys: Arc::clone(&keys),
            refresh_at: now + lifetime,
            stale_until: now + lifetime + STALE_LIMIT,
            last_used: AtomicU64::new(self.tick(now)),
        });
        let max = self.settings.cache_max_entries;
        let changed = self.update(|snapshot| {
            let changed = snapshot
                .key_sets
                .get(url)
                .is_none_or(|old| !same_keys(&old.keys, &keys));
            insert_bounded(&mut snapshot.key_sets, url, entry, max);
            changed
        });
        if changed {
            self.generation.fetch_add(1, Ordering::AcqRel);
            tracing::debug!(url, keys = keys.len(), "key set updated");
        }
        keys
    }

    /// Serve a stale key set from the hot path until `retry_at` (bounded by its stale limit).
    fn extend_key_set(&self, url: &str, set: &KeySetEntry, retry_at: Instant) {
        let extended = Arc::new(KeySetEntry {
            keys: Arc::clone(&set.keys),
            refresh_at: retry_at.min(set.stale_until),
            stale_until: set.stale_until,
            last_used: AtomicU64::new(set.last_used.load(Ordering::Relaxed)),
        });
        let max = self.settings.cache_max_entries;
        self.update(|snapshot| insert_bounded(&mut snapshot.key_sets, url, extended, max));
    }

    /// Forget a key set that is past its stale limit (tokens verified with it must be re-verified).
    fn drop_key_set(&self, url: &str) {
        let removed = self.update(|snapshot| snapshot.key_sets.remove(url).is_some());
        if removed {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Insert or replace `key`, evicting the least recently used entry when the map is full.
fn insert_bounded<V: Entry>(map: &mut HashMap<Box<str>, Arc<V>>, key: &str, value: Arc<V>, max: usize) {
    if !map.contains_key(key) && map.len() >= max {
        let oldest = map
            .iter()
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

fn discovery_url(issuer: &str) -> String {
    if issuer.ends_with('/') {
        format!("{issuer}.well-known/openid-configuration")
    } else {
        format!("{issuer}/.well-known/openid-configuration")
    }
}

fn is_https_url(uri: &str) -> bool {
    reqwest::Url::parse(uri).is_ok_and(|url| url.scheme() == "https" && url.host().is_some())
}

/// `max-age` of the `Cache-Control` header(s), if any.
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|directive| {
            let (name, value) = directive.split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("max-age") {
                return None;
            }
            value.trim().trim_matches('"').parse::<u64>().ok()
        })
        .min()
        .map(Duration::from_secs)
}

/// A redirect policy for the shared client: follows at most 3 redirects, and only within the origin of
/// the first request (never to another host, port or scheme).
pub(crate) fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if attempt.previous().len() > 3 {
            attempt.error("too many redirects")
        } else if same_origin {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// Which algorithms a key of this type can serve, and the verification parameters for each.
fn verification_algorithm(alg: Algorithm) -> Option<&'static dyn VerificationAlgorithm> {
    let parameters: &'static dyn VerificationAlgorithm = match alg {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA => &signature::ED25519,
        _ => return None,
    };
    Some(parameters)
}

/// Key type (and curve) a JWS algorithm needs.
fn key_type_for(alg: Algorithm) -> Option<(&'static str, Option<&'static str>)> {
    match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => Some(("RSA", None)),
        Algorithm::ES256 => Some(("EC", Some("P-256"))),
        Algorithm::ES384 => Some(("EC", Some("P-384"))),
        Algorithm::EdDSA => Some(("OKP", Some("Ed25519"))),
        _ => None,
    }
}

/// Parses one JWK; the error says why it is skipped (for the debug log).
fn parse_jwk(jwk: &Value, allowed: &[Algorithm]) -> Result<VerifyingKey, &'static str> {
    let jwk = jwk.as_object().ok_or("not a JSON object")?;
    let kid = match jwk.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() && kid.len() <= MAX_KID_LEN => kid.as_str(),
        _ => return Err("missing, empty or overlong kid"),
    };
    match jwk.get("use") {
        None => {}
        Some(Value::String(usage)) if usage == "sig" => {}
        Some(_) => return Err("use is not sig"),
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verifies {
            return Err("key_ops does not include verify");
        }
    }
    let own_alg = match jwk.get("alg") {
        None => None,
        Some(Value::String(name)) => {
            Some(name.parse::<Algorithm>().map_err(|_| "unsupported alg")?)
        }
        Some(_) => return Err("alg is not a string"),
    };
    let (kty, curve, material) = match jwk.get("kty").and_then(Value::as_str) {
        Some("RSA") => ("RSA", None, rsa_material(jwk)?),
        Some("EC") => {
            let (curve, material) = ec_material(jwk)?;
            ("EC", Some(curve), material)
        }
        Some("OKP") => {
            let (curve, material) = okp_material(jwk)?;
            ("OKP", Some(curve), material)
        }
        _ => return Err("unsupported kty"),
    };

    let mut parsed = Vec::new();
    for &alg in allowed {
        if own_alg.is_some_and(|own| own != alg) || key_type_for(alg) != Some((kty, curve)) {
            continue;
        }
        if parsed.iter().any(|(seen, _)| *seen == alg) {
            continue;
        }
        let Some(parameters) = verification_algorithm(alg) else {
            continue;
        };
        let key = ParsedPublicKey::new(parameters, &material).map_err(|_| "key rejected")?;
        parsed.push((alg, key));
    }
    if parsed.is_empty() {
        return Err("key not usable with the allowed algorithms");
    }
    Ok(VerifyingKey {
        kid: kid.into(),
        kty,
        material: material.into_boxed_slice(),
        parsed,
    })
}

fn b64_member(jwk: &serde_json::Map<String, Value>, name: &str) -> Result<Vec<u8>, &'static str> {
    let text = jwk
        .get(name)
        .and_then(Value::as_str)
        .ok_or("missing key member")?;
    BASE64URL.decode(text).map_err(|_| "bad base64url in key member")
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// PKCS#1 `RSAPublicKey` DER from the JWK's `n` and `e`.
fn rsa_material(jwk: &serde_json::Map<String, Value>) -> Result<Vec<u8>, &'static str> {
    let n = b64_member(jwk, "n")?;
    let e = b64_member(jwk, "e")?;
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    if !(256..=1024).contains(&n.len()) {
        return Err("RSA modulus outside 2048..=8192 bits");
    }
    if e.is_empty() || e.len() > 8 || e.last().is_some_and(|b| b & 1 == 0) {
        return Err("bad RSA exponent");
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    der_unsigned_integer(&mut body, n);
    der_unsigned_integer(&mut body, e);
    let mut der = Vec::with_capacity(body.len() + 4);
    der_header(&mut der, 0x30, body.len());
    der.extend_from_slice(&body);
    Ok(der)
}

fn der_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let significant = strip_leading_zeros(&bytes);
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
}

/// A DER INTEGER for a non-negative big-endian magnitude without leading zeros.
fn der_unsigned_integer(out: &mut Vec<u8>, magnitude: &[u8]) {
    let pad = magnitude.first().is_none_or(|b| b & 0x80 != 0);
    der_header(out, 0x02, magnitude.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(magnitude);
}

/// Uncompressed point `0x04 || x || y`.
fn ec_material(
    jwk: &serde_json::Map<String, Value>,
) -> Result<(&'static str, Vec<u8>), &'static str> {
    let (curve, size) = match jwk.get("crv").and_then(Value::as_str) {
        Some("P-256") => ("P-256", 32),
        Some("P-384") => ("P-384", 48),
        _ => return Err("unsupported curve"),
    };
    let x = b64_member(jwk, "x")?;
    let y = b64_member(jwk, "y")?;
    if x.len() != size || y.len() != size {
        return Err("EC coordinate of the wrong size");
    }
    let mut point = Vec::with_capacity(1 + 2 * size);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok((curve, point))
}

fn okp_material(
    jwk: &serde_json::Map<String, Value>,
) -> Result<(&'static str, Vec<u8>), &'static str> {
    if jwk.get("crv").and_then(Value::as_str) != Some("Ed25519") {
        return Err("unsupported curve");
    }
    let x = b64_member(jwk, "x")?;
    if x.len() != signature::ED25519_PUBLIC_KEY_LEN {
        return Err("Ed25519 key of the wrong size");
    }
    Ok(("Ed25519", x))
}

#[cfg(test)]
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
    fn cache_control_max_age() {
        let mut headers = HeaderMap::new();
        assert_eq!(max_age(&headers), None);
        headers.insert(
            CACHE_CONTROL,
            reqwest::header::HeaderValue::from_static(
                "public, Max-Age=15, stale-while-revalidate=15",
            ),
        );
        assert_eq!(max_age(&headers), Some(Duration::from_secs(15)));
        headers.insert(
            CACHE_CONTROL,
            reqwest::header::HeaderValue::from_static("no-cache, max-age=\"7\""),
        );
        assert_eq!(max_age(&headers), Some(Duration::from_secs(7)));
    }

    #[test]
    fn discovery_url_appends_well_known() {
        assert_eq!(
            discovery_url("https://tenant.auth0.com/"),
            "https://tenant.auth0.com/.well-known/openid-configuration"
        );
    }
}
