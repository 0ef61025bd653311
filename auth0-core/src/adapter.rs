//! What an adapter for another framework needs (the `auth0-axum` crate is one): a verification
//! that outlives the borrowed request, the refusal rendered as plain status, headers and body, a
//! route's requirement and its check, and whether a success should carry a renewed DPoP nonce.
//! Nothing here names a framework type.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use serde::de::DeserializeOwned;

use crate::claims::{Claims, Scheme, TokenClaims};
use crate::policy::Requirement;
use crate::verify::{Denied, Verification};
use crate::{Auth0, AuthError, Refusal, RequestParts};

/// Renders with the default challenges (Bearer and DPoP, `algs="ES256"`, no metadata), as
/// `AuthError`'s Actix `ResponseError` does: for a refusal with no validator to render it (none
/// configured). A validator's refusals come from [`Auth0::refusal`].
impl From<AuthError> for Refusal {
    fn from(error: AuthError) -> Self {
        Self::default_for(&error)
    }
}

/// A successful verification, as an adapter keeps it for the request's handlers: the token's
/// claims, the scheme it came with, and whether the answer should carry a renewed `DPoP-Nonce`.
#[derive(Debug, Clone)]
pub struct Verified(crate::verify::Verified);

impl Verified {
    /// The standard claims (shared: cheap to clone and keep beyond the request).
    pub fn token(&self) -> &Arc<TokenClaims> {
        &self.0.claims
    }

    /// The scheme the request used.
    pub fn scheme(&self) -> Scheme {
        self.0.scheme
    }

    /// DPoP server nonces are on and the proof carried the previous step's nonce: the successful
    /// answer should carry the current one ([`Auth0::dpop_nonce`]) in a `DPoP-Nonce` header, so
    /// the client moves on without a 401.
    pub fn renews_nonce(&self) -> bool {
        self.0.renew_nonce
    }

    /// The claims, with the token's non-registered claims read as `T`.
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] when the custom claims do not have `T`'s shape.
    pub fn claims<T: DeserializeOwned + 'static>(&self) -> Result<Claims<T>, AuthError> {
        let custom = self.0.claims.custom::<T>().map_err(|_| {
            AuthError::InvalidToken("the access token's custom claims do not have the expected shape")
        })?;
        Ok(Claims::new(Arc::clone(&self.0.claims), self.0.scheme, custom))
    }
}

/// The verification of one request, independent of the request it was started from: `Send` and
/// `'static`, ready at once when the signing key is cached (no lock, no I/O), so an adapter can
/// move it into its own future. Made by [`Auth0::authenticate_request`].
#[must_use = "a verification does nothing unless awaited"]
pub struct Authenticating {
    state: State,
}

enum State {
    Ready(Option<Result<Verified, Refusal>>),
    Waiting {
        future: Pin<Box<dyn Future<Output = Result<crate::verify::Verified, Denied>> + Send>>,
        auth0: Auth0,
    },
}

impl std::fmt::Debug for Authenticating {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Ready(_) => "ready",
            State::Waiting { .. } => "waiting",
        };
        f.debug_struct("Authenticating").field("state", &state).finish()
    }
}

impl Authenticating {
    /// The outcome, if decided without waiting (the signing key was cached): lets an adapter
    /// skip a future on the hot path. `Err(self)` when it has to be awaited.
    ///
    /// # Errors
    /// `self`, unchanged, when the verification waits on a key fetch, the replay store or the
    /// domains resolver.
    pub fn now_or_later(self) -> Result<Result<Verified, Refusal>, Self> {
        match self.state {
            State::Ready(Some(result)) => Ok(result),
            state => Err(Self { state }),
        }
    }
}

impl Future for Authenticating {
    type Output = Result<Verified, Refusal>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            State::Ready(result) => match result.take() {
                Some(result) => Poll::Ready(result),
                None => Poll::Pending,
            },
            State::Waiting { future, auth0 } => {
                let result = std::task::ready!(future.as_mut().poll(cx));
                Poll::Ready(result.map(Verified).map_err(|denied| auth0.refuse(denied)))
            }
        }
    }
}

/// The access token of an `Authorization` line the verifier accepted (`Bearer <token>` or
/// `DPoP <token>`): what follows the scheme and its spaces. For an adapter's raw-token extractor,
/// on the header value it kept when the request was verified.
pub fn access_token_in(authorization: &str) -> Option<&str> {
    authorization
        .split_once(' ')
        .map(|(_, token)| token.trim_start_matches(' '))
        .filter(|token| !token.is_empty())
}

impl Auth0 {
    /// The process-wide validator installed by [`crate::init`] or [`crate::init_from_env`], if
    /// any: the one an adapter falls back on when the app gives it none.
    pub fn global() -> Option<&'static Auth0> {
        crate::GLOBAL.get()
    }

    /// Whether `other` is this validator (a clone of it), not merely one configured alike: an
    /// adapter reuses a request's verification only under the validator that did it.
    pub fn same_as(&self, other: &Auth0) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Verifies a request given as plain parts, for another framework's adapter: everything is
    /// read from `req` now, so the returned future borrows nothing (`Send + 'static`). Unlike
    /// [`Auth0::authenticate`], a refusal comes rendered ([`Refusal`]) under this validator's
    /// configuration, and a success says whether its answer renews the DPoP nonce. Route
    /// requirements are checked apart, with [`Auth0::authorize`].
    ///
    /// Logged, traced and counted (with the `metrics` feature) like the Actix adapter's
    /// verifications.
    pub fn authenticate_request(&self, req: &impl RequestParts) -> Authenticating {
        self.authenticating(self.verify(req))
    }

    /// [`Self::authenticate_request`] for a request another validator verified first (`earlier`:
    /// an outer layer's, when the route names its own validator). The DPoP proof that
    /// verification recorded is not taken for a replay of itself when the two validators share a
    /// replay store; a replay of the request still meets the first validator, which refuses it.
    pub fn authenticate_request_after(&self, req: &impl RequestParts, earlier: &Verified) -> Authenticating {
        self.authenticating(self.verify_after(req, earlier.0.recorded.as_ref()))
    }

    fn authenticating(&self, verification: Verification) -> Authenticating {
        let state = match verification {
            Verification::Done(result) => {
                State::Ready(Some(result.map(Verified).map_err(|denied| self.refuse(denied))))
            }
            Verification::Later(future) => State::Waiting {
                future,
                auth0: self.clone(),
            },
        };
        Authenticating { state }
    }

    /// Checks a verified request against a route's requirement (scopes, permissions, step-up),
    /// with this validator's clock.
    ///
    /// # Errors
    /// 403 `insufficient_scope` with the required scopes in the challenge, or 401
    /// `insufficient_user_authentication` with `acr_values`/`max_age`, rendered under this
    /// validator's configuration.
    pub fn authorize(&self, verified: &Verified, requirement: &Requirement) -> Result<(), Refusal> {
        requirement
            .check_at(verified.token(), || self.now())
            .map_err(|error| {
                if let AuthError::InsufficientScope { required, .. } = &error {
                    tracing::debug!(
                        target: "auth0_runtime",
                        required = %required,
                        scope = ?verified.token().scope,
                        permissions = ?verified.token().permissions,
                        "request refused: the route requires more than the token grants"
                    );
                }
                self.refusal(&error, verified.scheme() == Scheme::Dpop)
            })
    }

    /// The RFC 9728 metadata document as JSON, rendered once at startup, when published: the body
    /// an adapter's metadata handler serves (with `Cache-Control: max-age=3600`).
    pub fn resource_metadata_document(&self) -> Option<&str> {
        self.resource_metadata_json()
    }

    fn refuse(&self, denied: Denied) -> Refusal {
        self.refusal(&denied.error, denied.dpop)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_default_rendering_is_the_actix_default() {
        let refusal = Refusal::from(AuthError::InvalidToken("the access token has expired"));
        assert_eq!(refusal.status, 401);
        assert_eq!(
            refusal.header("www-authenticate"),
            Some(
                "Bearer realm=\"api\", error=\"invalid_token\", \
                 error_description=\"the access token has expired\", DPoP algs=\"ES256\""
            )
        );
        assert_eq!(refusal.header("cache-control"), Some("no-store"));
        assert_eq!(
            refusal.body,
            r#"{"detail":{"error":"invalid_token","error_description":"the access token has expired"}}"#
        );
        let busy = Refusal::from(AuthError::Unavailable("later"));
        assert_eq!(
            (
                busy.status,
                busy.header("retry-after"),
                busy.header("www-authenticate")
            ),
            (503, Some("30"), None)
        );
    }

    #[test]
    fn requirements_refuse_lists_in_one_value() {
        assert!(std::panic::catch_unwind(|| Requirement::new().scopes(["a, b"])).is_err());
        assert!(std::panic::catch_unwind(|| Requirement::new().scopes(Vec::<String>::new())).is_err());
        assert_eq!(Requirement::new().scopes(["a,b"]).all_scopes.len(), 1);
    }

    #[test]
    fn requirements_check_scopes_then_any_then_permissions() {
        let payload = serde_json::json!({
            "iss": "https://t/", "sub": "u", "aud": "a", "exp": 2_000_000_000, "iat": 1,
            "scope": "read:messages", "permissions": ["p"], "acr": "mfa", "auth_time": 100,
        });
        let claims = TokenClaims::from_payload(&serde_json::to_vec(&payload).unwrap()).unwrap();
        assert!(
            Requirement::new()
                .scopes(["read:messages"])
                .check(&claims, 0)
                .is_ok()
        );
        let missing = Requirement::new().scopes(["write:messages"]).check(&claims, 0);
        assert!(
            matches!(missing, Err(AuthError::InsufficientScope { ref required, .. }) if required == "write:messages")
        );
        assert!(
            Requirement::new()
                .any_scopes(["x", "read:messages"])
                .check(&claims, 0)
                .is_ok()
        );
        assert!(Requirement::new().permissions(["q"]).check(&claims, 0).is_err());
        let step_up = Requirement::new()
            .acr_values(["mfa"])
            .max_age(std::time::Duration::from_secs(60));
        assert!(step_up.check(&claims, 150).is_ok());
        assert_eq!(step_up.check(&claims, 200).map_err(|e| e.status()), Err(401));
    }
}

#[cfg(all(test, feature = "testing"))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod nonce_tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;
    use crate::testing::{DpopKey, TestIssuer};

    static CLOCK: AtomicI64 = AtomicI64::new(0);

    fn clock() -> i64 {
        CLOCK.load(Ordering::Relaxed)
    }

    struct Request(Vec<(&'static str, String)>);

    impl RequestParts for Request {
        fn method(&self) -> &str {
            "GET"
        }
        fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
            self.0
                .iter()
                .filter(move |(n, _)| *n == name)
                .map(|(_, v)| v.as_bytes())
        }
        fn scheme(&self) -> &str {
            "http"
        }
        fn host(&self) -> &str {
            "api.test"
        }
        fn path(&self) -> &str {
            "/a"
        }
    }

    /// A proof with last step's nonce passes and says the answer renews the nonce; one with the
    /// current nonce does not; one without is refused with the nonce in the refusal's headers.
    #[tokio::test]
    async fn verifications_say_when_the_nonce_is_renewed() {
        let issuer = TestIssuer::start();
        let t = (crate::clock::now() / 60) * 60 + 5;
        CLOCK.store(t, Ordering::Relaxed);
        let mut config = issuer
            .config("https://api.test")
            .dpop_nonce_secrets([vec![5u8; 32]]);
        config.clock = clock;
        let auth0 = Auth0::new(config).unwrap();
        let key = DpopKey::generate();
        let token = issuer
            .token()
            .audience("https://api.test")
            .bind_to(&key)
            .issued_at(t - 10)
            .expires_at(t + 3600)
            .sign();
        let old = auth0.dpop_nonce().unwrap();
        let request = |now: i64, nonce: Option<&str>| {
            let mut proof = key
                .proof("GET", "http://api.test/a")
                .access_token(&token)
                .issued_at(now);
            if let Some(nonce) = nonce {
                proof = proof.nonce(nonce);
            }
            Request(vec![
                ("authorization", format!("DPoP {token}")),
                ("dpop", proof.sign()),
            ])
        };
        let fresh = auth0.authenticate_request(&request(t, Some(&old))).await.unwrap();
        assert!(!fresh.renews_nonce());
        CLOCK.store(t + 60, Ordering::Relaxed);
        let stale = auth0
            .authenticate_request(&request(t + 60, Some(&old)))
            .await
            .unwrap();
        assert!(stale.renews_nonce());
        let refused = auth0
            .authenticate_request(&request(t + 60, None))
            .await
            .unwrap_err();
        assert_eq!(refused.status, 401);
        assert!(refused.body.contains("\"use_dpop_nonce\""), "{refused:?}");
        assert_eq!(refused.header("dpop-nonce"), auth0.dpop_nonce().as_deref());
        assert_ne!(refused.header("dpop-nonce"), Some(old.as_str()));
    }
}
