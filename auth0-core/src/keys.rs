//! Discovery and the key-set cache (SPEC §8): the store and its single flights here, the
//! discovery document in `discovery`, fetching in `fetch`, what is cached in `entry`.
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
use serde::Serialize;

use crate::Algorithm;
use crate::observe::chain;

mod budget;
mod discovery;
mod entry;
mod fetch;
mod jwk;

pub(crate) use budget::NewIssuerBudget;
use budget::NewIssuerFetches;
pub(crate) use discovery::DiscoveryError;
#[cfg(test)]
use discovery::discovery_url;
use entry::{FlightState, KeySetEntry, Release, Snapshot, claim, touch};
use fetch::FetchError;

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

/// Where the signing keys of one configured issuer stand (see [`Readiness`](crate::Readiness)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeysState {
    /// Cached and within their lifetime: tokens are verified without I/O.
    Fresh,
    /// Past their lifetime (a refresh is due, or failing), still served up to
    /// [`Auth0Config::stale_limit`](crate::Auth0Config::stale_limit): tokens are still verified
    /// without waiting. A tenant outage shows here first.
    Stale,
    /// Nothing usable is cached: a request with a token of this issuer waits for a fetch, or gets
    /// 503 if the issuer cannot be reached.
    Missing,
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
