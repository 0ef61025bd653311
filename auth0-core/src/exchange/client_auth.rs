//! Client authentication at the token endpoint: `client_secret_basic` (RFC 6749 §2.3.1) and
//! `private_key_jwt` (RFC 7523 client assertions, OpenID Connect Core §9), and the
//! `application/x-www-form-urlencoded` encoding both need.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;

use crate::Algorithm;
use crate::answer::ConfigError;

/// `client_assertion_type` of RFC 7523 §2.2.
pub(crate) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Lifetime of a client assertion, in seconds.
pub(crate) const ASSERTION_LIFETIME: i64 = 60;

const KEY_VAR: &str = "AUTH0_CLIENT_ASSERTION_KEY";

/// A private key that signs `private_key_jwt` client assertions (RFC 7523), instead of sending a
/// client secret.
///
/// Read from a PEM file: PKCS#8 (`BEGIN PRIVATE KEY`), PKCS#1 (`BEGIN RSA PRIVATE KEY`) or SEC 1
/// (`BEGIN EC PRIVATE KEY`); RSA keys of 2048 to 8192 bits (RS256 by default, or PS256) and P-256
/// keys (ES256). Register the matching public key (or certificate) as a credential of the
/// application in the Auth0 dashboard. Its `Debug` output never shows the key.
///
/// ```no_run
/// use auth0_runtime::{Auth0Config, ClientAssertionKey};
///
/// let pem = std::fs::read("private_key.pem")?;
/// let config = Auth0Config::new("tenant.us.auth0.com", "https://api.example.com")
///     .client_assertion("my-client-id", ClientAssertionKey::from_pem(&pem)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ClientAssertionKey {
    key: Arc<SigningKey>,
    alg: Algorithm,
    kid: Option<String>,
}

enum SigningKey {
    Rsa(RsaKeyPair),
    P256(EcdsaKeyPair),
}

impl fmt::Debug for ClientAssertionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAssertionKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn invalid(problem: &str) -> ConfigError {
    ConfigError::Invalid {
        var: KEY_VAR,
        problem: problem.to_owned(),
    }
}

impl ClientAssertionKey {
    /// Parses a PEM private key (the first private key block of `pem`).
    ///
    /// # Errors
    /// A [`ConfigError`] naming `AUTH0_CLIENT_ASSERTION_KEY` when the PEM holds no usable
    /// unencrypted RSA or P-256 private key. The message never contains key material.
    pub fn from_pem(pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let text = std::str::from_utf8(pem.as_ref())
            .map_err(|_| invalid("is not a PEM file: expected -----BEGIN PRIVATE KEY-----"))?;
        let (label, der) = pem_block(text).ok_or_else(|| {
            invalid("holds no PEM private key: expected a -----BEGIN PRIVATE KEY----- block")
        })?;
        let key = match label {
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der).map(SigningKey::Rsa).or_else(|_| {
                EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &der).map(SigningKey::P256)
            }),
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der).map(SigningKey::Rsa),
            "EC PRIVATE KEY" => {
                EcdsaKeyPair::from_private_key_der(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                    .map(SigningKey::P256)
            }
            "ENCRYPTED PRIVATE KEY" => {
                return Err(invalid(
                    "is encrypted: export it without a passphrase (openssl pkcs8 -topk8 -nocrypt)",
                ));
            }
            _ => {
                return Err(invalid(
                    "holds no PEM private key: expected a -----BEGIN PRIVATE KEY----- block",
                ));
            }
        }
        .map_err(|_| {
            invalid("is not a usable private key: use an RSA key of 2048 to 8192 bits or a P-256 key")
        })?;
        let alg = match key {
            SigningKey::Rsa(_) => Algorithm::RS256,
            SigningKey::P256(_) => Algorithm::ES256,
        };
        Ok(Self {
            key: Arc::new(key),
            alg,
            kid: None,
        })
    }

    /// Signs with `alg` instead of the default (RS256 for RSA keys, ES256 for P-256 keys). RSA
    /// keys accept RS256 and PS256, P-256 keys ES256; anything else is refused when the validator
    /// is built (`AUTH0_CLIENT_ASSERTION_ALG`).
    #[must_use]
    pub fn algorithm(mut self, alg: Algorithm) -> Self {
        self.alg = alg;
        self
    }

    /// Puts `kid` in the assertion's header (optional for Auth0; names one of several
    /// credentials).
    #[must_use]
    pub fn key_id(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The algorithm the assertions are signed with.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// Checks that the algorithm fits the key.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        match (&*self.key, self.alg) {
            (SigningKey::Rsa(_), Algorithm::RS256 | Algorithm::PS256)
            | (SigningKey::P256(_), Algorithm::ES256) => Ok(()),
            (SigningKey::Rsa(_), alg) => Err(ConfigError::Invalid {
                var: "AUTH0_CLIENT_ASSERTION_ALG",
                problem: format!("must be RS256 or PS256 for an RSA key, not {alg:?}"),
            }),
            (SigningKey::P256(_), alg) => Err(ConfigError::Invalid {
                var: "AUTH0_CLIENT_ASSERTION_ALG",
                problem: format!("must be ES256 for a P-256 key, not {alg:?}"),
            }),
        }
    }

    /// A fresh client assertion: `iss` = `sub` = the client id, `aud` = the tenant's issuer URL,
    /// `iat` = now, `exp` = now + 60 s, a random `jti`.
    pub(crate) fn assertion(&self, client_id: &str, audience: &str, now: i64) -> Option<String> {
        let rng = SystemRandom::new();
        let mut jti = [0u8; 16];
        rng.fill(&mut jti).ok()?;
        let mut header = json!({"alg": alg_name(self.alg), "typ": "JWT"});
        if let (Some(kid), Some(map)) = (&self.kid, header.as_object_mut()) {
            map.insert("kid".to_owned(), json!(kid));
        }
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": now,
            "exp": now.saturating_add(ASSERTION_LIFETIME),
            "jti": URL_SAFE_NO_PAD.encode(jti),
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = match (&*self.key, self.alg) {
            (SigningKey::Rsa(key), alg) => {
                let padding: &'static dyn sig::RsaEncoding = if alg == Algorithm::PS256 {
                    &sig::RSA_PSS_SHA256
                } else {
                    &sig::RSA_PKCS1_SHA256
                };
                let mut out = vec![0; key.public_modulus_len()];
                key.sign(padding, &rng, input.as_bytes(), &mut out).ok()?;
                out
            }
            (SigningKey::P256(key), _) => key.sign(&rng, input.as_bytes()).ok()?.as_ref().to_vec(),
        };
        Some(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::PS256 => "PS256",
        Algorithm::ES256 => "ES256",
        _ => "RS256",
    }
}

/// The label and the decoded body of the first PEM block that holds a private key.
fn pem_block(text: &str) -> Option<(&str, Vec<u8>)> {
    let mut rest = text;
    loop {
        let start = rest.find("-----BEGIN ")?;
        let after = &rest[start + 11..];
        let label_end = after.find("-----")?;
        let label = &after[..label_end];
        let body = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let end = body.find(&end_marker)?;
        if label.ends_with("PRIVATE KEY") {
            let b64: String = body[..end].split_whitespace().collect();
            return STANDARD.decode(b64).ok().map(|der| (label, der));
        }
        rest = &body[end + end_marker.len()..];
    }
}

/// `Authorization: Basic …` of RFC 6749 §2.3.1: the id and the secret form-urlencoded, then
/// base64.
pub(crate) fn basic_authorization(client_id: &str, secret: &str) -> String {
    let mut pair = String::with_capacity(client_id.len() + secret.len() + 1);
    encode_into(&mut pair, client_id);
    pair.push(':');
    encode_into(&mut pair, secret);
    format!("Basic {}", STANDARD.encode(pair))
}

/// `application/x-www-form-urlencoded` of `fields`, in order, as Python's `urlencode` (which the
/// reference SDK's HTTP client uses) writes it: unreserved characters `A-Z a-z 0-9 _ . - ~` as
/// they are, space as `+`, every other byte of the UTF-8 encoding as `%XX` (upper case).
pub(crate) fn form_urlencode<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (name, value) in fields {
        if !out.is_empty() {
            out.push('&');
        }
        encode_into(&mut out, name);
        out.push('=');
        encode_into(&mut out, value);
    }
    out
}

fn encode_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0f)]));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use aws_lc_rs::encoding::AsDer as _;
    use aws_lc_rs::signature::{KeyPair as _, UnparsedPublicKey};

    use super::*;

    fn pem(label: &str, der: &[u8]) -> String {
        let b64 = STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    fn parts(jwt: &str) -> (serde_json::Value, serde_json::Value, String, Vec<u8>) {
        let p: Vec<&str> = jwt.split('.').collect();
        let json = |s: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap();
        (
            json(p[0]),
            json(p[1]),
            format!("{}.{}", p[0], p[1]),
            URL_SAFE_NO_PAD.decode(p[2]).unwrap(),
        )
    }

    #[test]
    fn form_encoding_matches_python_urlencode() {
        assert_eq!(
            form_urlencode([("a b", "x+y/z=&~*é"), ("empty", "")]),
            "a+b=x%2By%2Fz%3D%26~%2A%C3%A9&empty="
        );
        assert_eq!(
            form_urlencode([("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange")]),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"
        );
    }

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        assert_eq!(
            basic_authorization("id", "secret"),
            format!("Basic {}", STANDARD.encode("id:secret"))
        );
        assert_eq!(
            basic_authorization("a:b", "p w%"),
            format!("Basic {}", STANDARD.encode("a%3Ab:p+w%25"))
        );
    }

    #[test]
    fn rsa_assertions_verify_in_both_paddings() {
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 = pair.as_der().unwrap();
        let public = pair.public_key().as_ref().to_vec();
        for (label, der) in [("PRIVATE KEY", pkcs8.as_ref().to_vec())] {
            let key = ClientAssertionKey::from_pem(pem(label, &der)).unwrap();
            assert_eq!(key.alg(), Algorithm::RS256);
            for (alg, verify) in [
                (Algorithm::RS256, &sig::RSA_PKCS1_2048_8192_SHA256),
                (Algorithm::PS256, &sig::RSA_PSS_2048_8192_SHA256),
            ] {
                let key = key.clone().algorithm(alg).key_id("k1");
                key.check().unwrap();
                let jwt = key.assertion("client", "https://tenant/", 1000).unwrap();
                let (header, claims, input, signature) = parts(&jwt);
                assert_eq!(header, json!({"alg": alg_name(alg), "typ": "JWT", "kid": "k1"}));
                assert_eq!(claims["iss"], "client");
                assert_eq!(claims["sub"], "client");
                assert_eq!(claims["aud"], "https://tenant/");
                assert_eq!(
                    (claims["iat"].as_i64(), claims["exp"].as_i64()),
                    (Some(1000), Some(1060))
                );
                assert_eq!(claims["jti"].as_str().map(str::len), Some(22));
                UnparsedPublicKey::new(verify, &public)
                    .verify(input.as_bytes(), &signature)
                    .unwrap();
            }
            assert!(key.clone().algorithm(Algorithm::ES256).check().is_err());
        }
        let jti = |key: &ClientAssertionKey| parts(&key.assertion("c", "a", 0).unwrap()).1["jti"].clone();
        let key = ClientAssertionKey::from_pem(pem("PRIVATE KEY", pkcs8.as_ref())).unwrap();
        assert_ne!(jti(&key), jti(&key), "a fresh jti every time");
        assert!(!format!("{key:?}").contains("MII"));
    }

    /// The `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo` (RFC 5208): the last element of the
    /// outer sequence, an OCTET STRING.
    fn pkcs1_of(pkcs8: &[u8]) -> Vec<u8> {
        fn header(der: &[u8]) -> (usize, usize) {
            let first = der[1];
            if first < 0x80 {
                (2, usize::from(first))
            } else {
                let n = usize::from(first & 0x7f);
                let len = der[2..2 + n]
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
                (2 + n, len)
            }
        }
        let (outer_head, _) = header(pkcs8);
        let mut rest = &pkcs8[outer_head..];
        loop {
            let (head, len) = header(rest);
            if rest[0] == 0x04 {
                return rest[head..head + len].to_vec();
            }
            rest = &rest[head + len..];
        }
    }

    #[test]
    fn pkcs1_rsa_keys_are_read() {
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs1 = pkcs1_of(pair.as_der().unwrap().as_ref());
        let key = ClientAssertionKey::from_pem(pem("RSA PRIVATE KEY", &pkcs1)).unwrap();
        let (_, _, input, signature) = parts(&key.assertion("c", "a", 0).unwrap());
        UnparsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, pair.public_key().as_ref())
            .verify(input.as_bytes(), &signature)
            .unwrap();
    }

    #[test]
    fn ec_assertions_verify() {
        let pair = EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let pkcs8 = pair.to_pkcs8v1().unwrap();
        let sec1 = pair.private_key().as_der().unwrap();
        for pem in [
            pem("PRIVATE KEY", pkcs8.as_ref()),
            pem("EC PRIVATE KEY", sec1.as_ref()),
        ] {
            let key = ClientAssertionKey::from_pem(format!("junk before\n{pem}")).unwrap();
            assert_eq!(key.alg(), Algorithm::ES256);
            assert!(key.clone().algorithm(Algorithm::RS256).check().is_err());
            let (header, _, input, signature) = parts(&key.assertion("c", "a", 0).unwrap());
            assert_eq!(header["alg"], "ES256");
            assert_eq!(signature.len(), 64);
            UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref())
                .verify(input.as_bytes(), &signature)
                .unwrap();
        }
    }

    #[test]
    fn bad_pem_is_a_config_error_without_key_material() {
        for bad in [
            "".to_owned(),
            "not pem".to_owned(),
            pem("CERTIFICATE", b"abc"),
            pem("PRIVATE KEY", b"not a key"),
            pem("ENCRYPTED PRIVATE KEY", b"x"),
            "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----".to_owned(),
        ] {
            let error = ClientAssertionKey::from_pem(&bad).unwrap_err().to_string();
            assert!(error.starts_with("AUTH0_CLIENT_ASSERTION_KEY "), "{error}");
        }
        assert!(
            ClientAssertionKey::from_pem(pem("ENCRYPTED PRIVATE KEY", b"x"))
                .unwrap_err()
                .to_string()
                .contains("encrypted")
        );
    }
}
