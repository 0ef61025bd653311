//! Share counting: how many unexpired records each key thumbprint and each subject holds, so
//! that one caller cannot fill the store for everyone.

use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};

/// Ring of generations per share counter: records count until their generation is past.
const GENERATIONS: usize = 16;

/// How many unexpired records each bucket (of key thumbprints, or of subjects) holds.
///
/// Records are counted in the generation (a span of time) their expiry falls in, and stop
/// counting once that generation is past: no decrement, so nothing has to track each record,
/// and a count errs high by at most one generation's worth of expired records.
pub(super) struct Shares {
    pub(super) limit: u32,
    pub(super) buckets: usize,
    pub(super) generation_secs: i64,
    pub(super) tags: [AtomicI64; GENERATIONS],
    pub(super) counts: Box<[AtomicU32]>,
    pub(super) reset: Mutex<()>,
}

impl Shares {
    pub(super) fn new(limit: u32, buckets: usize, window: i64) -> Self {
        // Every live record's generation fits in the ring, whatever the window.
        let generation_secs = (window.max(1) / (GENERATIONS as i64 - 2) + 1).max(16);
        Self {
            limit,
            buckets,
            generation_secs,
            tags: std::array::from_fn(|_| AtomicI64::new(i64::MIN)),
            counts: (0..GENERATIONS * buckets).map(|_| AtomicU32::new(0)).collect(),
            reset: Mutex::new(()),
        }
    }

    pub(super) fn bucket(&self, hash: u64) -> usize {
        (hash as usize) & (self.buckets - 1)
    }

    pub(super) fn memory_bytes(&self) -> usize {
        self.counts.len() * std::mem::size_of::<AtomicU32>()
    }

    pub(super) fn held(&self, bucket: usize, now: i64) -> u32 {
        let current = now.div_euclid(self.generation_secs);
        let last = current + GENERATIONS as i64 - 1;
        (0..GENERATIONS)
            .filter(|&r| (current..=last).contains(&self.tags[r].load(Ordering::Acquire)))
            .map(|r| self.counts[r * self.buckets + bucket].load(Ordering::Relaxed))
            .fold(0u32, u32::saturating_add)
    }

    pub(super) fn add(&self, bucket: usize, expires_at: i64, now: i64) {
        let current = now.div_euclid(self.generation_secs);
        let generation = expires_at
            .div_euclid(self.generation_secs)
            .clamp(current, current + GENERATIONS as i64 - 1);
        let ring = generation.rem_euclid(GENERATIONS as i64) as usize;
        if self.tags[ring].load(Ordering::Acquire) != generation {
            let _guard = self.reset.lock().unwrap_or_else(PoisonError::into_inner);
            if self.tags[ring].load(Ordering::Acquire) != generation {
                for count in &self.counts[ring * self.buckets..(ring + 1) * self.buckets] {
                    count.store(0, Ordering::Relaxed);
                }
                self.tags[ring].store(generation, Ordering::Release);
            }
        }
        self.counts[ring * self.buckets + bucket].fetch_add(1, Ordering::Relaxed);
    }
}
