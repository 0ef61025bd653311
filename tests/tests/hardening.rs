//! Regression tests for attacks found against what landed: each one fails without its fix.
//! Everything runs over real HTTP against a real issuer.

mod common;

use std::time::{Duration, Instant};

use actix_web::{HttpResponse, Responder, get};
use auth0_runtime::testing::{DpopKey, Fault, TestIssuer};
use auth0_runtime::{Auth0, Auth0Config, Claims, require_auth};
use common::{AUDIENCE, Answer, Api, now, serve};
use serde_json::json;

/// `GET /below` with a DPoP-bound token of a fresh key and subject, and a proof with `iat`.
async fn dpop_request(api: &Api, key: &DpopKey, token: &str, jti: &str, iat: i64) -> (String, Answer) {
    let proof = key
        .proof("GET", &api.url("/below"))
        .access_token(token)
        .jti(jti)
        .issued_at(iat)
        .sign();
    let answer = api.dpop("/below", token, &proof).await;
    (proof, answer)
}

/// A full store, or one caller over its share, refuses new proofs with 503: it never forgets a
/// live record to make room, so a captured proof can never be replayed.
#[tokio::test]
async fn the_replay_store_never_forgets_a_live_proof() {
    let api = Api::start_with(|c| c.replay_store_capacity(100));
    // The victim's proof is the one nearest expiry: the first a forgetting store would drop.
    let victim = DpopKey::generate();
    let victim_token = api.token().subject("victim").bind_to(&victim).sign();
    let (captured, answer) = dpop_request(&api, &victim, &victim_token, "captured", now() - 200).await;
    assert_eq!(answer.status, 200, "{answer:?}");

    // One attacker, one token, proofs dated as far ahead as allowed: stopped at its share.
    let attacker = DpopKey::generate();
    let token = api.token().subject("mallory").bind_to(&attacker).sign();
    let mut accepted = 0;
    for i in 0..40 {
        let (_, answer) = dpop_request(&api, &attacker, &token, &format!("a-{i}"), now() + 30).await;
        if answer.status == 200 {
            accepted += 1;
        } else {
            answer.assert_refused(503, "temporarily_unavailable");
            assert_eq!(answer.retry_after.as_deref(), Some("30"), "{answer:?}");
        }
    }
    // Shares are counted in keyed-hash buckets (64 for this store), which err high, never low:
    // the attacker's key or subject shares a bucket with the victim's one record in about 1 run
    // in 32, and then holds one proof fewer.
    assert!(
        (100 / 8 - 1..=100 / 8).contains(&accepted),
        "one token holds 1/8 of the store: {accepted} accepted"
    );

    // Many attackers (a key and a subject each) fill the store: then everybody's new proofs
    // get 503, and still no live record is forgotten.
    let mut full = None;
    for n in 0..20 {
        let key = DpopKey::generate();
        let token = api.token().subject(format!("sybil-{n}")).bind_to(&key).sign();
        for i in 0..12 {
            let (_, answer) = dpop_request(&api, &key, &token, &format!("s-{i}"), now() + 30).await;
            if answer.status == 503 {
                full.get_or_insert(answer);
            }
        }
    }
    let full = full.expect("the store fills up");
    full.assert_refused(503, "temporarily_unavailable");
    assert_eq!(
        full.description(),
        Some("the DPoP proof cannot be checked for reuse right now, try again later")
    );

    let replay = api.dpop("/below", &victim_token, &captured).await;
    replay.assert_refused(401, "invalid_dpop_proof");
    assert_eq!(replay.description(), Some("the DPoP proof has already been used"));
    // Bearer requests do not use the store.
    assert_eq!(api.bearer("/below", &api.token().sign()).await.status, 200);
}

/// Cancelling the request that found the key set stale (client reset, timeout middleware) used
/// to leave the refresh claimed and undone: a removed key stayed valid.
#[tokio::test]
async fn a_cancelled_request_cannot_keep_a_removed_key_valid() {
    let api = Api::start();
    api.issuer.set_max_age(Some(1));
    let old_token = api.token().sign();
    assert_eq!(api.bearer("/below", &old_token).await.status, 200);
    api.issuer.rotate_key();
    assert!(api.issuer.remove_key("key-1"));
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    // The request that would refresh is cut off by its client while the issuer is slow.
    api.issuer.set_fault(Fault::Slow(Duration::from_millis(400)));
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(50))
        .build()
        .expect("client");
    let _ = impatient
        .get(api.url("/below"))
        .bearer_auth(&old_token)
        .send()
        .await;
    api.issuer.set_fault(Fault::None);

    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let answer = api.bearer("/below", &old_token).await;
        if answer.status == 401 {
            answer.assert_refused(401, "invalid_token");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the removed key is still accepted: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(api.bearer("/below", &api.token().sign()).await.status, 200);
}

/// A cold fetch whose request was cancelled used to be abandoned, and done again by the next.
#[tokio::test]
async fn a_cancelled_cold_fetch_is_completed() {
    let api = Api::start();
    api.issuer.set_fault(Fault::Slow(Duration::from_millis(300)));
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(50))
        .build()
        .expect("client");
    let token = api.token().sign();
    let _ = impatient.get(api.url("/below")).bearer_auth(&token).send().await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    api.issuer.set_fault(Fault::None);
    assert_eq!(api.bearer("/below", &token).await.status, 200);
    assert_eq!(
        (api.issuer.discovery_fetches(), api.issuer.jwks_fetches()),
        (1, 1)
    );
}

#[get("/hello")]
#[require_auth]
async fn hello(claims: Claims) -> impl Responder {
    HttpResponse::Ok().body(claims.sub.clone())
}

/// With more configured domains than cache entries, tokens cycling over the issuers used to
/// evict each other: every request became a cold fetch.
#[tokio::test]
async fn configured_issuers_are_never_evicted() {
    let issuers: Vec<TestIssuer> = (0..4).map(|_| TestIssuer::start()).collect();
    let mut config = Auth0Config::new("unused", AUDIENCE)
        .domains(issuers.iter().map(TestIssuer::domain))
        .cache_max_entries(2);
    for issuer in &issuers {
        config = config.root_certificates_pem(issuer.ca_pem().as_bytes().to_vec());
    }
    let auth0 = Auth0::new(config).expect("valid configuration");
    let (base, _server) = serve(move |cfg| {
        cfg.app_data(auth0.clone()).service(hello);
    });
    let http = reqwest::Client::new();
    let get = |token: String| {
        let request = http.get(format!("{base}/hello")).bearer_auth(token);
        async move { Answer::read(request.send().await.expect("request")).await }
    };
    // The fourth issuer is down: a failed cold fetch is not retried at once.
    issuers[3].set_fault(Fault::ServerError);
    for round in 0..10 {
        for (i, issuer) in issuers.iter().enumerate() {
            let answer = get(issuer.token().audience(AUDIENCE).sign()).await;
            if i < 3 {
                assert_eq!(answer.status, 200, "round {round}: {answer:?}");
            } else {
                answer.assert_refused(503, "temporarily_unavailable");
            }
        }
    }
    let fetches: Vec<(usize, usize)> = issuers
        .iter()
        .map(|i| (i.discovery_fetches(), i.jwks_fetches()))
        .collect();
    assert_eq!(fetches[..3], [(1, 1), (1, 1), (1, 1)], "fetches per issuer");
    // Ten rounds take well under the first back-off (1 s); allow one retry on a slow machine.
    assert!(fetches[3].0 <= 2 && fetches[3].1 == 0, "{fetches:?}");
}

/// A `cnf` whose `jkt` is not a string used to read as "not bound": the token passed as Bearer.
#[tokio::test]
async fn a_malformed_binding_is_refused_in_every_mode() {
    for api in [
        Api::start(),
        Api::start_with(|c| c.dpop_enabled(false)),
        Api::start_with(|c| c.dpop_required(true)),
    ] {
        let key = DpopKey::generate();
        for cnf in [
            json!({"jkt": null}),
            json!({"jkt": 42}),
            json!({"jkt": ["x"]}),
            json!({"jkt": {}}),
            json!("x"),
            json!([key.thumbprint()]),
        ] {
            let token = api.token().claim("cnf", cnf.clone()).sign();
            let bearer = api.bearer("/below", &token).await;
            let proof = key.proof("GET", &api.url("/below")).access_token(&token).sign();
            let dpop = api.dpop("/below", &token, &proof).await;
            for answer in [bearer, dpop] {
                // A mode that refuses the scheme outright answers 400 first; otherwise the token.
                if answer.status == 400 {
                    answer.assert_refused(400, "invalid_request");
                } else {
                    answer.assert_refused(401, "invalid_token");
                    assert_eq!(
                        answer.description(),
                        Some("the access token's confirmation claim is malformed"),
                        "{cnf}"
                    );
                }
            }
        }
        // Other `cnf` members next to a string `jkt` are fine.
        let token = api
            .token()
            .claim("cnf", json!({"jkt": key.thumbprint(), "x5t#S256": "abc"}))
            .sign();
        let proof = key.proof("GET", &api.url("/below")).access_token(&token).sign();
        let answer = api.dpop("/below", &token, &proof).await;
        assert!(answer.status == 200 || answer.status == 400, "{answer:?}");
    }
}

/// A proof's own `exp` and `nbf` used to be ignored.
#[tokio::test]
async fn a_proof_past_its_exp_or_before_its_nbf_is_refused() {
    let api = Api::start();
    let key = DpopKey::generate();
    let token = api.token().bind_to(&key).sign();
    let proof = |name: &str, value: serde_json::Value| {
        key.proof("GET", &api.url("/below"))
            .access_token(&token)
            .claim(name, value)
            .sign()
    };
    // Well past the 30 s leeway: the verifier reads its clock after the proof is made, and a
    // second boundary crossed in between must not bring an `nbf` back within it.
    for (name, value, description) in [
        ("exp", json!(now() - 45), "the DPoP proof has expired"),
        ("nbf", json!(now() + 45), "the DPoP proof is not valid yet"),
        (
            "exp",
            json!(now().to_string()),
            "the DPoP proof has a malformed exp or nbf",
        ),
        ("nbf", json!(null), "the DPoP proof has a malformed exp or nbf"),
    ] {
        let answer = api.dpop("/below", &token, &proof(name, value.clone())).await;
        answer.assert_refused(401, "invalid_dpop_proof");
        assert_eq!(answer.description(), Some(description), "{name} {value}");
    }
    // Within the leeway, or in the right direction, they pass.
    for (name, value) in [
        ("exp", now() + 60),
        ("exp", now() - 5),
        ("nbf", now() + 5),
        ("nbf", now() - 60),
    ] {
        let answer = api.dpop("/below", &token, &proof(name, json!(value))).await;
        assert_eq!(answer.status, 200, "{name} {value}: {answer:?}");
    }
}

/// Verified-token cache hits used to pass until the token's `exp`, whatever happened to the key
/// set that verified it.
#[tokio::test]
async fn a_cached_token_stops_passing_when_its_keys_are_unusable() {
    let api = Api::start_with(|c| c.stale_limit(Duration::from_secs(1)));
    api.issuer.set_max_age(Some(1));
    let token = api.token().sign();
    assert_eq!(api.bearer("/below", &token).await.status, 200);
    assert_eq!(api.bearer("/below", &token).await.status, 200);
    api.issuer.set_fault(Fault::ServerError);
    // Past its lifetime and its stale limit, with every refresh failing.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = api.bearer("/below", &token).await;
        if answer.status == 503 {
            answer.assert_refused(503, "temporarily_unavailable");
            break;
        }
        assert_eq!(answer.status, 200, "{answer:?}");
        assert!(Instant::now() < deadline, "a cached token outlived its key set");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Once the issuer answers again (after the back-off), the token passes again.
    api.issuer.set_fault(Fault::None);
    let deadline = Instant::now() + Duration::from_secs(35);
    while api.bearer("/below", &token).await.status != 200 {
        assert!(Instant::now() < deadline, "no recovery");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// With public origins configured, the `htu` origin no longer comes from the client's `Host`.
#[tokio::test]
async fn public_origins_decide_the_htu_origin() {
    let api =
        Api::start_with(|c| c.public_origins(["https://api.example.com", "https://eu.api.example.com:8443"]));
    let key = DpopKey::generate();
    let token = api.token().bind_to(&key).sign();
    let send = |htu: String, host: Option<&'static str>| {
        let proof = key.proof("GET", &htu).access_token(&token).sign();
        let authorization = format!("DPoP {token}");
        let api = &api;
        async move {
            let mut headers = vec![
                ("authorization", authorization.as_str()),
                ("dpop", proof.as_str()),
            ];
            if let Some(host) = host {
                headers.push(("host", host));
            }
            api.send("GET", "/below", &headers).await
        }
    };
    // Proofs for the public origins pass, whatever Host the request carries.
    assert_eq!(
        send("https://api.example.com/below".into(), None).await.status,
        200
    );
    assert_eq!(
        send(
            "https://EU.api.example.com:8443/below?x=1".into(),
            Some("elsewhere.example.com")
        )
        .await
        .status,
        200
    );
    // A proof for another deployment is refused even when the Host is set to match it.
    let other = send(
        "https://us.api.example.com/below".into(),
        Some("us.api.example.com"),
    )
    .await;
    other.assert_refused(401, "invalid_dpop_proof");
    assert_eq!(
        other.description(),
        Some("the DPoP proof was made for another URL")
    );
    // The connection's own origin is not public either; and the path still has to match.
    send(api.url("/below"), None)
        .await
        .assert_refused(401, "invalid_dpop_proof");
    send("https://api.example.com/above".into(), None)
        .await
        .assert_refused(401, "invalid_dpop_proof");
}

#[test]
fn public_origins_are_checked_at_startup() {
    for bad in [
        "api.example.com",
        "https://api.example.com/v1",
        "https://api.example.com?x",
        "ftp://x",
    ] {
        let error = Auth0::new(Auth0Config::new("tenant.auth0.com", AUDIENCE).public_origins([bad]))
            .expect_err(bad)
            .to_string();
        assert!(error.starts_with("AUTH0_PUBLIC_ORIGINS "), "{error}");
    }
    let ok = Auth0Config::new("tenant.auth0.com", AUDIENCE).public_origins(["HTTPS://API.example.com:443/"]);
    assert!(Auth0::new(ok).is_ok());
    let env = |name: &str| match name {
        "AUTH0_DOMAIN" => Some("tenant.auth0.com".to_owned()),
        "AUTH0_AUDIENCE" => Some(AUDIENCE.to_owned()),
        "AUTH0_REPLAY_STORE_CAPACITY" => Some("many".to_owned()),
        _ => None,
    };
    let error = Auth0Config::from_lookup(env)
        .expect_err("bad capacity")
        .to_string();
    assert!(error.starts_with("AUTH0_REPLAY_STORE_CAPACITY "), "{error}");
    let zero = Auth0Config::new("tenant.auth0.com", AUDIENCE).replay_store_capacity(0);
    assert!(Auth0::new(zero).is_err());
}
