//! The budget of fetches for issuers that nothing is cached for and nobody configured.

use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::Instant;

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
pub(super) struct NewIssuerFetches {
    pub(super) in_flight: Arc<tokio::sync::Semaphore>,
    pub(super) per_minute: u32,
    /// Tokens left, and when they were counted.
    pub(super) bucket: StdMutex<(f64, Instant)>,
}

impl NewIssuerFetches {
    pub(super) fn new(budget: NewIssuerBudget) -> Self {
        Self {
            in_flight: Arc::new(tokio::sync::Semaphore::new(budget.concurrent)),
            per_minute: budget.per_minute,
            bucket: StdMutex::new((f64::from(budget.per_minute), Instant::now())),
        }
    }

    /// A permit for one fetch, held until it ends; `None` when the budget is spent.
    pub(super) fn take(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
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
