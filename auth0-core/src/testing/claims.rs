//! [`ClaimsBuilder`]: claims for a request that carries no token, and the request marker that
//! makes the guard read them.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::kit_failure;
use crate::claims::{Claims, Scheme, TokenClaims};
use crate::clock::now;

/// `iss` of test claims: a `.invalid` name (RFC 6761), as no issuer is involved.
const TEST_CLAIMS_ISSUER: &str = "https://test-claims.invalid/";

/// Claims for a test request that carries no token, to run a protected handler in a unit test:
/// `sub` = `user|123`, `aud` = `https://api.example.com`, `iss` = `https://test-claims.invalid/`,
/// `iat` = now, `exp` = now + 1 hour, no scopes, no permissions, scheme Bearer.
///
/// Send them with [`TestRequestExt::authenticated`](super::TestRequestExt::authenticated), or turn
/// them into a [`Claims`] with [`ClaimsBuilder::build`] to call a function directly. Like
/// spring-security-test's `jwt()`: no issuer, no signature, no token; the route's scopes and
/// permissions are still checked by the real guard.
///
/// ```
/// use auth0_runtime::testing;
/// use serde_json::json;
///
/// let claims = testing::claims()
///     .subject("auth0|alice")
///     .scope("read:messages write:messages")
///     .permissions(["read:admin"])
///     .org_id("org_123")
///     .claim("https://myapp.example.com/roles", json!(["admin"]));
/// # let _ = claims;
/// ```
pub fn claims() -> ClaimsBuilder {
    ClaimsBuilder::default()
}

/// Builds the claims of a test request (from [`claims`]).
///
/// Its methods are named after the fields of [`Claims`] a handler reads (`claims.sub`,
/// `claims.org_id`…); [`ClaimsBuilder::claim`] sets any other claim. Setters consume and return
/// the builder, which is cheap to clone. The claims are read exactly as a verified token's payload
/// would be, so a space-delimited `scope` is split the same way and custom claims land in
/// [`Claims::custom`].
#[derive(Clone)]
#[must_use]
pub struct ClaimsBuilder {
    payload: Map<String, Value>,
    scheme: Scheme,
}

impl fmt::Debug for ClaimsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimsBuilder")
            .field("payload", &self.payload)
            .field("scheme", &self.scheme)
            .finish()
    }
}

impl Default for ClaimsBuilder {
    /// The same as [`claims`].
    fn default() -> Self {
        let now = now();
        let mut payload = Map::new();
        payload.insert("iss".to_owned(), json!(TEST_CLAIMS_ISSUER));
        payload.insert("sub".to_owned(), json!("user|123"));
        payload.insert("aud".to_owned(), json!("https://api.example.com"));
        payload.insert("iat".to_owned(), json!(now));
        payload.insert("exp".to_owned(), json!(now.saturating_add(3600)));
        Self {
            payload,
            scheme: Scheme::Bearer,
        }
    }
}

impl ClaimsBuilder {
    /// Sets `sub` (by default `user|123`).
    pub fn subject(self, sub: impl Into<String>) -> Self {
        self.claim("sub", sub.into())
    }

    /// Sets `scope`, space-delimited (`"read:messages write:messages"`), replacing it.
    ///
    /// ```
    /// let claims: auth0_runtime::Claims = auth0_runtime::testing::claims()
    ///     .scope("read:messages write:messages")
    ///     .build();
    /// assert!(claims.has_all_scopes(&["read:messages", "write:messages"]));
    /// ```
    pub fn scope(self, scope: impl Into<String>) -> Self {
        self.claim("scope", scope.into())
    }

    /// Sets `permissions` (Auth0 RBAC), replacing them.
    pub fn permissions<I, S>(self, permissions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let permissions: Vec<Value> = permissions
            .into_iter()
            .map(|permission| Value::String(permission.into()))
            .collect();
        self.claim("permissions", permissions)
    }

    /// Sets `org_id` (Auth0 Organizations).
    pub fn org_id(self, org_id: impl Into<String>) -> Self {
        self.claim("org_id", org_id.into())
    }

    /// Sets `aud` to one audience (by default `https://api.example.com`).
    pub fn audience(self, audience: impl Into<String>) -> Self {
        self.claim("aud", audience.into())
    }

    /// Sets `aud` to several audiences.
    pub fn audiences<I, S>(self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let audiences: Vec<Value> = audiences
            .into_iter()
            .map(|audience| Value::String(audience.into()))
            .collect();
        self.claim("aud", audiences)
    }

    /// Sets `iss` (by default `https://test-claims.invalid/`).
    pub fn issuer(self, issuer: impl Into<String>) -> Self {
        self.claim("iss", issuer.into())
    }

    /// Sets `azp`, the client the token would have been issued to.
    pub fn azp(self, client_id: impl Into<String>) -> Self {
        self.claim("azp", client_id.into())
    }

    /// The scheme the request reports through [`Claims::scheme`] (by default
    /// [`Scheme::Bearer`]). Only the report: no proof is involved either way.
    ///
    /// ```
    /// use auth0_runtime::{testing, Claims, Scheme};
    ///
    /// let claims: Claims = testing::claims().scheme(Scheme::Dpop).build();
    /// assert_eq!(claims.scheme(), Scheme::Dpop);
    /// ```
    pub fn scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = scheme;
        self
    }

    /// Sets the claim `name` to `value` (any JSON), replacing it: a custom claim such as
    /// `https://myapp.example.com/roles` (read through [`Claims::custom`] or
    /// [`TokenClaims::get`]), or a registered one (`exp`, `jti`, `cnf`, `act`…) as a token's
    /// payload would carry it.
    ///
    /// ```
    /// use auth0_runtime::{testing, Claims};
    /// use serde_json::json;
    ///
    /// let claims: Claims = testing::claims()
    ///     .claim("https://myapp.example.com/roles", json!(["admin"]))
    ///     .claim("act", json!({"sub": "service@clients"}))
    ///     .build();
    /// assert_eq!(
    ///     claims.get::<Vec<String>>("https://myapp.example.com/roles"),
    ///     Some(vec!["admin".to_owned()])
    /// );
    /// assert_eq!(claims.act.as_ref().map(|a| a.sub.as_str()), Some("service@clients"));
    /// ```
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.payload.insert(name.into(), value.into());
        self
    }

    /// Removes the claim `name` (a required one, such as `sub`, cannot be removed: building would
    /// fail).
    pub fn remove(mut self, name: &str) -> Self {
        self.payload.remove(name);
        self
    }

    /// The claims as a handler receives them, with the custom claims as `T` (by default the JSON
    /// map), to call a function that takes [`Claims`] directly.
    ///
    /// # Panics
    ///
    /// If a registered claim has a type a token could not have (`exp` as a string, `sub`
    /// removed…), or the custom claims do not deserialize into `T`.
    ///
    /// ```
    /// use auth0_runtime::{testing, Claims};
    ///
    /// fn greeting(claims: &Claims) -> String {
    ///     format!("hello {}", claims.sub)
    /// }
    ///
    /// assert_eq!(greeting(&testing::claims().subject("auth0|alice").build()), "hello auth0|alice");
    /// ```
    #[track_caller]
    pub fn build<T: DeserializeOwned + 'static>(&self) -> Claims<T> {
        let token = self.token_claims();
        match token.custom::<T>() {
            Ok(custom) => Claims::new(token, self.scheme, custom),
            Err(error) => kit_failure("the custom claims do not fit the requested type", error),
        }
    }

    /// The claims, read as a verified token's payload is.
    #[track_caller]
    fn token_claims(&self) -> Arc<TokenClaims> {
        let payload = Value::Object(self.payload.clone()).to_string();
        match TokenClaims::from_payload(payload.as_bytes()) {
            Ok(token) => Arc::new(token),
            Err(problem) => kit_failure("these test claims are not valid claims", problem),
        }
    }

    /// The verification these claims stand for: supplied to a request by
    /// [`TestRequestExt::authenticated`](super::TestRequestExt::authenticated), which the guard
    /// behind `#[require_auth]`, `RequireAuth` and the `Claims` extractor take as the request's
    /// verification, then check the route's scopes and permissions as usual.
    #[cfg(feature = "actix")]
    #[track_caller]
    pub(crate) fn into_verified(self) -> crate::verify::Verified {
        crate::verify::Verified {
            claims: self.token_claims(),
            scheme: self.scheme,
            renew_nonce: false,
            recorded: None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::claims::Audience;

    #[test]
    fn defaults_and_every_setter() {
        let plain: Claims = claims().build();
        assert_eq!(plain.sub, "user|123");
        assert_eq!(plain.iss, TEST_CLAIMS_ISSUER);
        assert_eq!(plain.aud, Audience::One("https://api.example.com".to_owned()));
        assert_eq!(plain.exp - plain.iat, 3600);
        assert!(plain.scope.is_empty() && plain.permissions.is_empty());
        assert_eq!(plain.scheme(), Scheme::Bearer);

        let all: Claims = claims()
            .subject("auth0|alice")
            .scope("  read:a write:b ")
            .permissions(["p:1", "p:2"])
            .org_id("org_1")
            .audiences(["a", "b"])
            .issuer("https://tenant.example.com/")
            .azp("client-1")
            .scheme(Scheme::Dpop)
            .claim("https://x/roles", json!(["admin"]))
            .claim("cnf", json!({"jkt": "thumb"}))
            .remove("exp")
            .claim("exp", 42)
            .build();
        assert_eq!(all.sub, "auth0|alice");
        assert!(all.has_all_scopes(&["read:a", "write:b"]) && all.scope.len() == 2);
        assert_eq!(all.permissions, ["p:1", "p:2"]);
        assert_eq!(all.org_id.as_deref(), Some("org_1"));
        assert_eq!(all.aud, Audience::Many(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(all.iss, "https://tenant.example.com/");
        assert_eq!(all.azp.as_deref(), Some("client-1"));
        assert_eq!(all.scheme(), Scheme::Dpop);
        assert_eq!(all.jkt(), Some("thumb"));
        assert_eq!(all.exp, 42);
        assert_eq!(all.custom()["https://x/roles"], json!(["admin"]));
        assert_eq!(
            claims().audience("x").build::<Map<String, Value>>().aud,
            Audience::One("x".into())
        );
    }

    #[test]
    fn typed_custom_claims() {
        #[derive(Deserialize)]
        struct Roles {
            #[serde(rename = "https://x/roles")]
            roles: Vec<String>,
        }
        let typed: Claims<Roles> = claims().claim("https://x/roles", json!(["a"])).build();
        assert_eq!(typed.custom().roles, ["a"]);
        let wrong = std::panic::catch_unwind(|| claims().build::<Roles>());
        assert!(wrong.is_err());
    }

    #[test]
    fn claims_a_token_could_not_have_are_refused() {
        for builder in [
            claims().remove("sub"),
            claims().claim("exp", "soon"),
            claims().claim("cnf", "not an object"),
        ] {
            let refused = std::panic::catch_unwind(|| builder.build::<Map<String, Value>>());
            let message = refused.err().and_then(|e| e.downcast::<String>().ok()).unwrap();
            assert!(
                message.starts_with("auth0_runtime::testing: these test claims are not valid claims: "),
                "{message}"
            );
        }
    }
}
