//! The extractors: `Claims`, `Option<Claims>`, `AccessToken` and the validator.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use auth0_core::{Auth0, AuthError, Scheme};
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::header;
use http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::respond::not_configured;
use crate::{Done, Head, Rejection, authenticate, validator};

/// The verified claims of the request's access token: an extractor.
///
/// Under [`Auth0Layer`](crate::Auth0Layer) it reads the verification the layer did; on a route
/// without the layer it verifies the request itself (with the validator of an
/// `Extension<Auth0>`, else the global one), and refuses a request without a valid token with the
/// same answer the layer would give. A route whose `Extension<Auth0>` names another validator than
/// the layer's is verified again under its own. Route requirements (scopes, step-up) are the
/// layer's.
///
/// `T` reads the token's non-registered claims (a map of them by default); the standard ones are
/// fields of [`TokenClaims`](auth0_core::TokenClaims), reached through `Deref`:
///
/// ```
/// use auth0_axum::Claims;
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct Custom {
///     #[serde(rename = "https://example.com/roles", default)]
///     roles: Vec<String>,
/// }
///
/// async fn me(claims: Claims<Custom>) -> String {
///     format!("{} has roles {:?}", claims.sub, claims.custom().roles)
/// }
/// # let _ = axum::Router::<()>::new().route("/me", axum::routing::get(me));
/// ```
///
/// `Option<Claims>` is `None` only for a request without an `Authorization` header; a request
/// with a bad token is refused, never treated as anonymous.
pub struct Claims<T = Map<String, Value>>(pub auth0_core::Claims<T>);

impl<T> Claims<T> {
    /// The claims as the runtime's type.
    pub fn into_inner(self) -> auth0_core::Claims<T> {
        self.0
    }
}

impl<T> From<auth0_core::Claims<T>> for Claims<T> {
    fn from(claims: auth0_core::Claims<T>) -> Self {
        Self(claims)
    }
}

impl<T> Deref for Claims<T> {
    type Target = auth0_core::Claims<T>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<T> DerefMut for Claims<T> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Claims<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: Clone> Clone for Claims<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

/// The verification of this request: the layer's, an earlier extractor's, or a new one. One done
/// by another validator than the route's own (`Extension<Auth0>`) is not reused: a token for the
/// layer's tenant or audience must not pass for the route's.
async fn verified(parts: &mut Parts) -> Result<Done, Rejection> {
    if let Some(done) = parts.extensions.get::<Done>()
        && parts
            .extensions
            .get::<Auth0>()
            .is_none_or(|named| done.by.same_as(named))
    {
        return Ok(done.clone());
    }
    let auth0 = validator(&parts.extensions).ok_or_else(not_configured)?;
    let verified = authenticate(&auth0, &Head::of_parts(parts), parts.extensions.get::<Done>()).await?;
    if verified.scheme() == Scheme::Dpop && auth0.dpop_nonce().is_some() {
        warn_no_renewal();
    }
    let done = Done {
        by: auth0,
        verified,
        authorization: parts.headers.get(header::AUTHORIZATION).cloned(),
    };
    parts.extensions.insert(done.clone());
    Ok(done)
}

/// With server nonces on, only the layer renews them: say so once.
fn warn_no_renewal() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tracing::warn!(
            target: "auth0_axum",
            "DPoP server nonces are on (AUTH0_DPOP_NONCE_SECRET), but a DPoP request was verified by \
             an extractor on a route without Auth0Layer: its answer does not carry the next nonce, so \
             DPoP clients get 401 use_dpop_nonce whenever theirs expires; protect the route with \
             `.route_layer(auth0_axum::Auth0Layer::new())`"
        );
    });
}

fn refuse(done: &Done, error: AuthError) -> Rejection {
    done.by
        .refusal(&error, done.verified.scheme() == Scheme::Dpop)
        .into()
}

impl<S, T> FromRequestParts<S> for Claims<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send + 'static,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Rejection> {
        let done = verified(parts).await?;
        match done.verified.claims::<T>() {
            Ok(claims) => Ok(Self(claims)),
            Err(error) => Err(refuse(&done, error)),
        }
    }
}

impl<S, T> OptionalFromRequestParts<S> for Claims<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send + 'static,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, Rejection> {
        if parts.extensions.get::<Done>().is_none() && !parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(None);
        }
        <Self as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

/// The verified access token of this request, as it was sent (without the scheme), for token
/// exchange: an extractor that reuses the verification of the layer or of [`Claims`] (or verifies
/// the request itself), so the token it hands out has passed every check. `Debug` is redacted.
///
/// ```
/// use auth0_axum::{AccessToken, ExchangeFailure, Validator};
/// use auth0_axum::OnBehalfOfRequest;
///
/// async fn reports(
///     Validator(auth0): Validator,
///     token: AccessToken,
/// ) -> Result<String, ExchangeFailure> {
///     let downstream = auth0
///         .token_on_behalf_of(OnBehalfOfRequest::new(&token, "https://reports.example.com"))
///         .await?;
///     Ok(format!("valid for {} s", downstream.expires_in))
/// }
/// # let _ = axum::Router::<()>::new().route("/reports", axum::routing::get(reports));
/// ```
#[derive(Clone)]
pub struct AccessToken(Arc<str>);

impl AccessToken {
    /// The token itself. Do not log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for AccessToken {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AccessToken {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Rejection> {
        let done = verified(parts).await?;
        // The scheme's one header line, after the scheme and its spaces, as the verifier read it.
        let token = done
            .authorization
            .as_ref()
            .and_then(|value| value.to_str().ok())
            .and_then(auth0_core::access_token_in)
            .map(Arc::<str>::from);
        token.map(Self).ok_or_else(|| {
            refuse(
                &done,
                AuthError::Internal("the verified access token is not available"),
            )
        })
    }
}

/// The request's validator, as an extractor: an `Extension<Auth0>`, else the one
/// [`Auth0Layer`](crate::Auth0Layer) used, else the global one; without any, 500
/// `internal_server_error` (logged).
/// Use it to call the token-exchange methods, or [`Auth0::ready`], from a handler.
#[derive(Debug, Clone)]
pub struct Validator(pub Auth0);

impl Deref for Validator {
    type Target = Auth0;

    fn deref(&self) -> &Auth0 {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Validator {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Rejection> {
        validator(&parts.extensions).map(Self).ok_or_else(not_configured)
    }
}
