//! The Actix-web adapter: extractors, the guard behind `#[require_auth]`, the middleware and the
//! rendering of refusals. A thin layer over [`crate::verify`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest};

use crate::verify::{Auth0, Denied, Recorded, RequestParts, Verification, Verified};

mod extract;
mod guard;
mod middleware;
mod respond;
#[cfg(feature = "testing")]
pub(crate) mod test_request;

pub use extract::AccessToken;
pub use guard::{Authenticated, ExtractedByActix, GuardedFuture, Requirement, Requires};
use middleware::check_nonce_renewal;
pub use middleware::{DpopNonces, DpopNoncesMiddleware, RequireAuth, RequireAuthMiddleware};
use respond::not_configured;
pub use respond::protected_resource_metadata;

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl RequestParts for HttpRequest {
    fn method(&self) -> &str {
        self.head().method.as_str()
    }

    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers().get_all(name).map(HeaderValue::as_bytes)
    }

    fn scheme(&self) -> &str {
        // The connection itself, never `Forwarded`/`X-Forwarded-*` (those are honoured only with
        // `trust_proxy`, by the verifier).
        if self.app_config().secure() {
            "https"
        } else {
            "http"
        }
    }

    fn host(&self) -> &str {
        match self.headers().get(header::HOST) {
            // A Host that is not visible ASCII must not fall back to anything: "" is refused.
            Some(host) => host.to_str().unwrap_or_default(),
            None => self
                .uri()
                .authority()
                .map_or_else(|| self.app_config().host(), |a| a.as_str()),
        }
    }

    fn path(&self) -> &str {
        self.path()
    }

    fn peer(&self) -> Option<std::net::IpAddr> {
        self.peer_addr().map(|a| a.ip())
    }

    fn headers(&self) -> Vec<(String, Vec<u8>)> {
        self.headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect()
    }
}

/// The `DPoP-Nonce` response header (RFC 9449 §8.1).
const DPOP_NONCE: header::HeaderName = header::HeaderName::from_static("dpop-nonce");

/// The validator for this request: app data first (`Auth0` or `web::Data<Auth0>`), then the
/// global one.
fn validator(req: &HttpRequest) -> Option<&Auth0> {
    let plain = req.app_data::<Auth0>();
    let data = req.app_data::<actix_web::web::Data<Auth0>>().map(|d| d.get_ref());
    match (plain, data) {
        // Actix finds each form innermost first but cannot say which form is the inner one: with
        // two different validators, one of each form, a guess could let one tenant's token into
        // the other's scope. Refused (500, logged) instead.
        (Some(plain), Some(data)) if !plain.same_as(data) => {
            mixed_forms();
            None
        }
        (plain, data) => plain.or(data).or_else(|| crate::GLOBAL.get()),
    }
}

#[cold]
fn mixed_forms() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tracing::error!(
            target: "auth0_runtime",
            "two different validators are visible to a protected route, one as `app_data(auth0)` and \
             one as `app_data(web::Data::new(auth0))`, and which is the inner one cannot be told: the \
             route answers 500. Fix: give every validator the same form, `app_data(auth0.clone())`"
        );
    });
}

impl Auth0 {
    /// Verifies `req`, synchronously when the key is cached and the replay store answers at once.
    /// `recorded`: the proof another validator's verification of the same request recorded, not
    /// a replay of itself.
    fn verify_request(
        &self,
        req: &HttpRequest,
        recorded: Option<&Recorded>,
    ) -> Result<Result<Verified, Denied>, LocalBoxFuture<Result<Verified, Denied>>> {
        match self.verify_after(req, recorded) {
            Verification::Done(result) => Ok(result),
            Verification::Later(future) => Err(future),
        }
    }
}

/// The verification already done for this request (by the guard or the middleware), and the
/// validator that did it: a handler under another validator (app data of an inner scope) verifies
/// again under its own configuration. A verification supplied by the application itself (the
/// testing kit's test claims, [`supply`]) has no validator and stands for every one.
#[derive(Clone)]
struct Done {
    by: Option<Auth0>,
    verified: Verified,
    /// The `Authorization` value that was verified (a reference-counted handle, not a copy):
    /// [`AccessToken`] reads the token from it, so it hands out the verified token even if a later
    /// middleware edits the request's headers, and the hot path copies nothing.
    authorization: Option<HeaderValue>,
}

fn remember(req: &HttpRequest, by: &Auth0, verified: &Verified) {
    if verified.scheme == crate::Scheme::Dpop && by.0.nonces.is_some() {
        check_nonce_renewal(req, by);
    }
    let authorization = req.headers().get(header::AUTHORIZATION).cloned();
    req.extensions_mut().insert(Done {
        by: Some(by.clone()),
        verified: verified.clone(),
        authorization,
    });
}

/// The guard, the middleware and `Claims` share one verification per request and validator; a
/// supplied one is taken whatever the validator, or without one. Otherwise `Err` with the proof
/// another validator's verification recorded, if any.
fn verified_by(req: &HttpRequest, auth0: Option<&Auth0>) -> Result<Verified, Option<Recorded>> {
    let extensions = req.extensions();
    let Some(done) = extensions.get::<Done>() else {
        return Err(None);
    };
    let taken = match (&done.by, auth0) {
        (None, _) => true,
        (Some(by), Some(auth0)) => by.same_as(auth0),
        (Some(_), None) => false,
    };
    if taken {
        Ok(done.verified.clone())
    } else {
        Err(done.verified.recorded.clone())
    }
}

/// Whether `req` carries a verification supplied by the application ([`supply`]).
fn supplied(req: &HttpRequest) -> bool {
    req.extensions()
        .get::<Done>()
        .is_some_and(|done| done.by.is_none())
}

/// Supplies the verification of `req`: the claims source of the testing kit
/// (`TestRequestExt::authenticated`). Only crate code can call it; nothing a client sends becomes
/// a Rust value in a request's extensions.
#[cfg(feature = "testing")]
pub(crate) fn supply(req: &impl HttpMessage, verified: Verified) {
    req.extensions_mut().insert(Done {
        by: None,
        verified,
        authorization: None,
    });
}

/// The future of the [`Claims`] extractor: ready at once when the signing key is cached.
#[doc(hidden)]
pub struct Verifying<T> {
    state: VerifyingState<T>,
}

enum VerifyingState<T> {
    Ready(Option<Result<T, actix_web::Error>>),
    Waiting {
        future: LocalBoxFuture<Result<Verified, Denied>>,
        auth0: Auth0,
        req: HttpRequest,
        finish: fn(&HttpRequest, Verified) -> Result<T, actix_web::Error>,
    },
}

impl<T> std::fmt::Debug for Verifying<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifying")
    }
}

// `T` is only ever moved out, never pinned, so the future is `Unpin` whatever `T` is.
impl<T> Unpin for Verifying<T> {}

impl<T> Future for Verifying<T> {
    type Output = Result<T, actix_web::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            VerifyingState::Ready(result) => match result.take() {
                Some(result) => Poll::Ready(result),
                None => Poll::Pending,
            },
            VerifyingState::Waiting {
                future,
                auth0,
                req,
                finish,
            } => {
                let result = match std::task::ready!(future.as_mut().poll(cx)) {
                    Ok(v) => {
                        remember(req, auth0, &v);
                        finish(req, v)
                    }
                    Err(denied) => Err(auth0.respond(denied)),
                };
                Poll::Ready(result)
            }
        }
    }
}

/// Runs verification for `req` (or reuses an earlier one) and maps the result with `finish`.
fn verify_then<T>(
    req: &HttpRequest,
    finish: fn(&HttpRequest, Verified) -> Result<T, actix_web::Error>,
) -> Verifying<T> {
    let ready_with = |r| Verifying {
        state: VerifyingState::Ready(Some(r)),
    };
    let auth0 = validator(req);
    let recorded = match verified_by(req, auth0) {
        Ok(v) => return ready_with(finish(req, v)),
        Err(recorded) => recorded,
    };
    let Some(auth0) = auth0 else {
        return ready_with(Err(not_configured()));
    };
    match auth0.verify_request(req, recorded.as_ref()) {
        Ok(Ok(v)) => {
            remember(req, auth0, &v);
            ready_with(finish(req, v))
        }
        Ok(Err(denied)) => ready_with(Err(auth0.respond(denied))),
        Err(future) => Verifying {
            state: VerifyingState::Waiting {
                future,
                auth0: auth0.clone(),
                req: req.clone(),
                finish,
            },
        },
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod proptests;

#[cfg(all(test, feature = "testing"))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod nonce_tests;
