//! What a verification ends with: verified, denied, or waiting for a key, the domains resolver or
//! the replay store.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::OwnedCredentials;
use crate::answer::AuthError;
use crate::claims::{Scheme, TokenClaims};
use crate::config::DomainRequest;
use crate::dpop::{ReplayCheck, ReplayOutcome};
use crate::observe;

/// A verified request: the token's claims and the scheme it came with.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub(crate) claims: Arc<TokenClaims>,
    pub(crate) scheme: Scheme,
    /// The proof's nonce is from the previous step: the answer should carry the current one.
    pub(crate) renew_nonce: bool,
    /// The DPoP proof this verification recorded in its replay store.
    pub(crate) recorded: Option<Recorded>,
}

/// A DPoP proof recorded as used: its key's thumbprint and its `jti`. Another validator that
/// verifies the same request afterwards (an inner route's own) does not take it for a replay of
/// itself when the two share a store; any replay of the request meets the first validator again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub(super) jkt: String,
    pub(super) jti: String,
}

/// A refusal and the scheme it concerns (it decides which challenge carries the error).
#[derive(Debug, Clone)]
pub(crate) struct Denied {
    pub(crate) error: AuthError,
    pub(crate) dpop: bool,
    /// For the operator's log only: what exactly failed, beyond the public description.
    pub(crate) reason: Option<String>,
}

impl Denied {
    pub(crate) fn new(error: AuthError, dpop: bool) -> Self {
        Self {
            error,
            dpop,
            reason: None,
        }
    }

    /// Adds the operator's reason, built only when the refusal's event will be recorded: a flood
    /// of bad requests must not pay for formatting nobody reads.
    pub(super) fn because(mut self, reason: impl FnOnce() -> String) -> Self {
        let server_side = matches!(self.error, AuthError::Unavailable(_) | AuthError::Internal(_));
        if observe::reason_wanted(server_side) {
            self.reason = Some(reason());
        }
        self
    }
}

/// The outcome as the watch records it.
pub(crate) fn ended(result: &Result<Verified, Denied>) -> observe::Ended<'_> {
    match result {
        Ok(verified) => observe::Ended::Verified {
            dpop: verified.scheme == crate::Scheme::Dpop,
            sub: &verified.claims.sub,
        },
        Err(denied) => observe::Ended::Denied {
            error: &denied.error,
            dpop: denied.dpop,
            reason: denied.reason.as_deref(),
        },
    }
}

impl From<AuthError> for Denied {
    fn from(error: AuthError) -> Self {
        Self::new(error, false)
    }
}

/// A verification: decided at once (keys cached, store in memory), or a future.
pub(crate) enum Verification {
    Done(Result<Verified, Denied>),
    Later(Pin<Box<dyn Future<Output = Result<Verified, Denied>> + Send>>),
}

/// The outcome of the synchronous attempt; [`Auth0::settle`] finishes the other two.
pub(crate) enum Attempt {
    Done(Result<Verified, Denied>),
    /// The signing key is not cached: it has to be fetched.
    NeedsKey(Pending),
    /// Everything passed; the replay store answers later (a networked store).
    NeedsStore(StoreWait),
    /// The token's issuer is not in the static list: the domains resolver decides.
    NeedsIssuer(IssuerWait),
}

/// A request whose issuer the domains resolver has to judge.
pub(crate) struct IssuerWait {
    pub(super) context: DomainRequest,
    pub(super) request: OwnedCredentials,
}

/// A verified DPoP request waiting for its replay store's answer.
pub(crate) struct StoreWait {
    pub(super) check: ReplayCheck,
    pub(super) claims: Arc<TokenClaims>,
    pub(super) renew_nonce: bool,
    pub(super) recorded: Recorded,
}

impl StoreWait {
    pub(super) async fn finish(self) -> Result<Verified, Denied> {
        replay_verdict(self.check.await, self.claims, self.renew_nonce, self.recorded)
    }
}

/// The request's fate given the replay store's answer.
pub(super) fn replay_verdict(
    outcome: ReplayOutcome,
    claims: Arc<TokenClaims>,
    renew_nonce: bool,
    recorded: Recorded,
) -> Result<Verified, Denied> {
    let error = match outcome {
        ReplayOutcome::FirstUse => {
            return Ok(Verified {
                claims,
                scheme: Scheme::Dpop,
                renew_nonce,
                recorded: Some(recorded),
            });
        }
        ReplayOutcome::Replay => {
            crate::observe::metrics::replay_refused();
            AuthError::InvalidDpopProof("the DPoP proof has already been used")
        }
        ReplayOutcome::Unavailable | ReplayOutcome::Unreachable => {
            AuthError::Unavailable("the DPoP proof cannot be checked for reuse right now, try again later")
        }
    };
    Err(Denied::new(error, true))
}

/// Everything needed to finish a verification after the key is fetched; owns its data.
pub(crate) struct Pending {
    pub(super) issuer: String,
    pub(super) kid: String,
    pub(super) request: OwnedCredentials,
}

pub(super) enum TokenFailure {
    /// The refusal, and for the log, what exactly failed.
    Denied(AuthError, Option<String>),
    NeedsKey {
        issuer: String,
        kid: String,
    },
    /// Not in the static list; the domains resolver decides.
    NeedsIssuer(String),
}

impl TokenFailure {
    pub(super) fn invalid(description: &'static str) -> Self {
        Self::Denied(AuthError::InvalidToken(description), None)
    }

    pub(super) fn explained(description: &'static str, reason: impl FnOnce() -> String) -> Self {
        Self::Denied(
            AuthError::InvalidToken(description),
            observe::reason_wanted(false).then(reason),
        )
    }
}
