//! The validator: scheme dispatch, access-token verification, DPoP binding, scope checks.
//!
//! Works on plain request parts ([`RequestParts`]); the Actix adapter in `actix.rs` is a thin layer
//! over it. Verification is synchronous when the signing key is cached (the hot path takes no lock
//! and does no I/O); only a missing key sends it through [`Auth0::verify_pending`].

use std::sync::Arc;

use crate::answer::AuthError;
use crate::claims::Scheme;
use crate::config::DomainRequest;
use crate::dpop::{self, NonceVerdict, ProofRequest, ProofUse, ReplayCheck};
use crate::keys::{KeyError, VerifyingKey};
use crate::observe;

mod credentials;
mod outcome;
mod token;

pub(crate) use crate::auth0::Auth0;
pub use credentials::RequestParts;
#[cfg(test)]
use credentials::is_b64token;
pub(crate) use credentials::{Credentials, OwnedCredentials};
pub(crate) use outcome::{Attempt, Denied, IssuerWait, Pending, Recorded, StoreWait, Verification, Verified};
use outcome::{TokenFailure, ended, replay_verdict};

impl Auth0 {
    /// Verifies a request, watched: in the `auth0.verify` span, with one event per refusal and
    /// the metrics. Done at once unless something has to be awaited.
    pub(crate) fn verify<R: RequestParts>(&self, req: &R) -> Verification {
        self.verify_after(req, None)
    }

    /// [`Self::verify`] for a request another validator verified first, recording `recorded`.
    pub(crate) fn verify_after<R: RequestParts>(&self, req: &R, recorded: Option<&Recorded>) -> Verification {
        let watch = observe::Watch::start();
        let attempt = {
            let _in_span = watch.span().enter();
            self.attempt(req, recorded)
        };
        match attempt {
            Attempt::Done(result) => {
                watch.finish(ended(&result), self.0.log_subject, &self.0.warnings);
                Verification::Done(result)
            }
            unfinished => {
                let auth0 = self.clone();
                Verification::Later(Box::pin(async move {
                    let span = watch.span().clone();
                    let result = tracing::Instrument::instrument(auth0.settle(unfinished), span).await;
                    watch.finish(ended(&result), auth0.0.log_subject, &auth0.0.warnings);
                    result
                }))
            }
        }
    }

    /// Verifies a request: the synchronous part. Ends with the answer unless the signing key
    /// has to be fetched first.
    pub(crate) fn attempt<R: RequestParts>(&self, req: &R, recorded: Option<&Recorded>) -> Attempt {
        let credentials = match self.credentials(req) {
            Ok(c) => Credentials { recorded, ..c },
            Err(denied) => return Attempt::Done(Err(denied)),
        };
        match self.verify_credentials(&credentials, None, (self.0.clock)()) {
            // The resolver is told about the request itself.
            Attempt::NeedsIssuer(mut wait) => {
                wait.context.url = self.request_url(req);
                wait.context.headers = req
                    .headers()
                    .into_iter()
                    .filter_map(|(name, value)| Some((name, String::from_utf8(value).ok()?)))
                    .collect();
                Attempt::NeedsIssuer(wait)
            }
            attempt => attempt,
        }
    }

    /// Asks the domains resolver about the token's issuer, then finishes the verification.
    async fn resolve(&self, wait: IssuerWait) -> Result<Verified, Denied> {
        let IssuerWait { context, mut request } = wait;
        let dpop = request.scheme == Scheme::Dpop;
        let deny = |error| Err(Denied::new(error, dpop));
        let Some(resolver) = self.0.resolver.clone() else {
            return deny(AuthError::Internal("no domains resolver"));
        };
        let issuer = context.issuer.clone();
        let domains = match resolver(context).await {
            Ok(domains) => domains,
            Err(error) => {
                if let Some(report) = self.0.resolver_failures.event() {
                    tracing::warn!(
                        target: "auth0_runtime",
                        %error,
                        failures = report.count,
                        seconds = report.seconds,
                        "the domains resolver failed; requests get 503"
                    );
                }
                return deny(AuthError::Unavailable(
                    "the access token's issuer cannot be checked right now, try again later",
                ));
            }
        };
        if !domains
            .iter()
            .any(|d| crate::config::issuer_of(d).as_deref() == Some(issuer.as_str()))
        {
            let error =
                AuthError::InvalidToken("the access token was issued by an issuer this API does not trust");
            return Err(Denied::new(error, dpop).because(|| format!(
                "iss {issuer:?} is not among the domains the resolver allowed for this request: {domains:?}"
            )));
        }
        request.granted = Some(issuer);
        match self.verify_credentials(&request.borrow(), None, (self.0.clock)()) {
            Attempt::Done(result) => result,
            Attempt::NeedsKey(pending) => self.verify_pending(pending).await,
            Attempt::NeedsStore(wait) => wait.finish().await,
            Attempt::NeedsIssuer(_) => deny(AuthError::Internal("issuer resolution did not settle")),
        }
    }

    /// Finishes a verification that could not complete synchronously.
    pub(crate) async fn settle(&self, attempt: Attempt) -> Result<Verified, Denied> {
        match attempt {
            Attempt::Done(result) => result,
            Attempt::NeedsKey(pending) => self.verify_pending(pending).await,
            Attempt::NeedsStore(wait) => wait.finish().await,
            Attempt::NeedsIssuer(wait) => self.resolve(wait).await,
        }
    }

    /// Finishes a verification whose key was not cached.
    async fn verify_pending(&self, pending: Pending) -> Result<Verified, Denied> {
        let dpop = pending.request.scheme == Scheme::Dpop;
        let key =
            self.0
                .keys
                .fetch(&pending.issuer, &pending.kid)
                .await
                .map_err(|e| {
                    match e {
                KeyError::UnknownKid => Denied::new(
                    AuthError::InvalidToken("the access token is signed with an unknown key"),
                    dpop,
                )
                .because(|| format!(
                    "kid {:?} is not in the key set of {} (refetched at most once per cooldown)",
                    pending.kid, pending.issuer
                )),
                KeyError::Busy => Denied::new(
                    AuthError::Unavailable("the signing keys cannot be fetched right now, try again later"),
                    dpop,
                )
                .because(|| format!(
                    "nothing is cached for {}, and the budget of fetches for new issuers is spent \
                     (Auth0Config::new_issuer_fetches)",
                    pending.issuer
                )),
                KeyError::Unavailable => Denied::new(
                    AuthError::Unavailable("the signing keys cannot be fetched right now, try again later"),
                    dpop,
                )
                .because(|| format!(
                    "the key set of {} cannot be fetched and none is cached (see the key-set warnings)",
                    pending.issuer
                )),
            }
                })?;
        // A fresh clock reading: the fetch may have taken a while.
        match self.verify_credentials(&pending.request.borrow(), Some(key), (self.0.clock)()) {
            Attempt::Done(result) => result,
            Attempt::NeedsStore(wait) => wait.finish().await,
            // The key was handed in and the issuer decided, so neither is asked for again.
            Attempt::NeedsKey(_) | Attempt::NeedsIssuer(_) => {
                Err(Denied::new(AuthError::Internal("key lookup failed"), dpop))
            }
        }
    }

    /// Every check of one request, against one clock reading `now`.
    fn verify_credentials(
        &self,
        c: &Credentials<'_>,
        fetched: Option<Arc<VerifyingKey>>,
        now: i64,
    ) -> Attempt {
        let dpop = c.scheme == Scheme::Dpop;
        let deny = |error| Attempt::Done(Err(Denied::new(error, dpop)));
        let claims = match self.verify_token(c.token, fetched, now, c.granted) {
            Ok(claims) => claims,
            Err(TokenFailure::Denied(error, reason)) => {
                return Attempt::Done(Err(Denied { error, dpop, reason }));
            }
            Err(TokenFailure::NeedsIssuer(issuer)) => {
                return Attempt::NeedsIssuer(IssuerWait {
                    context: DomainRequest {
                        url: String::new(),
                        headers: Vec::new(),
                        issuer,
                    },
                    request: c.to_owned(),
                });
            }
            Err(TokenFailure::NeedsKey { issuer, kid }) => {
                return Attempt::NeedsKey(Pending {
                    issuer,
                    kid,
                    request: c.to_owned(),
                });
            }
        };
        let bound = claims.jkt();
        let Some(proof) = c.proof else {
            if bound.is_some() {
                return deny(AuthError::InvalidToken(
                    "the access token is bound to a DPoP key and must be sent with the DPoP scheme",
                ));
            }
            return Attempt::Done(Ok(Verified {
                claims,
                scheme: c.scheme,
                renew_nonce: false,
                recorded: None,
            }));
        };
        let Some(bound) = bound else {
            return deny(AuthError::InvalidToken(
                "the access token is not bound to a DPoP key",
            ));
        };
        let request = ProofRequest {
            method: c.method,
            url: &c.url,
            access_token: c.token,
            public_origins: &self.0.public_origins,
            now,
        };
        let verified = match dpop::verify_proof(proof, &request, &self.0.proof) {
            Ok(v) => v,
            Err(error) => {
                let reason = observe::reason_wanted(false)
                    .then(|| dpop::explain(proof, &request))
                    .flatten();
                return Attempt::Done(Err(Denied { error, dpop, reason }));
            }
        };
        if verified.jkt != bound {
            let error =
                AuthError::InvalidToken("the access token is bound to another key than the DPoP proof");
            return Attempt::Done(Err(Denied::new(error, dpop).because(|| {
                format!(
                    "the token's cnf.jkt is {bound}, the proof's key thumbprint {}",
                    verified.jkt
                )
            })));
        }
        // Server nonces, when on: checked before the proof is recorded, so the retry that
        // carries the nonce is not a replay.
        let renew_nonce = match &self.0.nonces {
            None => false,
            Some(nonces) => match verified.nonce.as_deref().map(|n| nonces.check(n, now)) {
                Some(NonceVerdict::Current) => false,
                Some(NonceVerdict::Previous) => true,
                _ => {
                    return deny(AuthError::UseDpopNonce(
                        "the DPoP proof must carry the server's current nonce",
                    ));
                }
            },
        };
        if c.recorded
            .is_some_and(|r| r.jkt == verified.jkt && r.jti == verified.jti)
        {
            // Recorded by the validator that verified this request first: not a replay of itself.
            return Attempt::Done(Ok(Verified {
                claims,
                scheme: Scheme::Dpop,
                renew_nonce,
                recorded: c.recorded.cloned(),
            }));
        }
        let proof_use = ProofUse::new(
            &verified.jkt,
            &verified.jti,
            &claims.sub,
            verified.replay_expires_at(&self.0.proof),
            now,
        );
        let check = self.0.replay.check_and_record(&proof_use);
        let recorded = Recorded {
            jkt: verified.jkt,
            jti: verified.jti,
        };
        match check {
            ReplayCheck::Ready(outcome) => {
                Attempt::Done(replay_verdict(outcome, claims, renew_nonce, recorded))
            }
            check @ ReplayCheck::Pending(_) => Attempt::NeedsStore(StoreWait {
                check,
                claims,
                renew_nonce,
                recorded,
            }),
        }
    }
}

#[cfg(all(test, feature = "testing"))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod proptests;
