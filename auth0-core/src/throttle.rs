//! Rate-limited reporting: a warning that could fire on every request fires at most once per
//! period, and says how many times it happened since the last one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counts events and lets one report through per period.
#[derive(Debug)]
pub(crate) struct Throttle {
    period: Duration,
    epoch: Instant,
    /// Milliseconds since `epoch` of the last report, plus one (0: never reported).
    last: AtomicU64,
    /// Events since the last report.
    count: AtomicU64,
}

/// What a report carries: how many events, over how many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Report {
    pub(crate) count: u64,
    pub(crate) seconds: u64,
}

impl Throttle {
    pub(crate) fn new(period: Duration) -> Self {
        Self {
            period,
            epoch: Instant::now(),
            last: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Counts one event; `Some` when this one should be reported (then the count restarts).
    pub(crate) fn event(&self) -> Option<Report> {
        self.count.fetch_add(1, Ordering::Relaxed);
        let now = u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let last = self.last.load(Ordering::Relaxed);
        let period = u64::try_from(self.period.as_millis()).unwrap_or(u64::MAX);
        if last != 0 && now.saturating_sub(last) < period {
            return None;
        }
        self.last
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .ok()?;
        let since = if last == 0 { 0 } else { now - last };
        Some(Report {
            count: self.count.swap(0, Ordering::Relaxed),
            seconds: since.div_ceil(1000),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_report_per_period_with_the_count() {
        let throttle = Throttle::new(Duration::from_secs(3600));
        assert_eq!(throttle.event().map(|r| r.count), Some(1));
        for _ in 0..99 {
            assert_eq!(throttle.event(), None);
        }
        let quick = Throttle::new(Duration::ZERO);
        assert!(quick.event().is_some());
        assert_eq!(quick.event().map(|r| r.count), Some(1));
    }
}
