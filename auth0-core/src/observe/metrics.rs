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
        use crate::answer::AuthError;
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

    /// Label keys, each with its values in the order they are defined.
    type Labels = Vec<(String, Vec<String>)>;

    /// Every `auth0.` name this file defines, read from its source (so a new one is seen here
    /// without being listed), with the labels it is recorded with.
    fn recorded() -> Vec<(&'static str, Labels)> {
        fn labels<'a>(sets: impl IntoIterator<Item = &'a Label>) -> Labels {
            let mut by_key: Labels = Vec::new();
            for label in sets {
                let (key, value) = (label.key().to_owned(), label.value().to_owned());
                match by_key.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, values)) if values.contains(&value) => {}
                    Some((_, values)) => values.push(value),
                    None => by_key.push((key, vec![value])),
                }
            }
            by_key
        }
        let verification = labels(VERIFICATION_LABELS.iter().flatten().flatten().flatten());
        let fetch = labels(FETCH_LABELS.iter().flatten().flatten());
        let lookups = labels(HIT_OR_MISS.iter().flatten());
        let known = [
            (VERIFICATIONS, verification.clone()),
            (VERIFICATION_DURATION, verification),
            (KEY_SET_FETCHES, fetch.clone()),
            (KEY_SET_FETCH_DURATION, fetch),
            (TOKEN_CACHE_LOOKUPS, lookups.clone()),
            (DPOP_REPLAYS_REFUSED, Vec::new()),
            (DPOP_UNCHECKED, Vec::new()),
            (EXCHANGE_CACHE_LOOKUPS, lookups),
        ];
        let source = include_str!("metrics.rs");
        let code = source.split_once("#[cfg(test)]").map_or(source, |(code, _)| code);
        let defined: Vec<&str> = code
            .split("\"auth0.")
            .skip(1)
            .filter_map(|rest| rest.split_once('"'))
            .map(|(name, _)| name)
            .collect();
        for name in &defined {
            assert!(
                known
                    .iter()
                    .any(|(known, _)| known.strip_prefix("auth0.") == Some(*name)),
                "auth0.{name} is defined in metrics.rs but not listed in `recorded()` with its labels"
            );
        }
        assert_eq!(defined.len(), known.len(), "{defined:?}");
        known.into()
    }

    /// The guide's metrics table (auth0-runtime's README) names every metric with its kind, every
    /// label and every value: ops teams build dashboards from it.
    #[test]
    fn the_readme_lists_every_metric_with_its_labels_and_values() {
        let readme = include_str!("../../../auth0-runtime/README.md");
        let (_, section) = readme
            .split_once("\n## Metrics\n")
            .expect("the README has a \"Metrics\" section");
        let section = section.split("\n## ").next().unwrap_or(section);
        let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| `auth0.")).collect();
        let recorded = recorded();
        assert_eq!(
            rows.len(),
            recorded.len(),
            "one row per metric, no row for a metric that is not recorded: {rows:#?}"
        );
        let histograms = [VERIFICATION_DURATION, KEY_SET_FETCH_DURATION];
        for (name, labels) in recorded {
            let row = rows
                .iter()
                .find(|row| row.starts_with(&format!("| `{name}` |")))
                .unwrap_or_else(|| panic!("the README's metrics table has no row for `{name}`"));
            let kind = if histograms.contains(&name) {
                "histogram"
            } else {
                "counter"
            };
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            assert_eq!(cells.get(2), Some(&kind), "{row}");
            let described = cells.get(3).copied().unwrap_or_default();
            if labels.is_empty() {
                assert_eq!(described, "none", "{row}");
            }
            assert_eq!(labels_count(described), labels.len(), "{row}");
            for (key, values) in labels {
                let listed = described
                    .split("; ")
                    .find_map(|part| part.strip_prefix(&format!("`{key}`: ")))
                    .unwrap_or_else(|| panic!("`{name}`: the label `{key}` is missing: {row}"));
                let expected: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
                assert_eq!(listed, expected.join(", "), "`{name}`, label `{key}`");
            }
        }
    }

    fn labels_count(described: &str) -> usize {
        if described == "none" {
            0
        } else {
            described.split("; ").count()
        }
    }
}
