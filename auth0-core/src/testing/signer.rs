//! The issuer's signing keys: generation, JWK export and JWS signing with aws-lc-rs.

use std::fmt;
use std::io;

use crate::Algorithm;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// The kind of key an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    /// The key kind a JWS algorithm signs with.
    pub(super) fn for_alg(alg: Algorithm) -> Self {
        match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => Self::Rsa,
            Algorithm::ES256 => Self::P256,
            Algorithm::ES384 => Self::P384,
            Algorithm::EdDSA => Self::Ed25519,
        }
    }
}

/// A private key of the issuer (or a stranger's key, never published).
pub(super) enum Signer {
    Rsa(RsaKeyPair),
    P256(EcdsaKeyPair),
    P384(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({:?})", self.kind())
    }
}

fn crypto_error(what: &str) -> io::Error {
    io::Error::other(format!("aws-lc-rs: {what}"))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Signer {
    /// A fresh key (RSA keys are 2048 bits).
    pub(super) fn generate(kind: KeyKind) -> io::Result<Self> {
        Ok(match kind {
            KeyKind::Rsa => Self::Rsa(
                RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| crypto_error("RSA key generation failed"))?,
            ),
            KeyKind::P256 => Self::P256(
                EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| crypto_error("P-256 key generation failed"))?,
            ),
            KeyKind::P384 => Self::P384(
                EcdsaKeyPair::generate(&sig::ECDSA_P384_SHA384_FIXED_SIGNING)
                    .map_err(|_| crypto_error("P-384 key generation failed"))?,
            ),
            KeyKind::Ed25519 => Self::Ed25519(
                Ed25519KeyPair::generate().map_err(|_| crypto_error("Ed25519 key generation failed"))?,
            ),
        })
    }

    pub(super) fn kind(&self) -> KeyKind {
        match self {
            Self::Rsa(_) => KeyKind::Rsa,
            Self::P256(_) => KeyKind::P256,
            Self::P384(_) => KeyKind::P384,
            Self::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// The public key as a JWK with `kid`, `use: "sig"` and `alg`.
    pub(super) fn jwk(&self, kid: &str, alg: Algorithm) -> Value {
        let alg = alg.as_str();
        match self {
            Self::Rsa(key) => {
                let public = key.public_key();
                json!({
                    "kty": "RSA",
                    "use": "sig",
                    "alg": alg,
                    "kid": kid,
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Self::P256(key) | Self::P384(key) => {
                let (crv, size) = if matches!(self, Self::P256(_)) {
                    ("P-256", 32)
                } else {
                    ("P-384", 48)
                };
                // Uncompressed point: 0x04 || x || y.
                let point = key.public_key().as_ref();
                let coordinates = point.get(1..).unwrap_or_default();
                let (x, y) = coordinates.split_at(size.min(coordinates.len()));
                json!({
                    "kty": "EC",
                    "use": "sig",
                    "alg": alg,
                    "kid": kid,
                    "crv": crv,
                    "x": b64(x),
                    "y": b64(y),
                })
            }
            Self::Ed25519(key) => json!({
                "kty": "OKP",
                "use": "sig",
                "alg": alg,
                "kid": kid,
                "crv": "Ed25519",
                "x": b64(key.public_key().as_ref()),
            }),
        }
    }

    /// The public key bytes (PKCS#1 DER for RSA, the point or raw key otherwise): the secret of an
    /// algorithm-confusion HMAC token.
    pub(super) fn public_bytes(&self) -> Vec<u8> {
        match self {
            Self::Rsa(key) => key.public_key().as_ref().to_vec(),
            Self::P256(key) | Self::P384(key) => key.public_key().as_ref().to_vec(),
            Self::Ed25519(key) => key.public_key().as_ref().to_vec(),
        }
    }

    /// A JWS signature of `message` with `alg`, which must suit this key.
    pub(super) fn sign(&self, alg: Algorithm, message: &[u8]) -> io::Result<Vec<u8>> {
        let mismatch = || io::Error::other(format!("a {:?} key cannot sign {}", self.kind(), alg));
        match self {
            Self::Rsa(key) => {
                let padding: &'static dyn sig::RsaEncoding = match alg {
                    Algorithm::RS256 => &sig::RSA_PKCS1_SHA256,
                    Algorithm::RS384 => &sig::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &sig::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &sig::RSA_PSS_SHA256,
                    Algorithm::PS384 => &sig::RSA_PSS_SHA384,
                    Algorithm::PS512 => &sig::RSA_PSS_SHA512,
                    _ => return Err(mismatch()),
                };
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(padding, &SystemRandom::new(), message, &mut signature)
                    .map_err(|_| crypto_error("RSA signing failed"))?;
                Ok(signature)
            }
            Self::P256(key) | Self::P384(key) => {
                if KeyKind::for_alg(alg) != self.kind() {
                    return Err(mismatch());
                }
                let signature = key
                    .sign(&SystemRandom::new(), message)
                    .map_err(|_| crypto_error("ECDSA signing failed"))?;
                Ok(signature.as_ref().to_vec())
            }
            Self::Ed25519(key) => {
                if alg != Algorithm::EdDSA {
                    return Err(mismatch());
                }
                Ok(key.sign(message).as_ref().to_vec())
            }
        }
    }
}

/// An HS256 signature (for algorithm-confusion tokens).
pub(super) fn hs256(secret: &[u8], message: &[u8]) -> Vec<u8> {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    aws_lc_rs::hmac::sign(&key, message).as_ref().to_vec()
}
