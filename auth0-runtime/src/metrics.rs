//! Metrics through the `metrics` facade (feature `metrics`): no exporter is forced on the user;
//! install any recorder (Prometheus, OpenTelemetry, StatsD…) and these appear.
//!
//! Names follow ASP.NET Core's authentication metrics, prefixed `auth0.`; label values come from
//! fixed sets only (scheme, result, the public error code, outcome), never from a request.

use std::time::Duration;

/// Verification time, seconds: labels `scheme` (`bearer`, `dpop`, `none`), `result` (`success`,
/// `failure`, `none` for a request without credentials) and `error` (the public code, or `none`).
pub(crate) const VERIFICATION_DURATION: &str = "auth0.authentication.duration";
/// Verifications by outcome, same labels.
pub(crate) const VERIFICATIONS: &str = "auth0.authentication.verifications";
/// Discovery and key-set fetches: labels `document` (`discovery`, `key_set`), `outcome`
/// (`success`, `failure`).
pub(crate) const KEY_SET_FETCHES: &str = "auth0.key_set.fetches";
/// Their duration, seconds, same labels.
pub(crate) const KEY_SET_FETCH_DURATION: &str = "auth0.key_set.fetch.duration";
/// Verified-token cache lookups: label `result` (`hit`, `miss`).
pub(crate) const TOKEN_CACHE_LOOKUPS: &str = "auth0.token_cache.lookups";
/// DPoP proofs refused because they were used before.
pub(crate) const DPOP_REPLAYS_REFUSED: &str = "auth0.dpop.replays_refused";
/// DPoP proofs accepted without a replay check (fail-open store outage).
pub(crate) const DPOP_UNCHECKED: &str = "auth0.dpop.accepted_unchecked";
/// Exchanged-token cache lookups: label `result` (`hit`, `miss`).
pub(crate) const EXCHANGE_CACHE_LOOKUPS: &str = "auth0.exchange_cache.lookups";

pub(crate) fn verification(scheme: &'static str, result: &'static str, error: &'static str, took: Duration) {
    let labels = [("scheme", scheme), ("result", result), ("error", error)];
    metrics::histogram!(VERIFICATION_DURATION, &labels).record(took.as_secs_f64());
    metrics::counter!(VERIFICATIONS, &labels).increment(1);
}

pub(crate) fn key_set_fetch(document: &'static str, success: bool, took: Duration) {
    let labels = [
        ("document", document),
        ("outcome", if success { "success" } else { "failure" }),
    ];
    metrics::counter!(KEY_SET_FETCHES, &labels).increment(1);
    metrics::histogram!(KEY_SET_FETCH_DURATION, &labels).record(took.as_secs_f64());
}

pub(crate) fn token_cache(hit: bool) {
    metrics::counter!(TOKEN_CACHE_LOOKUPS, "result" => if hit { "hit" } else { "miss" }).increment(1);
}

pub(crate) fn replay_refused() {
    metrics::counter!(DPOP_REPLAYS_REFUSED).increment(1);
}

pub(crate) fn accepted_unchecked() {
    metrics::counter!(DPOP_UNCHECKED).increment(1);
}

pub(crate) fn exchange_cache(hit: bool) {
    metrics::counter!(EXCHANGE_CACHE_LOOKUPS, "result" => if hit { "hit" } else { "miss" }).increment(1);
}
