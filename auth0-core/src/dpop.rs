//! DPoP (RFC 9449): proof verification, `htu` normalisation, RFC 7638 thumbprints, replay store.
//!
//! [`verify_proof`] runs the proof checks of RFC 9449 §4.3 in a fixed order, each in its own
//! function so each can be tested alone. Whether the DPoP scheme is accepted at all, the binding of
//! the access token (`cnf.jkt` against the proof key's thumbprint) and the replay check (see
//! [`ReplayStore`]) are the caller's steps around it.

mod htu;
mod nonce;
#[cfg(feature = "redis")]
mod redis;
mod replay;

#[cfg(any(test, feature = "testing"))]
#[allow(
    dead_code,
    reason = "helpers for the testing kit, which may not use all of them"
)]
mod build;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, RsaParameters, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::Algorithm;
use crate::answer::AuthError;
use crate::jws::{self, Jws, JwsError};

#[cfg(any(test, feature = "testing"))]
#[allow(
    unused_imports,
    reason = "helpers for the testing kit, which may not use all of them"
)]
pub(crate) use build::{ProofOverrides, build_proof, ec_public_jwk, sign_proof};
pub use htu::normalize_htu;
pub(crate) use htu::{UrlParts, request_url};
#[cfg(feature = "actix")]
pub(crate) use nonce::in_use as nonces_in_use;
pub(crate) use nonce::{Nonces, Verdict as NonceVerdict};
#[cfg(feature = "redis")]
pub use redis::{RedisReplayStore, RedisReplayStoreBuilder};
pub(crate) use replay::FailOpen;
pub use replay::{HealthCheck, MemoryReplayStore, ProofUse, ReplayCheck, ReplayOutcome, ReplayStore};

type Object = Map<String, Value>;

/// The fixed descriptions of proof failures (`invalid_dpop_proof`).
pub(crate) mod why {
    pub(crate) const TOO_LARGE: &str = "the DPoP proof is too large";
    pub(crate) const MALFORMED: &str = "the DPoP proof is not a well-formed JWT";
    pub(crate) const TYP: &str = "the DPoP proof is not of type dpop+jwt";
    pub(crate) const ALG: &str = "the DPoP proof is signed with an algorithm that is not accepted";
    pub(crate) const CRIT: &str = "the DPoP proof requires an unsupported header extension";
    pub(crate) const JWK_MISSING: &str = "the DPoP proof does not carry its public key";
    pub(crate) const JWK_PRIVATE: &str = "the DPoP proof key contains private key material";
    pub(crate) const JWK_MISMATCH: &str = "the DPoP proof key does not match its algorithm";
    pub(crate) const SIGNATURE: &str = "the DPoP proof signature is invalid";
    pub(crate) const JTI: &str = "the DPoP proof has no valid jti";
    pub(crate) const HTM: &str = "the DPoP proof was made for another HTTP method";
    pub(crate) const HTU: &str = "the DPoP proof was made for another URL";
    pub(crate) const IAT: &str = "the DPoP proof has no valid iat";
    pub(crate) const EXPIRED: &str = "the DPoP proof has expired";
    pub(crate) const FUTURE: &str = "the DPoP proof is dated in the future";
    pub(crate) const NOT_YET: &str = "the DPoP proof is not valid yet";
    pub(crate) const TIMES: &str = "the DPoP proof has a malformed exp or nbf";
    pub(crate) const ATH_MISSING: &str = "the DPoP proof is not bound to the access token";
    pub(crate) const ATH: &str = "the DPoP proof was made for another access token";
    pub(crate) const KEY_ID: &str = "the DPoP proof key cannot be identified";
}

fn refuse(description: &'static str) -> AuthError {
    AuthError::InvalidDpopProof(description)
}

/// What proofs are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProofSettings {
    /// Accepted `alg` values. Only asymmetric algorithms ever pass, whatever is listed here (and
    /// the configuration refuses HS* at startup).
    pub(crate) algorithms: Vec<Algorithm>,
    /// Seconds a proof's `iat` may be ahead of our clock.
    pub(crate) iat_leeway: i64,
    /// Seconds a proof's `iat` may be behind our clock.
    pub(crate) iat_offset: i64,
    /// The longest `jti` accepted, in bytes.
    pub(crate) max_jti_len: usize,
}

impl ProofSettings {
    /// The default longest `jti`: well above the 16+ bytes of randomness RFC 9449 §11.1 asks for
    /// (about 22–43 characters encoded, 36 for a UUID), small enough to bound the replay store.
    pub(crate) const DEFAULT_MAX_JTI_LEN: usize = 256;
}

impl Default for ProofSettings {
    fn default() -> Self {
        Self {
            algorithms: vec![Algorithm::ES256],
            iat_leeway: 30,
            iat_offset: 300,
            max_jti_len: Self::DEFAULT_MAX_JTI_LEN,
        }
    }
}

/// The request a proof must match.
#[derive(Clone, Copy)]
pub(crate) struct ProofRequest<'a> {
    /// The request method, as received (compared exactly).
    pub(crate) method: &'a str,
    /// The request URL (see [`request_url`]); normalised here.
    pub(crate) url: &'a str,
    /// The access token from the `Authorization: DPoP` header.
    pub(crate) access_token: &'a str,
    /// The API's public origins (`https://api.example.com`, normalised, no trailing `/`): when
    /// any are configured the `htu` origin must be one of them, and only its path is compared
    /// with the request's.
    pub(crate) public_origins: &'a [String],
    /// Our clock, unix seconds.
    pub(crate) now: i64,
}

/// A proof that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VerifiedProof {
    /// RFC 7638 SHA-256 thumbprint of the proof key, base64url: compare with the token's `cnf.jkt`.
    pub(crate) jkt: String,
    /// The proof's unique identifier.
    pub(crate) jti: String,
    /// When the proof was made, unix seconds (rounded down).
    pub(crate) iat: i64,
    /// The server nonce it carries (RFC 9449 §8), if any.
    pub(crate) nonce: Option<String>,
}

impl VerifiedProof {
    /// Until when (unix seconds, inclusive) the replay store must remember this proof: the last
    /// second at which it passes the `iat` check (`iat >= now - offset`); after it, it never
    /// passes again.
    pub(crate) fn replay_expires_at(&self, settings: &ProofSettings) -> i64 {
        self.iat.saturating_add(settings.iat_offset.max(0))
    }
}

/// Verify a DPoP proof against the request it came with (RFC 9449 §4.3, checks 2–11).
///
/// The checks run in this order, the first failure deciding the answer: structure ([`jws::parse`]),
/// `typ`, `crit`, `alg`, `jwk`, signature, `jti`, `htm`, `htu`, `iat`, `exp`/`nbf`, `ath`; then the key's
/// thumbprint is computed. Every failure is `AuthError::InvalidDpopProof` with a fixed description.
pub(crate) fn verify_proof(
    proof: &str,
    req: &ProofRequest<'_>,
    settings: &ProofSettings,
) -> Result<VerifiedProof, AuthError> {
    let jws = jws::parse(proof).map_err(|e| match e {
        JwsError::TooLarge => refuse(why::TOO_LARGE),
        JwsError::Malformed | JwsError::NotJson => refuse(why::MALFORMED),
    })?;
    let header: Object = serde_json::from_slice(&jws.header).map_err(|_| refuse(why::MALFORMED))?;
    check_typ(&header)?;
    check_crit(&header)?;
    let alg = check_alg(&header, settings)?;
    let (jwk, key) = check_jwk(&header, alg)?;
    check_signature(&jws, alg, &key)?;

    let payload: Object = serde_json::from_slice(&jws.payload).map_err(|_| refuse(why::MALFORMED))?;
    let jti = check_jti(&payload, settings.max_jti_len)?;
    check_htm(&payload, req.method)?;
    check_htu(&payload, req.url, req.public_origins)?;
    let iat = check_iat(&payload, req.now, settings)?;
    check_exp_nbf(&payload, req.now, settings)?;
    check_ath(&payload, req.access_token)?;

    let jkt = thumbprint(jwk).ok_or(refuse(why::KEY_ID))?;
    Ok(VerifiedProof {
        jkt,
        jti: jti.to_owned(),
        iat,
        nonce: payload.get("nonce").and_then(Value::as_str).map(str::to_owned),
    })
}

/// For the operator's log, after a proof was refused: what in it differs from the request (its
/// `htm`, `htu` and `iat` against the method, the URL and the clock). Never the proof itself.
pub(crate) fn explain(proof: &str, req: &ProofRequest<'_>) -> Option<String> {
    let jws = jws::parse(proof).ok()?;
    let payload: Object = serde_json::from_slice(&jws.payload).ok()?;
    let htm = payload.get("htm").and_then(Value::as_str).unwrap_or("(none)");
    let htu = payload.get("htu").and_then(Value::as_str).unwrap_or("(none)");
    let expected = normalize_htu(req.url).unwrap_or_default();
    let origins = if req.public_origins.is_empty() {
        String::new()
    } else {
        format!(" (origin one of {:?})", req.public_origins)
    };
    let iat = payload.get("iat").and_then(numeric_date);
    let age = iat.map_or_else(
        || "no numeric iat".to_owned(),
        |iat| format!("iat {} s old", req.now.saturating_sub(iat)),
    );
    Some(format!(
        "proof htm {htm:?} for {:?}; proof htu {htu:?}, request URL {expected:?}{origins}; {age}",
        req.method
    ))
}

/// `typ` must be `dpop+jwt` (RFC 9449 §4.2), compared as a media type (RFC 7515 §4.1.9): any
/// letter case, with or without the `application/` prefix.
pub(crate) fn check_typ(header: &Object) -> Result<(), AuthError> {
    match header.get("typ").and_then(Value::as_str) {
        Some(typ) if is_dpop_typ(typ) => Ok(()),
        _ => Err(refuse(why::TYP)),
    }
}

fn is_dpop_typ(typ: &str) -> bool {
    const PREFIX: &str = "application/";
    let subtype = match typ.get(..PREFIX.len()) {
        Some(head) if head.eq_ignore_ascii_case(PREFIX) => &typ[PREFIX.len()..],
        _ => typ,
    };
    subtype.eq_ignore_ascii_case("dpop+jwt")
}

/// No JWS extension is understood here, so any `crit` is refused (RFC 7515 §4.1.11).
pub(crate) fn check_crit(header: &Object) -> Result<(), AuthError> {
    if header.contains_key("crit") {
        Err(refuse(why::CRIT))
    } else {
        Ok(())
    }
}

/// `alg` must be an asymmetric algorithm named exactly as in RFC 7518 / RFC 8037 (`none` and the
/// HMAC algorithms have no [`Algorithm`], so they can never be accepted), and in the allow-list.
pub(crate) fn check_alg(header: &Object, settings: &ProofSettings) -> Result<Algorithm, AuthError> {
    header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(|name| name.parse::<Algorithm>().ok())
        .filter(|alg| settings.algorithms.contains(alg))
        .ok_or(refuse(why::ALG))
}

/// The JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4;
/// RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A public key taken from a proof's `jwk`, ready for verification.
#[derive(Debug)]
pub(crate) enum ProofKey {
    /// An uncompressed EC point (`0x04 || x || y`).
    Ec(Vec<u8>),
    /// RSA modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An Ed25519 public key.
    Ed25519(Vec<u8>),
}

/// `jwk` must be a public key (no private member) whose type and curve fit `alg`; an `alg` or
/// `use` inside the JWK, when present, must agree too. Returns the JWK (for the thumbprint) and
/// the decoded key.
pub(crate) fn check_jwk(header: &Object, alg: Algorithm) -> Result<(&Object, ProofKey), AuthError> {
    let jwk = header
        .get("jwk")
        .and_then(Value::as_object)
        .ok_or(refuse(why::JWK_MISSING))?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(refuse(why::JWK_PRIVATE));
    }
    let mismatch = || refuse(why::JWK_MISMATCH);
    let member = |name: &str| jwk.get(name).and_then(Value::as_str);
    let bytes = |name: &str| member(name).and_then(|v| jws::decode(v).ok());
    if let Some(v) = jwk.get("alg")
        && v.as_str().and_then(|name| name.parse().ok()) != Some(alg)
    {
        return Err(mismatch());
    }
    if jwk.get("use").is_some_and(|v| v.as_str() != Some("sig")) {
        return Err(mismatch());
    }

    let ec = |crv: &str, len: usize| {
        if member("kty") != Some("EC") || member("crv") != Some(crv) {
            return None;
        }
        let (x, y) = (bytes("x")?, bytes("y")?);
        if x.len() != len || y.len() != len {
            return None;
        }
        let mut point = Vec::with_capacity(1 + 2 * len);
        point.push(0x04);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        Some(ProofKey::Ec(point))
    };
    let key = match alg {
        Algorithm::ES256 => ec("P-256", 32),
        Algorithm::ES384 => ec("P-384", 48),
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => match (member("kty"), bytes("n"), bytes("e")) {
            (Some("RSA"), Some(n), Some(e)) => Some(ProofKey::Rsa { n, e }),
            _ => None,
        },
        Algorithm::EdDSA => match (member("kty"), member("crv"), bytes("x")) {
            (Some("OKP"), Some("Ed25519"), Some(x)) if x.len() == 32 => Some(ProofKey::Ed25519(x)),
            _ => None,
        },
    };
    Ok((jwk, key.ok_or_else(mismatch)?))
}

/// The order n of P-256, big-endian.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc,
    0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// The order n of P-384, big-endian.
const P384_ORDER: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf, 0x58, 0x1a,
    0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];

/// A JWS ECDSA signature (RFC 7518 §3.4) is `r || s`, each exactly the size of the curve order,
/// with 0 < r, s < n. Checked here before the library sees it, so an all-zero signature
/// ("psychic signature", CVE-2022-21449) or a DER-encoded one can never be mistaken for valid.
fn ecdsa_signature_is_well_formed(signature: &[u8], order: &[u8]) -> bool {
    if signature.len() != 2 * order.len() {
        return false;
    }
    let (r, s) = signature.split_at(order.len());
    [r, s].iter().all(|v| v.iter().any(|&b| b != 0) && *v < order)
}

/// Verify the signature over the JWS signing input with the proof's own key.
pub(crate) fn check_signature(jws: &Jws<'_>, alg: Algorithm, key: &ProofKey) -> Result<(), AuthError> {
    let message = jws.signing_input.as_bytes();
    let sig = jws.signature.as_slice();
    let rsa = |params: &RsaParameters, n: &[u8], e: &[u8]| {
        RsaPublicKeyComponents { n, e }
            .verify(params, message, sig)
            .is_ok()
    };
    let valid = match (alg, key) {
        (Algorithm::ES256, ProofKey::Ec(point)) => {
            ecdsa_signature_is_well_formed(sig, &P256_ORDER)
                && UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
        }
        (Algorithm::ES384, ProofKey::Ec(point)) => {
            ecdsa_signature_is_well_formed(sig, &P384_ORDER)
                && UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
        }
        (Algorithm::RS256, ProofKey::Rsa { n, e }) => rsa(&signature::RSA_PKCS1_2048_8192_SHA256, n, e),
        (Algorithm::RS384, ProofKey::Rsa { n, e }) => rsa(&signature::RSA_PKCS1_2048_8192_SHA384, n, e),
        (Algorithm::RS512, ProofKey::Rsa { n, e }) => rsa(&signature::RSA_PKCS1_2048_8192_SHA512, n, e),
        (Algorithm::PS256, ProofKey::Rsa { n, e }) => rsa(&signature::RSA_PSS_2048_8192_SHA256, n, e),
        (Algorithm::PS384, ProofKey::Rsa { n, e }) => rsa(&signature::RSA_PSS_2048_8192_SHA384, n, e),
        (Algorithm::PS512, ProofKey::Rsa { n, e }) => rsa(&signature::RSA_PSS_2048_8192_SHA512, n, e),
        (Algorithm::EdDSA, ProofKey::Ed25519(x)) => {
            sig.len() == 64
                && UnparsedPublicKey::new(&signature::ED25519, x)
                    .verify(message, sig)
                    .is_ok()
        }
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(refuse(why::SIGNATURE))
    }
}

/// `jti`: a non-empty string of at most `max_len` bytes.
pub(crate) fn check_jti(payload: &Object, max_len: usize) -> Result<&str, AuthError> {
    match payload.get("jti").and_then(Value::as_str) {
        Some(jti) if !jti.is_empty() && jti.len() <= max_len => Ok(jti),
        _ => Err(refuse(why::JTI)),
    }
}

/// `htm`: exactly the request method (methods are case-sensitive, RFC 9110 §9.1).
pub(crate) fn check_htm(payload: &Object, method: &str) -> Result<(), AuthError> {
    match payload.get("htm").and_then(Value::as_str) {
        Some(htm) if htm == method => Ok(()),
        _ => Err(refuse(why::HTM)),
    }
}

/// `htu`: the request URL, both sides normalised with [`normalize_htu`] (query and fragment
/// ignored, RFC 9449 §4.3 check 9). With `public_origins`, the origin is not taken from the
/// request (its `Host` is the client's to choose): it must be one of them, and the paths match.
pub(crate) fn check_htu(
    payload: &Object,
    request_url: &str,
    public_origins: &[String],
) -> Result<(), AuthError> {
    let htu = payload.get("htu").and_then(Value::as_str).and_then(normalize_htu);
    let matches = match (htu, normalize_htu(request_url)) {
        (Some(htu), Some(url)) if public_origins.is_empty() => htu == url,
        (Some(htu), Some(url)) => {
            let (origin, path) = split_origin(&htu);
            public_origins.iter().any(|o| o == origin) && path == split_origin(&url).1
        }
        _ => false,
    };
    if matches { Ok(()) } else { Err(refuse(why::HTU)) }
}

/// `scheme://authority` and the path of a normalised URL (which always has a path).
fn split_origin(url: &str) -> (&str, &str) {
    let authority = url.find("://").map_or(0, |i| i + 3);
    let path = url[authority..].find('/').map_or(url.len(), |i| authority + i);
    url.split_at(path)
}

/// `exp` and `nbf` are optional in a proof, but when present they hold (RFC 7519 §4.1.4–5),
/// within the `iat` leeway; a non-numeric value is refused.
pub(crate) fn check_exp_nbf(payload: &Object, now: i64, settings: &ProofSettings) -> Result<(), AuthError> {
    let time = |name| match payload.get(name) {
        None => Ok(None),
        Some(value) => numeric_date(value).map(Some).ok_or(refuse(why::TIMES)),
    };
    let leeway = settings.iat_leeway;
    if time("exp")?.is_some_and(|exp| now >= exp.saturating_add(leeway)) {
        return Err(refuse(why::EXPIRED));
    }
    if time("nbf")?.is_some_and(|nbf| now.saturating_add(leeway) < nbf) {
        return Err(refuse(why::NOT_YET));
    }
    Ok(())
}

/// A JSON number as unix seconds (fractions rounded down, saturating); `None` for anything else.
fn numeric_date(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            // NaN and infinities cannot come out of JSON.
            n.as_f64().filter(|f| f.is_finite()).map(|f| f.floor() as i64)
        }),
        _ => None,
    }
}

/// `iat`: a number (fractions allowed, rounded down) within `[now - iat_offset, now + iat_leeway]`.
pub(crate) fn check_iat(payload: &Object, now: i64, settings: &ProofSettings) -> Result<i64, AuthError> {
    let iat = payload
        .get("iat")
        .and_then(numeric_date)
        .ok_or(refuse(why::IAT))?;
    if iat < now.saturating_sub(settings.iat_offset) {
        Err(refuse(why::EXPIRED))
    } else if iat > now.saturating_add(settings.iat_leeway) {
        Err(refuse(why::FUTURE))
    } else {
        Ok(iat)
    }
}

/// `ath`: base64url(SHA-256(access token)) (RFC 9449 §4.2), compared in constant time.
pub(crate) fn check_ath(payload: &Object, access_token: &str) -> Result<(), AuthError> {
    let ath = payload
        .get("ath")
        .and_then(Value::as_str)
        .ok_or(refuse(why::ATH_MISSING))?;
    let expected = access_token_hash(access_token);
    if constant_time_eq(ath.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(refuse(why::ATH))
    }
}

/// base64url(SHA-256(token)): the `ath` of a proof made for `token`.
pub(crate) fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, token.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// The RFC 7638 JWK SHA-256 thumbprint, base64url without padding.
///
/// Only the required members take part, in lexicographic order, without whitespace: `crv, kty, x,
/// y` for EC, `e, kty, n` for RSA, `crv, kty, x` for OKP. Every one of them must be a string.
/// `None` for a missing member or any other key type (a symmetric key has no business here).
pub(crate) fn thumbprint(jwk: &Object) -> Option<String> {
    let members: &[&str] = match jwk.get("kty")?.as_str()? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut json = String::with_capacity(512);
    json.push('{');
    for (i, name) in members.iter().enumerate() {
        let value = jwk.get(*name)?.as_str()?;
        if i > 0 {
            json.push(',');
        }
        // serde_json writes a string with the minimal JSON escaping RFC 7638 §3.3 asks for.
        json.push_str(&serde_json::to_string(name).ok()?);
        json.push(':');
        json.push_str(&serde_json::to_string(value).ok()?);
    }
    json.push('}');
    Some(URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, json.as_bytes())))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
