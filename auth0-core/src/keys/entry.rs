//! What the key store caches (discovery results and key sets, in one immutable snapshot), and the
//! per-issuer bookkeeping of its fetches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use super::discovery::{Discovered, DiscoveryError};
use super::{KeyMap, KeyStore};
#[cfg(feature = "testing")]
use {super::MAX_LIFETIME, super::STATIC_KEY_SET, super::fetch::FetchError, serde_json::Value};

impl KeyStore {
    /// Load, edit and store the snapshot (writers are serialised; readers are never blocked).
    pub(super) fn update<R>(&self, edit: impl FnOnce(&mut Snapshot) -> R) -> R {
        let _writer = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = Snapshot::clone(&self.snapshot.load());
        let result = edit(&mut next);
        self.snapshot.store(Arc::new(next));
        result
    }

    pub(super) fn store_issuer(&self, issuer: &str, discovered: Discovered) -> Arc<IssuerEntry> {
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

    pub(super) fn is_pinned(&self, issuer: &str) -> bool {
        self.settings.pinned.iter().any(|p| p == issuer)
    }

    pub(super) fn insert_issuer(&self, snapshot: &mut Snapshot, issuer: &str, entry: Arc<IssuerEntry>) {
        let max = self.settings.cache_max_entries;
        insert_bounded(&mut snapshot.issuers, issuer, entry, max, |name| {
            self.is_pinned(name)
        });
    }

    pub(super) fn insert_key_set(&self, snapshot: &mut Snapshot, url: &str, entry: Arc<KeySetEntry>) {
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
    pub(super) fn extend_issuer(&self, issuer: &str, entry: &IssuerEntry, retry_at: Instant) {
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
    pub(super) fn store_key_set(&self, url: &str, keys: KeyMap, lifetime: Duration) -> Arc<KeyMap> {
        let now = Instant::now();
        let keys = Arc::new(keys);
        let entry = Arc::new(KeySetEntry {
            keys: Arc::clone(&keys),
            refresh_at: now + lifetime,
            stale_until: now + lifetime + self.settings.stale_limit,
            past_lifetime: false,
            last_used: AtomicU64::new(self.tick(now)),
            refresh_claimed: AtomicU64::new(0),
            fixed: false,
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
    pub(super) fn extend_key_set(&self, url: &str, set: &KeySetEntry, retry_at: Instant) {
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
            fixed: set.fixed,
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
            fixed: true,
        });
        self.update(|snapshot| {
            self.insert_issuer(snapshot, issuer, issuer_entry);
            self.insert_key_set(snapshot, &url, set);
        });
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(usable)
    }

    /// Forget a key set that is past its stale limit (tokens verified with it must be re-verified).
    pub(super) fn drop_key_set(&self, url: &str) {
        let removed = self.update(|snapshot| snapshot.key_sets.remove(url).is_some());
        if removed {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Back-off after the first failed fetch; doubles with each further failure, up to [`BACKOFF_MAX`].
pub(super) const BACKOFF_START: Duration = Duration::from_secs(1);

/// Longest back-off between two fetch attempts for one issuer.
pub(super) const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// A cached discovery result.
#[derive(Debug)]
pub(super) struct IssuerEntry {
    pub(super) jwks_uri: Arc<str>,
    /// The document's https `token_endpoint`, if it names one (token exchange uses it).
    pub(super) token_endpoint: Option<Arc<str>>,
    /// Served by the hot path until then.
    pub(super) refresh_at: Instant,
    /// Served as a fallback (refresh failing) until then.
    pub(super) stale_until: Instant,
    /// Served past its lifetime after a failed refresh ([`KeyStore::extend_issuer`]).
    pub(super) past_lifetime: bool,
    pub(super) last_used: AtomicU64,
}

/// A cached key set.
#[derive(Debug)]
pub(super) struct KeySetEntry {
    pub(super) keys: Arc<KeyMap>,
    pub(super) refresh_at: Instant,
    pub(super) stale_until: Instant,
    /// Served past its lifetime after a failed refresh ([`KeyStore::extend_key_set`]).
    pub(super) past_lifetime: bool,
    pub(super) last_used: AtomicU64,
    /// Tick at which a caller took on refreshing this set (0: nobody); see [`KeyStore::cached`].
    pub(super) refresh_claimed: AtomicU64,
    /// Given when the store was built, never fetched: an unknown `kid` is unknown for good.
    pub(super) fixed: bool,
}

pub(super) trait Entry {
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
pub(super) const REFRESH_CLAIM_LAPSE: Duration = Duration::from_secs(30);

/// Takes on the refresh of a stale set unless someone else has, recently. Ticks are milliseconds
/// (+1, so that 0 can mean "unclaimed"). The refresh task releases the claim when it ends, on
/// every path ([`Release`]); the lapse only covers a task that never ran (runtime shut down).
pub(super) fn claim(claimed: &AtomicU64, tick: u64) -> bool {
    let tick = tick.saturating_add(1);
    let previous = claimed.load(Ordering::Relaxed);
    let lapse = u64::try_from(REFRESH_CLAIM_LAPSE.as_millis()).unwrap_or(u64::MAX);
    (previous == 0 || tick.saturating_sub(previous) >= lapse)
        && claimed
            .compare_exchange(previous, tick, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
}

/// Releases a refresh claim when the refresh task ends, however it ends.
pub(super) struct Release(pub(super) Arc<KeySetEntry>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.refresh_claimed.store(0, Ordering::Release);
    }
}

pub(super) fn touch(stamp: &AtomicU64, tick: u64) {
    // Write only when the stamp changes, so hot keys do not bounce a cache line on every request.
    if stamp.load(Ordering::Relaxed) < tick {
        stamp.store(tick, Ordering::Relaxed);
    }
}

/// The immutable state read by the hot path.
#[derive(Debug, Default, Clone)]
pub(super) struct Snapshot {
    pub(super) issuers: HashMap<Box<str>, Arc<IssuerEntry>>,
    pub(super) key_sets: HashMap<Box<str>, Arc<KeySetEntry>>,
}

/// Per-issuer bookkeeping, guarded by the issuer's single-flight mutex.
#[derive(Debug, Default)]
pub(super) struct FlightState {
    /// When an unknown `kid` last forced a key-set refetch.
    pub(super) last_kid_refetch: Option<Instant>,
    /// Consecutive failed fetches.
    pub(super) failures: u32,
    /// No fetch before this instant (after a failure).
    pub(super) retry_at: Option<Instant>,
    /// How the last discovery fetch failed: what callers get while backing off from it.
    pub(super) discovery_failure: Option<DiscoveryError>,
}

impl FlightState {
    pub(super) fn in_backoff(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|at| now < at)
    }

    /// Records a failure; returns when the next attempt may happen.
    pub(super) fn failed(&mut self, now: Instant) -> Instant {
        self.failures = self.failures.saturating_add(1);
        let doublings = self.failures.saturating_sub(1).min(16);
        let backoff = BACKOFF_START.saturating_mul(1 << doublings).min(BACKOFF_MAX);
        let at = now + backoff;
        self.retry_at = Some(at);
        at
    }

    pub(super) fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = None;
        self.discovery_failure = None;
    }
}

/// Insert or replace `key`, evicting the least recently used entry that is not `pinned` when the
/// map is full (when all are pinned, the map grows past `max`).
pub(super) fn insert_bounded<V: Entry>(
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

pub(super) fn same_keys(old: &KeyMap, new: &KeyMap) -> bool {
    old.len() == new.len()
        && old
            .iter()
            .all(|(kid, key)| new.get(kid).is_some_and(|other| key.same_key(other)))
}
