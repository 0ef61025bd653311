//! [`DpopKey`] and [`ProofBuilder`]: a client's DPoP key and the proofs it signs (RFC 9449).

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::error::Unspecified;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::kit_failure;
use crate::clock::now;
use crate::dpop::{access_token_hash, ec_public_jwk, sign_proof, thumbprint};

/// A client's DPoP key: a P-256 key pair that signs proofs with `ES256`.
///
/// Bind a token to it with [`TokenBuilder::bind_to`](super::TokenBuilder::bind_to) (which sets
/// `cnf.jkt` to [`DpopKey::thumbprint`]), then send the token with `Authorization: DPoP <token>`
/// and a fresh proof from [`DpopKey::proof`] in the `DPoP` header. Cloning is cheap and the clones
/// are the same key.
///
/// ```
/// use auth0_runtime::testing::{DpopKey, TestIssuer};
///
/// let issuer = TestIssuer::start();
/// let key = DpopKey::generate();
/// let token = issuer.token().bind_to(&key).sign();
/// let proof = key
///     .proof("GET", "https://api.example.com/api/private")
///     .access_token(&token)
///     .sign();
/// // Send: `Authorization: DPoP {token}` and `DPoP: {proof}`.
/// assert_eq!(proof.split('.').count(), 3);
/// ```
#[derive(Clone)]
pub struct DpopKey(Arc<KeyInner>);

struct KeyInner {
    pair: EcdsaKeyPair,
    jwk: Map<String, Value>,
    thumbprint: String,
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey")
            .field("thumbprint", &self.0.thumbprint)
            .finish_non_exhaustive()
    }
}

impl DpopKey {
    /// A fresh P-256 key.
    ///
    /// # Panics
    ///
    /// If the key cannot be generated (the system's random source fails).
    ///
    /// ```
    /// use auth0_runtime::testing::DpopKey;
    ///
    /// let (a, b) = (DpopKey::generate(), DpopKey::generate());
    /// assert_ne!(a.thumbprint(), b.thumbprint());
    /// ```
    #[track_caller]
    pub fn generate() -> Self {
        let generated = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).and_then(|pair| {
            let jwk = ec_public_jwk(&pair).ok_or(Unspecified)?;
            let thumbprint = thumbprint(&jwk).ok_or(Unspecified)?;
            Ok(KeyInner {
                pair,
                jwk,
                thumbprint,
            })
        });
        match generated {
            Ok(inner) => Self(Arc::new(inner)),
            Err(error) => kit_failure("generating a DPoP key", error),
        }
    }

    /// The RFC 7638 SHA-256 thumbprint of the public key, base64url without padding: the `cnf.jkt`
    /// of a token bound to this key.
    ///
    /// ```
    /// let key = auth0_runtime::testing::DpopKey::generate();
    /// assert_eq!(key.thumbprint().len(), 43); // 32 bytes, base64url
    /// ```
    pub fn thumbprint(&self) -> String {
        self.0.thumbprint.clone()
    }

    /// The public key as a JWK (`kty` `EC`, `crv` `P-256`, `x`, `y`): the `jwk` header of its proofs.
    ///
    /// ```
    /// let key = auth0_runtime::testing::DpopKey::generate();
    /// let jwk = key.public_jwk();
    /// assert_eq!((jwk["kty"].as_str(), jwk["crv"].as_str()), (Some("EC"), Some("P-256")));
    /// assert!(jwk.get("d").is_none());
    /// ```
    pub fn public_jwk(&self) -> Value {
        Value::Object(self.0.jwk.clone())
    }

    /// A proof builder for a request `method` (e.g. `GET`, sent as `htm` exactly as given) to `url`
    /// (sent as `htu`; the server drops the query and fragment before comparing).
    ///
    /// The proof has header `typ` = `dpop+jwt`, `alg` = `ES256`, `jwk` = [`DpopKey::public_jwk`],
    /// and claims `jti` (16 random bytes, base64url), `htm`, `htu` and `iat` = now. Add `ath` with
    /// [`ProofBuilder::access_token`], which a protected resource always requires.
    ///
    /// `url` must be absolute (`http://` or `https://` and a host), like the URL the API rebuilds
    /// from the request; in `actix_web::test` that is `http://localhost:8080` and the path, and
    /// [`TestRequestExt::dpop`](super::TestRequestExt::dpop) builds it for you. To send any other
    /// `htu`, set it with [`ProofBuilder::claim`].
    ///
    /// # Panics
    ///
    /// If `url` is not absolute (`"/api"` is refused with a message suggesting
    /// `http://localhost:8080/api`), or the `jti` cannot be drawn (the system's random source
    /// fails).
    ///
    /// ```
    /// let key = auth0_runtime::testing::DpopKey::generate();
    /// let proof = key.proof("POST", "https://api.example.com/api/messages").sign();
    /// # let _ = proof;
    /// ```
    #[track_caller]
    pub fn proof(&self, method: &str, url: &str) -> ProofBuilder {
        if !is_absolute(url) {
            let like = if url.starts_with('/') {
                format!("http://localhost:8080{url}")
            } else {
                "http://localhost:8080/api".to_owned()
            };
            kit_failure(
                "DpopKey::proof",
                format!(
                    "{url:?} is not a URL: a proof needs an absolute URL like {like} (the URL the \
                     API rebuilds from the request; actix_web::test serves http://localhost:8080), \
                     or use TestRequestExt::dpop, which builds it"
                ),
            );
        }
        ProofBuilder::new(self.clone(), method, url)
    }
}

/// Builds a DPoP proof signed by a [`DpopKey`] (from [`DpopKey::proof`]).
///
/// Every claim and every header member can be set, replaced or removed, and the signature replaced,
/// so a test can build the exact proof it needs, valid or not. Setters consume and return the
/// builder; [`ProofBuilder::sign`] borrows it.
///
/// A `jti` is drawn once, when the builder is made: every proof one builder signs carries the same
/// `jti`, so signing twice makes a replay. Call [`DpopKey::proof`] again for a fresh proof.
///
/// ```
/// use auth0_runtime::testing::DpopKey;
/// use serde_json::json;
///
/// let key = DpopKey::generate();
/// let url = "https://api.example.com/api/private";
/// let token = "eyJ...the.access-token";
/// let valid = key.proof("GET", url).access_token(token).sign();
/// let no_ath = key.proof("GET", url).sign();
/// let expired = key.proof("GET", url).access_token(token).issued_at(0).sign();
/// let wrong_typ = key.proof("GET", url).access_token(token).header("typ", "JWT").sign();
/// let unsigned = key.proof("GET", url).access_token(token).header("alg", "none").sign();
/// let forged = key.proof("GET", url).access_token(token).signature(vec![0; 64]).sign();
/// let no_jti = key.proof("GET", url).access_token(token).remove("jti").sign();
/// let extra = key.proof("GET", url).access_token(token).claim("nonce", json!("n-1")).sign();
/// # let _ = (valid, no_ath, expired, wrong_typ, unsigned, forged, no_jti, extra);
/// ```
#[derive(Clone)]
pub struct ProofBuilder {
    key: DpopKey,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signature: Option<Vec<u8>>,
}

impl fmt::Debug for ProofBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProofBuilder")
            .field("key", &self.key)
            .field("header", &self.header)
            .field("claims", &self.claims)
            .field("signature", &self.signature)
            .finish()
    }
}

impl ProofBuilder {
    fn new(key: DpopKey, method: &str, url: &str) -> Self {
        let mut header = Map::new();
        header.insert("typ".to_owned(), "dpop+jwt".into());
        header.insert("alg".to_owned(), "ES256".into());
        header.insert("jwk".to_owned(), key.public_jwk());
        let mut claims = Map::new();
        claims.insert("jti".to_owned(), random_jti().into());
        claims.insert("htm".to_owned(), method.into());
        claims.insert("htu".to_owned(), url.into());
        claims.insert("iat".to_owned(), now().into());
        Self {
            key,
            header,
            claims,
            signature: None,
        }
    }

    /// Binds the proof to `token`: sets `ath` to base64url(SHA-256(`token`)).
    ///
    /// ```
    /// # let key = auth0_runtime::testing::DpopKey::generate();
    /// let proof = key
    ///     .proof("GET", "https://api.example.com/api/private")
    ///     .access_token("the-access-token")
    ///     .sign();
    /// # let _ = proof;
    /// ```
    #[must_use]
    pub fn access_token(self, token: &str) -> Self {
        self.claim("ath", access_token_hash(token))
    }

    /// Sets `jti` (by default 16 random bytes, base64url), e.g. to reuse one or to send an empty
    /// or overlong one.
    ///
    /// ```
    /// # let key = auth0_runtime::testing::DpopKey::generate();
    /// let empty = key.proof("GET", "https://api.example.com/").jti("").sign();
    /// let long = key.proof("GET", "https://api.example.com/").jti("x".repeat(1000)).sign();
    /// # let _ = (empty, long);
    /// ```
    #[must_use]
    pub fn jti(self, jti: impl Into<String>) -> Self {
        self.claim("jti", jti.into())
    }

    /// Sets `iat` to `timestamp` (seconds since the Unix epoch; by default now).
    ///
    /// ```
    /// # let key = auth0_runtime::testing::DpopKey::generate();
    /// # let now = 1_700_000_000_i64;
    /// let ten_minutes_old = key.proof("GET", "https://api.example.com/").issued_at(now - 600).sign();
    /// # let _ = ten_minutes_old;
    /// ```
    #[must_use]
    pub fn issued_at(self, timestamp: i64) -> Self {
        self.claim("iat", timestamp)
    }

    /// Sets the server nonce (RFC 9449 §8): the value of the `DPoP-Nonce` header the API sent with
    /// its `use_dpop_nonce` answer, or with an earlier success.
    ///
    /// ```
    /// # let key = auth0_runtime::testing::DpopKey::generate();
    /// # let nonce_from_the_api = "eyJ7S_zG.eyJH0-Z.HX4w-7v";
    /// let retry = key.proof("GET", "https://api.example.com/a").nonce(nonce_from_the_api).sign();
    /// # let _ = retry;
    /// ```
    #[must_use]
    pub fn nonce(self, nonce: impl Into<String>) -> Self {
        self.claim("nonce", nonce.into())
    }

    /// Sets the claim `name` to `value` (any JSON, `null` included), replacing it: `htm`, `htu`,
    /// `iat` with another type, `nonce`…
    ///
    /// ```
    /// use serde_json::json;
    /// # let key = auth0_runtime::testing::DpopKey::generate();
    /// let other_path = key
    ///     .proof("GET", "https://api.example.com/a")
    ///     .claim("htu", "https://api.example.com/b")
    ///     .sign();
    /// let string_iat = key.proof("GET", "https://api.example.com/a").claim("iat", json!("1")).sign();
    /// # let _ = (other_path, string_iat);
    /// ```
    #[must_use]
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// Removes the claim `name` (e.g. `"jti"`, `"ath"`).
    ///
    /// ```
    /// # let key = auth0_runtime::testing::DpopKey::generate();
    /// let no_iat = key.proof("GET", "https://api.example.com/").remove("iat").sign();
    /// # let _ = no_iat;
    /// ```
    #[must_use]
    pub fn remove(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets the header member `name` (`typ`, `alg`, `jwk`, `crit`…) to `value`, without changing how
    /// the proof is signed (always ES256 with this key).
    ///
    /// ```
    /// use serde_json::json;
    /// # let key = auth0_runtime::testing::DpopKey::generate();
    /// // A private key member in the JWK, which a server must refuse.
    /// let mut jwk = key.public_jwk();
    /// jwk["d"] = json!("c2VjcmV0");
    /// let leaky = key.proof("GET", "https://api.example.com/").header("jwk", jwk).sign();
    /// let hmac = key.proof("GET", "https://api.example.com/").header("alg", "HS256").sign();
    /// # let _ = (leaky, hmac);
    /// ```
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.header.insert(name.into(), value.into());
        self
    }

    /// Removes the header member `name` (e.g. `"jwk"`, `"typ"`).
    ///
    /// ```
    /// # let key = auth0_runtime::testing::DpopKey::generate();
    /// let keyless = key.proof("GET", "https://api.example.com/").remove_header("jwk").sign();
    /// # let _ = keyless;
    /// ```
    #[must_use]
    pub fn remove_header(mut self, name: &str) -> Self {
        self.header.remove(name);
        self
    }

    /// Sends `signature` (raw bytes, base64url-encoded into the proof) instead of the real one.
    ///
    /// ```
    /// # let key = auth0_runtime::testing::DpopKey::generate();
    /// let psychic = key.proof("GET", "https://api.example.com/").signature(vec![0; 64]).sign();
    /// assert!(psychic.ends_with(&"A".repeat(86)));
    /// ```
    #[must_use]
    pub fn signature(mut self, signature: Vec<u8>) -> Self {
        self.signature = Some(signature);
        self
    }

    /// The compact proof, `header.payload.signature`, for the `DPoP` header.
    ///
    /// # Panics
    ///
    /// If signing fails (the system's random source fails).
    ///
    /// ```
    /// # let key = auth0_runtime::testing::DpopKey::generate();
    /// let builder = key.proof("GET", "https://api.example.com/");
    /// let (first, again) = (builder.sign(), builder.sign());
    /// // ECDSA signatures differ, but both proofs carry the same `jti`: the second is a replay.
    /// assert_ne!(first, again);
    /// ```
    #[track_caller]
    pub fn sign(&self) -> String {
        let signed = sign_proof(&self.header, &self.claims, |input| match &self.signature {
            Some(signature) => Ok(signature.clone()),
            None => Ok(self
                .key
                .0
                .pair
                .sign(&SystemRandom::new(), input)?
                .as_ref()
                .to_vec()),
        });
        match signed {
            Ok(proof) => proof,
            Err(error) => kit_failure("signing a DPoP proof", error),
        }
    }
}

/// `http://` or `https://` (any case) followed by a host.
fn is_absolute(url: &str) -> bool {
    let scheme_end = url.find("://").unwrap_or(0);
    let scheme = &url[..scheme_end];
    let rest = &url[scheme_end.saturating_add(3).min(url.len())..];
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        && !rest.is_empty()
        && !rest.starts_with(['/', '?', '#'])
}

/// 16 random bytes, base64url (RFC 9449 §11.1 asks for at least 96 bits of randomness).
#[track_caller]
fn random_jti() -> String {
    let mut bytes = [0_u8; 16];
    if let Err(error) = SystemRandom::new().fill(&mut bytes) {
        kit_failure("drawing a DPoP jti", error);
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::dpop::{ProofRequest, ProofSettings, verify_proof};

    fn decode(proof: &str) -> (Value, Value, Vec<u8>) {
        let parts: Vec<&str> = proof.split('.').collect();
        assert_eq!(parts.len(), 3, "{proof}");
        let json = |part: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
        (
            json(parts[0]),
            json(parts[1]),
            URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
        )
    }

    #[test]
    fn a_default_proof_verifies_and_names_the_key() {
        let key = DpopKey::generate();
        let url = "https://api.example.com/api/private";
        let proof = key.proof("GET", url).access_token("token").sign();
        let (header, claims, signature) = decode(&proof);
        assert_eq!(
            header,
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()})
        );
        assert_eq!(signature.len(), 64);
        let jti = claims["jti"].as_str().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(jti).unwrap().len(), 16);
        assert_eq!(
            (claims["htm"].as_str(), claims["htu"].as_str()),
            (Some("GET"), Some(url))
        );
        assert!((claims["iat"].as_i64().unwrap() - now()).abs() <= 1);
        let request = ProofRequest {
            method: "GET",
            url,
            access_token: "token",
            public_origins: &[],
            now: now(),
        };
        let verified = verify_proof(&proof, &request, &ProofSettings::default()).unwrap();
        assert_eq!(verified.jkt, key.thumbprint());
        assert_eq!(verified.jti, jti);
        // Two builders draw two jti; one builder keeps its own.
        let builder = key.proof("GET", url);
        assert_ne!(
            decode(&builder.sign()).1["jti"],
            decode(&key.proof("GET", url).sign()).1["jti"]
        );
        assert_eq!(decode(&builder.sign()).1["jti"], decode(&builder.sign()).1["jti"]);
        // Clones are the same key; another key is another thumbprint.
        assert_eq!(key.clone().thumbprint(), key.thumbprint());
        assert_ne!(DpopKey::generate().thumbprint(), key.thumbprint());
    }

    #[test]
    fn a_relative_url_is_refused_with_the_absolute_one() {
        let key = DpopKey::generate();
        let message = |url: &'static str| {
            let key = key.clone();
            let refused = std::panic::catch_unwind(move || key.proof("GET", url));
            refused.err().and_then(|e| e.downcast::<String>().ok()).unwrap()
        };
        let relative = message("/api");
        assert!(
            relative.starts_with("auth0_runtime::testing: DpopKey::proof: \"/api\" is not a URL"),
            "{relative}"
        );
        assert!(
            relative.contains("needs an absolute URL like http://localhost:8080/api "),
            "{relative}"
        );
        for bad in [
            "",
            "api/x",
            "localhost:8080/api",
            "https://",
            "http:///x",
            "ftp://h/x",
        ] {
            assert!(message(bad).contains("needs an absolute URL like"), "{bad}");
        }
        for good in [
            "http://localhost:8080/api",
            "HTTPS://API.example.com",
            "http://h?x",
        ] {
            let _ = key.proof("GET", good);
        }
    }

    #[test]
    fn every_member_can_be_changed() {
        let key = DpopKey::generate();
        let proof = key
            .proof("GET", "https://a.example/")
            .jti("j-1")
            .issued_at(7)
            .claim("nonce", "n")
            .claim("htm", Value::Null)
            .remove("htu")
            .header("typ", "JWT")
            .header("kid", "k")
            .remove_header("jwk")
            .signature(vec![1, 2, 3])
            .sign();
        let (header, claims, signature) = decode(&proof);
        assert_eq!(header, json!({"typ": "JWT", "alg": "ES256", "kid": "k"}));
        assert_eq!(claims, json!({"jti": "j-1", "iat": 7, "nonce": "n", "htm": null}));
        assert_eq!(signature, [1, 2, 3]);
        let (_, claims, _) = decode(&key.proof("GET", "https://a.example/").access_token("t").sign());
        assert_eq!(claims["ath"], json!(access_token_hash("t")));
        assert!(format!("{key:?}").contains(&key.thumbprint()));
    }
}
