//! Making DPoP proofs, for tests and for the `testing` kit.

use aws_lc_rs::error::Unspecified;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::{Object, access_token_hash};

/// Changes to a proof made by [`build_proof`], to produce broken proofs on purpose.
#[derive(Debug, Default, Clone)]
pub(crate) struct ProofOverrides {
    /// Header members to set; `Value::Null` removes the member.
    pub(crate) header: Object,
    /// Payload claims to set; `Value::Null` removes the claim.
    pub(crate) claims: Object,
    /// The signature bytes to send instead of the real one.
    pub(crate) signature: Option<Vec<u8>>,
}

/// The public JWK (`kty`, `crv`, `x`, `y`) of a P-256 or P-384 key pair; `None` for another curve.
pub(crate) fn ec_public_jwk(key: &EcdsaKeyPair) -> Option<Object> {
    let point = key.public_key().as_ref();
    let (crv, len) = match point.len() {
        65 => ("P-256", 32),
        97 => ("P-384", 48),
        _ => return None,
    };
    let (x, y) = point.get(1..)?.split_at(len);
    let Value::Object(jwk) = json!({
        "kty": "EC",
        "crv": crv,
        "x": URL_SAFE_NO_PAD.encode(x),
        "y": URL_SAFE_NO_PAD.encode(y),
    }) else {
        return None;
    };
    Some(jwk)
}

/// A compact DPoP proof signed with `key` (P-256 → ES256, P-384 → ES384).
///
/// Header `{"typ":"dpop+jwt","alg":…,"jwk":…}`; claims `jti`, `htm` = `method`, `htu` = `url`,
/// `iat`, and `ath` = base64url(SHA-256(`access_token`)) when a token is given; then `overrides`
/// apply. A key made with an ASN.1 signing algorithm gives a DER signature (an invalid proof).
pub(crate) fn build_proof(
    key: &EcdsaKeyPair,
    method: &str,
    url: &str,
    access_token: Option<&str>,
    jti: &str,
    iat: i64,
    overrides: &ProofOverrides,
) -> Result<String, Unspecified> {
    let jwk = ec_public_jwk(key).ok_or(Unspecified)?;
    let alg = if jwk.get("crv").and_then(Value::as_str) == Some("P-384") {
        "ES384"
    } else {
        "ES256"
    };
    let mut header = Map::new();
    header.insert("typ".into(), "dpop+jwt".into());
    header.insert("alg".into(), alg.into());
    header.insert("jwk".into(), Value::Object(jwk));
    let mut claims = Map::new();
    claims.insert("jti".into(), jti.into());
    claims.insert("htm".into(), method.into());
    claims.insert("htu".into(), url.into());
    claims.insert("iat".into(), iat.into());
    if let Some(token) = access_token {
        claims.insert("ath".into(), access_token_hash(token).into());
    }
    apply(&mut header, &overrides.header);
    apply(&mut claims, &overrides.claims);
    let rng = SystemRandom::new();
    let compact = sign_proof(&header, &claims, |input| {
        Ok(key.sign(&rng, input)?.as_ref().to_vec())
    })?;
    Ok(match &overrides.signature {
        Some(signature) => {
            let input = compact
                .rsplit_once('.')
                .map_or(compact.as_str(), |(input, _)| input);
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
        }
        None => compact,
    })
}

fn apply(target: &mut Object, changes: &Object) {
    for (name, value) in changes {
        if value.is_null() {
            target.remove(name);
        } else {
            target.insert(name.clone(), value.clone());
        }
    }
}

/// Encode `header` and `claims` and sign them with `sign` (given the JWS signing input).
pub(crate) fn sign_proof(
    header: &Object,
    claims: &Object,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, Unspecified>,
) -> Result<String, Unspecified> {
    let header = serde_json::to_vec(header).map_err(|_| Unspecified)?;
    let claims = serde_json::to_vec(claims).map_err(|_| Unspecified)?;
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = sign(input.as_bytes())?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}
