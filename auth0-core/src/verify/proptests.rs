//! Properties of the header parsers and of `authenticate` on arbitrary input.

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;
use crate::answer::Challenges;
use crate::clock::now;
use crate::config::Auth0Config;

/// A request as plain parts; header lines are raw bytes, in order, names in lower case.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    host: String,
    path: String,
}

impl RequestParts for Req {
    fn method(&self) -> &str {
        &self.method
    }

    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
    }

    fn scheme(&self) -> &str {
        "https"
    }

    fn host(&self) -> &str {
        &self.host
    }

    fn path(&self) -> &str {
        &self.path
    }
}

/// The configured issuer: nothing listens there, and no generated token names it exactly.
const DOMAIN: &str = "127.0.0.1:9";

/// Validators for a tenant nobody can reach, in the three modes: DPoP optional (with
/// `trust_proxy`), DPoP required, DPoP disabled.
fn validators() -> &'static [Auth0; 3] {
    static VALIDATORS: LazyLock<[Auth0; 3]> = LazyLock::new(|| {
        let config =
            || Auth0Config::new(DOMAIN, "https://api.example.com").http_timeout(Duration::from_secs(1));
        [
            Auth0::new(config().trust_proxy(true)).unwrap(),
            Auth0::new(config().dpop_required(true)).unwrap(),
            Auth0::new(config().dpop_enabled(false)).unwrap(),
        ]
    });
    &VALIDATORS
}

/// RFC 6750 §2.1, written from the grammar: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" /
/// "~" / "+" / "/" ) *"="`.
fn is_rfc_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}

/// `credentials = auth-scheme 1*SP token68` (RFC 9110 §11.4 with the scheme's b64token), for the
/// two schemes this API knows: the scheme and the token, or `None`.
fn rfc_credentials(line: &[u8]) -> Option<(Scheme, &str)> {
    let line = std::str::from_utf8(line).ok()?;
    let space = line.find(' ')?;
    let (scheme, rest) = line.split_at(space);
    let token = rest.trim_start_matches(' ');
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "bearer" => Scheme::Bearer,
        "dpop" => Scheme::Dpop,
        _ => return None,
    };
    is_rfc_b64token(token).then_some((scheme, token))
}

/// Header values: raw bytes, or text near the grammar (a scheme in any case, blanks, token
/// characters with stray `=`, spaces, tabs, commas and non-ASCII).
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..48),
        3 => "((?i)bearer|dpop|basic|[a-z]{0,6})( {1,3}|\t| \t|)[A-Za-z0-9._~+/-]{0,16}={0,2}([ \t,=é]?[A-Za-z0-9=]{0,3})?"
            .prop_map(String::into_bytes),
        1 => "[A-Za-z0-9._~+/=-]{0,40}".prop_map(String::into_bytes),
        // Padding out of place.
        1 => "((?i)bearer|dpop) {1,2}[A-Za-z0-9]{0,3}={1,2}[A-Za-z0-9.=]{0,3}".prop_map(String::into_bytes),
    ]
}

/// Header lines named `name`: mostly none or one, sometimes two or three.
fn lines(name: &'static str, none: u32) -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
    prop_oneof![
        none => Just(Vec::new()),
        4 => prop::collection::vec(header_value(), 1..=1),
        1 => prop::collection::vec(header_value(), 2..=3),
    ]
    .prop_map(move |values| values.into_iter().map(|v| (name, v)).collect())
}

fn request() -> impl Strategy<Value = Req> {
    (
        prop_oneof![3 => Just("GET".to_owned()), 1 => "[A-Za-z]{0,6}", 1 => ".{0,6}"],
        lines("authorization", 1),
        lines("dpop", 4),
        prop_oneof![3 => Just("api.example.com".to_owned()), 1 => ".{0,20}"],
        prop_oneof![3 => Just("/api/x".to_owned()), 1 => ".{0,20}"],
        proptest::option::of(".{0,20}"),
        proptest::option::of(".{0,20}"),
    )
        .prop_map(|(method, mut headers, dpop, host, path, fhost, prefix)| {
            headers.extend(dpop);
            headers.extend(fhost.map(|v| ("x-forwarded-host", v.into_bytes())));
            headers.extend(prefix.map(|v| ("x-forwarded-prefix", v.into_bytes())));
            Req {
                method,
                headers,
                host,
                path,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    // Property: the `Authorization` and `DPoP` header parsers never panic, whatever bytes the
    // header lines hold; an accepted `Authorization` value is exactly one line of the form
    // scheme (`Bearer` or `DPoP`, any case), one or more spaces, one RFC 6750 b64token; an
    // accepted DPoP proof is one `DPoP` line holding one b64token; two `Authorization` lines are
    // always refused (400); and a well-formed Bearer request without a proof is never refused
    // for its shape. Nothing here reaches the network: each attempt ends without a key.

    #[test]
    fn header_parsers_accept_only_the_grammar(req in request(), mode in 0..3usize) {
        let auth0 = &validators()[mode];
        let authorization: Vec<&[u8]> = req.header_values("authorization").collect();
        let proofs: Vec<&[u8]> = req.header_values("dpop").collect();
        match auth0.credentials(&req) {
            Ok(c) => {
                prop_assert_eq!(authorization.len(), 1);
                let (scheme, token) = rfc_credentials(authorization[0])
                    .ok_or_else(|| TestCaseError::fail(format!("accepted {:?}", String::from_utf8_lossy(authorization[0]))))?;
                prop_assert_eq!(c.scheme, scheme);
                prop_assert_eq!(c.token, token);
                match c.proof {
                    Some(proof) => {
                        prop_assert_eq!(scheme, Scheme::Dpop);
                        prop_assert_eq!(&proofs, &[proof.as_bytes()]);
                        prop_assert!(is_rfc_b64token(proof), "accepted proof {:?}", proof);
                    }
                    None => prop_assert_eq!(scheme, Scheme::Bearer),
                }
            }
            Err(denied) => {
                if authorization.len() > 1 {
                    prop_assert_eq!(denied.error.status(), 400);
                }
                let well_formed_bearer = authorization.len() == 1
                    && proofs.is_empty()
                    && rfc_credentials(authorization[0]).is_some_and(|(s, _)| s == Scheme::Bearer);
                if well_formed_bearer && auth0.0.accepted != Challenges::Dpop {
                    prop_assert!(false, "refused {:?}: {:?}", String::from_utf8_lossy(authorization[0]), denied.error);
                }
            }
        }
        prop_assert!(matches!(auth0.attempt(&req, None), Attempt::Done(Err(_))));
    }
}

/// Regression: `=` is only padding, at the end of a b64token after at least one other
/// character (RFC 6750 §2.1); `Bearer =` and `Bearer a=b` were taken for tokens. Found by
/// `header_parsers_accept_only_the_grammar`.
#[test]
fn b64token_padding_is_only_at_the_end() {
    for good in ["a", "a=", "a==", "eyJ.eyJ.c2ln", "+/~-._", "A-_9"] {
        assert!(is_b64token(good), "{good:?}");
    }
    for bad in ["=", "===", "a=b", "=a", "a==b=", "", "a b", "a\t", "é"] {
        assert!(!is_b64token(bad), "{bad:?}");
    }
    let req = |authorization: &str, dpop: Option<&str>| Req {
        method: "GET".into(),
        headers: std::iter::once(("authorization", authorization.as_bytes().to_vec()))
            .chain(dpop.map(|p| ("dpop", p.as_bytes().to_vec())))
            .collect(),
        host: "api.example.com".into(),
        path: "/api/x".into(),
    };
    for authorization in ["Bearer =", "Bearer ===", "Bearer a=b", "DPoP =a"] {
        let denied = validators()[0]
            .credentials(&req(authorization, Some("a")))
            .err()
            .unwrap();
        assert_eq!(denied.error.status(), 400, "{authorization:?}");
    }
    for proof in ["=", "a=b.c.d"] {
        let denied = validators()[0]
            .credentials(&req("DPoP a.b.c", Some(proof)))
            .err()
            .unwrap();
        assert_eq!(denied.error.code(), "invalid_dpop_proof", "{proof:?}");
    }
}

/// A current-thread runtime to drive `authenticate` with.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    });
    &RUNTIME
}

/// Words a header or claim parser gives meaning to, and near misses of them. None is the
/// configured issuer `https://127.0.0.1:9/` itself.
const WORDS: &[&str] = &[
    "RS256",
    "ES256",
    "none",
    "HS256",
    "JWT",
    "at+jwt",
    "application/at+jwt",
    "dpop+jwt",
    "key-1",
    "https://127.0.0.1:9",
    "https://127.0.0.1:9/x",
    "HTTPS://127.0.0.1:9/",
    "https://127.0.0.1:9//",
    "http://127.0.0.1:9/",
    "https://api.example.com",
    "https://api.example.com/api/x",
    "read:messages",
    "GET",
    "EC",
    "P-256",
    "",
];

/// Member names of access-token and proof headers and payloads, and of keys.
const NAMES: &[&str] = &[
    "alg",
    "kid",
    "typ",
    "crit",
    "jwk",
    "jku",
    "x5c",
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "scope",
    "permissions",
    "cnf",
    "jkt",
    "act",
    "org_id",
    "htm",
    "htu",
    "jti",
    "ath",
    "nonce",
    "kty",
    "crv",
    "x",
    "y",
    "d",
    "n",
    "e",
];

/// A JSON value of any of the types a parser could trip on.
fn member_value() -> impl Strategy<Value = Value> {
    let word = || prop::sample::select(WORDS).prop_map(Value::from);
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop_oneof![Just(now()), Just(i64::MAX), Just(i64::MIN), Just(0)].prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        word(),
        ".{0,12}".prop_map(Value::from),
        prop::collection::vec(word(), 0..3).prop_map(Value::Array),
        prop::collection::btree_map(prop::sample::select(NAMES), word(), 0..3)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
    ]
}

/// Members to set (`Some`) or remove (`None`).
fn overrides() -> impl Strategy<Value = Vec<(&'static str, Option<Value>)>> {
    prop::collection::vec(
        (prop::sample::select(NAMES), proptest::option::of(member_value())),
        0..5,
    )
}

fn overridden(mut object: Map<String, Value>, changes: &[(&str, Option<Value>)]) -> Map<String, Value> {
    for (name, value) in changes {
        match value {
            Some(v) => object.insert((*name).to_owned(), v.clone()),
            None => object.remove(*name),
        };
    }
    object
}

fn b64_json(object: &Map<String, Value>) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(object).unwrap())
}

fn as_object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// A compact JWS of JSON: `base` with some members changed, and any signature.
fn shaped_jws(base: Value) -> impl Strategy<Value = String> {
    let base = as_object(base);
    (
        overrides(),
        overrides(),
        prop::collection::vec(any::<u8>(), 0..80),
    )
        .prop_map(move |(header, payload, signature)| {
            let (h, p) = (as_object(base["h"].clone()), as_object(base["p"].clone()));
            format!(
                "{}.{}.{}",
                b64_json(&overridden(h, &header)),
                b64_json(&overridden(p, &payload)),
                URL_SAFE_NO_PAD.encode(signature)
            )
        })
}

fn access_token() -> impl Strategy<Value = String> {
    let now = now();
    shaped_jws(json!({
        "h": {"alg": "RS256", "typ": "at+jwt", "kid": "key-1"},
        "p": {
            "iss": "https://127.0.0.1:9", "sub": "auth0|1", "aud": "https://api.example.com",
            "iat": now, "exp": now + 3600, "scope": "read:messages", "cnf": {"jkt": "x"},
        },
    }))
}

fn proof() -> impl Strategy<Value = String> {
    let now = now();
    shaped_jws(json!({
        "h": {
            "typ": "dpop+jwt", "alg": "ES256",
            "jwk": {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
        },
        "p": {"jti": "j-1", "htm": "GET", "htu": "https://api.example.com/api/x", "iat": now, "ath": "x"},
    }))
}

/// Schemes, mostly the two this API knows.
const SCHEMES: &[&str] = &[
    "Bearer ", "Bearer ", "DPoP ", "DPoP ", "bearer  ", "DPOP ", "Basic ", "Bearer",
];

/// An `Authorization` value: a scheme (also unknown ones, in any case) and a token shaped like
/// a JWT of JSON, or anything.
fn authorization() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => (prop::sample::select(SCHEMES), access_token())
            .prop_map(|(scheme, token)| format!("{scheme}{token}").into_bytes()),
        1 => header_value(),
    ]
}

/// A `DPoP` value: shaped like a proof, or anything.
fn dpop() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![2 => proof().prop_map(String::into_bytes), 1 => header_value()]
}

/// Some values of one header: mostly none or one, sometimes two.
fn some<S: Strategy<Value = Vec<u8>>>(value: fn() -> S, none: u32) -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop_oneof![
        none => Just(Vec::new()),
        8 => prop::collection::vec(value(), 1..=1),
        1 => prop::collection::vec(value(), 2..=2),
    ]
}

fn full_request() -> impl Strategy<Value = Req> {
    (request(), some(authorization, 1), some(dpop, 6)).prop_map(|(mut req, authorization, dpop)| {
        req.headers.retain(|(n, _)| *n != "authorization" && *n != "dpop");
        req.headers
            .extend(authorization.into_iter().map(|v| ("authorization", v)));
        req.headers.extend(dpop.into_iter().map(|v| ("dpop", v)));
        req
    })
}

/// A tenant on loopback (the testing kit's issuer) whose keys are cached, so that signed
/// tokens get past the issuer and the signature, to the claims, the DPoP proof and the replay
/// store.
#[cfg(feature = "testing")]
struct Live {
    issuer: crate::testing::TestIssuer,
    key: crate::testing::DpopKey,
    /// DPoP optional (with `trust_proxy`), required, disabled.
    validators: [Auth0; 3],
    runtime: tokio::runtime::Runtime,
}

#[cfg(feature = "testing")]
const URL: &str = "https://api.example.com/api/x";

#[cfg(feature = "testing")]
fn live() -> &'static Live {
    static LIVE: LazyLock<Live> = LazyLock::new(|| {
        let issuer = crate::testing::TestIssuer::start();
        let config = || issuer.config("https://api.example.com");
        let live = Live {
            key: crate::testing::DpopKey::generate(),
            validators: [
                Auth0::new(config().trust_proxy(true)).unwrap(),
                Auth0::new(config().dpop_required(true)).unwrap(),
                Auth0::new(config().dpop_enabled(false)).unwrap(),
            ],
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            issuer,
        };
        // Fetch the keys once, with a request each validator accepts.
        for (mode, auth0) in live.validators.iter().enumerate() {
            let dpop = mode == 1;
            let token = live.issuer.token();
            let token = if dpop { token.bind_to(&live.key) } else { token }.sign();
            let proof = dpop.then(|| live.key.proof("GET", URL).access_token(&token).sign());
            let scheme = if dpop { "DPoP" } else { "Bearer" };
            let req = Req {
                method: "GET".into(),
                headers: std::iter::once(("authorization", format!("{scheme} {token}").into_bytes()))
                    .chain(proof.map(|p| ("dpop", p.into_bytes())))
                    .collect(),
                host: "api.example.com".into(),
                path: "/api/x".into(),
            };
            let verified = live
                .runtime
                .block_on(auth0.authenticate::<Map<String, Value>>(&req));
            assert!(verified.is_ok(), "{verified:?}");
        }
        live
    });
    &LIVE
}

/// A signed access token, possibly bound to the live key, with members changed; the proof for
/// it (changed too), or anything, or nothing; sent with any scheme in any request.
#[cfg(feature = "testing")]
#[derive(Debug, Clone)]
struct LiveCase {
    req: Req,
    /// Whether `bound` and `proof` are made to suit the mode.
    coherent: bool,
    bound: bool,
    /// The scheme, if not the one the token is for.
    scheme: Option<&'static str>,
    claims: Vec<(&'static str, Option<Value>)>,
    header: Vec<(&'static str, Option<Value>)>,
    proof: Option<Result<LiveProof, Vec<u8>>>,
}

#[cfg(feature = "testing")]
#[derive(Debug, Clone)]
struct LiveProof {
    claims: Vec<(&'static str, Option<Value>)>,
    header: Vec<(&'static str, Option<Value>)>,
    signature: Option<Vec<u8>>,
}

#[cfg(feature = "testing")]
fn few_overrides() -> impl Strategy<Value = Vec<(&'static str, Option<Value>)>> {
    prop_oneof![2 => Just(Vec::new()), 1 => overrides()]
}

#[cfg(feature = "testing")]
fn live_case() -> impl Strategy<Value = LiveCase> {
    let proof = (
        few_overrides(),
        few_overrides(),
        proptest::option::weighted(0.1, prop::collection::vec(any::<u8>(), 0..80)),
    )
        .prop_map(|(claims, header, signature)| LiveProof {
            claims,
            header,
            signature,
        });
    (
        request(),
        prop_oneof![4 => Just(None), 1 => proptest::option::of(".{0,8}")],
        (proptest::bool::weighted(0.75), any::<bool>()),
        prop_oneof![3 => Just(None), 1 => prop::sample::select(SCHEMES).prop_map(Some)],
        few_overrides(),
        few_overrides(),
        prop_oneof![
            6 => proof.prop_map(|p| Some(Ok(p))),
            1 => header_value().prop_map(|v| Some(Err(v))),
            1 => Just(None),
        ],
    )
        .prop_map(
            |(mut req, method, (coherent, bound), scheme, claims, header, proof)| {
                // Mostly the request the proof is made for.
                req.headers.retain(|(n, _)| *n != "authorization" && *n != "dpop");
                req.method = method.unwrap_or_else(|| "GET".into());
                LiveCase {
                    req,
                    coherent,
                    bound,
                    scheme,
                    claims,
                    header,
                    proof,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    // Property: `Auth0::authenticate` never panics on any request a client can send (any bytes in
    // any number of `Authorization` and `DPoP` lines, Bearer and DPoP tokens and proofs shaped
    // like JWTs of JSON with any member changed, any method, host, path and forwarded headers,
    // in every DPoP mode), and refuses it with a client error, never a 5xx: no such token names
    // the configured issuer, so nothing is fetched and nothing can fail on the server side.

    #[test]
    fn authenticate_never_answers_a_client_with_a_server_error(req in full_request(), mode in 0..3usize) {
        let auth0 = &validators()[mode];
        let result = runtime().block_on(auth0.authenticate::<Map<String, Value>>(&req));
        let error = result.err().ok_or_else(|| TestCaseError::fail("accepted"))?;
        prop_assert!(error.status() < 500, "{:?}", error);
    }

    #[cfg(feature = "testing")]
    #[test]
    fn authenticate_never_answers_a_client_with_a_server_error_past_the_signature(
        case in live_case(),
        mode in 0..3usize,
    ) {
        let live = live();
        let mut case = case;
        if case.coherent {
            // Mostly what the mode accepts: DPoP when required, Bearer when disabled.
            case.bound = match mode {
                1 => true,
                2 => false,
                _ => case.bound,
            };
            if !case.bound {
                case.proof = None;
            }
        }
        let mut token = live.issuer.token();
        if case.bound {
            token = token.bind_to(&live.key);
        }
        for (name, value) in &case.claims {
            token = match value {
                Some(v) => token.claim(*name, v.clone()),
                None => token.remove(name),
            };
        }
        for (name, value) in &case.header {
            token = match value {
                Some(v) => token.header(*name, v.clone()),
                None => token.remove_header(name),
            };
        }
        let token = token.sign();
        let mut req = case.req.clone();
        let scheme = case.scheme.unwrap_or(if case.bound { "DPoP " } else { "Bearer " });
        req.headers.push(("authorization", format!("{scheme}{token}").into_bytes()));
        match &case.proof {
            Some(Ok(p)) => {
                let mut proof = live.key.proof(&req.method, URL).access_token(&token);
                for (name, value) in &p.claims {
                    proof = match value {
                        Some(v) => proof.claim(*name, v.clone()),
                        None => proof.remove(name),
                    };
                }
                for (name, value) in &p.header {
                    proof = match value {
                        Some(v) => proof.header(*name, v.clone()),
                        None => proof.remove_header(name),
                    };
                }
                if let Some(signature) = &p.signature {
                    proof = proof.signature(signature.clone());
                }
                req.headers.push(("dpop", proof.sign().into_bytes()));
            }
            Some(Err(bytes)) => req.headers.push(("dpop", bytes.clone())),
            None => {}
        }
        let auth0 = &live.validators[mode];
        let result = live.runtime.block_on(auth0.authenticate::<Map<String, Value>>(&req));
        if let Err(error) = &result {
            prop_assert!(error.status() < 500, "{:?}", error);
        }
    }
}
