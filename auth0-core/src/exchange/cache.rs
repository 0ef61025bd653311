//! The exchanged-token cache: a repeat exchange with the same inputs reuses the earlier answer until
//! 60 s before it expires, and never past the `exp` of the token it was issued for (the key covers
//! that token, so every caller of one key has the same `exp`); identical concurrent exchanges share
//! one request (single flight).
//!
//! Bounded: past its capacity the oldest entries go first (insertion order). Failures are never
//! stored. A flight belongs to the request that started it; if that request is dropped before the
//! answer, the flight is abandoned and a waiting request takes over, so a cancelled request cannot
//! stall the others.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use super::error::ExchangeError;
use super::response::Issued;

/// An entry is reused until this many seconds before its token expires.
pub(crate) const REFRESH_MARGIN: i64 = 60;

type Outcome = Result<Arc<Issued>, ExchangeError>;
type Key = [u8; 32];

pub(crate) struct ExchangeCache {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<Key, Entry>,
    /// Insertion order, for eviction; an item whose `seq` no longer matches its entry is stale.
    order: VecDeque<(Key, u64)>,
    flights: HashMap<Key, watch::Receiver<Option<Outcome>>>,
    seq: u64,
}

struct Entry {
    issued: Arc<Issued>,
    /// Reused while `now < refresh_at`: 60 s before the token expires, or the subject token's
    /// `exp` if that is sooner.
    refresh_at: i64,
    seq: u64,
}

/// What a caller does next.
enum Role<'c> {
    Hit(Arc<Issued>),
    Wait(watch::Receiver<Option<Outcome>>),
    Lead(Flight<'c>),
}

/// The leader's side of a flight; dropping it unfinished abandons the flight.
struct Flight<'c> {
    cache: &'c ExchangeCache,
    key: Key,
    /// Registered in `flights` (a forced refresh runs alongside an existing flight, unregistered).
    registered: bool,
    sender: Option<watch::Sender<Option<Outcome>>>,
}

impl ExchangeCache {
    /// A cache of `capacity` entries; 0 turns it (and single flight) off.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Entries currently stored.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.state().entries.len()
    }

    /// The cached answer for `key`, or the answer of `fetch` (run by one caller for all identical
    /// concurrent callers, and stored when it succeeds). A stored answer is reused until 60 s
    /// before it expires and while `now < not_after` (the subject token's `exp`). `now` reads the
    /// clock in seconds.
    pub(crate) async fn get_or_fetch<F, Fut>(
        &self,
        key: Key,
        force_refresh: bool,
        not_after: Option<i64>,
        now: impl Fn() -> i64,
        fetch: F,
    ) -> Outcome
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Issued, ExchangeError>>,
    {
        if self.capacity == 0 {
            return fetch().await.map(Arc::new);
        }
        let mut force = force_refresh;
        loop {
            match self.role(key, force, now()) {
                Role::Hit(issued) => {
                    crate::observe::metrics::exchange_cache(true);
                    return Ok(issued);
                }
                Role::Wait(mut receiver) => {
                    match receiver.wait_for(Option::is_some).await {
                        Ok(outcome) => {
                            if let Some(outcome) = outcome.as_ref() {
                                return outcome.clone();
                            }
                        }
                        // The leader was dropped before the answer: try again (and maybe lead).
                        Err(_) => continue,
                    }
                }
                Role::Lead(mut flight) => {
                    crate::observe::metrics::exchange_cache(false);
                    let outcome = fetch().await.map(Arc::new);
                    self.finish(&mut flight, &outcome, not_after, now());
                    return outcome;
                }
            }
            // A forced refresh waits only on a flight it could not replace; then it is answered.
            force = false;
        }
    }

    fn role(&self, key: Key, force: bool, now: i64) -> Role<'_> {
        let mut state = self.state();
        if !force {
            if let Some(entry) = state.entries.get(&key)
                && now < entry.refresh_at
            {
                return Role::Hit(Arc::clone(&entry.issued));
            }
            if let Some(receiver) = state.flights.get(&key) {
                return Role::Wait(receiver.clone());
            }
        }
        let (sender, receiver) = watch::channel(None);
        let registered = !state.flights.contains_key(&key);
        if registered {
            state.flights.insert(key, receiver);
        }
        Role::Lead(Flight {
            cache: self,
            key,
            registered,
            sender: Some(sender),
        })
    }

    /// Stores a success, ends the flight and hands the outcome to its waiters.
    fn finish(&self, flight: &mut Flight<'_>, outcome: &Outcome, not_after: Option<i64>, now: i64) {
        let mut state = self.state();
        if flight.registered {
            state.flights.remove(&flight.key);
        }
        if let Ok(issued) = outcome {
            let refresh_at = issued
                .expires_at
                .saturating_sub(REFRESH_MARGIN)
                .min(not_after.unwrap_or(i64::MAX));
            if now < refresh_at {
                state.seq += 1;
                let seq = state.seq;
                state.entries.insert(
                    flight.key,
                    Entry {
                        issued: Arc::clone(issued),
                        refresh_at,
                        seq,
                    },
                );
                state.order.push_back((flight.key, seq));
                self.evict(&mut state, now);
            } else {
                state.entries.remove(&flight.key);
            }
        }
        drop(state);
        if let Some(sender) = flight.sender.take() {
            let _ = sender.send(Some(outcome.clone()));
        }
    }

    fn evict(&self, state: &mut State, now: i64) {
        if state.entries.len() > self.capacity {
            state.entries.retain(|_, entry| now < entry.refresh_at);
        }
        while state.entries.len() > self.capacity {
            let Some((key, seq)) = state.order.pop_front() else {
                break;
            };
            if state.entries.get(&key).is_some_and(|e| e.seq == seq) {
                state.entries.remove(&key);
            }
        }
        // Keep the order queue proportional to the entries.
        if state.order.len() > self.capacity.saturating_mul(2).max(16) {
            let State { entries, order, .. } = state;
            order.retain(|(key, seq)| entries.get(key).is_some_and(|e| e.seq == *seq));
        }
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        // Unfinished (the leader was dropped): the flight leaves the map, then the sender is
        // dropped with it, so the waiters wake up, find no flight, and one of them leads.
        if self.sender.is_some() && self.registered {
            self.cache.state().flights.remove(&self.key);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn issued(expires_at: i64) -> Issued {
        crate::exchange::response::parse_success(
            format!(r#"{{"access_token":"t","expires_in":{expires_at}}}"#).as_bytes(),
            0,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn hits_until_the_margin() {
        let cache = ExchangeCache::new(8);
        let calls = AtomicUsize::new(0);
        let fetch = || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok(issued(1000)) }
        };
        for now in [0, 500, 939] {
            cache
                .get_or_fetch([1; 32], false, None, || now, fetch)
                .await
                .unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        cache
            .get_or_fetch([1; 32], false, None, || 940, fetch)
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        cache
            .get_or_fetch([1; 32], true, None, || 0, fetch)
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3, "forced");
        // A token living 60 s or less is never stored.
        let short = || async { Ok(issued(60)) };
        cache
            .get_or_fetch([2; 32], false, None, || 0, short)
            .await
            .unwrap();
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test]
    async fn reuse_ends_at_the_subject_tokens_exp() {
        let cache = ExchangeCache::new(8);
        let calls = AtomicUsize::new(0);
        let fetch = || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok(issued(3600)) }
        };
        // The exchanged token lives an hour; the subject token only until 100.
        for now in [0, 50, 99] {
            cache
                .get_or_fetch([1; 32], false, Some(100), || now, fetch)
                .await
                .unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        cache
            .get_or_fetch([1; 32], false, Some(100), || 100, fetch)
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2, "not reused at the subject's exp");
        assert_eq!(cache.len(), 0, "an answer for an expired subject is not stored");
        // A later exp than the answer's own: the 60 s margin still rules.
        cache
            .get_or_fetch([2; 32], false, Some(i64::MAX), || 0, fetch)
            .await
            .unwrap();
        cache
            .get_or_fetch([2; 32], false, Some(i64::MAX), || 3540, fetch)
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn failures_are_not_stored_and_zero_turns_it_off() {
        let cache = ExchangeCache::new(8);
        let calls = AtomicUsize::new(0);
        let failing = || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(ExchangeError::Network) }
        };
        for _ in 0..3 {
            assert!(
                cache
                    .get_or_fetch([1; 32], false, None, || 0, failing)
                    .await
                    .is_err()
            );
        }
        assert_eq!((calls.load(Ordering::SeqCst), cache.len()), (3, 0));

        let off = ExchangeCache::new(0);
        let calls = AtomicUsize::new(0);
        let fetch = || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok(issued(1000)) }
        };
        for _ in 0..3 {
            off.get_or_fetch([1; 32], false, None, || 0, fetch).await.unwrap();
        }
        assert_eq!((calls.load(Ordering::SeqCst), off.len()), (3, 0));
    }

    #[tokio::test]
    async fn bounded_oldest_first() {
        let cache = ExchangeCache::new(3);
        let fetch = || async { Ok(issued(1000)) };
        for i in 0..10u8 {
            cache
                .get_or_fetch([i; 32], false, None, || 0, fetch)
                .await
                .unwrap();
            assert!(cache.len() <= 3);
        }
        let calls = AtomicUsize::new(0);
        let counted = || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok(issued(1000)) }
        };
        for i in 7..10u8 {
            cache
                .get_or_fetch([i; 32], false, None, || 0, counted)
                .await
                .unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 0, "the newest three are kept");
        cache
            .get_or_fetch([0; 32], false, None, || 0, counted)
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the oldest went first");
        assert!(cache.state().order.len() <= 16);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch_and_its_failure() {
        let cache = ExchangeCache::new(8);
        let calls = AtomicUsize::new(0);
        let slow = || {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(ExchangeError::Timeout)
            }
        };
        let all = futures_join(&cache, 20, slow).await;
        assert!(all.iter().all(|r| *r == Err(ExchangeError::Timeout)));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one request for twenty callers");
        // Not stored: the next caller asks again.
        let _ = cache.get_or_fetch([9; 32], false, None, || 0, slow).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    async fn futures_join<F, Fut>(cache: &ExchangeCache, n: usize, fetch: F) -> Vec<Result<(), ExchangeError>>
    where
        F: Fn() -> Fut + Copy,
        Fut: Future<Output = Result<Issued, ExchangeError>>,
    {
        let mut set = Vec::new();
        for _ in 0..n {
            set.push(cache.get_or_fetch([9; 32], false, None, || 0, fetch));
        }
        let mut out = Vec::new();
        // Poll them together on one task.
        let joined = join_all(set).await;
        for r in joined {
            out.push(r.map(|_| ()));
        }
        out
    }

    /// A minimal `join_all` (no futures crate in the runtime's dependencies).
    async fn join_all<Fut: Future>(futures: Vec<Fut>) -> Vec<Fut::Output> {
        let mut futures: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
        let mut outputs: Vec<Option<Fut::Output>> = futures.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (slot, out) in futures.iter_mut().zip(outputs.iter_mut()) {
                if let Some(f) = slot {
                    match f.as_mut().poll(cx) {
                        std::task::Poll::Ready(v) => {
                            *out = Some(v);
                            *slot = None;
                        }
                        std::task::Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
        outputs.into_iter().flatten().collect()
    }

    #[tokio::test]
    async fn a_dropped_leader_hands_over() {
        let cache = Arc::new(ExchangeCache::new(8));
        let calls = Arc::new(AtomicUsize::new(0));
        let make = |calls: Arc<AtomicUsize>| {
            move || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        // The first leader hangs until it is dropped.
                        std::future::pending::<()>().await;
                    }
                    Ok(issued(1000))
                }
            }
        };
        let leader = {
            let (cache, fetch) = (Arc::clone(&cache), make(Arc::clone(&calls)));
            tokio::spawn(async move { cache.get_or_fetch([5; 32], false, None, || 0, fetch).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let waiter = {
            let (cache, fetch) = (Arc::clone(&cache), make(Arc::clone(&calls)));
            tokio::spawn(async move { cache.get_or_fetch([5; 32], false, None, || 0, fetch).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the waiter joined the flight");
        leader.abort();
        let result = tokio::time::timeout(Duration::from_secs(2), waiter).await;
        assert!(result.unwrap().unwrap().is_ok(), "the waiter took over");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(cache.state().flights.is_empty());
    }
}
