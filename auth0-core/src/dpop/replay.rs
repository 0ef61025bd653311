//! A proof is accepted once: the replay store.
//!
//! The in-memory store is a fixed table allocated once: open addressing with linear probing,
//! records of 16 bytes (a 96-bit keyed fingerprint of thumbprint and `jti`, and an expiry), split
//! into shards with a mutex each. An unexpired record is never dropped to make room: a full store
//! refuses new proofs instead, and each key thumbprint and each token subject may hold only a
//! share of it, so one caller cannot fill it for everyone.

use std::fmt;
use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use aws_lc_rs::digest;

use crate::throttle::Throttle;

mod shares;

use shares::Shares;

/// One use of a DPoP proof that passed every other check, as the verifier presents it to a
/// [`ReplayStore`].
///
/// The store must remember it at least until [`expires_at`](Self::expires_at) (inclusive): up to
/// that second the same proof would pass the `iat` check again. [`now`](Self::now) is the
/// verification's own clock reading, the one its `iat` check used: compare expiries with it,
/// never with a clock read again.
#[derive(Debug, Clone, Copy)]
pub struct ProofUse<'a> {
    jkt: &'a str,
    jti: &'a str,
    subject: &'a str,
    expires_at: i64,
    now: i64,
}

impl<'a> ProofUse<'a> {
    /// A use of the proof `jti` signed by the key with thumbprint `jkt`, for a token of `subject`,
    /// to be remembered through `expires_at`, judged at `now` (both unix seconds).
    pub fn new(jkt: &'a str, jti: &'a str, subject: &'a str, expires_at: i64, now: i64) -> Self {
        Self {
            jkt,
            jti,
            subject,
            expires_at,
            now,
        }
    }

    /// The RFC 7638 thumbprint of the proof's key (the token's `cnf.jkt`).
    pub fn jkt(&self) -> &'a str {
        self.jkt
    }

    /// The proof's `jti`.
    pub fn jti(&self) -> &'a str {
        self.jti
    }

    /// The access token's subject (`sub`): the user or client the proof was sent for.
    pub fn subject(&self) -> &'a str {
        self.subject
    }

    /// The last second (unix time, inclusive) at which this proof could pass verification again.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// The verification's clock reading, unix seconds.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// A fixed-size key for a shared store: SHA-256 over the length-prefixed thumbprint and the
    /// `jti`, so no two (thumbprint, `jti`) pairs share a key and the key reveals neither.
    pub fn digest(&self) -> [u8; 32] {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&(self.jkt.len() as u64).to_be_bytes());
        ctx.update(self.jkt.as_bytes());
        ctx.update(self.jti.as_bytes());
        let mut out = [0; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }
}

/// What a [`ReplayStore`] says about a [`ProofUse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayOutcome {
    /// Not seen before, and now recorded: the proof is accepted.
    FirstUse,
    /// Seen before: the request is refused (401 `invalid_dpop_proof`).
    Replay,
    /// The store answered that it cannot record it (full, the key or subject over its share, or
    /// a shared store refusing the write, such as Redis answering `NOPERM` or `READONLY`): the
    /// request is refused with 503 `temporarily_unavailable` and `Retry-After`, never accepted
    /// unrecorded, whatever the failure policy.
    Unavailable,
    /// The store did not answer (down, unreachable, or too slow): the request is refused with 503
    /// `temporarily_unavailable` and `Retry-After`, unless the validator is configured to fail
    /// open ([`Auth0Config::replay_store_fail_open`](crate::Auth0Config::replay_store_fail_open)),
    /// which accepts the proof unchecked and logs a warning.
    Unreachable,
}

/// The answer of [`ReplayStore::check_and_record`]: at once, or later (a networked store).
///
/// It is a future, so `store.check_and_record(&proof).await` works for any store; the verifier
/// takes the [`Ready`](Self::Ready) case without awaiting anything.
#[non_exhaustive]
pub enum ReplayCheck {
    /// The answer, known without waiting (the in-memory store).
    Ready(ReplayOutcome),
    /// The answer, once the store replies. A networked store bounds the wait itself and answers
    /// [`ReplayOutcome::Unreachable`] when it runs out.
    Pending(Pin<Box<dyn Future<Output = ReplayOutcome> + Send + 'static>>),
}

impl ReplayCheck {
    /// An answer that comes from `future`.
    pub fn pending(future: impl Future<Output = ReplayOutcome> + Send + 'static) -> Self {
        Self::Pending(Box::pin(future))
    }
}

impl From<ReplayOutcome> for ReplayCheck {
    fn from(outcome: ReplayOutcome) -> Self {
        Self::Ready(outcome)
    }
}

impl fmt::Debug for ReplayCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ready(outcome) => f.debug_tuple("Ready").field(outcome).finish(),
            Self::Pending(_) => f.write_str("Pending"),
        }
    }
}

impl Future for ReplayCheck {
    type Output = ReplayOutcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ReplayOutcome> {
        match self.get_mut() {
            Self::Ready(outcome) => Poll::Ready(*outcome),
            Self::Pending(future) => future.as_mut().poll(cx),
        }
    }
}

/// The answer of [`ReplayStore::health`]: whether the store can answer now, known at once or
/// later (a networked store). A future of `Result<(), String>`; the `Err` says why not.
///
/// The reason is logged by readiness checks ([`Auth0::ready`](crate::Auth0::ready)) and never sent
/// to clients nor shown on a health route; still, keep secrets (a password in a URL) out of it.
///
/// ```
/// use auth0_runtime::HealthCheck;
///
/// # let runtime = tokio::runtime::Builder::new_current_thread().build()?;
/// # runtime.block_on(async {
/// assert_eq!(HealthCheck::healthy().await, Ok(()));
/// assert!(HealthCheck::unhealthy("connection refused").await.is_err());
/// let later = HealthCheck::pending(async { Ok(()) }); // e.g. a Redis PING
/// assert_eq!(later.await, Ok(()));
/// # });
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct HealthCheck(HealthState);

enum HealthState {
    Ready(Option<Result<(), String>>),
    Pending(Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>),
}

impl HealthCheck {
    /// The store can answer.
    pub fn healthy() -> Self {
        Self(HealthState::Ready(Some(Ok(()))))
    }

    /// The store cannot answer, because of `reason`.
    pub fn unhealthy(reason: impl Into<String>) -> Self {
        Self(HealthState::Ready(Some(Err(reason.into()))))
    }

    /// The answer of `future`, such as a round trip to a networked store. Bound the wait yourself
    /// (readiness checks also give up after the validator's HTTP timeout).
    pub fn pending(future: impl Future<Output = Result<(), String>> + Send + 'static) -> Self {
        Self(HealthState::Pending(Box::pin(future)))
    }

    /// Whether the answer is known without waiting.
    pub(crate) fn is_ready(&self) -> bool {
        matches!(self.0, HealthState::Ready(_))
    }
}

impl fmt::Debug for HealthCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            HealthState::Ready(answer) => f.debug_tuple("Ready").field(answer).finish(),
            HealthState::Pending(_) => f.write_str("Pending"),
        }
    }
}

impl Future for HealthCheck {
    type Output = Result<(), String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            HealthState::Ready(answer) => Poll::Ready(
                answer
                    .take()
                    .unwrap_or_else(|| Err("health check polled after completion".to_owned())),
            ),
            HealthState::Pending(future) => future.as_mut().poll(cx),
        }
    }
}

/// The fail-open policy around a store: a proof the store could not check (it answered
/// [`ReplayOutcome::Unreachable`]) is accepted, and a rate-limited warning counts them. A store
/// that answered [`ReplayOutcome::Unavailable`] (full, over a share) still refuses.
pub(crate) struct FailOpen {
    store: std::sync::Arc<dyn ReplayStore>,
    unchecked: std::sync::Arc<Throttle>,
}

impl FailOpen {
    pub(crate) fn new(store: std::sync::Arc<dyn ReplayStore>) -> Self {
        Self {
            store,
            unchecked: std::sync::Arc::new(Throttle::new(std::time::Duration::from_secs(10))),
        }
    }

    fn admit(unchecked: &Throttle, outcome: ReplayOutcome) -> ReplayOutcome {
        if outcome != ReplayOutcome::Unreachable {
            return outcome;
        }
        if let Some(report) = unchecked.event() {
            tracing::warn!(
                target: "auth0_runtime",
                accepted_unchecked = report.count,
                seconds = report.seconds,
                "the DPoP replay store cannot be reached: DPoP proofs are accepted without a \
                 replay check (AUTH0_REPLAY_STORE_FAIL_OPEN=true)"
            );
        }
        crate::observe::metrics::accepted_unchecked();
        ReplayOutcome::FirstUse
    }
}

impl ReplayStore for FailOpen {
    fn check_and_record(&self, proof: &ProofUse<'_>) -> ReplayCheck {
        match self.store.check_and_record(proof) {
            ReplayCheck::Ready(outcome) => ReplayCheck::Ready(Self::admit(&self.unchecked, outcome)),
            ReplayCheck::Pending(answer) => {
                let unchecked = std::sync::Arc::clone(&self.unchecked);
                ReplayCheck::pending(async move { Self::admit(&unchecked, answer.await) })
            }
        }
    }

    /// The store's own health: fail-open keeps serving, readiness still says the store is down.
    fn health(&self) -> HealthCheck {
        self.store.health()
    }
}

/// Remembers which DPoP proofs were already used, so that each is accepted once.
///
/// The verifier calls [`check_and_record`](ReplayStore::check_and_record) only for proofs that
/// passed every other check (signature, `htm`, `htu`, `iat`, `ath`, the token's binding), so a
/// store only ever holds proofs that were signed by their key.
///
/// The default is [`MemoryReplayStore`], which is per process. An API served by several
/// instances needs a shared store, so that a proof accepted by one is refused by the others: an
/// atomic "set if absent, with expiry" keyed on [`ProofUse::digest`] (such as Redis
/// `SET key 1 NX PXAT ms`), answering [`ReplayCheck::Pending`] so no worker thread ever blocks.
///
/// # Examples
///
/// ```
/// use auth0_runtime::{MemoryReplayStore, ProofUse, ReplayCheck, ReplayOutcome, ReplayStore};
///
/// let store = MemoryReplayStore::default();
/// let now = 1_800_000_000;
/// let proof = ProofUse::new("thumbprint", "jti-1", "user-1", now + 300, now);
/// assert!(matches!(store.check_and_record(&proof), ReplayCheck::Ready(ReplayOutcome::FirstUse)));
/// assert!(matches!(store.check_and_record(&proof), ReplayCheck::Ready(ReplayOutcome::Replay)));
/// ```
pub trait ReplayStore: Send + Sync + 'static {
    /// Records `proof` unless it was seen before.
    ///
    /// Must be atomic: of two concurrent calls for the same (thumbprint, `jti`), at most one
    /// answers [`ReplayOutcome::FirstUse`]. Must never forget an unexpired record to make room
    /// for another: answer [`ReplayOutcome::Unavailable`] instead. A store that cannot be
    /// reached answers [`ReplayOutcome::Unreachable`], in bounded time.
    fn check_and_record(&self, proof: &ProofUse<'_>) -> ReplayCheck;

    /// Whether the store can answer right now, for readiness checks
    /// ([`Auth0::ready`](crate::Auth0::ready)): a health route reports an instance whose store is
    /// unreachable as not ready. A networked store makes one cheap round trip (such as Redis
    /// `PING`), bounded by its own timeout, and answers [`HealthCheck::pending`].
    ///
    /// Provided: the default answers [`HealthCheck::healthy`] at once, which is right for a store
    /// in memory, so existing stores need no change.
    fn health(&self) -> HealthCheck {
        HealthCheck::healthy()
    }
}

/// The default [`ReplayStore`]: in memory, per process, of fixed size.
///
/// Holds up to `capacity` unexpired proofs in a table allocated once (about 23 bytes a record,
/// table overhead included, plus about 1 MiB of share counters; see `BENCHMARKS.md`). Expired
/// records are reused in place; an unexpired one is never dropped. When the store is full, or
/// the proof's key thumbprint or its token's subject already holds its share (by default 1/8 of
/// the capacity), the proof is refused with 503 and a rate-limited warning is logged.
///
/// The default capacity, [`MemoryReplayStore::DEFAULT_CAPACITY`], is 1 000 DPoP requests a
/// second over the default proof window of 330 seconds (`iat` up to 300 s old, 30 s ahead).
///
/// # Examples
///
/// ```
/// use auth0_runtime::MemoryReplayStore;
///
/// let store = MemoryReplayStore::new(1_000_000).with_share(100_000);
/// assert_eq!(store.capacity(), 1_000_000);
/// assert!(store.is_empty());
/// ```
pub struct MemoryReplayStore {
    capacity: usize,
    shards: Box<[Mutex<Shard>]>,
    /// Seeds the record fingerprints, the shard choice and the share buckets: unknown to clients,
    /// so nobody can aim proofs at one shard, one slot chain or someone else's share.
    hasher: std::collections::hash_map::RandomState,
    by_key: Shares,
    by_subject: Shares,
    base: i64,
    full: Throttle,
}

/// Load factor of a shard table, as `SLOTS_PER_RECORD` slots for each record it may hold.
const SLOTS_PER_RECORD: (usize, usize) = (4, 3);
/// Shards, at most (fewer for small stores, so each still holds a useful number of records).
const MAX_SHARDS: usize = 64;
/// Smallest per-shard budget worth splitting for.
const MIN_SHARD_RECORDS: usize = 2048;

/// One shard of the table. A slot is `[fingerprint; 3], expires`; `expires == 0` is empty, and a
/// record is alive while `now <= expires` (both seconds since the store's base).
struct Shard {
    slots: Box<[[u32; 4]]>,
    /// Non-empty slots (alive or expired but not yet reclaimed).
    used: usize,
    /// Most records this shard may hold.
    budget: usize,
    /// No record expires before this; a sweep earlier would free nothing.
    min_expires: u32,
}

impl MemoryReplayStore {
    /// The default capacity: 1 000 proofs a second over the default 330-second window.
    pub const DEFAULT_CAPACITY: usize = 330_000;

    /// A store holding up to `capacity` unexpired proofs (at least one), each key thumbprint and
    /// each subject limited to 1/8 of it.
    pub fn new(capacity: usize) -> Self {
        Self::for_window(capacity, 330)
    }

    /// As [`Self::new`], with share counters sized for proofs living up to `window` seconds.
    pub(crate) fn for_window(capacity: usize, window: i64) -> Self {
        let capacity = capacity.max(1);
        let shard_count = (capacity / MIN_SHARD_RECORDS)
            .clamp(1, MAX_SHARDS)
            .next_power_of_two();
        // A little slack per shard: keyed hashing spreads records evenly, not exactly evenly.
        let per_shard = capacity.div_ceil(shard_count);
        let budget = per_shard + per_shard / 16 + 1;
        let slots = (budget * SLOTS_PER_RECORD.0).div_ceil(SLOTS_PER_RECORD.1) + 1;
        let shards = (0..shard_count)
            .map(|_| {
                Mutex::new(Shard {
                    slots: vec![[0u32; 4]; slots].into_boxed_slice(),
                    used: 0,
                    budget,
                    min_expires: u32::MAX,
                })
            })
            .collect();
        let share = u32::try_from(capacity / 8).unwrap_or(u32::MAX).max(1);
        let buckets = (capacity / 64).clamp(64, 4096).next_power_of_two();
        Self {
            capacity,
            shards,
            hasher: std::collections::hash_map::RandomState::new(),
            by_key: Shares::new(share, buckets, window),
            by_subject: Shares::new(share, buckets, window),
            // One second before now, so that no real expiry maps to 0 (the empty mark).
            base: crate::clock::now() - 1,
            full: Throttle::new(std::time::Duration::from_secs(10)),
        }
    }

    /// Limits each key thumbprint and each token subject to `records` unexpired proofs (default:
    /// 1/8 of the capacity). Beyond it that caller's new proofs get 503 until older ones expire;
    /// set it well above what your heaviest honest user sends in one proof window.
    #[must_use]
    pub fn with_share(mut self, records: usize) -> Self {
        let share = u32::try_from(records).unwrap_or(u32::MAX).max(1);
        self.by_key.limit = share;
        self.by_subject.limit = share;
        self
    }

    /// The most unexpired proofs the store holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records held now, expired ones not yet reclaimed included.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).used).sum()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the table and the share counters: the store's whole memory, allocated up front.
    pub fn memory_bytes(&self) -> usize {
        let table: usize = self
            .shards
            .iter()
            .map(|s| lock(s).slots.len() * std::mem::size_of::<[u32; 4]>())
            .sum();
        table + self.by_key.memory_bytes() + self.by_subject.memory_bytes()
    }

    fn relative(&self, unix: i64) -> u32 {
        u32::try_from(unix.saturating_sub(self.base).max(0)).unwrap_or(u32::MAX)
    }

    fn record(&self, proof: &ProofUse<'_>) -> ReplayOutcome {
        let h1 = self.hasher.hash_one((1u8, proof.jkt, proof.jti));
        let h2 = self.hasher.hash_one((2u8, proof.jkt, proof.jti));
        let fingerprint = [h1 as u32, (h1 >> 32) as u32, h2 as u32];
        let shard_index = ((h2 >> 32) as usize) & (self.shards.len() - 1);
        let now = self.relative(proof.now);
        // Records start counting from their expiry, at least 1 (0 marks an empty slot).
        let expires = self.relative(proof.expires_at).max(1);
        let key_bucket = self.by_key.bucket(self.hasher.hash_one((3u8, proof.jkt)));
        let subject_bucket = self.by_subject.bucket(self.hasher.hash_one((4u8, proof.subject)));

        let mut shard = lock(&self.shards[shard_index]);
        let home = (h1 as usize) % shard.slots.len();
        let free = match shard.find(fingerprint, home, now) {
            Probe::Alive => return ReplayOutcome::Replay,
            Probe::Free(slot) => slot,
        };
        if self.by_key.held(key_bucket, proof.now) >= self.by_key.limit
            || self.by_subject.held(subject_bucket, proof.now) >= self.by_subject.limit
        {
            drop(shard);
            self.refuse("share");
            return ReplayOutcome::Unavailable;
        }
        let slot = match free {
            Some(slot) => slot,
            None => match shard.claim_empty(home, now) {
                Some(slot) => slot,
                None => {
                    drop(shard);
                    self.refuse("full");
                    return ReplayOutcome::Unavailable;
                }
            },
        };
        shard.slots[slot] = [fingerprint[0], fingerprint[1], fingerprint[2], expires];
        shard.min_expires = shard.min_expires.min(expires);
        drop(shard);
        self.by_key.add(key_bucket, proof.expires_at, proof.now);
        self.by_subject.add(subject_bucket, proof.expires_at, proof.now);
        ReplayOutcome::FirstUse
    }

    fn refuse(&self, why: &'static str) {
        if let Some(report) = self.full.event() {
            tracing::warn!(
                target: "auth0_runtime",
                refused = report.count,
                seconds = report.seconds,
                records = self.len(),
                capacity = self.capacity,
                last_reason = why,
                "the DPoP replay store refused new proofs (503): it is full, or one key or subject \
                 holds its share; raise AUTH0_REPLAY_STORE_CAPACITY if this is honest traffic"
            );
        }
    }
}

enum Probe {
    /// An unexpired record with this fingerprint exists.
    Alive,
    /// None exists; an expired slot on the chain that can be reused, if one was passed.
    Free(Option<usize>),
}

impl Shard {
    /// Walks the chain from `home` to the first empty slot.
    fn find(&self, fingerprint: [u32; 3], home: usize, now: u32) -> Probe {
        let len = self.slots.len();
        let mut reusable = None;
        for step in 0..len {
            let index = (home + step) % len;
            let [a, b, c, expires] = self.slots[index];
            if expires == 0 {
                break;
            }
            let alive = now <= expires;
            if [a, b, c] == fingerprint && alive {
                return Probe::Alive;
            }
            if !alive && reusable.is_none() {
                reusable = Some(index);
            }
        }
        Probe::Free(reusable)
    }

    /// An empty slot for a new record (counted as used), sweeping expired records out first if
    /// the shard is at its budget; `None` when every record it holds is alive.
    fn claim_empty(&mut self, home: usize, now: u32) -> Option<usize> {
        if self.used >= self.budget {
            if now <= self.min_expires {
                return None;
            }
            self.sweep(now);
            if self.used >= self.budget {
                return None;
            }
        }
        let len = self.slots.len();
        let index = (0..len)
            .map(|step| (home + step) % len)
            .find(|&i| self.slots[i][3] == 0)?;
        self.used += 1;
        Some(index)
    }

    /// Empties every expired slot and moves the live records back onto unbroken chains, in
    /// place (no allocation): the classic same-size rehash for linear probing.
    fn sweep(&mut self, now: u32) {
        let len = self.slots.len();
        let mut min_expires = u32::MAX;
        let mut used = 0;
        for slot in self.slots.iter_mut() {
            match slot[3] {
                0 => {}
                expires if now > expires => *slot = [0; 4],
                expires => {
                    used += 1;
                    min_expires = min_expires.min(expires);
                }
            }
        }
        self.used = used;
        self.min_expires = min_expires;
        // Start just after an empty slot (there is one: the table is never full), so every
        // chain is walked from its beginning.
        let Some(start) = self.slots.iter().position(|s| s[3] == 0) else {
            return;
        };
        for step in 1..=len {
            let index = (start + step) % len;
            let record = self.slots[index];
            if record[3] == 0 {
                continue;
            }
            self.slots[index] = [0; 4];
            let home = self.home_of(record);
            if let Some(to) = (0..len)
                .map(|s| (home + s) % len)
                .find(|&i| self.slots[i][3] == 0)
            {
                self.slots[to] = record;
            }
        }
    }

    /// The home slot of a stored record: the low fingerprint word pair is the hash's low half.
    fn home_of(&self, record: [u32; 4]) -> usize {
        let h1 = u64::from(record[0]) | (u64::from(record[1]) << 32);
        (h1 as usize) % self.slots.len()
    }
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // Every critical section leaves the table consistent before anything can panic.
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Default for MemoryReplayStore {
    /// A store of [`MemoryReplayStore::DEFAULT_CAPACITY`] records.
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl fmt::Debug for MemoryReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayStore")
            .field("capacity", &self.capacity)
            .field("share", &self.by_key.limit)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl ReplayStore for MemoryReplayStore {
    fn check_and_record(&self, proof: &ProofUse<'_>) -> ReplayCheck {
        ReplayCheck::Ready(self.record(proof))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
