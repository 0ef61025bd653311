//! Middleware: `RequireAuth` for a whole `App`, `scope` or `resource`, and `DpopNonces`, which
//! renews DPoP server nonces on successful answers.

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest};

use super::respond::refuse;
use super::{DPOP_NONCE, Done, LocalBoxFuture, supplied, validator, verify_then};
use crate::policy::{Requirement, scope_tokens};
use crate::verify::Auth0;

/// Set on a request by [`DpopNonces`] and [`RequireAuth`] before the app sees it: its successful
/// answer will carry a renewed `DPoP-Nonce` when the proof needs one.
#[derive(Clone, Copy)]
pub(super) struct NonceRenewal;

/// Marks `req` as handled by a nonce-renewing middleware, when some validator uses nonces (the
/// marker only serves [`check_nonce_renewal`]; without nonces, no request pays for it).
fn mark_nonce_renewal(req: &ServiceRequest) {
    if crate::dpop::nonces_in_use() {
        req.extensions_mut().insert(NonceRenewal);
    }
}

/// With server nonces on, a successful DPoP request that neither [`DpopNonces`] nor
/// [`RequireAuth`] handles gets no renewed nonce: say so, once per validator. Startup cannot see
/// the app; its first such request shows it.
pub(super) fn check_nonce_renewal(req: &HttpRequest, by: &Auth0) {
    use std::sync::atomic::Ordering;
    if by.0.nonce_renewal_warned.load(Ordering::Relaxed)
        || req.extensions().get::<NonceRenewal>().is_some()
        || by.0.nonce_renewal_warned.swap(true, Ordering::Relaxed)
    {
        return;
    }
    tracing::warn!(
        target: "auth0_runtime",
        route = req.match_pattern().as_deref().unwrap_or("(no route)"),
        "DPoP server nonces are on (AUTH0_DPOP_NONCE_SECRET), but no DpopNonces middleware wraps \
         this route: successful answers never carry the next nonce, so DPoP clients get 401 \
         use_dpop_nonce and retry whenever theirs expires (every one to two minutes); wrap the \
         app: App::new().wrap(auth0_runtime::DpopNonces)"
    );
}

/// Protects every route of an `App`, `scope` or `resource`, with the same options as
/// `#[require_auth]`.
///
/// ```no_run
/// use actix_web::{web, App, HttpServer, Responder};
/// use auth0_runtime::{Claims, RequireAuth};
///
/// async fn messages(claims: Claims) -> impl Responder {
///     format!("messages for {}", claims.sub)
/// }
///
/// # async fn run() -> std::io::Result<()> {
/// if let Err(error) = auth0_runtime::init_from_env() {
///     eprintln!("{error}");
///     std::process::exit(2);
/// }
/// HttpServer::new(|| {
///     App::new().service(
///         web::scope("/api")
///             .wrap(RequireAuth::new().scopes(["read:messages"]))
///             .route("/messages", web::get().to(messages)),
///     )
/// })
/// .bind(("127.0.0.1", 3000))?
/// .run()
/// .await
/// # }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct RequireAuth {
    pub(super) requirement: Requirement,
    pub(super) optional: bool,
}

impl RequireAuth {
    /// Every request must carry a valid access token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Authentication is optional: a request without credentials passes through anonymously, but
    /// credentials that are sent must be valid (a bad token is refused, never treated as
    /// anonymous). Handlers read the result through `Option<Claims>`.
    ///
    /// The middleware is what makes `Option<Claims>` safe: on its own, Actix's `Option<T>`
    /// extractor turns every extraction error into `None`, so without it an invalid token would
    /// read as an anonymous request. The same holds under a scope whose app data names another
    /// validator than the middleware's: `Option<Claims>` verifies again under that one and reads
    /// its refusal as `None`. Give its routes their own `RequireAuth::optional()`, on a resource or
    /// scope nested inside the one whose app data names the validator (a scope's own middleware
    /// runs before its app data is in place).
    pub fn optional() -> Self {
        Self {
            optional: true,
            ..Self::default()
        }
    }

    /// Scopes the token must all have (RFC 6749 `scope`, exact match).
    ///
    /// Each value is one scope: `.scopes(["read:data", "write:data"])`. A comma is allowed inside a
    /// scope, as RFC 6749 allows it (`"a,b"` is one scope named `a,b`).
    ///
    /// # Panics
    /// At startup, on an empty list or a value that is not an RFC 6749 scope-token (printable
    /// ASCII other than space, `"` and `\`): the same mistakes `#[require_auth]` refuses to compile.
    /// A list written as one value (`"read:a, write:b"` or `"read:a write:b"`) is refused with the
    /// list to write instead.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.requirement.all_scopes = scope_tokens("RequireAuth", "scopes", scopes);
        self
    }

    /// Scopes of which the token must have at least one.
    ///
    /// # Panics
    /// As [`Self::scopes`].
    pub fn any_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.requirement.any_scopes = scope_tokens("RequireAuth", "any_scopes", scopes);
        self
    }

    /// Auth0 RBAC permissions the token must all carry.
    ///
    /// # Panics
    /// As [`Self::scopes`].
    pub fn permissions<I: IntoIterator<Item = S>, S: Into<String>>(mut self, permissions: I) -> Self {
        self.requirement.permissions = scope_tokens("RequireAuth", "permissions", permissions);
        self
    }

    /// Step-up (RFC 9470): the token's `acr` claim must be one of these authentication context
    /// classes; otherwise 401 `insufficient_user_authentication` with `acr_values="…"`.
    ///
    /// # Panics
    /// As [`Self::scopes`].
    pub fn acr_values<I: IntoIterator<Item = S>, S: Into<String>>(mut self, values: I) -> Self {
        self.requirement.acr_values = scope_tokens("RequireAuth", "acr_values", values);
        self
    }

    /// Step-up (RFC 9470): the token's `auth_time` claim must be at most `max_age` ago (whole
    /// seconds); otherwise 401 `insufficient_user_authentication` with `max_age="…"`.
    pub fn max_age(mut self, max_age: std::time::Duration) -> Self {
        self.requirement.max_age = Some(max_age.as_secs());
        self
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequireAuth
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RequireAuthMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireAuthMiddleware {
            service: Arc::new(service),
            options: self.clone(),
        }))
    }
}

/// The service [`RequireAuth`] wraps around a route.
#[derive(Debug)]
pub struct RequireAuthMiddleware<S> {
    service: Arc<S>,
    options: RequireAuth,
}

impl<S, B> Service<ServiceRequest> for RequireAuthMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self::Response, actix_web::Error>>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Arc::clone(&self.service);
        let options = self.options.clone();
        mark_nonce_renewal(&req);
        let anonymous = options.optional
            && !req.headers().contains_key(header::AUTHORIZATION)
            && !supplied(req.request());
        let verifying = (!anonymous).then(|| verify_then(req.request(), |_, v| Ok(v)));
        Box::pin(async move {
            if let Some(verifying) = verifying {
                let outcome = verifying.await.and_then(|v| {
                    let now = || validator(req.request()).map_or_else(crate::clock::now, Auth0::now);
                    options
                        .requirement
                        .check_at(&v.claims, now)
                        .map_err(|error| refuse(req.request(), &v, error))
                });
                if let Err(e) = outcome {
                    return Ok(req.error_response(e).map_into_right_body());
                }
            }
            let mut response = service.call(req).await?;
            renew_nonce(&mut response);
            Ok(response.map_into_left_body())
        })
    }
}

/// Adds a fresh `DPoP-Nonce` to a successful answer whose proof carried last step's nonce.
pub(super) fn renew_nonce<B>(response: &mut ServiceResponse<B>) {
    let nonce = {
        let extensions = response.request().extensions();
        extensions
            .get::<Done>()
            .filter(|done| done.verified.renew_nonce)
            .and_then(|done| done.by.as_ref().and_then(Auth0::dpop_nonce))
    };
    if let Some(value) = nonce.and_then(|n| HeaderValue::try_from(n).ok()) {
        response.headers_mut().insert(DPOP_NONCE, value);
    }
}

/// Sends a fresh `DPoP-Nonce` on successful answers when DPoP server nonces are on
/// ([`Auth0Config::dpop_nonce_secrets`](crate::Auth0Config::dpop_nonce_secrets)) and the request's
/// proof carried the previous step's nonce, so clients move to the new nonce without a 401.
/// [`RequireAuth`] does this itself; wrap an app protected with `#[require_auth]` in this. With
/// nonces on, the first successful DPoP request that neither handles logs a warning (once per
/// validator).
///
/// ```
/// use actix_web::App;
/// use auth0_runtime::DpopNonces;
///
/// let app = App::new().wrap(DpopNonces);
/// # let _ = app;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct DpopNonces;

impl<S, B> Transform<S, ServiceRequest> for DpopNonces
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = DpopNoncesMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(DpopNoncesMiddleware {
            service: Arc::new(service),
        }))
    }
}

/// The service [`DpopNonces`] wraps around an app.
#[derive(Debug)]
pub struct DpopNoncesMiddleware<S> {
    service: Arc<S>,
}

impl<S, B> Service<ServiceRequest> for DpopNoncesMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self::Response, actix_web::Error>>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        mark_nonce_renewal(&req);
        let service = Arc::clone(&self.service);
        Box::pin(async move {
            let mut response = service.call(req).await?;
            renew_nonce(&mut response);
            Ok(response)
        })
    }
}
