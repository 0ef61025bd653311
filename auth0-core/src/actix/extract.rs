//! Extractors: `Claims`, the validator (`Auth0`) and the verified raw token (`AccessToken`).

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use serde::de::DeserializeOwned;

use super::respond::{not_configured, refuse};
use super::{Done, Verifying, validator, verify_then};
use crate::answer::AuthError;
use crate::claims::Claims;
use crate::verify::{Auth0, Verified};

pub(super) fn claims_from<T: DeserializeOwned + 'static>(
    req: &HttpRequest,
    v: Verified,
) -> Result<Claims<T>, actix_web::Error> {
    match v.claims.custom::<T>() {
        Ok(custom) => Ok(Claims::new(v.claims, v.scheme, custom)),
        Err(_) => Err(refuse(
            req,
            &v,
            AuthError::InvalidToken("the access token's custom claims do not have the expected shape"),
        )),
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Claims<T> {
    type Error = actix_web::Error;
    type Future = Verifying<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        verify_then(req, claims_from::<T>)
    }
}

/// The validator of this request as an extractor: the [`Auth0`] in the app data, else the global
/// one. Without either, the request is answered 500 `internal_server_error` (and the reason is
/// logged), as protected routes are. Use it to call the token-exchange methods from a handler.
///
/// ```
/// use actix_web::{get, Responder};
/// use auth0_runtime::{require_auth, AccessToken, Auth0, ExchangeError, OnBehalfOfRequest};
///
/// #[get("/api/reports")]
/// #[require_auth]
/// async fn reports(auth0: Auth0, token: AccessToken) -> Result<impl Responder, ExchangeError> {
///     let downstream = auth0
///         .token_on_behalf_of(OnBehalfOfRequest::new(&token, "https://reports.example.com"))
///         .await?;
///     Ok(format!("valid for {} s", downstream.expires_in))
/// }
/// ```
impl FromRequest for Auth0 {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(validator(req).cloned().ok_or_else(not_configured))
    }
}

/// The verified access token of this request, as it was sent (without the scheme), for token
/// exchange.
///
/// An extractor: it reuses the verification of `#[require_auth]`, [`RequireAuth`](crate::RequireAuth) or [`Claims`]
/// (or verifies the request itself, answering a refusal like [`Claims`] would), so the token it
/// hands out has always passed every check of the validator. Its `Debug` output is redacted.
///
/// ```
/// use actix_web::{get, Responder};
/// use auth0_runtime::{require_auth, AccessToken, Auth0, ConnectionTokenRequest, ExchangeError};
///
/// #[get("/api/github/repos")]
/// #[require_auth]
/// async fn repos(auth0: Auth0, token: AccessToken) -> Result<impl Responder, ExchangeError> {
///     let github = auth0
///         .token_for_connection(ConnectionTokenRequest::new("github", &token))
///         .await?;
///     Ok(format!("granted: {}", github.scope))
/// }
/// ```
#[derive(Clone)]
pub struct AccessToken(std::sync::Arc<str>);

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

impl FromRequest for AccessToken {
    type Error = actix_web::Error;
    type Future = Verifying<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        verify_then(req, access_token_of)
    }
}

/// The token of the `Authorization` value kept by the verification just done (or reused): the
/// scheme's one header line, after the scheme and its spaces, exactly as the verifier reads it.
pub(super) fn access_token_of(req: &HttpRequest, v: Verified) -> Result<AccessToken, actix_web::Error> {
    let token = {
        let extensions = req.extensions();
        extensions
            .get::<Done>()
            .and_then(|done| done.authorization.as_ref())
            .and_then(|value| value.to_str().ok())
            .and_then(crate::adapter::access_token_in)
            .map(std::sync::Arc::<str>::from)
    };
    token.map(AccessToken).ok_or_else(|| {
        refuse(
            req,
            &v,
            AuthError::Internal("the verified access token is not available"),
        )
    })
}
