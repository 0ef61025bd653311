//! What an operator sees (SPEC §12): one `auth0.verify` span per verification, one event per
//! refusal with its precise reason, and, with the `metrics` feature, counters and histograms
//! through the `metrics` facade.
//!
//! Nothing here sees a token, a proof or a claim value other than the issuer, the key id and,
//! when [`Auth0Config::log_subject`](crate::Auth0Config::log_subject) allows it, the subject.
//! With no subscriber at debug level and the feature off, a verification pays two atomic loads.

#[cfg(feature = "metrics")]
pub(crate) mod metrics;
#[cfg(not(feature = "metrics"))]
#[path = "observe/noop.rs"]
pub(crate) mod metrics;

use std::time::Instant;

use tracing::field::Empty;

use crate::answer::AuthError;
use crate::throttle::Throttle;

/// How a verification ended, as the watch records it (the verifier's outcome, seen from here
/// without depending on the verifier).
pub(crate) enum Ended<'a> {
    Verified {
        dpop: bool,
        sub: &'a str,
    },
    Denied {
        error: &'a AuthError,
        dpop: bool,
        /// The precise reason, when one was built ([`reason_wanted`]).
        reason: Option<&'a str>,
    },
}

/// One verification being watched.
pub(crate) struct Watch {
    span: tracing::Span,
    started: Option<Instant>,
}

impl Watch {
    pub(crate) fn start() -> Self {
        let span = tracing::debug_span!(
            target: "auth0_runtime",
            "auth0.verify",
            scheme = Empty,
            issuer = Empty,
            kid = Empty,
            sub = Empty,
            outcome = Empty,
            error = Empty,
            latency_us = Empty,
        );
        let timed = cfg!(feature = "metrics") || !span.is_disabled();
        Self {
            span,
            started: timed.then(Instant::now),
        }
    }

    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Records the outcome on the span, emits the refusal event, counts it.
    pub(crate) fn finish(self, ended: Ended<'_>, log_subject: bool, warnings: &Throttle) {
        let elapsed = self.started.map(|t| t.elapsed());
        let (scheme, outcome, code) = labels(&ended);
        if !self.span.is_disabled() {
            self.span.record("scheme", scheme);
            self.span.record("outcome", outcome);
            self.span.record("error", code);
            if let Some(elapsed) = elapsed {
                self.span.record(
                    "latency_us",
                    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
                );
            }
            if let (Ended::Verified { sub, .. }, true) = (&ended, log_subject) {
                self.span.record("sub", *sub);
            }
        }
        if let Ended::Denied { error, reason, .. } = ended {
            let _in_span = self.span.enter();
            refused(error, reason, scheme, warnings);
        }
        if let Some(elapsed) = elapsed {
            metrics::verification(scheme, outcome, code, elapsed);
        }
    }
}

/// `(scheme, outcome, error code)`, from fixed sets.
fn labels(ended: &Ended<'_>) -> (&'static str, &'static str, &'static str) {
    match ended {
        Ended::Verified { dpop, .. } => (scheme_label(*dpop), "success", "none"),
        Ended::Denied {
            error: AuthError::MissingCredentials,
            ..
        } => ("none", "none", "unauthorized"),
        Ended::Denied { error, dpop, .. } => (scheme_label(*dpop), "failure", error.code()),
    }
}

fn scheme_label(dpop: bool) -> &'static str {
    if dpop { "dpop" } else { "bearer" }
}

/// The one event of a refusal: debug for what the client sent, warn (rate-limited, with counts)
/// for what the server could not do.
fn refused(error: &AuthError, reason: Option<&str>, scheme: &'static str, warnings: &Throttle) {
    let reason = reason.unwrap_or(error.description());
    match error {
        AuthError::Unavailable(_) | AuthError::Internal(_) => {
            if let Some(report) = warnings.event() {
                tracing::warn!(
                    target: "auth0_runtime",
                    scheme,
                    error = error.code(),
                    reason,
                    refused = report.count,
                    seconds = report.seconds,
                    "request refused by a server-side cause"
                );
            }
        }
        _ => tracing::debug!(
            target: "auth0_runtime",
            scheme,
            error = error.code(),
            description = error.description(),
            reason,
            "request refused"
        ),
    }
}

/// Whether a refusal's event will be recorded, so its precise reason is worth building: debug for
/// client causes, warn for server-side ones.
pub(crate) fn reason_wanted(server_side: bool) -> bool {
    if server_side {
        tracing::enabled!(target: "auth0_runtime", tracing::Level::WARN)
    } else {
        tracing::enabled!(target: "auth0_runtime", tracing::Level::DEBUG)
    }
}

/// The whole `source()` chain of an error, `outer: inner: innermost`, so a TLS
/// `UnknownIssuer` under "error sending request" is visible.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = inner.source();
    }
    out
}

/// Records the issuer and key id on the current verification span, if it is being recorded. Once
/// per verification: a subscriber may print each record (tracing-subscriber's fmt appends them).
pub(crate) fn token_identified(issuer: &str, kid: &str) {
    if tracing::enabled!(target: "auth0_runtime", tracing::Level::DEBUG) {
        let span = tracing::Span::current();
        span.record("issuer", issuer);
        span.record("kid", kid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn the_chain_shows_every_cause_once() {
        let error = Layer(
            "error sending request",
            Some(Box::new(Layer(
                "client error (Connect)",
                Some(Box::new(Layer("invalid peer certificate: UnknownIssuer", None))),
            ))),
        );
        assert_eq!(
            chain(&error),
            "error sending request: client error (Connect): invalid peer certificate: UnknownIssuer"
        );
    }
}
