//! One JWK of a key set, parsed once into keys ready for every allowed algorithm.

use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use base64::Engine as _;
use serde_json::Value;

use super::{BASE64URL, MAX_KID_LEN, VerifyingKey};
use crate::Algorithm;

/// Which algorithms a key of this type can serve, and the verification parameters for each.
fn verification_algorithm(alg: Algorithm) -> Option<&'static dyn VerificationAlgorithm> {
    let parameters: &'static dyn VerificationAlgorithm = match alg {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA => &signature::ED25519,
    };
    Some(parameters)
}

/// Key type (and curve) a JWS algorithm needs.
fn key_type_for(alg: Algorithm) -> Option<(&'static str, Option<&'static str>)> {
    match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => Some(("RSA", None)),
        Algorithm::ES256 => Some(("EC", Some("P-256"))),
        Algorithm::ES384 => Some(("EC", Some("P-384"))),
        Algorithm::EdDSA => Some(("OKP", Some("Ed25519"))),
    }
}

/// Parses one JWK; the error says why it is skipped (for the debug log).
pub(super) fn parse_jwk(jwk: &Value, allowed: &[Algorithm]) -> Result<VerifyingKey, &'static str> {
    let jwk = jwk.as_object().ok_or("not a JSON object")?;
    let kid = match jwk.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() && kid.len() <= MAX_KID_LEN => kid.as_str(),
        _ => return Err("missing, empty or overlong kid"),
    };
    match jwk.get("use") {
        None => {}
        Some(Value::String(usage)) if usage == "sig" => {}
        Some(_) => return Err("use is not sig"),
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verifies {
            return Err("key_ops does not include verify");
        }
    }
    let own_alg = match jwk.get("alg") {
        None => None,
        Some(Value::String(name)) => Some(name.parse::<Algorithm>().map_err(|_| "unsupported alg")?),
        Some(_) => return Err("alg is not a string"),
    };
    let (kty, curve, material) = match jwk.get("kty").and_then(Value::as_str) {
        Some("RSA") => ("RSA", None, rsa_material(jwk)?),
        Some("EC") => {
            let (curve, material) = ec_material(jwk)?;
            ("EC", Some(curve), material)
        }
        Some("OKP") => {
            let (curve, material) = okp_material(jwk)?;
            ("OKP", Some(curve), material)
        }
        _ => return Err("unsupported kty"),
    };

    let mut parsed = Vec::new();
    for &alg in allowed {
        if own_alg.is_some_and(|own| own != alg) || key_type_for(alg) != Some((kty, curve)) {
            continue;
        }
        let Some(parameters) = verification_algorithm(alg) else {
            continue;
        };
        let key = ParsedPublicKey::new(parameters, &material).map_err(|_| "key rejected")?;
        parsed.push((alg, key));
        // One key, one algorithm (RFC 8725 §3.1): a key without `alg` gets the first allowed
        // algorithm its type fits, in the configured order.
        break;
    }
    if parsed.is_empty() {
        return Err("key not usable with the allowed algorithms");
    }
    Ok(VerifyingKey {
        kid: kid.into(),
        kty,
        material: material.into_boxed_slice(),
        parsed,
    })
}

fn b64_member(jwk: &serde_json::Map<String, Value>, name: &str) -> Result<Vec<u8>, &'static str> {
    let text = jwk
        .get(name)
        .and_then(Value::as_str)
        .ok_or("missing key member")?;
    BASE64URL.decode(text).map_err(|_| "bad base64url in key member")
}

pub(super) fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// PKCS#1 `RSAPublicKey` DER from the JWK's `n` and `e`.
pub(super) fn rsa_material(jwk: &serde_json::Map<String, Value>) -> Result<Vec<u8>, &'static str> {
    let n = b64_member(jwk, "n")?;
    let e = b64_member(jwk, "e")?;
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    if !(256..=1024).contains(&n.len()) {
        return Err("RSA modulus outside 2048..=8192 bits");
    }
    if e.is_empty() || e.len() > 8 || e.last().is_some_and(|b| b & 1 == 0) {
        return Err("bad RSA exponent");
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    der_unsigned_integer(&mut body, n);
    der_unsigned_integer(&mut body, e);
    let mut der = Vec::with_capacity(body.len() + 4);
    der_header(&mut der, 0x30, body.len());
    der.extend_from_slice(&body);
    Ok(der)
}

pub(super) fn der_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let significant = strip_leading_zeros(&bytes);
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
}

/// A DER INTEGER for a non-negative big-endian magnitude without leading zeros.
pub(super) fn der_unsigned_integer(out: &mut Vec<u8>, magnitude: &[u8]) {
    let pad = magnitude.first().is_none_or(|b| b & 0x80 != 0);
    der_header(out, 0x02, magnitude.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(magnitude);
}

/// Uncompressed point `0x04 || x || y`.
fn ec_material(jwk: &serde_json::Map<String, Value>) -> Result<(&'static str, Vec<u8>), &'static str> {
    let (curve, size) = match jwk.get("crv").and_then(Value::as_str) {
        Some("P-256") => ("P-256", 32),
        Some("P-384") => ("P-384", 48),
        _ => return Err("unsupported curve"),
    };
    let x = b64_member(jwk, "x")?;
    let y = b64_member(jwk, "y")?;
    if x.len() != size || y.len() != size {
        return Err("EC coordinate of the wrong size");
    }
    let mut point = Vec::with_capacity(1 + 2 * size);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok((curve, point))
}

fn okp_material(jwk: &serde_json::Map<String, Value>) -> Result<(&'static str, Vec<u8>), &'static str> {
    if jwk.get("crv").and_then(Value::as_str) != Some("Ed25519") {
        return Err("unsupported curve");
    }
    let x = b64_member(jwk, "x")?;
    if x.len() != signature::ED25519_PUBLIC_KEY_LEN {
        return Err("Ed25519 key of the wrong size");
    }
    Ok(("Ed25519", x))
}
