//! [`TokenBuilder`]: access tokens from the test issuer, well-formed or deliberately not.

use crate::Algorithm;
use crate::clock::now;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::DpopKey;
use super::signer::{self, KeyKind};
use super::{Shared, kit_failure};

/// The `kid` put in a token signed with a key the issuer never published (when none is set).
const UNPUBLISHED_KID: &str = "unpublished-key";

fn b64_json(map: &Map<String, Value>) -> String {
    URL_SAFE_NO_PAD.encode(Value::Object(map.clone()).to_string())
}

/// Which key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signing {
    /// The issuer's key (see [`TokenBuilder::sign`]).
    Issuer,
    /// A key the issuer never published.
    Stranger,
}

/// Builds an access token signed by a [`TestIssuer`](super::TestIssuer) (from
/// [`TestIssuer::token`](super::TestIssuer::token)).
///
/// Every claim and every header member can be set, replaced or removed, so a test can build the
/// exact token it needs, valid or not. Setters consume and return the builder; the `sign` methods
/// borrow it, so one builder can sign several tokens.
///
/// ```
/// use auth0_runtime::testing::TestIssuer;
/// use serde_json::json;
///
/// let issuer = TestIssuer::start();
/// let expired = issuer.token().expires_in(-60).sign();
/// let wrong_audience = issuer.token().audience("https://other.example.com").sign();
/// let no_exp = issuer.token().remove("exp").sign();
/// let typed = issuer
///     .token()
///     .claim("https://myapp.example.com/roles", json!(["admin"]))
///     .header("typ", "at+jwt")
///     .sign();
/// let forged = issuer.token().sign_with_unknown_key();
/// # let _ = (expired, wrong_audience, no_exp, typed, forged);
/// ```
pub struct TokenBuilder {
    shared: Arc<Shared>,
    /// `None`: HS256 keyed with the issuer's public key (see [`TokenBuilder::alg_confusion`]).
    alg: Option<Algorithm>,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    /// Put the signing key's `kid` in the header at signing time (unless a `kid` is set or removed).
    auto_kid: bool,
}

impl fmt::Debug for TokenBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBuilder")
            .field("alg", &self.alg)
            .field("header", &self.header)
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

impl TokenBuilder {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        let now = now();
        let mut header = Map::new();
        header.insert("alg".to_owned(), json!("RS256"));
        header.insert("typ".to_owned(), json!("JWT"));
        let mut claims = Map::new();
        claims.insert("iss".to_owned(), json!(shared.issuer));
        claims.insert("sub".to_owned(), json!("user|123"));
        let audience = shared.state().audience.clone();
        claims.insert("aud".to_owned(), json!(audience));
        claims.insert("iat".to_owned(), json!(now));
        claims.insert("exp".to_owned(), json!(now.saturating_add(3600)));
        Self {
            shared,
            alg: Some(Algorithm::RS256),
            header,
            claims,
            auto_kid: true,
        }
    }

    /// Sets the claim `name` to `value` (any JSON: `"text"`, `42`, `json!([...])`), replacing it.
    #[must_use]
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// Removes the claim `name` (e.g. `"exp"`, to check that it is required).
    #[must_use]
    pub fn remove(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets `iss` (by default the issuer itself).
    #[must_use]
    pub fn issuer(self, issuer: impl Into<String>) -> Self {
        self.claim("iss", issuer.into())
    }

    /// Sets `sub` (by default `user|123`).
    #[must_use]
    pub fn subject(self, subject: impl Into<String>) -> Self {
        self.claim("sub", subject.into())
    }

    /// Sets `aud` to one audience (a string; by default the audience of the issuer's last
    /// [`config`](super::TestIssuer::config) or [`validator`](super::TestIssuer::validator), else
    /// `https://api.example.com`).
    #[must_use]
    pub fn audience(self, audience: impl Into<String>) -> Self {
        self.claim("aud", audience.into())
    }

    /// Sets `aud` to several audiences (an array).
    ///
    /// ```
    /// # let issuer = auth0_runtime::testing::TestIssuer::start();
    /// let token = issuer
    ///     .token()
    ///     .audiences(["https://api.example.com", "https://tenant.auth0.com/userinfo"])
    ///     .sign();
    /// # let _ = token;
    /// ```
    #[must_use]
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

    /// Sets `org_id` (Auth0 Organizations).
    #[must_use]
    pub fn org_id(self, org_id: impl Into<String>) -> Self {
        self.claim("org_id", org_id.into())
    }

    /// Sets `azp`, the client the token was issued to.
    #[must_use]
    pub fn azp(self, client_id: impl Into<String>) -> Self {
        self.claim("azp", client_id.into())
    }

    /// Sets `scope`, space-delimited (`"read:messages write:messages"`).
    #[must_use]
    pub fn scope(self, scope: impl Into<String>) -> Self {
        self.claim("scope", scope.into())
    }

    /// Sets `permissions` (Auth0 RBAC), an array of strings.
    #[must_use]
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

    /// Sets `exp` to now + `seconds` (negative: already expired).
    #[must_use]
    pub fn expires_in(self, seconds: i64) -> Self {
        self.claim("exp", now().saturating_add(seconds))
    }

    /// Sets `exp` to `timestamp` (seconds since the Unix epoch).
    #[must_use]
    pub fn expires_at(self, timestamp: i64) -> Self {
        self.claim("exp", timestamp)
    }

    /// Sets `nbf` to `timestamp` (seconds since the Unix epoch).
    #[must_use]
    pub fn not_before(self, timestamp: i64) -> Self {
        self.claim("nbf", timestamp)
    }

    /// Sets `iat` to `timestamp` (seconds since the Unix epoch).
    #[must_use]
    pub fn issued_at(self, timestamp: i64) -> Self {
        self.claim("iat", timestamp)
    }

    /// Binds the token to a DPoP key: sets `cnf.jkt` to `thumbprint` (the RFC 7638 SHA-256
    /// thumbprint of the key, base64url), keeping other `cnf` members.
    #[must_use]
    pub fn bind_to_jkt(mut self, thumbprint: impl Into<String>) -> Self {
        let thumbprint = Value::String(thumbprint.into());
        match self.claims.get_mut("cnf") {
            Some(Value::Object(cnf)) => {
                cnf.insert("jkt".to_owned(), thumbprint);
            }
            _ => {
                self.claims.insert("cnf".to_owned(), json!({ "jkt": thumbprint }));
            }
        }
        self
    }

    /// Binds the token to `key`: [`TokenBuilder::bind_to_jkt`] with the key's
    /// [thumbprint](DpopKey::thumbprint). Send it with the DPoP scheme and a proof from the key.
    ///
    /// ```
    /// use auth0_runtime::testing::{DpopKey, TestIssuer};
    ///
    /// let issuer = TestIssuer::start();
    /// let key = DpopKey::generate();
    /// let token = issuer.token().bind_to(&key).sign();
    /// # let _ = token;
    /// ```
    #[must_use]
    pub fn bind_to(self, key: &DpopKey) -> Self {
        self.bind_to_jkt(key.thumbprint())
    }

    /// Sets the header `kid` (by default the `kid` of the signing key). A `kid` the issuer does not
    /// publish gives a token that a verifier must refuse after one refetch of the key set.
    #[must_use]
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.header.insert("kid".to_owned(), Value::String(kid.into()));
        self
    }

    /// Signs with `alg` and says so in the header.
    ///
    /// Asymmetric algorithms sign with the issuer's key for it (see [`TokenBuilder::sign`]); publish
    /// one first with [`TestIssuer::add_key`](super::TestIssuer::add_key) for `ES256`, `ES384`,
    /// `EdDSA`, or to get an RSA key declared for `RS384`, `PS256`… (without one, `PS256` signs with
    /// the current key, whose JWK declares `RS256`).
    #[must_use]
    pub fn alg(mut self, alg: Algorithm) -> Self {
        self.alg = Some(alg);
        self.header.insert("alg".to_owned(), json!(alg.as_str()));
        self
    }

    /// Signs with `HS256` keyed with the current RSA public key (PKCS#1 DER), and says so in the
    /// header: the algorithm-confusion attack, which a verifier must refuse.
    ///
    /// ```
    /// # let issuer = auth0_runtime::testing::TestIssuer::start();
    /// let forged = issuer.token().alg_confusion().sign();
    /// # let _ = forged;
    /// ```
    #[must_use]
    pub fn alg_confusion(mut self) -> Self {
        self.alg = None;
        self.header.insert("alg".to_owned(), json!("HS256"));
        self
    }

    /// Sets the header member `name` (`typ`, `crit`, `jku`, even `alg` or `kid`) to `value`, without
    /// changing how the token is signed.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.header.insert(name.into(), value.into());
        self
    }

    /// Removes the header member `name` (removing `kid` keeps it out of the signed token too).
    #[must_use]
    pub fn remove_header(mut self, name: &str) -> Self {
        self.header.remove(name);
        if name == "kid" {
            self.auto_kid = false;
        }
        self
    }

    /// Signs the token with the issuer's key: the key named by the header `kid` if the issuer has it
    /// (published or not) and it suits the algorithm, otherwise the newest published key declared
    /// for the algorithm, otherwise the newest published key of its type (by default: the current
    /// RS256 key). Without any, a key that was never published signs, with `kid`
    /// `unpublished-key`.
    pub fn sign(&self) -> String {
        self.finish(Signing::Issuer)
    }

    /// Signs with a key the issuer never published, under the `kid` [`TokenBuilder::sign`] would
    /// use: a forged token with a known `kid` and a bad signature.
    pub fn sign_with_unknown_key(&self) -> String {
        self.finish(Signing::Stranger)
    }

    /// An unsecured JWT (`"alg": "none"`, empty signature), which a verifier must refuse.
    ///
    /// ```
    /// # let issuer = auth0_runtime::testing::TestIssuer::start();
    /// let token = issuer.token().unsecured();
    /// assert!(token.ends_with('.'));
    /// ```
    pub fn unsecured(&self) -> String {
        let mut header = self.header.clone();
        header.insert("alg".to_owned(), json!("none"));
        if self.auto_kid && !header.contains_key("kid") {
            header.insert("kid".to_owned(), Value::String(self.shared.current().0));
        }
        format!("{}.{}.", b64_json(&header), b64_json(&self.claims))
    }

    fn finish(&self, signing: Signing) -> String {
        let explicit_kid = self.header.get("kid").and_then(Value::as_str);
        let (kid, signer, hmac_secret) = match self.alg {
            None => {
                let (kid, current) = self.shared.current();
                let secret = match signing {
                    Signing::Issuer => current.public_bytes(),
                    Signing::Stranger => self.shared.stranger(KeyKind::Rsa).public_bytes(),
                };
                (kid, None, secret)
            }
            Some(alg) => {
                let kind = KeyKind::for_alg(alg);
                let picked = self.shared.pick_key(alg, explicit_kid);
                match (signing, picked) {
                    (Signing::Issuer, Some((kid, signer))) => (kid, Some(signer), Vec::new()),
                    (Signing::Issuer, None) => (
                        UNPUBLISHED_KID.to_owned(),
                        Some(self.shared.stranger(kind)),
                        Vec::new(),
                    ),
                    (Signing::Stranger, picked) => (
                        picked.map_or_else(|| UNPUBLISHED_KID.to_owned(), |(kid, _)| kid),
                        Some(self.shared.stranger(kind)),
                        Vec::new(),
                    ),
                }
            }
        };
        let mut header = self.header.clone();
        if self.auto_kid && !header.contains_key("kid") {
            header.insert("kid".to_owned(), Value::String(kid));
        }
        let input = format!("{}.{}", b64_json(&header), b64_json(&self.claims));
        let signature = match (signer, self.alg) {
            (Some(signer), Some(alg)) => signer.sign(alg, input.as_bytes()),
            _ => Ok(signer::hs256(&hmac_secret, input.as_bytes())),
        };
        match signature {
            Ok(signature) => format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)),
            Err(error) => kit_failure("signing a token", error),
        }
    }
}
