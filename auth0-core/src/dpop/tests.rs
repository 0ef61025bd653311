use aws_lc_rs::error::Unspecified;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING,
    EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaEncoding, RsaKeyPair,
};
use proptest::prelude::*;
use serde_json::json;

use super::*;

const URL: &str = "https://api.example.com/messages";
const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2ln";
const NOW: i64 = 1_700_000_000;

fn p256() -> EcdsaKeyPair {
    EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap()
}

fn request() -> ProofRequest<'static> {
    ProofRequest {
        method: "POST",
        url: URL,
        access_token: TOKEN,
        public_origins: &[],
        now: NOW,
    }
}

fn object(value: Value) -> Object {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn header(value: Value) -> ProofOverrides {
    ProofOverrides {
        header: object(value),
        ..ProofOverrides::default()
    }
}

fn claims(value: Value) -> ProofOverrides {
    ProofOverrides {
        claims: object(value),
        ..ProofOverrides::default()
    }
}

fn signature(bytes: Vec<u8>) -> ProofOverrides {
    ProofOverrides {
        signature: Some(bytes),
        ..ProofOverrides::default()
    }
}

fn proof(key: &EcdsaKeyPair, overrides: &ProofOverrides) -> String {
    build_proof(key, "POST", URL, Some(TOKEN), "jti-1", NOW, overrides).unwrap()
}

fn verify(proof: &str) -> Result<VerifiedProof, AuthError> {
    verify_proof(proof, &request(), &ProofSettings::default())
}

#[track_caller]
fn assert_refused(proof: &str, description: &'static str) {
    assert_eq!(verify(proof), Err(AuthError::InvalidDpopProof(description)));
}

fn ec_thumbprint(key: &EcdsaKeyPair) -> String {
    thumbprint(&ec_public_jwk(key).unwrap()).unwrap()
}

// --- RFC vectors -------------------------------------------------------------------------------

/// RFC 9449 figure 13: a proof for a protected-resource request, with its access token.
const RFC9449_FIGURE_13: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";
/// RFC 9449 figure 2: a proof for a token request (so without `ath`).
const RFC9449_FIGURE_2: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
const RFC9449_ACCESS_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
/// RFC 9449 §6.1: the thumbprint of the example proof key.
const RFC9449_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

#[test]
fn rfc7638_example_thumbprint() {
    let jwk = object(json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    }));
    assert_eq!(
        thumbprint(&jwk).as_deref(),
        Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
    );
}

#[test]
fn rfc9449_example_key_thumbprint() {
    // RFC 9449 §4.1 figure 4, members in the RFC's (non-canonical) order.
    let jwk = object(json!({
        "kty": "EC",
        "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
        "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
        "crv": "P-256"
    }));
    assert_eq!(thumbprint(&jwk).as_deref(), Some(RFC9449_JKT));
}

#[test]
fn rfc9449_figure_13_proof_verifies() {
    let req = ProofRequest {
        method: "GET",
        url: "https://resource.example.org/protectedresource",
        access_token: RFC9449_ACCESS_TOKEN,
        public_origins: &[],
        now: 1_562_262_618,
    };
    let verified = verify_proof(RFC9449_FIGURE_13, &req, &ProofSettings::default()).unwrap();
    assert_eq!(
        verified,
        VerifiedProof {
            jkt: RFC9449_JKT.into(),
            jti: "e1j3V_bKic8-LAEB".into(),
            iat: 1_562_262_618,
            nonce: None,
        }
    );
    // The same proof for another token, or a while later, is refused.
    let other = ProofRequest {
        access_token: "another",
        public_origins: &[],
        ..req
    };
    assert_eq!(
        verify_proof(RFC9449_FIGURE_13, &other, &ProofSettings::default()),
        Err(refuse(why::ATH))
    );
    let later = ProofRequest {
        now: 1_562_262_618 + 301,
        ..req
    };
    assert_eq!(
        verify_proof(RFC9449_FIGURE_13, &later, &ProofSettings::default()),
        Err(refuse(why::EXPIRED))
    );
}

#[test]
fn rfc9449_figure_2_token_request_proof_has_no_ath() {
    // Its signature and claims pass; a resource server requires `ath`.
    let req = ProofRequest {
        method: "POST",
        url: "https://server.example.com/token",
        access_token: RFC9449_ACCESS_TOKEN,
        public_origins: &[],
        now: 1_562_262_616,
    };
    assert_eq!(
        verify_proof(RFC9449_FIGURE_2, &req, &ProofSettings::default()),
        Err(refuse(why::ATH_MISSING))
    );
}

// --- thumbprints and binding -------------------------------------------------------------------

#[test]
fn thumbprints_use_the_required_members_only() {
    let key = p256();
    let mut jwk = ec_public_jwk(&key).unwrap();
    let plain = thumbprint(&jwk).unwrap();
    jwk.insert("kid".into(), "k1".into());
    jwk.insert("use".into(), "sig".into());
    jwk.insert("alg".into(), "ES256".into());
    assert_eq!(thumbprint(&jwk).as_deref(), Some(plain.as_str()));
    assert_eq!(plain.len(), 43);

    let okp =
        object(json!({ "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" }));
    // RFC 8037 appendix A.3.
    assert_eq!(
        thumbprint(&okp).as_deref(),
        Some("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
    );

    for bad in [
        json!({ "kty": "oct", "k": "c2VjcmV0" }),
        json!({ "kty": "EC", "crv": "P-256", "x": "AA" }),
        json!({ "kty": "EC", "crv": "P-256", "x": "AA", "y": 1 }),
        json!({ "kty": "RSA", "n": "AA" }),
        json!({ "kty": 1 }),
        json!({}),
    ] {
        assert_eq!(thumbprint(&object(bad.clone())), None, "{bad}");
    }
}

// --- valid proofs ------------------------------------------------------------------------------

#[test]
fn a_valid_es256_proof_passes() {
    let key = p256();
    let verified = verify(&proof(&key, &ProofOverrides::default())).unwrap();
    assert_eq!(
        verified,
        VerifiedProof {
            jkt: ec_thumbprint(&key),
            jti: "jti-1".into(),
            iat: NOW,
            nonce: None,
        }
    );
    assert_eq!(verified.replay_expires_at(&ProofSettings::default()), NOW + 300);
}

#[test]
fn typ_is_a_media_type() {
    let key = p256();
    for typ in [
        "dpop+jwt",
        "DPoP+JWT",
        "application/dpop+jwt",
        "Application/DPOP+jwt",
    ] {
        assert!(
            verify(&proof(&key, &header(json!({ "typ": typ })))).is_ok(),
            "{typ}"
        );
    }
}

#[test]
fn es384_eddsa_rsa_and_pss_pass_when_allowed() {
    let all = ProofSettings {
        algorithms: vec![
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
            Algorithm::RS256,
            Algorithm::PS256,
        ],
        ..ProofSettings::default()
    };
    let claims = object(json!({
        "jti": "j", "htm": "POST", "htu": URL, "iat": NOW, "ath": access_token_hash(TOKEN)
    }));

    let p384 = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
    let es384 = build_proof(
        &p384,
        "POST",
        URL,
        Some(TOKEN),
        "j",
        NOW,
        &ProofOverrides::default(),
    )
    .unwrap();
    assert_eq!(
        verify_proof(&es384, &request(), &all).unwrap().jkt,
        ec_thumbprint(&p384)
    );
    // Not in the default allow-list.
    assert_refused(&es384, why::ALG);

    let ed = Ed25519KeyPair::generate().unwrap();
    let jwk =
        json!({ "kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(ed.public_key().as_ref()) });
    let hdr = object(json!({ "typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk }));
    let eddsa = sign_proof(&hdr, &claims, |m| Ok(ed.sign(m).as_ref().to_vec())).unwrap();
    assert_eq!(
        verify_proof(&eddsa, &request(), &all).unwrap().jkt,
        thumbprint(&object(jwk)).unwrap()
    );
    assert_refused(&eddsa, why::ALG);

    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let public = PublicKeyComponents::<Vec<u8>>::from(rsa.public_key());
    let jwk = json!({ "kty": "RSA", "n": URL_SAFE_NO_PAD.encode(&public.n), "e": URL_SAFE_NO_PAD.encode(&public.e) });
    let rng = SystemRandom::new();
    let (rsa, rng) = (&rsa, &rng);
    let sign_with = |encoding: &'static dyn RsaEncoding| {
        move |m: &[u8]| -> Result<Vec<u8>, Unspecified> {
            let mut sig = vec![0; rsa.public_modulus_len()];
            rsa.sign(encoding, rng, m, &mut sig)?;
            Ok(sig)
        }
    };
    for (alg, encoding) in [("RS256", &RSA_PKCS1_SHA256), ("PS256", &RSA_PSS_SHA256)] {
        let hdr = object(json!({ "typ": "dpop+jwt", "alg": alg, "jwk": jwk }));
        let compact = sign_proof(&hdr, &claims, sign_with(encoding)).unwrap();
        assert_eq!(
            verify_proof(&compact, &request(), &all).unwrap().jkt,
            thumbprint(&object(jwk.clone())).unwrap()
        );
        // A PKCS#1 signature is not a PSS one, and the other way round.
        let other = if alg == "RS256" { "PS256" } else { "RS256" };
        let swapped = object(json!({ "typ": "dpop+jwt", "alg": other, "jwk": jwk }));
        let compact = sign_proof(&swapped, &claims, sign_with(encoding)).unwrap();
        assert_eq!(
            verify_proof(&compact, &request(), &all),
            Err(refuse(why::SIGNATURE))
        );
    }
}

// --- structure and header ----------------------------------------------------------------------

#[test]
fn structure_is_checked_first() {
    assert_refused("", why::MALFORMED);
    assert_refused("a.b", why::MALFORMED);
    assert_refused(&"a".repeat(jws::MAX_JWS_BYTES + 1), why::TOO_LARGE);
    let key = p256();
    let good = proof(&key, &ProofOverrides::default());
    assert_refused(&format!("{good}="), why::MALFORMED);
    assert_refused(&format!("{good}.x"), why::MALFORMED);
    // A duplicated claim is refused even though the signature covers it.
    let hdr = object(json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": ec_public_jwk(&key).unwrap() }));
    let header_b64 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&hdr).unwrap());
    let payload = format!(
        r#"{{"jti":"a","htm":"POST","htm":"GET","htu":"{URL}","iat":{NOW},"ath":"{}"}}"#,
        access_token_hash(TOKEN)
    );
    let input = format!("{header_b64}.{}", URL_SAFE_NO_PAD.encode(payload));
    let sig = key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    assert_refused(
        &format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)),
        why::MALFORMED,
    );
}

#[test]
fn typ_must_be_dpop_jwt() {
    let key = p256();
    for typ in [
        json!("JWT"),
        json!("at+jwt"),
        json!("dpop"),
        json!("dpop+jwt; charset=utf-8"),
        json!(" dpop+jwt"),
        json!("text/dpop+jwt"),
        json!(["dpop+jwt"]),
        Value::Null,
    ] {
        assert_refused(&proof(&key, &header(json!({ "typ": typ }))), why::TYP);
    }
}

#[test]
fn crit_is_refused() {
    let key = p256();
    assert_refused(
        &proof(&key, &header(json!({ "crit": ["exp"], "exp": 1 }))),
        why::CRIT,
    );
}

#[test]
fn alg_none_is_refused() {
    let key = p256();
    assert_refused(&proof(&key, &header(json!({ "alg": "none" }))), why::ALG);
    // An unsecured JWS (empty signature) never gets as far as the alg.
    let good = proof(&key, &header(json!({ "alg": "none" })));
    let unsecured = format!("{}.", good.rsplit_once('.').unwrap().0);
    assert_refused(&unsecured, why::MALFORMED);
}

#[test]
fn hmac_is_refused_whatever_is_listed() {
    let key = p256();
    let settings = ProofSettings {
        algorithms: [
            "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
        ]
        .map(|name| name.parse().unwrap())
        .to_vec(),
        ..ProofSettings::default()
    };
    for alg in ["HS256", "HS384", "HS512"] {
        let hs = proof(&key, &header(json!({ "alg": alg })));
        assert_eq!(verify_proof(&hs, &request(), &settings), Err(refuse(why::ALG)));
    }
}

#[test]
fn alg_names_are_exact() {
    let key = p256();
    for alg in [
        json!("es256"),
        json!("ES256 "),
        json!("ES512"),
        json!(256),
        Value::Null,
    ] {
        assert_refused(&proof(&key, &header(json!({ "alg": alg }))), why::ALG);
    }
    // Allowed and asymmetric, but not listed.
    assert_refused(&proof(&key, &header(json!({ "alg": "RS256" }))), why::ALG);
}

#[test]
fn the_jwk_must_be_present() {
    let key = p256();
    assert_refused(&proof(&key, &header(json!({ "jwk": null }))), why::JWK_MISSING);
    assert_refused(&proof(&key, &header(json!({ "jwk": "key" }))), why::JWK_MISSING);
}

#[test]
fn private_jwk_members_are_refused() {
    let key = p256();
    for member in PRIVATE_MEMBERS {
        let mut jwk = ec_public_jwk(&key).unwrap();
        jwk.insert(member.into(), "AAAA".into());
        assert_refused(&proof(&key, &header(json!({ "jwk": jwk }))), why::JWK_PRIVATE);
    }
}

#[test]
fn the_jwk_must_match_the_alg() {
    let key = p256();
    let jwk = ec_public_jwk(&key).unwrap();
    let with = |name: &str, value: Value| {
        let mut jwk = jwk.clone();
        if value.is_null() {
            jwk.remove(name);
        } else {
            jwk.insert(name.into(), value);
        }
        proof(&key, &header(json!({ "jwk": jwk })))
    };
    for (name, value) in [
        ("kty", json!("RSA")),
        ("kty", json!("OKP")),
        ("kty", json!("ec")),
        ("kty", Value::Null),
        ("crv", json!("P-384")),
        ("crv", json!("secp256k1")),
        ("crv", Value::Null),
        ("x", json!("AAAA")),
        ("x", Value::Null),
        ("y", json!(URL_SAFE_NO_PAD.encode([0u8; 33]))),
        ("y", json!(format!("{}=", jwk["y"].as_str().unwrap()))),
        ("alg", json!("ES384")),
        ("alg", json!("none")),
        ("use", json!("enc")),
    ] {
        assert_refused(&with(name, value.clone()), why::JWK_MISMATCH);
    }
    assert!(verify(&with("alg", json!("ES256"))).is_ok());
    assert!(verify(&with("use", json!("sig"))).is_ok());
    // A point not on the curve cannot verify anything.
    let mut off_curve = jwk["y"].as_str().unwrap().to_owned();
    off_curve.replace_range(0..1, if off_curve.starts_with('A') { "B" } else { "A" });
    assert_refused(&with("y", json!(off_curve)), why::SIGNATURE);
}

// --- signature ---------------------------------------------------------------------------------

#[test]
fn a_signature_by_another_key_is_refused() {
    let key = p256();
    let other = p256();
    // The header names `key`, the signature is by `other`.
    let jwk = ec_public_jwk(&key).unwrap();
    let forged = proof(&other, &header(json!({ "jwk": jwk })));
    assert_refused(&forged, why::SIGNATURE);
    // A proof altered after signing.
    let good = proof(&key, &ProofOverrides::default());
    let (input, sig) = good.rsplit_once('.').unwrap();
    let (h, _) = input.split_once('.').unwrap();
    let altered_claims =
        json!({ "jti": "jti-2", "htm": "POST", "htu": URL, "iat": NOW, "ath": access_token_hash(TOKEN) });
    let altered = format!(
        "{h}.{}.{sig}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&altered_claims).unwrap())
    );
    assert_refused(&altered, why::SIGNATURE);
}

#[test]
fn the_psychic_signature_is_refused() {
    let key = p256();
    assert_refused(&proof(&key, &signature(vec![0; 64])), why::SIGNATURE);
    let mut s_zero = key.sign(&SystemRandom::new(), b"x").unwrap().as_ref().to_vec();
    s_zero[32..].fill(0);
    assert_refused(&proof(&key, &signature(s_zero)), why::SIGNATURE);
    let mut r_zero = key.sign(&SystemRandom::new(), b"x").unwrap().as_ref().to_vec();
    r_zero[..32].fill(0);
    assert_refused(&proof(&key, &signature(r_zero)), why::SIGNATURE);
}

#[test]
fn out_of_range_signature_values_are_refused() {
    let key = p256();
    let r_is_n = [P256_ORDER.as_slice(), &[1; 32]].concat();
    assert_refused(&proof(&key, &signature(r_is_n)), why::SIGNATURE);
    let s_is_max = [[1; 32].as_slice(), &[0xff; 32]].concat();
    assert_refused(&proof(&key, &signature(s_is_max)), why::SIGNATURE);
    assert!(!ecdsa_signature_is_well_formed(
        &[[1; 32].as_slice(), &P256_ORDER].concat(),
        &P256_ORDER
    ));
    let mut below_n = P256_ORDER;
    below_n[31] -= 1;
    assert!(ecdsa_signature_is_well_formed(
        &[[1; 32].as_slice(), &below_n].concat(),
        &P256_ORDER
    ));
    assert!(!ecdsa_signature_is_well_formed(&[0; 96], &P384_ORDER));
    assert!(ecdsa_signature_is_well_formed(&[1; 96], &P384_ORDER));
}

#[test]
fn signature_length_must_be_exact() {
    let key = p256();
    let good = proof(&key, &ProofOverrides::default());
    let sig = jws::decode(good.rsplit_once('.').unwrap().1).unwrap();
    assert_eq!(sig.len(), 64);
    for bad in [
        sig[..63].to_vec(),
        [sig.as_slice(), &[0]].concat(),
        [[0].as_slice(), &sig].concat(),
        vec![1; 96],
    ] {
        assert_refused(&proof(&key, &signature(bad)), why::SIGNATURE);
    }
}

#[test]
fn a_der_signature_is_refused() {
    // The same key, signing with ASN.1 (DER) output instead of the fixed r || s form.
    let der_key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
    let compact = build_proof(
        &der_key,
        "POST",
        URL,
        Some(TOKEN),
        "jti-1",
        NOW,
        &ProofOverrides::default(),
    )
    .unwrap();
    let sig = jws::decode(compact.rsplit_once('.').unwrap().1).unwrap();
    assert_eq!(sig[0], 0x30, "a DER SEQUENCE");
    assert_refused(&compact, why::SIGNATURE);
}

// --- claims ------------------------------------------------------------------------------------

#[test]
fn jti_must_be_a_bounded_non_empty_string() {
    let key = p256();
    let max = ProofSettings::default().max_jti_len;
    for jti in [
        Value::Null,
        json!(""),
        json!(42),
        json!(["a"]),
        json!("x".repeat(max + 1)),
    ] {
        assert_refused(&proof(&key, &claims(json!({ "jti": jti }))), why::JTI);
    }
    let longest = verify(&proof(&key, &claims(json!({ "jti": "x".repeat(max) })))).unwrap();
    assert_eq!(longest.jti.len(), max);
}

#[test]
fn htm_must_equal_the_method_exactly() {
    let key = p256();
    for htm in [
        json!("post"),
        json!("Post"),
        json!("GET"),
        json!("POST "),
        json!(["POST"]),
        Value::Null,
    ] {
        assert_refused(&proof(&key, &claims(json!({ "htm": htm }))), why::HTM);
    }
}

#[test]
fn htu_must_match_the_request_url() {
    let key = p256();
    for htu in [
        json!("https://api.example.com/messages/1"),
        json!("https://api.example.com/Messages"),
        json!("http://api.example.com/messages"),
        json!("https://api.example.com:8443/messages"),
        json!("https://other.example.com/messages"),
        json!("https://api.example.com/messages/"),
        json!("https://api.example.com/message%73/../x"),
        json!("/messages"),
        json!("not a url"),
        json!(1),
        Value::Null,
    ] {
        assert_refused(&proof(&key, &claims(json!({ "htu": htu }))), why::HTU);
    }
}

#[test]
fn htu_matches_after_normalisation() {
    let key = p256();
    for htu in [
        "https://api.example.com/messages?page=2",
        "https://api.example.com/messages#top",
        "HTTPS://API.EXAMPLE.COM:443/messages",
        "https://api.example.com/./v1/../messages",
        "https://api.example.com/m%65ssages",
    ] {
        assert!(
            verify(&proof(&key, &claims(json!({ "htu": htu })))).is_ok(),
            "{htu}"
        );
    }
    // And the request URL is normalised too.
    let good = proof(&key, &ProofOverrides::default());
    let req = ProofRequest {
        url: "https://API.example.com:443/messages?x=1",
        ..request()
    };
    assert!(verify_proof(&good, &req, &ProofSettings::default()).is_ok());
    // An unusable request URL matches nothing.
    let req = ProofRequest {
        url: "api.example.com/messages",
        ..request()
    };
    assert_eq!(
        verify_proof(&good, &req, &ProofSettings::default()),
        Err(refuse(why::HTU))
    );
}

#[test]
fn iat_must_be_recent() {
    let key = p256();
    let at = |iat: Value| verify(&proof(&key, &claims(json!({ "iat": iat }))));
    assert_eq!(at(json!(NOW - 301)), Err(refuse(why::EXPIRED)));
    assert_eq!(at(json!(NOW - 86_400)), Err(refuse(why::EXPIRED)));
    assert_eq!(at(json!(i64::MIN)), Err(refuse(why::EXPIRED)));
    assert_eq!(at(json!(NOW + 31)), Err(refuse(why::FUTURE)));
    assert_eq!(at(json!(u64::MAX)), Err(refuse(why::FUTURE)));
    assert_eq!(at(json!(1e300)), Err(refuse(why::FUTURE)));
    assert_eq!(at(json!(NOW - 300)).map(|p| p.iat), Ok(NOW - 300));
    assert_eq!(at(json!(NOW + 30)).map(|p| p.iat), Ok(NOW + 30));
    assert_eq!(at(json!(NOW as f64 + 0.75)).map(|p| p.iat), Ok(NOW));
    for bad in [json!(NOW.to_string()), json!(true), json!([NOW]), Value::Null] {
        assert_eq!(at(bad), Err(refuse(why::IAT)));
    }
    // The window follows the settings.
    let strict = ProofSettings {
        iat_offset: 10,
        iat_leeway: 0,
        ..ProofSettings::default()
    };
    let old = proof(&key, &claims(json!({ "iat": NOW - 11 })));
    assert_eq!(verify_proof(&old, &request(), &strict), Err(refuse(why::EXPIRED)));
    let ahead = proof(&key, &claims(json!({ "iat": NOW + 1 })));
    assert_eq!(
        verify_proof(&ahead, &request(), &strict),
        Err(refuse(why::FUTURE))
    );
    // No overflow at the edges of the clock.
    let edge = ProofRequest {
        now: i64::MAX,
        ..request()
    };
    assert_eq!(
        verify_proof(&old, &edge, &ProofSettings::default()),
        Err(refuse(why::EXPIRED))
    );
}

#[test]
fn ath_must_be_the_token_hash() {
    let key = p256();
    assert_refused(&proof(&key, &claims(json!({ "ath": null }))), why::ATH_MISSING);
    assert_refused(&proof(&key, &claims(json!({ "ath": 1 }))), why::ATH_MISSING);
    let no_token = build_proof(&key, "POST", URL, None, "j", NOW, &ProofOverrides::default()).unwrap();
    assert_refused(&no_token, why::ATH_MISSING);
    for ath in [
        access_token_hash("another token"),
        String::new(),
        format!("{}=", access_token_hash(TOKEN)),
        access_token_hash(TOKEN).to_lowercase(),
        URL_SAFE_NO_PAD.encode(TOKEN),
    ] {
        assert_refused(&proof(&key, &claims(json!({ "ath": ath }))), why::ATH);
    }
    // RFC 9449 figure 13's token and `ath`.
    assert_eq!(
        access_token_hash(RFC9449_ACCESS_TOKEN),
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    );
}

#[test]
fn checks_run_in_order() {
    // Several things wrong: the earliest check decides.
    let key = p256();
    let mut overrides = claims(json!({ "htm": "GET", "iat": 0, "ath": null }));
    assert_refused(&proof(&key, &overrides), why::HTM);
    overrides.header = object(json!({ "typ": "JWT" }));
    assert_refused(&proof(&key, &overrides), why::TYP);
    overrides.header = object(json!({}));
    overrides.signature = Some(vec![0; 64]);
    assert_refused(&proof(&key, &overrides), why::SIGNATURE);
}

#[test]
fn descriptions_are_safe_in_a_quoted_string() {
    for d in [
        why::TOO_LARGE,
        why::MALFORMED,
        why::TYP,
        why::ALG,
        why::CRIT,
        why::JWK_MISSING,
        why::JWK_PRIVATE,
        why::JWK_MISMATCH,
        why::SIGNATURE,
        why::JTI,
        why::HTM,
        why::HTU,
        why::IAT,
        why::EXPIRED,
        why::FUTURE,
        why::ATH_MISSING,
        why::ATH,
        why::KEY_ID,
    ] {
        assert!(
            d.bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'),
            "{d}"
        );
        assert!(d.starts_with("the DPoP proof"), "{d}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn verify_never_panics(proof in ".{0,300}", method in "[A-Za-z]{0,7}", url in ".{0,40}", now in any::<i64>()) {
        let req = ProofRequest { method: &method, url: &url, access_token: TOKEN, public_origins: &[], now };
        prop_assert!(verify_proof(&proof, &req, &ProofSettings::default()).is_err());
    }

    #[test]
    fn verify_never_panics_on_json_shaped_proofs(header in "\\{.{0,80}\\}", payload in "\\{.{0,80}\\}", sig in proptest::collection::vec(any::<u8>(), 0..100)) {
        let compact = format!("{}.{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(sig));
        prop_assert!(verify(&compact).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_one_character_change_is_refused(index in any::<prop::sample::Index>(), replacement in "[A-Za-z0-9_.=+/ -]") {
        let key = p256();
        let good = proof(&key, &ProofOverrides::default());
        let at = index.index(good.len());
        let mut bad = good.clone();
        bad.replace_range(at..=at, &replacement);
        prop_assume!(bad != good);
        prop_assert!(verify(&bad).is_err());
    }
}
