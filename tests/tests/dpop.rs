//! DPoP (RFC 9449) through real HTTP: every proof check of SPEC §6, every mode, the proxy rules,
//! and the answers of SPEC §7.

mod common;

use auth0_runtime::testing::{DpopKey, ProofBuilder};
use common::{Answer, Api, now};
use serde_json::json;

/// The bare challenge of each mode.
const BOTH: &str = "Bearer realm=\"api\", DPoP algs=\"ES256\"";
const DPOP_ONLY: &str = "DPoP algs=\"ES256\"";
const BEARER_ONLY: &str = "Bearer realm=\"api\"";

/// A DPoP client of `api`: a key and a token bound to it.
struct Client<'a> {
    api: &'a Api,
    key: DpopKey,
    token: String,
}

impl<'a> Client<'a> {
    fn new(api: &'a Api) -> Self {
        let key = DpopKey::generate();
        let token = api.token().bind_to(&key).sign();
        Self { api, key, token }
    }

    /// A valid proof for `GET path` with this client's token.
    fn proof(&self, path: &str) -> ProofBuilder {
        self.key
            .proof("GET", &self.api.url(path))
            .access_token(&self.token)
    }

    /// `GET path` with the token and a fresh valid proof.
    async fn get(&self, path: &str) -> Answer {
        self.send(path, &self.proof(path).sign()).await
    }

    /// `GET path` with the token and `proof`.
    async fn send(&self, path: &str, proof: &str) -> Answer {
        self.api.dpop(path, &self.token, proof).await
    }

    /// `GET path` with the token, `proof` and more headers.
    async fn send_with(&self, path: &str, proof: &str, headers: &[(&str, &str)]) -> Answer {
        let authorization = format!("DPoP {}", self.token);
        let mut all = vec![("authorization", authorization.as_str()), ("dpop", proof)];
        all.extend_from_slice(headers);
        self.api.send("GET", path, &all).await
    }
}

/// Header lines of a request, in order.
type Headers<'a> = Vec<(&'a str, &'a str)>;

/// The two challenges of a `WWW-Authenticate` value, each with its parameters: the Bearer one and
/// the DPoP one (`None` when absent). Quoted strings are skipped, so a description that mentions
/// "DPoP" does not split anything.
fn split_challenge(value: &str) -> (Option<&str>, Option<&str>) {
    let (mut quoted, mut escaped, mut dpop_at) = (false, false, None);
    for (i, b) in value.bytes().enumerate() {
        if quoted {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => quoted = false,
                _ => {}
            }
        } else if b == b'"' {
            quoted = true;
        } else if (i == 0 || value[..i].ends_with(", ")) && value[i..].starts_with("DPoP ") {
            dpop_at = Some(i);
            break;
        }
    }
    let (bearer, dpop) = match dpop_at {
        Some(i) => (value[..i].trim_end_matches([',', ' ']), Some(&value[i..])),
        None => (value, None),
    };
    (Some(bearer).filter(|b| b.starts_with("Bearer ")), dpop)
}

fn challenge(answer: &Answer) -> &str {
    answer.challenge.as_deref().unwrap_or_default()
}

/// The answer's error code is on the DPoP challenge (next to `algs="ES256"`), not on Bearer's.
#[track_caller]
fn on_dpop_challenge(answer: &Answer) {
    let (bearer, dpop) = split_challenge(challenge(answer));
    let error = format!("error=\"{}\"", answer.error().unwrap_or_default());
    assert!(
        dpop.is_some_and(|d| d.contains(&error) && d.contains("algs=\"ES256\"")),
        "{answer:?}"
    );
    assert!(bearer.is_none_or(|b| !b.contains("error=")), "{answer:?}");
}

/// The answer's error code is on the Bearer challenge; a DPoP challenge, if any, is bare.
#[track_caller]
fn on_bearer_challenge(answer: &Answer) {
    let (bearer, dpop) = split_challenge(challenge(answer));
    let error = format!("error=\"{}\"", answer.error().unwrap_or_default());
    assert!(
        bearer.is_some_and(|b| b.starts_with("Bearer realm=\"api\"") && b.contains(&error)),
        "{answer:?}"
    );
    assert!(dpop.is_none_or(|d| !d.contains("error=")), "{answer:?}");
}

#[track_caller]
fn assert_description(answer: &Answer, description: &str) {
    assert_eq!(answer.description(), Some(description), "{answer:?}");
}

#[tokio::test]
async fn a_valid_dpop_request_passes_and_says_so() {
    let api = Api::start();
    let client = Client::new(&api);
    let answer = client.get("/above").await;
    assert_eq!(
        (answer.status, answer.text.as_str()),
        (200, "above user|123 DPoP")
    );
    assert_eq!(client.get("/below").await.status, 200);
    // The scheme is case-insensitive and may be followed by several spaces.
    for scheme in ["dpop ", "DPOP   "] {
        let proof = client.proof("/below").sign();
        let authorization = format!("{scheme}{}", client.token);
        let answer = api
            .send(
                "GET",
                "/below",
                &[("authorization", &authorization), ("dpop", &proof)],
            )
            .await;
        assert_eq!(answer.status, 200, "{scheme:?}: {answer:?}");
    }
    // Another method: `htm` is POST.
    let proof = client
        .key
        .proof("POST", &api.url("/messages"))
        .access_token(&client.token)
        .sign();
    let created = api
        .http
        .post(api.url("/messages"))
        .header("authorization", format!("DPoP {}", client.token))
        .header("dpop", proof)
        .header("content-type", "application/json")
        .body(json!({"text": "hi"}).to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(created.status(), 201);
}

#[tokio::test]
async fn each_mode_has_its_bare_challenge() {
    for (api, challenge) in [
        (Api::start(), BOTH),
        (Api::start_with(|c| c.dpop_required(true)), DPOP_ONLY),
        (Api::start_with(|c| c.dpop_enabled(false)), BEARER_ONLY),
    ] {
        for header in [None, Some("Basic dXNlcjpwdw==")] {
            let answer = api.get("/below", header).await;
            answer.assert_refused(401, "unauthorized");
            assert_eq!(answer.challenge.as_deref(), Some(challenge), "{answer:?}");
        }
    }
}

#[tokio::test]
async fn required_mode_accepts_dpop_only() {
    let api = Api::start_with(|c| c.dpop_required(true));
    let client = Client::new(&api);
    let answer = client.get("/above").await;
    assert_eq!(
        (answer.status, answer.text.as_str()),
        (200, "above user|123 DPoP")
    );
    for token in [api.token().sign(), client.token.clone()] {
        let answer = api.bearer("/below", &token).await;
        answer.assert_refused(400, "invalid_request");
        assert_description(&answer, "this API accepts only DPoP-bound access tokens");
        on_dpop_challenge(&answer);
        assert_eq!(split_challenge(challenge(&answer)).0, None, "no Bearer challenge");
    }
    // Proof failures are still invalid_dpop_proof, on the only challenge there is.
    let answer = client
        .send("/below", &client.proof("/below").remove("ath").sign())
        .await;
    answer.assert_refused(401, "invalid_dpop_proof");
    on_dpop_challenge(&answer);
    assert_eq!(split_challenge(challenge(&answer)).0, None, "no Bearer challenge");
}

#[tokio::test]
async fn disabled_mode_accepts_bearer_only() {
    let api = Api::start_with(|c| c.dpop_enabled(false));
    let answer = api.bearer("/above", &api.token().sign()).await;
    assert_eq!(
        (answer.status, answer.text.as_str()),
        (200, "above user|123 Bearer")
    );
    let client = Client::new(&api);
    let answer = client.get("/below").await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.error(), Some("invalid_request"), "{answer:?}");
    assert_description(&answer, "this API does not accept the DPoP scheme");
    // The only challenge is Bearer's, and it must name the error (RFC 6750 §3).
    answer.assert_refused(400, "invalid_request");
    on_bearer_challenge(&answer);
    assert_eq!(split_challenge(challenge(&answer)).1, None, "no DPoP challenge");
}

#[tokio::test]
async fn a_bound_token_is_never_a_bearer_token() {
    // Default and disabled modes: the token is refused as a token.
    for api in [Api::start(), Api::start_with(|c| c.dpop_enabled(false))] {
        let bound = api.token().bind_to(&DpopKey::generate()).sign();
        let answer = api.bearer("/below", &bound).await;
        answer.assert_refused(401, "invalid_token");
        assert_description(
            &answer,
            "the access token is bound to a DPoP key and must be sent with the DPoP scheme",
        );
        on_bearer_challenge(&answer);
    }
    // Required mode: the Bearer scheme itself is refused first (see required_mode_accepts_dpop_only).
    let api = Api::start_with(|c| c.dpop_required(true));
    let bound = api.token().bind_to(&DpopKey::generate()).sign();
    api.bearer("/below", &bound)
        .await
        .assert_refused(400, "invalid_request");
}

#[tokio::test]
async fn malformed_dpop_requests_are_bad_requests() {
    let api = Api::start();
    let client = Client::new(&api);
    let proof = || client.proof("/below").sign();
    let dpop_auth = format!("DPoP {}", client.token);

    // A Bearer request carrying a DPoP header (with a valid proof, even): on the Bearer challenge.
    let bearer_auth = format!("Bearer {}", api.token().sign());
    let answer = api
        .send(
            "GET",
            "/below",
            &[("authorization", &bearer_auth), ("dpop", &proof())],
        )
        .await;
    answer.assert_refused(400, "invalid_request");
    assert_description(&answer, "a DPoP proof was sent with a Bearer token");
    on_bearer_challenge(&answer);

    let (first, second) = (proof(), proof());
    let (joined, trailing) = (format!("{first},{second}"), format!("{first},"));
    // The request itself is malformed: 400.
    let cases: [(&str, Headers<'_>, &str); 2] = [
        (
            "no proof",
            vec![("authorization", &dpop_auth)],
            "the DPoP scheme needs a DPoP proof header",
        ),
        (
            "the DPoP scheme without a token",
            vec![("authorization", "DPoP"), ("dpop", &first)],
            "the Authorization header has no token",
        ),
    ];
    for (name, headers, description) in cases {
        let answer = api.send("GET", "/below", &headers).await;
        answer.assert_refused(400, "invalid_request");
        assert_eq!(answer.description(), Some(description), "{name}: {answer:?}");
        on_dpop_challenge(&answer);
    }
    // Not exactly one proof in one header line: RFC 9449 §4.3 checks 1 and 2, proof errors (SPEC
    // §6 lists them with the proof checks), so 401 invalid_dpop_proof.
    let cases: [(&str, Headers<'_>, &str); 4] = [
        (
            "two DPoP headers",
            vec![("authorization", &dpop_auth), ("dpop", &first), ("dpop", &second)],
            "the request has more than one DPoP proof",
        ),
        (
            "two proofs in one header",
            vec![("authorization", &dpop_auth), ("dpop", &joined)],
            "the DPoP proof is malformed",
        ),
        (
            "a comma after the proof",
            vec![("authorization", &dpop_auth), ("dpop", &trailing)],
            "the DPoP proof is malformed",
        ),
        (
            "an empty DPoP header",
            vec![("authorization", &dpop_auth), ("dpop", "")],
            "the DPoP proof is malformed",
        ),
    ];
    for (name, headers, description) in cases {
        let answer = api.send("GET", "/below", &headers).await;
        answer.assert_refused(401, "invalid_dpop_proof");
        assert_eq!(answer.description(), Some(description), "{name}: {answer:?}");
        on_dpop_challenge(&answer);
    }
    // Neither proof was recorded as used: the first one alone passes.
    assert_eq!(client.send("/below", &first).await.status, 200);
}

#[tokio::test]
async fn the_token_must_be_bound_to_the_proof_key() {
    let api = Api::start();
    let client = Client::new(&api);

    // A token without `cnf` on the DPoP scheme.
    let unbound = api.token().sign();
    let proof = client
        .key
        .proof("GET", &api.url("/below"))
        .access_token(&unbound)
        .sign();
    let answer = api.dpop("/below", &unbound, &proof).await;
    answer.assert_refused(401, "invalid_token");
    assert_description(&answer, "the access token is not bound to a DPoP key");
    on_dpop_challenge(&answer);

    // `cnf` without `jkt` is not a binding either.
    let other_cnf = api
        .token()
        .claim(
            "cnf",
            json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}),
        )
        .sign();
    let proof = client
        .key
        .proof("GET", &api.url("/below"))
        .access_token(&other_cnf)
        .sign();
    api.dpop("/below", &other_cnf, &proof)
        .await
        .assert_refused(401, "invalid_token");

    // A valid proof by another key than the one the token is bound to.
    let stranger = DpopKey::generate();
    let proof = stranger
        .proof("GET", &api.url("/below"))
        .access_token(&client.token)
        .sign();
    let answer = client.send("/below", &proof).await;
    answer.assert_refused(401, "invalid_token");
    assert_description(
        &answer,
        "the access token is bound to another key than the DPoP proof",
    );
    on_dpop_challenge(&answer);

    // Other `cnf` members next to `jkt` are fine.
    let extra = api
        .token()
        .claim(
            "cnf",
            json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}),
        )
        .bind_to(&client.key)
        .sign();
    let proof = client
        .key
        .proof("GET", &api.url("/below"))
        .access_token(&extra)
        .sign();
    assert_eq!(api.dpop("/below", &extra, &proof).await.status, 200);

    // A token failure on the DPoP scheme is invalid_token, on the DPoP challenge.
    let expired = api.token().bind_to(&client.key).expires_in(-60).sign();
    let proof = client
        .key
        .proof("GET", &api.url("/below"))
        .access_token(&expired)
        .sign();
    let answer = api.dpop("/below", &expired, &proof).await;
    answer.assert_refused(401, "invalid_token");
    assert_description(&answer, "the access token has expired");
    on_dpop_challenge(&answer);
}

#[tokio::test]
async fn every_proof_failure_is_invalid_dpop_proof() {
    let api = Api::start();
    let client = Client::new(&api);
    let now = now();
    let p = || client.proof("/below");
    let valid = p().sign();
    let segments: Vec<&str> = valid.split('.').collect();
    let other_payload = p().claim("sub", "mallory").sign();
    let tampered = format!(
        "{}.{}.{}",
        segments[0],
        other_payload.split('.').nth(1).unwrap_or_default(),
        segments[2]
    );
    let mut private_jwk = client.key.public_jwk();
    private_jwk["d"] = json!("870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE");
    let mut rsa_jwk = client.key.public_jwk();
    rsa_jwk["kty"] = json!("RSA");
    let mut jwk_for_encryption = client.key.public_jwk();
    jwk_for_encryption["use"] = json!("enc");
    let another_key = DpopKey::generate();
    let mut order = vec![0xff_u8; 64];
    order[..32].copy_from_slice(&[0x01; 32]);

    const TYP: &str = "the DPoP proof is not of type dpop+jwt";
    const ALG: &str = "the DPoP proof is signed with an algorithm that is not accepted";
    const SIGNATURE: &str = "the DPoP proof signature is invalid";
    const JTI: &str = "the DPoP proof has no valid jti";
    const HTM: &str = "the DPoP proof was made for another HTTP method";
    const HTU: &str = "the DPoP proof was made for another URL";
    const IAT: &str = "the DPoP proof has no valid iat";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "not a JWT",
            "x.y.z".to_owned(),
            "the DPoP proof is not a well-formed JWT",
        ),
        (
            "two segments",
            format!("{}.{}", segments[0], segments[1]),
            "the DPoP proof is not a well-formed JWT",
        ),
        (
            "oversized",
            p().claim("pad", "x".repeat(20_000)).sign(),
            "the DPoP proof is too large",
        ),
        ("typ JWT", p().header("typ", "JWT").sign(), TYP),
        ("typ at+jwt", p().header("typ", "at+jwt").sign(), TYP),
        ("no typ", p().remove_header("typ").sign(), TYP),
        ("alg none", p().header("alg", "none").sign(), ALG),
        (
            "alg none, no signature",
            p().header("alg", "none").signature(Vec::new()).sign(),
            "the DPoP proof is not a well-formed JWT",
        ),
        ("alg HS256", p().header("alg", "HS256").sign(), ALG),
        ("alg ES384, not allowed", p().header("alg", "ES384").sign(), ALG),
        ("alg es256, wrong case", p().header("alg", "es256").sign(), ALG),
        ("no alg", p().remove_header("alg").sign(), ALG),
        (
            "crit",
            p().header("crit", json!(["exp"])).sign(),
            "the DPoP proof requires an unsupported header extension",
        ),
        (
            "no jwk",
            p().remove_header("jwk").sign(),
            "the DPoP proof does not carry its public key",
        ),
        (
            "a private key member in jwk",
            p().header("jwk", private_jwk).sign(),
            "the DPoP proof key contains private key material",
        ),
        (
            "jwk of another key type",
            p().header("jwk", rsa_jwk).sign(),
            "the DPoP proof key does not match its algorithm",
        ),
        (
            "jwk for encryption",
            p().header("jwk", jwk_for_encryption).sign(),
            "the DPoP proof key does not match its algorithm",
        ),
        (
            "jwk of another key",
            p().header("jwk", another_key.public_jwk()).sign(),
            SIGNATURE,
        ),
        ("tampered payload", tampered, SIGNATURE),
        (
            "random signature",
            p().signature(vec![0x5a; 64]).sign(),
            SIGNATURE,
        ),
        ("all-zero signature", p().signature(vec![0; 64]).sign(), SIGNATURE),
        ("r at the curve order", p().signature(order).sign(), SIGNATURE),
        ("short signature", p().signature(vec![0x5a; 63]).sign(), SIGNATURE),
        (
            "empty signature",
            p().signature(Vec::new()).sign(),
            "the DPoP proof is not a well-formed JWT",
        ),
        ("no jti", p().remove("jti").sign(), JTI),
        ("empty jti", p().jti("").sign(), JTI),
        ("jti over 256 bytes", p().jti("x".repeat(257)).sign(), JTI),
        ("numeric jti", p().claim("jti", 42).sign(), JTI),
        ("htm lower-case", p().claim("htm", "get").sign(), HTM),
        ("htm of another method", p().claim("htm", "POST").sign(), HTM),
        ("no htm", p().remove("htm").sign(), HTM),
        (
            "htu for another path",
            p().claim("htu", api.url("/above")).sign(),
            HTU,
        ),
        (
            "htu with another scheme",
            p().claim("htu", api.url("/below").replacen("http:", "https:", 1))
                .sign(),
            HTU,
        ),
        (
            "htu for another port",
            p().claim("htu", "http://127.0.0.1:1/below").sign(),
            HTU,
        ),
        ("relative htu", p().claim("htu", "/below").sign(), HTU),
        ("no htu", p().remove("htu").sign(), HTU),
        (
            "iat too old",
            p().issued_at(now - 400).sign(),
            "the DPoP proof has expired",
        ),
        (
            "iat too far ahead",
            p().issued_at(now + 120).sign(),
            "the DPoP proof is dated in the future",
        ),
        ("string iat", p().claim("iat", now.to_string()).sign(), IAT),
        ("no iat", p().remove("iat").sign(), IAT),
        (
            "no ath",
            p().remove("ath").sign(),
            "the DPoP proof is not bound to the access token",
        ),
        (
            "ath of another token",
            p().access_token(&api.token().subject("other").bind_to(&client.key).sign())
                .sign(),
            "the DPoP proof was made for another access token",
        ),
    ];
    for (name, proof, description) in cases {
        let answer = client.send("/below", &proof).await;
        assert_eq!(answer.status, 401, "{name}: {answer:?}");
        answer.assert_refused(401, "invalid_dpop_proof");
        assert_eq!(answer.description(), Some(description), "{name}: {answer:?}");
        on_dpop_challenge(&answer);
    }
    // The client's proofs were fine all along.
    assert_eq!(client.send("/below", &valid).await.status, 200);
}

#[tokio::test]
async fn what_a_valid_proof_may_look_like() {
    let api = Api::start();
    let client = Client::new(&api);
    let cases: Vec<(&str, ProofBuilder)> = vec![
        (
            "typ as a full media type",
            client.proof("/below").header("typ", "application/dpop+jwt"),
        ),
        (
            "typ in upper case",
            client.proof("/below").header("typ", "DPoP+JWT"),
        ),
        (
            "htu with a query and a fragment (dropped)",
            client.proof("/below").claim("htu", api.url("/below?x=1#top")),
        ),
        (
            "htu with dot segments",
            client.proof("/below").claim("htu", api.url("/a/../below")),
        ),
        (
            "htu with an upper-case scheme and host",
            client
                .proof("/below")
                .claim("htu", api.url("/below").replacen("http://", "HTTP://", 1)),
        ),
        ("jti of 256 bytes", client.proof("/below").jti("j".repeat(256))),
        (
            "iat four minutes old",
            client.proof("/below").issued_at(now() - 240),
        ),
        ("iat 15 s ahead", client.proof("/below").issued_at(now() + 15)),
        (
            "fractional iat",
            client.proof("/below").claim("iat", json!(now() as f64 + 0.5)),
        ),
        (
            "a nonce and other claims",
            client.proof("/below").claim("nonce", "n-1"),
        ),
    ];
    for (name, builder) in cases {
        let answer = client.send("/below", &builder.sign()).await;
        assert_eq!(answer.status, 200, "{name}: {answer:?}");
    }
    // The request's query is not part of the URL either.
    let proof = client.proof("/below").sign();
    assert_eq!(client.send("/below?page=2", &proof).await.status, 200);
}

#[tokio::test]
async fn a_proof_is_accepted_once() {
    let api = Api::start();
    let client = Client::new(&api);
    let proof = client.proof("/below").sign();
    assert_eq!(client.send("/below", &proof).await.status, 200);
    let replay = client.send("/below", &proof).await;
    replay.assert_refused(401, "invalid_dpop_proof");
    assert_description(&replay, "the DPoP proof has already been used");
    on_dpop_challenge(&replay);
    // The exact form the README documents.
    assert_eq!(
        replay.challenge.as_deref(),
        Some(
            "Bearer realm=\"api\", DPoP error=\"invalid_dpop_proof\", \
             error_description=\"the DPoP proof has already been used\", algs=\"ES256\""
        )
    );

    // Signed again (another ECDSA signature) with the same jti: still a replay.
    let builder = client.proof("/below").jti("one-time");
    assert_eq!(client.send("/below", &builder.sign()).await.status, 200);
    client
        .send("/below", &builder.sign())
        .await
        .assert_refused(401, "invalid_dpop_proof");

    // A fresh jti from the same key passes.
    assert_eq!(client.get("/below").await.status, 200);
    // The same jti from another key is another proof.
    let other = Client::new(&api);
    let proof = other.proof("/below").jti("one-time").sign();
    assert_eq!(other.send("/below", &proof).await.status, 200);

    // A refused proof is not recorded: sent to another URL (Host) it is refused, then sent to
    // its own URL it passes.
    let proof = client.proof("/below").sign();
    client
        .send_with("/below", &proof, &[("host", "elsewhere.example.com")])
        .await
        .assert_refused(401, "invalid_dpop_proof");
    assert_eq!(client.send("/below", &proof).await.status, 200);
}

#[tokio::test]
async fn a_malformed_host_is_refused_on_dpop_requests() {
    let api = Api::start();
    let client = Client::new(&api);
    let port = api.base.rsplit(':').next().unwrap_or_default().to_owned();
    for host in [
        format!("127.0.0.1:{port}/below?"),
        format!("127.0.0.1:{port}/x"),
        format!("127.0.0.1:{port}?x="),
        format!("127.0.0.1:{port}#x"),
        format!("user@127.0.0.1:{port}"),
        format!("127.0.0.1:{port}\\x"),
        "a b".to_owned(),
    ] {
        // The proof is for the URL such a Host would produce (the injection this check blocks).
        let proof = client
            .key
            .proof("GET", &format!("http://{host}/below"))
            .access_token(&client.token)
            .sign();
        let answer = client.send_with("/below", &proof, &[("host", &host)]).await;
        answer.assert_refused(400, "invalid_request");
        assert_eq!(
            answer.description(),
            Some("the Host header is malformed"),
            "{host}: {answer:?}"
        );
        on_dpop_challenge(&answer);
    }
    // A Bearer request does not use the Host: it passes.
    let answer = api
        .send(
            "GET",
            "/below",
            &[
                ("authorization", &format!("Bearer {}", api.token().sign())),
                ("host", &format!("127.0.0.1:{port}/x")),
            ],
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[tokio::test]
async fn without_trust_proxy_forwarded_headers_are_ignored() {
    let api = Api::start();
    let client = Client::new(&api);
    let forwarded = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "api.example.com"),
    ];
    let proof = client
        .key
        .proof("GET", "https://api.example.com/below")
        .access_token(&client.token)
        .sign();
    let answer = client.send_with("/below", &proof, &forwarded).await;
    answer.assert_refused(401, "invalid_dpop_proof");
    assert_description(&answer, "the DPoP proof was made for another URL");
    on_dpop_challenge(&answer);

    // The URL is the connection's: a proof for it passes, forwarded headers or not.
    let proof = client.proof("/below").sign();
    let answer = client
        .send_with(
            "/below",
            &proof,
            &[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "api.example.com"),
                ("x-forwarded-prefix", "/v1"),
            ],
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");

    // The Host header is what the server sees: a client that sends `Host: api.example.com` to
    // this server (by IP) with a proof for `http://api.example.com/below` is accepted. It cannot
    // gain anything: the proof is its own, signed for the request exactly as it sent it, and a
    // proof captured from a request to another host names that host in its `htu`, so it only
    // works here if the attacker also sends that Host, which is the same as sending it there.
    let proof = client
        .key
        .proof("GET", "http://api.example.com/below")
        .access_token(&client.token)
        .sign();
    let answer = client
        .send_with("/below", &proof, &[("host", "api.example.com")])
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    // ... and then the connection's address is not the URL any more.
    let proof = client.proof("/below").sign();
    client
        .send_with("/below", &proof, &[("host", "api.example.com")])
        .await
        .assert_refused(401, "invalid_dpop_proof");
}

#[tokio::test]
async fn with_trust_proxy_forwarded_headers_make_the_url() {
    let api = Api::start_with(|c| c.trust_proxy(true));
    let client = Client::new(&api);
    let proof_for = |url: &str| client.key.proof("GET", url).access_token(&client.token).sign();
    let proto_host = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "api.example.com"),
    ];
    let answer = client
        .send_with("/below", &proof_for("https://api.example.com/below"), &proto_host)
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    // The connection's URL is not the request's URL any more.
    client
        .send_with("/below", &proof_for(&api.url("/below")), &proto_host)
        .await
        .assert_refused(401, "invalid_dpop_proof");
    // Lists: the first proxy's values count.
    let answer = client
        .send_with(
            "/below",
            &proof_for("https://api.example.com/below"),
            &[
                ("x-forwarded-proto", "https, http"),
                ("x-forwarded-host", "api.example.com, internal.local:8080"),
            ],
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    // A scheme other than http/https is ignored: the connection's (http) stays.
    let answer = client
        .send_with(
            "/below",
            &proof_for("http://api.example.com/below"),
            &[
                ("x-forwarded-proto", "ftp"),
                ("x-forwarded-host", "api.example.com"),
            ],
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");

    // A prefix goes before the path.
    let with_prefix = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "api.example.com"),
        ("x-forwarded-prefix", "/v1"),
    ];
    let answer = client
        .send_with(
            "/below",
            &proof_for("https://api.example.com/v1/below"),
            &with_prefix,
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    client
        .send_with(
            "/below",
            &proof_for("https://api.example.com/below"),
            &with_prefix,
        )
        .await
        .assert_refused(401, "invalid_dpop_proof");

    // A prefix without its leading `/` gets one.
    let bare_prefix = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "api.example.com"),
        ("x-forwarded-prefix", "v1"),
    ];
    let answer = client
        .send_with(
            "/below",
            &proof_for("https://api.example.com/v1/below"),
            &bare_prefix,
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");

    // Hostile prefixes are ignored: the URL without a prefix is the one that matches.
    for prefix in ["/../x", "//evil", "/a:b", "/%2e%2e/x", "/%2E%2E/x"] {
        let headers = [
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "api.example.com"),
            ("x-forwarded-prefix", prefix),
        ];
        let answer = client
            .send_with("/below", &proof_for("https://api.example.com/below"), &headers)
            .await;
        assert_eq!(answer.status, 200, "{prefix}: {answer:?}");
        let answer = client
            .send_with(
                "/below",
                &proof_for(&format!("https://api.example.com{prefix}/below")),
                &headers,
            )
            .await;
        answer.assert_refused(401, "invalid_dpop_proof");
    }
}

#[tokio::test]
async fn forwarded_headers_count_only_from_trusted_proxies() {
    let forwarded = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "api.example.com"),
    ];
    // The test client connects from 127.0.0.1.
    for (proxies, trusted) in [
        (vec!["127.0.0.1"], true),
        (vec!["10.0.0.0/8", "127.0.0.0/8"], true),
        (vec!["::1"], false),
        (vec!["10.0.0.0/8"], false),
    ] {
        let api = Api::start_with(|c| c.trust_proxy(true).trusted_proxies(proxies.clone()));
        let client = Client::new(&api);
        let proof = client
            .key
            .proof("GET", "https://api.example.com/below")
            .access_token(&client.token)
            .sign();
        let answer = client.send_with("/below", &proof, &forwarded).await;
        if trusted {
            assert_eq!(answer.status, 200, "{proxies:?}: {answer:?}");
        } else {
            answer.assert_refused(401, "invalid_dpop_proof");
            // From an untrusted peer the connection's URL is the request's URL.
            let proof = client.proof("/below").sign();
            let answer = client.send_with("/below", &proof, &forwarded).await;
            assert_eq!(answer.status, 200, "{proxies:?}: {answer:?}");
        }
    }
}
