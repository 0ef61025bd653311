//! The metrics module when the `metrics` feature is off: the same functions, recording nothing,
//! so call sites need no `cfg` (tokio's `runtime/metrics/mock.rs` does the same).

use std::time::Duration;

#[inline]
pub(crate) fn verification(
    _scheme: &'static str,
    _result: &'static str,
    _error: &'static str,
    _took: Duration,
) {
}

#[inline]
pub(crate) fn key_set_fetch(_document: &'static str, _success: bool, _took: Duration) {}

#[inline]
pub(crate) fn token_cache(_hit: bool) {}

#[inline]
pub(crate) fn replay_refused() {}

#[inline]
pub(crate) fn accepted_unchecked() {}

#[inline]
pub(crate) fn exchange_cache(_hit: bool) {}
