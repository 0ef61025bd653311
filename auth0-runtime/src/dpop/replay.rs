//! A proof is accepted once: the replay store.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// Remembers which DPoP proofs were already used, so that each is accepted once.
///
/// A proof is identified by the thumbprint of its key (`jkt`) and its `jti`. The verifier calls
/// [`check_and_record`](ReplayStore::check_and_record) only for proofs that passed every other
/// check, so a store only ever holds proofs that were signed by their key.
///
/// The default is [`MemoryReplayStore`], which is per process: an API served by several
/// processes or machines that wants replays refused across all of them can implement this trait
/// over a shared store (an atomic "set if absent, with expiry", such as Redis `SET NX EXAT`).
///
/// # Examples
///
/// ```
/// use auth0_runtime::{MemoryReplayStore, ReplayStore};
///
/// let store = MemoryReplayStore::default();
/// let until = 4_102_444_800; // 2100-01-01
/// assert!(store.check_and_record("thumbprint", "jti-1", until));
/// assert!(!store.check_and_record("thumbprint", "jti-1", until)); // a replay
/// assert!(store.check_and_record("thumbprint", "jti-2", until));
/// ```
pub trait ReplayStore: Send + Sync + 'static {
    /// `true` if the proof `(jkt, jti)` was not seen before, and is now recorded until
    /// `expires_at` (unix seconds, inclusive); `false` if it is a replay.
    ///
    /// Must be atomic: of two concurrent calls with the same `(jkt, jti)`, at most one returns
    /// `true`.
    fn check_and_record(&self, jkt: &str, jti: &str, expires_at: i64) -> bool;
}

/// The default [`ReplayStore`]: in memory, bounded, per process.
///
/// Entries are dropped once expired. When the store is full, the entry closest to expiry makes
/// room for the new one, so memory never grows past `max_entries` entries (each a thumbprint and
/// a `jti` of bounded length); the default bound, 100 000, is far more than the proofs a single
/// process accepts in the few minutes a proof lives.
///
/// # Examples
///
/// ```
/// use auth0_runtime::MemoryReplayStore;
///
/// let store = MemoryReplayStore::new(10_000);
/// assert!(store.is_empty());
/// ```
pub struct MemoryReplayStore {
    max_entries: usize,
    entries: Mutex<Entries>,
}

/// Two indexes over the same entries: by key for the lookup, by expiry for purging and eviction.
#[derive(Default)]
struct Entries {
    by_key: HashMap<Arc<str>, (i64, u64)>,
    by_expiry: BTreeMap<(i64, u64), Arc<str>>,
    /// Tells apart entries expiring in the same second.
    sequence: u64,
}

impl MemoryReplayStore {
    /// The default bound on the number of remembered proofs.
    pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

    /// A store remembering at most `max_entries` proofs (at least one).
    pub fn new(max_entries: usize) -> Self {
        Self {
            max_entries: max_entries.max(1),
            entries: Mutex::new(Entries::default()),
        }
    }

    /// How many proofs are remembered now (expired ones included until the next call purges them).
    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    /// Whether no proof is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Nothing in the critical sections can leave the maps inconsistent half-way through an
        // update that matters for safety, so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// [`ReplayStore::check_and_record`] with an explicit clock.
    pub(crate) fn check_and_record_at(&self, jkt: &str, jti: &str, expires_at: i64, now: i64) -> bool {
        // Length-prefixed, so no (jkt, jti) pair can collide with another.
        let key = format!("{}:{jkt}{jti}", jkt.len());
        let mut entries = self.lock();
        entries.purge_expired(now);
        if entries.by_key.contains_key(key.as_str()) {
            return false;
        }
        while entries.by_key.len() >= self.max_entries {
            if !entries.evict_first() {
                break;
            }
        }
        entries.insert(Arc::from(key), expires_at);
        true
    }
}

impl Entries {
    fn purge_expired(&mut self, now: i64) {
        while self
            .by_expiry
            .first_key_value()
            .is_some_and(|(&(expires_at, _), _)| expires_at < now)
        {
            self.evict_first();
        }
    }

    /// Drop the entry closest to expiry; `false` if there was none.
    fn evict_first(&mut self) -> bool {
        match self.by_expiry.pop_first() {
            Some((_, key)) => {
                self.by_key.remove(&key);
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, key: Arc<str>, expires_at: i64) {
        self.sequence = self.sequence.wrapping_add(1);
        let slot = (expires_at, self.sequence);
        self.by_expiry.insert(slot, Arc::clone(&key));
        self.by_key.insert(key, slot);
    }
}

impl Default for MemoryReplayStore {
    /// A store bounded to [`MemoryReplayStore::DEFAULT_MAX_ENTRIES`].
    fn default() -> Self {
        Self::new(Self::DEFAULT_MAX_ENTRIES)
    }
}

impl fmt::Debug for MemoryReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayStore")
            .field("max_entries", &self.max_entries)
            .field("len", &self.len())
            .finish()
    }
}

impl ReplayStore for MemoryReplayStore {
    fn check_and_record(&self, jkt: &str, jti: &str, expires_at: i64) -> bool {
        self.check_and_record_at(jkt, jti, expires_at, crate::verify::now())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const LATER: i64 = 4_102_444_800;

    #[test]
    fn a_proof_is_accepted_once() {
        let store = MemoryReplayStore::default();
        assert!(store.check_and_record("jkt", "one", LATER));
        assert!(!store.check_and_record("jkt", "one", LATER));
        assert!(!store.check_and_record("jkt", "one", LATER + 100));
        assert!(store.check_and_record("jkt", "two", LATER));
        assert!(store.check_and_record("other", "one", LATER));
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn keys_cannot_collide() {
        let store = MemoryReplayStore::default();
        assert!(store.check_and_record("ab", "c", LATER));
        assert!(store.check_and_record("a", "bc", LATER));
        assert!(store.check_and_record("1:a", "b", LATER));
        assert!(store.check_and_record("1", ":ab", LATER));
    }

    #[test]
    fn expired_entries_are_purged() {
        let store = MemoryReplayStore::new(1000);
        for i in 0..100 {
            assert!(store.check_and_record_at("jkt", &format!("old-{i}"), 1_000 + i, 900));
        }
        assert!(store.check_and_record_at("jkt", "new", 5_000, 900));
        assert_eq!(store.len(), 101);
        // Still remembered through its expiry second, forgotten after.
        assert!(!store.check_and_record_at("jkt", "old-50", 9_000, 1_050));
        assert_eq!(store.len(), 51);
        assert!(store.check_and_record_at("jkt", "old-50", 9_000, 1_051));
        assert!(store.check_and_record_at("jkt", "x", 9_000, 2_000));
        // Only "new", "old-50" (re-recorded) and "x" are left.
        assert_eq!(store.len(), 3);
        assert!(!store.check_and_record_at("jkt", "new", 9_000, 2_000));
    }

    #[test]
    fn size_stays_bounded() {
        let store = MemoryReplayStore::default();
        for i in 0..200_000 {
            assert!(store.check_and_record_at("jkt", &i.to_string(), LATER + i, 0));
            assert!(store.len() <= MemoryReplayStore::DEFAULT_MAX_ENTRIES);
        }
        assert_eq!(store.len(), MemoryReplayStore::DEFAULT_MAX_ENTRIES);
        {
            let entries = store.lock();
            assert_eq!(entries.by_expiry.len(), entries.by_key.len());
        }
        // The most recent ones (expiring last) are remembered; the earliest were evicted.
        assert!(!store.check_and_record_at("jkt", "199999", LATER, 0));
        assert!(store.check_and_record_at("jkt", "0", LATER, 0));
    }

    #[test]
    fn a_tiny_store_still_works() {
        let store = MemoryReplayStore::new(0);
        assert!(store.check_and_record_at("jkt", "a", LATER, 0));
        assert!(!store.check_and_record_at("jkt", "a", LATER, 0));
        assert!(store.check_and_record_at("jkt", "b", LATER, 0));
        assert_eq!(store.len(), 1);
        assert!(format!("{store:?}").contains("max_entries: 1"));
    }

    #[test]
    fn concurrent_replays_are_refused() {
        let store = Arc::new(MemoryReplayStore::default());
        let accepted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let store = Arc::clone(&store);
                    s.spawn(move || {
                        (0..500)
                            .filter(|i| store.check_and_record("k", &i.to_string(), LATER))
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(accepted, 500);
    }
}
