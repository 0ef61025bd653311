//! [`TestRequestExt`]: one-liners that authenticate an `actix_web::test::TestRequest`.

use actix_http::Request;
use actix_web::HttpMessage as _;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::test::TestRequest;

use crate::testing::ClaimsBuilder;
use crate::testing::{DpopKey, kit_failure};

/// The host `actix_web::test` serves on when a request names none (Actix's `AppConfig` default).
const ACTIX_TEST_HOST: &str = "localhost:8080";

mod sealed {
    pub trait Sealed {}
    impl Sealed for actix_web::test::TestRequest {}
}

/// Authenticates an [`actix_web::test::TestRequest`] in one call: with a token
/// ([`bearer`](TestRequestExt::bearer)), a DPoP-bound token and a fresh proof
/// ([`dpop`](TestRequestExt::dpop)), or test claims and no token at all
/// ([`authenticated`](TestRequestExt::authenticated)).
///
/// `use auth0_runtime::testing::*;` brings it into scope. Sealed: only `TestRequest` implements it.
///
/// ```
/// use actix_web::{get, test, App, HttpResponse, Responder};
/// use auth0_runtime::testing::*;
/// use auth0_runtime::{require_auth, Claims};
///
/// #[get("/api/messages")]
/// #[require_auth(scopes = "read:messages")]
/// async fn messages(claims: Claims) -> impl Responder {
///     HttpResponse::Ok().body(claims.sub.clone())
/// }
///
/// # actix_web::rt::System::new().block_on(async {
/// let issuer = TestIssuer::offline();
/// let app = test::init_service(
///     App::new().app_data(issuer.validator("https://api.example.com")).service(messages),
/// )
/// .await;
///
/// let token = issuer.token().scope("read:messages").sign();
/// let req = test::TestRequest::get().uri("/api/messages").bearer(&token).to_request();
/// assert_eq!(test::call_service(&app, req).await.status(), 200);
///
/// let key = DpopKey::generate();
/// let bound = issuer.token().scope("read:messages").bind_to(&key).sign();
/// let req = test::TestRequest::get().uri("/api/messages").dpop(&key, &bound);
/// assert_eq!(test::call_service(&app, req).await.status(), 200);
///
/// let req = test::TestRequest::get().uri("/api/messages").authenticated(claims().subject("auth0|bob"));
/// assert_eq!(test::call_service(&app, req).await.status(), 403); // no read:messages
/// # });
/// ```
pub trait TestRequestExt: sealed::Sealed + Sized {
    /// Adds `Authorization: Bearer {access_token}`, replacing any `Authorization` header; the
    /// request can still be changed afterwards.
    ///
    /// ```
    /// use actix_web::{test::TestRequest, HttpMessage as _};
    /// use auth0_runtime::testing::{TestIssuer, TestRequestExt};
    ///
    /// let issuer = TestIssuer::offline();
    /// let token = issuer.token().sign();
    /// let req = TestRequest::post()
    ///     .uri("/api/messages")
    ///     .bearer(&token)
    ///     .set_json(serde_json::json!({"text": "hi"}))
    ///     .to_request();
    /// assert_eq!(req.headers().get("authorization").unwrap(), &format!("Bearer {token}"));
    /// ```
    #[must_use]
    fn bearer(self, access_token: &str) -> Self;

    /// Finishes the request (as `to_request` does) and adds `Authorization: DPoP {access_token}`
    /// and a `DPoP` header with a fresh proof from `key` (a new `jti`, `iat` now, `ath` of the
    /// token) for the request's own method and URL. Set the method, URI, headers and body first:
    /// the proof signs what the API will see.
    ///
    /// The URL is the one the API rebuilds in `actix_web::test`: `http://`, then the `Host`
    /// header, else the URI's authority, else `localhost:8080`, then the path. For an API behind
    /// `trust_proxy` or with `public_origins`, for server nonces, or to send a hand-made proof,
    /// build it with [`DpopKey::proof`] and set the two headers yourself.
    ///
    /// # Panics
    ///
    /// If `access_token` cannot be a header value.
    ///
    /// ```
    /// use actix_web::{test::TestRequest, HttpMessage as _};
    /// use auth0_runtime::testing::{DpopKey, TestIssuer, TestRequestExt};
    ///
    /// let issuer = TestIssuer::offline();
    /// let key = DpopKey::generate();
    /// let token = issuer.token().bind_to(&key).sign();
    /// let req = TestRequest::delete().uri("/api/messages/7").dpop(&key, &token);
    /// assert_eq!(req.headers().get("authorization").unwrap(), &format!("DPoP {token}"));
    /// assert!(req.headers().contains_key("dpop"));
    /// ```
    #[track_caller]
    fn dpop(self, key: &DpopKey, access_token: &str) -> Request;

    /// Finishes the request (as `to_request` does), authenticated with test `claims` and no token:
    /// `#[require_auth]`, [`RequireAuth`](crate::RequireAuth) and the
    /// [`Claims`](crate::Claims) extractor take the claims as verified, without an issuer, a
    /// signature or any check of the token itself (expiry, audience, organization policy), and
    /// still check the route's scopes and permissions, so a missing one is the usual 403
    /// `insufficient_scope`. Like spring-security-test's `jwt()`.
    ///
    /// No validator is needed: with none in the app data (and no global one), the claims pass
    /// and refusals are rendered with the default challenges (Bearer and DPoP), as
    /// [`AuthError`](crate::AuthError)'s `ResponseError` does. With a validator, its challenges
    /// and [`on_refusal`](crate::Auth0Config::on_refusal) hook render them. Test claims take
    /// precedence over any `Authorization` header. Extractors that need more than claims still
    /// do: [`Auth0`](crate::Auth0) needs a validator, and
    /// [`AccessToken`](crate::AccessToken) a real token (it answers 500 under test claims).
    ///
    /// # Panics
    ///
    /// If the claims are not valid claims (see [`ClaimsBuilder::build`]).
    ///
    /// ```
    /// use actix_web::{test, web, App, HttpResponse};
    /// use auth0_runtime::testing::*;
    /// use auth0_runtime::{Claims, RequireAuth};
    ///
    /// # actix_web::rt::System::new().block_on(async {
    /// let app = test::init_service(
    ///     App::new().service(
    ///         web::scope("/admin")
    ///             .wrap(RequireAuth::new().permissions(["read:admin"]))
    ///             .route("", web::get().to(|c: Claims| async move { HttpResponse::Ok().body(c.sub.clone()) })),
    ///     ),
    /// )
    /// .await;
    /// let admin = claims().subject("auth0|root").permissions(["read:admin"]);
    /// let req = test::TestRequest::get().uri("/admin").authenticated(admin);
    /// assert_eq!(test::call_service(&app, req).await.status(), 200);
    /// let req = test::TestRequest::get().uri("/admin").authenticated(claims());
    /// assert_eq!(test::call_service(&app, req).await.status(), 403);
    /// # });
    /// ```
    #[track_caller]
    fn authenticated(self, claims: ClaimsBuilder) -> Request;
}

impl TestRequestExt for TestRequest {
    fn bearer(self, access_token: &str) -> Self {
        self.insert_header((header::AUTHORIZATION, format!("Bearer {access_token}")))
    }

    #[track_caller]
    fn dpop(self, key: &DpopKey, access_token: &str) -> Request {
        let mut req = self.to_request();
        let url = request_url(&req);
        let proof = key
            .proof(req.method().as_str(), &url)
            .access_token(access_token)
            .sign();
        let authorization = match HeaderValue::try_from(format!("DPoP {access_token}")) {
            Ok(value) => value,
            Err(error) => kit_failure("the access token cannot be sent in a header", error),
        };
        let headers = req.headers_mut();
        headers.insert(header::AUTHORIZATION, authorization);
        match HeaderValue::try_from(proof) {
            Ok(proof) => {
                headers.insert(HeaderName::from_static("dpop"), proof);
            }
            Err(error) => kit_failure("a DPoP proof cannot be sent in a header", error),
        }
        req
    }

    #[track_caller]
    fn authenticated(self, claims: ClaimsBuilder) -> Request {
        let req = self.to_request();
        crate::actix::supply(&req, claims.into_verified());
        req
    }
}

/// The URL an Actix app under `actix_web::test` rebuilds for `req` (see `RequestParts for
/// HttpRequest`): test requests are never on a secure connection.
fn request_url(req: &Request) -> String {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .or_else(|| req.uri().authority().map(|authority| authority.as_str()))
        .unwrap_or(ACTIX_TEST_HOST);
    format!("http://{host}{}", req.uri().path())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_proof_url_is_the_one_the_app_rebuilds() {
        let url = |req: TestRequest| request_url(&req.to_request());
        assert_eq!(
            url(TestRequest::get().uri("/a/b?x=1")),
            "http://localhost:8080/a/b"
        );
        assert_eq!(url(TestRequest::get()), "http://localhost:8080/");
        assert_eq!(
            url(TestRequest::get()
                .uri("/a")
                .insert_header(("host", "api.test:81"))),
            "http://api.test:81/a"
        );
        assert_eq!(
            url(TestRequest::get().uri("https://api.example.com/c")),
            "http://api.example.com/c"
        );
    }
}
