//! Metrics through the `metrics` facade (feature `metrics`): no exporter is forced on the user;
//! install any recorder (Prometheus, OpenTelemetry, StatsD…) and these appear.
//!
//! Names follow ASP.NET Core's authentication metrics, prefixed `auth0.`; label values come from
//! fixed sets only (scheme, result, the public error code, outcome), never from a request. Every
//! key is built at compile time, so recording allocates nothing.

use std::time::Duration;

use metrics::{Key, Label, Level, Metadata};

/// Verification time, seconds: labels `scheme` (`bearer`, `dpop`, `none`), `result` (`success`,
/// `failure`, `none` for a request without credentials) and `error` (the public code, or `none`).
const VERIFICATION_DURATION: &str = "auth0.authentication.duration";
/// Verifications by outcome, same labels.
const VERIFICATIONS: &str = "auth0.authentication.verifications";
/// Discovery and key-set fetches: labels `document` (`discovery`, `key_set`), `outcome`
/// (`success`, `failure`).
const KEY_SET_FETCHES: &str = "auth0.key_set.fetches";
/// Their duration, seconds, same labels.
const KEY_SET_FETCH_DURATION: &str = "auth0.key_set.fetch.duration";
/// Verified-token cache lookups: label `result` (`hit`, `miss`).
const TOKEN_CACHE_LOOKUPS: &str = "auth0.token_cache.lookups";
/// DPoP proofs refused because they were used before.
const DPOP_REPLAYS_REFUSED: &str = "auth0.dpop.replays_refused";
/// DPoP proofs accepted without a replay check (fail-open store outage).
const DPOP_UNCHECKED: &str = "auth0.dpop.accepted_unchecked";
/// Exchanged-token cache lookups: label `result` (`hit`, `miss`).
const EXCHANGE_CACHE_LOOKUPS: &str = "auth0.exchange_cache.lookups";

static METADATA: Metadata<'static> = Metadata::new("auth0_runtime", Level::INFO, Some(module_path!()));

const SCHEMES: [&str; 3] = ["bearer", "dpop", "none"];
const RESULTS: [&str; 3] = ["success", "failure", "none"];
/// Every public error code (`AuthError::code`), and `none`.
const ERRORS: [&str; 10] = [
    "none",
    "unauthorized",
    "invalid_request",
    "invalid_token",
    "invalid_dpop_proof",
    "use_dpop_nonce",
    "insufficient_scope",
    "temporarily_unavailable",
    "internal_server_error",
    "other",
];

/// The (scheme, result, error) label set of every verification outcome, spelled out at compile
/// time (a label holds a string that `const` code may not drop, so no loop builds it).
macro_rules! by_error {
    ($scheme:literal, $result:literal) => {
        [
            by_error!(@ $scheme, $result, "none"),
            by_error!(@ $scheme, $result, "unauthorized"),
            by_error!(@ $scheme, $result, "invalid_request"),
            by_error!(@ $scheme, $result, "invalid_token"),
            by_error!(@ $scheme, $result, "invalid_dpop_proof"),
            by_error!(@ $scheme, $result, "use_dpop_nonce"),
            by_error!(@ $scheme, $result, "insufficient_scope"),
            by_error!(@ $scheme, $result, "temporarily_unavailable"),
            by_error!(@ $scheme, $result, "internal_server_error"),
            by_error!(@ $scheme, $result, "other"),
        ]
    };
    (@ $scheme:literal, $result:literal, $error:literal) => {
        [
            Label::from_static_parts("scheme", $scheme),
            Label::from_static_parts("result", $result),
            Label::from_static_parts("error", $error),
        ]
    };
}

macro_rules! by_result {
    ($scheme:literal) => {
        [
            by_error!($scheme, "success"),
            by_error!($scheme, "failure"),
            by_error!($scheme, "none"),
        ]
    };
}

static VERIFICATION_LABELS: [[[[Label; 3]; ERRORS.len()]; RESULTS.len()]; SCHEMES.len()] =
    [by_result!("bearer"), by_result!("dpop"), by_result!("none")];

static FETCH_LABELS: [[[Label; 2]; 2]; 2] = [
    [
        [
            Label::from_static_parts("document", "discovery"),
            Label::from_static_parts("outcome", "success"),
        ],
        [
            Label::from_static_parts("document", "discovery"),
            Label::from_static_parts("outcome", "failure"),
        ],
    ],
    [
        [
            Label::from_static_parts("document", "key_set"),
            Label::from_static_parts("outcome", "success"),
        ],
        [
            Label::from_static_parts("document", "key_set"),
            Label::from_static_parts("outcome", "failure"),
        ],
    ],
];

static HIT_OR_MISS: [[Label; 1]; 2] = [
    [Label::from_static_parts("result", "hit")],
    [Label::from_static_parts("result", "miss")],
];

fn index(set: &[&str], value: &str) -> usize {
    set.iter().position(|v| *v == value).unwrap_or(set.len() - 1)
}

fn count(key: &Key) {
    metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA).increment(1));
}

fn time(key: &Key, took: Duration) {
    metrics::with_recorder(|recorder| {
        recorder
            .register_histogram(key, &METADATA)
            .record(took.as_secs_f64())
    });
}

pub(crate) fn verification(scheme: &'static str, result: &'static str, error: &'static str, took: Duration) {
    let labels =
        &VERIFICATION_LABELS[index(&SCHEMES, scheme)][index(&RESULTS, result)][index(&ERRORS, error)];
    time(&Key::from_static_parts(VERIFICATION_DURATION, labels), took);
    count(&Key::from_static_parts(VERIFICATIONS, labels));
}

pub(crate) fn key_set_fetch(document: &'static str, success: bool, took: Duration) {
    let labels = &FETCH_LABELS[usize::from(document != "discovery")][usize::from(!success)];
    count(&Key::from_static_parts(KEY_SET_FETCHES, labels));
    time(&Key::from_static_parts(KEY_SET_FETCH_DURATION, labels), took);
}

pub(crate) fn token_cache(hit: bool) {
    count(&Key::from_static_parts(
        TOKEN_CACHE_LOOKUPS,
        &HIT_OR_MISS[usize::from(!hit)],
    ));
}

pub(crate) fn replay_refused() {
    count(&Key::from_static_name(DPOP_REPLAYS_REFUSED));
}

pub(crate) fn accepted_unchecked() {
    count(&Key::from_static_name(DPOP_UNCHECKED));
}

pub(crate) fn exchange_cache(hit: bool) {
    count(&Key::from_static_parts(
        EXCHANGE_CACHE_LOOKUPS,
        &HIT_OR_MISS[usize::from(!hit)],
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_has_its_labels() {
        use crate::error::AuthError;
        let every = [
            AuthError::MissingCredentials,
            AuthError::InvalidRequest(""),
            AuthError::InvalidToken(""),
            AuthError::InvalidDpopProof(""),
            AuthError::UseDpopNonce(""),
            AuthError::InsufficientScope {
                required: "".into(),
                description: "",
            },
            AuthError::Unavailable(""),
            AuthError::Internal(""),
        ];
        for error in every {
            assert!(
                ERRORS[..ERRORS.len() - 1].contains(&error.code()),
                "{}",
                error.code()
            );
        }
        for (s, scheme) in SCHEMES.iter().enumerate() {
            for (r, result) in RESULTS.iter().enumerate() {
                for (e, error) in ERRORS.iter().enumerate() {
                    let text: Vec<String> = VERIFICATION_LABELS[s][r][e]
                        .iter()
                        .map(|l| format!("{}={}", l.key(), l.value()))
                        .collect();
                    assert_eq!(
                        text,
                        [
                            format!("scheme={scheme}"),
                            format!("result={result}"),
                            format!("error={error}")
                        ]
                    );
                }
            }
        }
    }
}
