// The crate's page is its README: every example in it compiles as a doctest.
#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod extract;
mod layer;
mod respond;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, OriginalUri};
use http::header::{self, HeaderValue};
use http::{Extensions, HeaderMap, Method, Uri};

// Everything else an axum API needs is the core's, re-exported by name (a glob would also export
// the core's Actix adapter whenever another crate of the same build turns it on): `auth0-axum` is
// the one dependency. `auth0_core` itself is there for the rest, such as its `Claims`, which
// [`Claims`] wraps.
pub use auth0_core;
#[doc(no_inline)]
pub use auth0_core::{
    Actor, Algorithm, Audience, Auth0, Auth0Config, AuthError, Authenticating, ClientAssertionKey,
    ConfigError, ConnectionToken, ConnectionTokenRequest, DomainRequest, ExchangeError, ExchangedToken,
    ExtraValue, HealthCheck, IssuerReadiness, KeysState, MAX_EXTRA_VALUES, MemoryReplayStore,
    OnBehalfOfRequest, OnBehalfOfToken, ProofUse, RESERVED_PARAMETERS, Readiness, Refusal, RefusalHook,
    ReplayCheck, ReplayOutcome, ReplayStore, RequestParts, Requirement, ResolverError, ResourceMetadata,
    Scheme, Scopes, SecretToken, StoreState, TokenClaims, TokenExchangeRequest, UnknownAlgorithm, Verified,
    access_token_in, init, init_from_env, normalize_htu,
};
#[cfg(feature = "redis")]
#[doc(no_inline)]
pub use auth0_core::{RedisReplayStore, RedisReplayStoreBuilder};

/// The testing kit (feature `testing`): a real token issuer on loopback, token and DPoP proof
/// builders, test claims. See [`auth0_core::testing`].
#[cfg(feature = "testing")]
pub mod testing {
    #[cfg(feature = "redis")]
    #[doc(no_inline)]
    pub use auth0_core::testing::RedisServer;
    #[doc(no_inline)]
    pub use auth0_core::testing::{
        Algorithm, ClaimsBuilder, DpopKey, Endpoint, Fault, ProofBuilder, TestClient, TestIssuer,
        TokenBuilder, TokenReply, TokenRequest, claims,
    };
}
pub use extract::{AccessToken, Claims, Validator};
pub use layer::{Auth0Layer, Auth0Service};
pub use respond::{ExchangeFailure, ReadinessResponse, Rejection, protected_resource_metadata, readiness};

/// The verification of this request, stored in its extensions by the layer or by the first
/// extractor that verified it: later extractors reuse it.
#[derive(Clone)]
struct Done {
    by: Auth0,
    verified: auth0_core::Verified,
    /// The `Authorization` value that was verified (a reference-counted handle): [`AccessToken`]
    /// hands out this token even if a later layer edits the request's headers.
    authorization: Option<HeaderValue>,
}

/// What the verifier reads of a request (or of its parts, in an extractor).
struct Head<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
}

impl<'a> Head<'a> {
    fn of_request<B>(req: &'a http::Request<B>) -> Self {
        Self {
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
            extensions: req.extensions(),
        }
    }

    fn of_parts(parts: &'a http::request::Parts) -> Self {
        Self {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            extensions: &parts.extensions,
        }
    }
}

impl RequestParts for Head<'_> {
    fn method(&self) -> &str {
        self.method.as_str()
    }

    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers.get_all(name).into_iter().map(HeaderValue::as_bytes)
    }

    fn scheme(&self) -> &str {
        // A service is not told whether its connection is TLS, and the URI's scheme is the
        // client's word (an absolute-form target, HTTP/2's `:scheme`): never taken. TLS is told
        // by `public_origins`, or by `X-Forwarded-Proto` from a trusted proxy.
        "http"
    }

    fn host(&self) -> &str {
        match self.headers.get(header::HOST) {
            // A Host that is not visible ASCII must not fall back to anything: "" is refused.
            Some(host) => host.to_str().unwrap_or_default(),
            // HTTP/2 sends `:authority`, which hyper puts in the URI.
            None => self.uri.authority().map_or("", |a| a.as_str()),
        }
    }

    fn path(&self) -> &str {
        // A nested router sees its own part of the path; the proof signs the whole.
        match self.extensions.get::<OriginalUri>() {
            Some(OriginalUri(original)) => original.path(),
            None => self.uri.path(),
        }
    }

    fn peer(&self) -> Option<std::net::IpAddr> {
        self.extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
    }

    fn headers(&self) -> Vec<(String, Vec<u8>)> {
        self.headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect()
    }
}

/// Verifies `head` under `auth0`. After another validator's verification of the same request
/// (`earlier`), the proof it recorded is not a replay of itself.
fn authenticate(auth0: &Auth0, head: &Head<'_>, earlier: Option<&Done>) -> auth0_core::Authenticating {
    match earlier {
        Some(done) => auth0.authenticate_request_after(head, &done.verified),
        None => auth0.authenticate_request(head),
    }
}

/// The validator an optional layer let an anonymous request through with. Kept apart from an
/// application's `Extension<Auth0>`, which it must not hide.
#[derive(Clone)]
struct LayerValidator(Auth0);

/// The request's validator, for the extractors: the route's own (`Extension<Auth0>`) first, as
/// Actix takes a scope's app data first; else the layer's (its verification, or its anonymous
/// pass); else the global one.
fn validator(extensions: &Extensions) -> Option<Auth0> {
    extensions
        .get::<Auth0>()
        .or_else(|| extensions.get::<Done>().map(|done| &done.by))
        .or_else(|| extensions.get::<LayerValidator>().map(|layer| &layer.0))
        .or_else(|| Auth0::global())
        .cloned()
}
