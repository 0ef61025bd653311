//! The tower layer: verifies every request before the inner service sees it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use auth0_core::{Auth0, Requirement};
use axum::response::{IntoResponse, Response};
use http::Request;
use http::header::{self, HeaderName, HeaderValue};
use tower_layer::Layer;
use tower_service::Service;

use crate::respond::not_configured;
use crate::{Done, Head, LayerValidator, Rejection, authenticate};

/// The `DPoP-Nonce` response header (RFC 9449 §8.1).
const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// Protects the routes it wraps: every request is verified (and checked against the layer's
/// requirement) before the inner service is called, and refused otherwise with the status, JSON
/// body and headers the Actix adapter's `RequireAuth` sends. The verification is stored in the
/// request, for [`Claims`](crate::Claims) and [`AccessToken`](crate::AccessToken) to read. With
/// DPoP server nonces on, a successful answer to a proof that carried the previous nonce gets the
/// current one in `DPoP-Nonce`.
///
/// The validator is the layer's ([`Self::validator`]), else the global one
/// ([`init_from_env`](crate::init_from_env)); with neither, requests are answered 500
/// `internal_server_error` and the fix is logged.
///
/// ```
/// use axum::{Router, routing::get};
/// use auth0_axum::{Auth0Layer, Claims};
///
/// async fn messages(claims: Claims) -> String {
///     format!("messages for {}", claims.sub)
/// }
///
/// let app: Router = Router::new()
///     .route("/api/messages", get(messages))
///     // `route_layer`: an unknown path stays 404, not 401.
///     .route_layer(Auth0Layer::new().scopes(["read:messages"]));
/// # let _ = app;
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Auth0Layer {
    requirement: Arc<Requirement>,
    optional: bool,
    auth0: Option<Auth0>,
}

impl Auth0Layer {
    /// Every request must carry a valid access token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Authentication is optional: a request without an `Authorization` header passes through
    /// anonymously (handlers read `Option<Claims>`), but credentials that are sent must be valid
    /// and meet the requirement.
    pub fn optional() -> Self {
        Self {
            optional: true,
            ..Self::default()
        }
    }

    /// The validator to verify with, instead of the global one.
    pub fn validator(mut self, auth0: Auth0) -> Self {
        self.auth0 = Some(auth0);
        self
    }

    /// The whole requirement at once, for one built elsewhere.
    pub fn requirement(mut self, requirement: Requirement) -> Self {
        self.requirement = Arc::new(requirement);
        self
    }

    fn with(mut self, change: impl FnOnce(Requirement) -> Requirement) -> Self {
        self.requirement = Arc::new(change((*self.requirement).clone()));
        self
    }

    /// Scopes the token must all have (RFC 6749 `scope`, exact match), one scope per value;
    /// otherwise 403 `insufficient_scope` with `scope="…"` in the challenge.
    ///
    /// # Panics
    /// When the layer is built, on an empty list or a value that is not an RFC 6749 scope-token
    /// (see [`Requirement::scopes`]).
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(self, scopes: I) -> Self {
        self.with(|r| r.scopes(scopes))
    }

    /// Scopes of which the token must have at least one.
    ///
    /// # Panics
    /// As [`Self::scopes`].
    pub fn any_scopes<I: IntoIterator<Item = S>, S: Into<String>>(self, scopes: I) -> Self {
        self.with(|r| r.any_scopes(scopes))
    }

    /// Auth0 RBAC permissions the token must all carry.
    ///
    /// # Panics
    /// As [`Self::scopes`].
    pub fn permissions<I: IntoIterator<Item = S>, S: Into<String>>(self, permissions: I) -> Self {
        self.with(|r| r.permissions(permissions))
    }

    /// Step-up (RFC 9470): the token's `acr` must be one of these; otherwise 401
    /// `insufficient_user_authentication` with `acr_values="…"`.
    ///
    /// # Panics
    /// As [`Self::scopes`].
    pub fn acr_values<I: IntoIterator<Item = S>, S: Into<String>>(self, values: I) -> Self {
        self.with(|r| r.acr_values(values))
    }

    /// Step-up (RFC 9470): the token's `auth_time` must be at most `max_age` ago; otherwise 401
    /// `insufficient_user_authentication` with `max_age="…"`.
    pub fn max_age(self, max_age: std::time::Duration) -> Self {
        self.with(|r| r.max_age(max_age))
    }
}

impl<S> Layer<S> for Auth0Layer {
    type Service = Auth0Service<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth0Service {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`Auth0Layer`] wraps around a route.
#[derive(Debug, Clone)]
pub struct Auth0Service<S> {
    inner: S,
    layer: Auth0Layer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S: Clone> Auth0Service<S> {
    /// The instance `poll_ready` prepared serves this request; a fresh clone the next.
    fn take_inner(&mut self) -> S {
        let clone = self.inner.clone();
        std::mem::replace(&mut self.inner, clone)
    }
}

impl<S, B> Service<Request<B>> for Auth0Service<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let auth0 = self.layer.auth0.as_ref().or_else(|| Auth0::global()).cloned();
        if self.layer.optional && !req.headers().contains_key(header::AUTHORIZATION) {
            // Anonymous, decided before any validator is needed (as under Actix); the extractors
            // see the layer's validator, if any.
            if let Some(auth0) = auth0 {
                req.extensions_mut().insert(LayerValidator(auth0));
            }
            let mut inner = self.take_inner();
            return Box::pin(async move { inner.call(req).await.map(IntoResponse::into_response) });
        }
        let Some(auth0) = auth0 else {
            return Box::pin(std::future::ready(Ok(not_configured().into_response())));
        };
        let mut inner = self.take_inner();
        // Under another layer of the same validator (a router's and a route's), the request is
        // verified once: a DPoP proof is single-use, and the work is done.
        let done = req.extensions().get::<Done>();
        let earlier = done
            .filter(|done| done.by.same_as(&auth0))
            .map(|done| done.verified.clone());
        let authenticating = match earlier {
            Some(_) => None,
            None => Some(authenticate(&auth0, &Head::of_request(&req), done)),
        };
        let requirement = Arc::clone(&self.layer.requirement);
        Box::pin(async move {
            let verified = match (earlier, authenticating) {
                (Some(verified), _) => verified,
                (None, Some(authenticating)) => match authenticating.await {
                    Ok(verified) => verified,
                    Err(refusal) => return Ok(Rejection::from(refusal).into_response()),
                },
                (None, None) => return Ok(not_configured().into_response()),
            };
            if let Err(refusal) = auth0.authorize(&verified, &requirement) {
                return Ok(Rejection::from(refusal).into_response());
            }
            let renew = verified.renews_nonce();
            let authorization = req.headers().get(header::AUTHORIZATION).cloned();
            req.extensions_mut().insert(Done {
                by: auth0.clone(),
                verified,
                authorization,
            });
            let mut response = inner.call(req).await?.into_response();
            if let Some(nonce) = renew
                .then(|| auth0.dpop_nonce())
                .flatten()
                .and_then(|n| HeaderValue::try_from(n).ok())
            {
                response.headers_mut().insert(DPOP_NONCE, nonce);
            }
            Ok(response)
        })
    }
}
