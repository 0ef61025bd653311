//! Bearer tokens through real HTTP: every check of SPEC §5 and every row of the §7 table.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::{AUDIENCE, Answer, Api, now};
use serde_json::json;

const BOTH: &str = "Bearer realm=\"api\", DPoP algs=\"ES256\"";

#[tokio::test]
async fn a_valid_token_passes_with_either_attribute_order() {
    let api = Api::start();
    let token = api.token().subject("auth0|alice").sign();
    for (path, body) in [
        ("/above", "above auth0|alice Bearer"),
        ("/below", "below auth0|alice"),
    ] {
        let answer = api.bearer(path, &token).await;
        assert_eq!((answer.status, answer.text.as_str()), (200, body));
    }
    // Scheme case-insensitive, one or more spaces before the token (RFC 6750 §2.1).
    for header in [format!("bearer {token}"), format!("BEARER   {token}")] {
        assert_eq!(api.get("/below", Some(&header)).await.status, 200, "{header}");
    }
}

#[tokio::test]
async fn missing_or_foreign_credentials_get_a_bare_challenge() {
    let api = Api::start();
    for header in [None, Some("Basic dXNlcjpwdw=="), Some("Token abc")] {
        let answer = api.get("/below", header).await;
        answer.assert_refused(401, "unauthorized");
        assert_eq!(answer.challenge.as_deref(), Some(BOTH), "{header:?}");
    }
}

#[tokio::test]
async fn malformed_authorization_headers_are_bad_requests() {
    let api = Api::start();
    let token = api.token().sign();
    for header in [
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearer a,b",
        "Bearer \"quoted\"",
    ] {
        api.get("/below", Some(header))
            .await
            .assert_refused(400, "invalid_request");
    }
    // Two Authorization headers are refused whatever their order.
    for pair in [
        [format!("Bearer {token}"), "Bearer x".to_owned()],
        ["Bearer x".to_owned(), format!("Bearer {token}")],
    ] {
        let resp = api
            .http
            .get(api.url("/below"))
            .header("authorization", &pair[0])
            .header("authorization", &pair[1]);
        let answer = Answer::read(resp.send().await.expect("request")).await;
        answer.assert_refused(400, "invalid_request");
        assert!(
            answer
                .challenge
                .as_deref()
                .is_some_and(|c| c.starts_with("Bearer realm=\"api\", error="))
        );
    }
}

#[tokio::test]
async fn every_token_failure_is_invalid_token() {
    let api = Api::start();
    let now = now();
    let cases = [
        ("expired", api.token().expires_in(-10).sign()),
        ("not yet valid", api.token().not_before(now + 600).sign()),
        (
            "other audience",
            api.token().audience("https://other.example.com").sign(),
        ),
        (
            "audience list without ours",
            api.token()
                .audiences(["https://a.example.com", "https://b.example.com"])
                .sign(),
        ),
        ("no exp", api.token().remove("exp").sign()),
        (
            "string exp",
            api.token().claim("exp", json!((now + 600).to_string())).sign(),
        ),
        ("no iat", api.token().remove("iat").sign()),
        ("no kid", api.token().remove_header("kid").sign()),
        ("unknown kid", api.token().kid("nobody").sign()),
        (
            "dpop+jwt typ",
            api.token().header("typ", json!("dpop+jwt")).sign(),
        ),
        ("crit", api.token().header("crit", json!(["exp"])).sign()),
        ("null crit", api.token().header("crit", json!(null)).sign()),
        ("foreign key", api.token().sign_with_unknown_key()),
        (
            "oversize",
            api.token().claim("pad", json!("x".repeat(20_000))).sign(),
        ),
    ];
    for (name, token) in cases {
        let answer = api.bearer("/below", &token).await;
        answer.assert_refused(401, "invalid_token");
        assert!(
            answer
                .challenge
                .as_deref()
                .is_some_and(|c| c.starts_with("Bearer realm=\"api\", error=\"invalid_token\"")),
            "{name}: {answer:?}"
        );
        assert!(
            !answer.text.contains("nobody"),
            "descriptions never echo input: {name}"
        );
    }
    let expired = api.bearer("/below", &api.token().expires_in(-10).sign()).await;
    assert_eq!(expired.description(), Some("the access token has expired"));
}

#[tokio::test]
async fn forged_and_malformed_tokens_are_invalid_tokens() {
    let api = Api::start();
    let good = api.token().sign();
    let parts: Vec<&str> = good.split('.').collect();
    let payload = api.token().claim("sub", json!("mallory")).sign();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        payload.split('.').nth(1).unwrap_or_default(),
        parts[2]
    );
    let header = |h: serde_json::Value| B64.encode(h.to_string());
    let none = format!("{}.{}.", header(json!({"alg": "none", "kid": "key-1"})), parts[1]);
    let hs256 = format!(
        "{}.{}.{}",
        header(json!({"alg": "HS256", "kid": "key-1"})),
        parts[1],
        parts[2]
    );
    let duplicate = format!(
        "{}.{}.{}",
        B64.encode(r#"{"alg":"RS256","alg":"none","kid":"key-1"}"#),
        parts[1],
        parts[2]
    );
    let cases = [
        ("tampered payload", tampered),
        ("alg none", none),
        ("alg HS256", hs256),
        ("duplicate header member", duplicate),
        ("two segments", format!("{}.{}", parts[0], parts[1])),
        ("four segments", format!("{good}.x")),
        ("padding", format!("{good}=")),
        (
            "not json",
            format!("{}.{}.{}", B64.encode("hello"), parts[1], parts[2]),
        ),
        (
            "array payload",
            format!("{}.{}.{}", parts[0], B64.encode("[1]"), parts[2]),
        ),
    ];
    for (name, token) in cases {
        let answer = api.bearer("/below", &token).await;
        assert_eq!(answer.status, 401, "{name}: {answer:?}");
        answer.assert_refused(401, "invalid_token");
    }
    // `=` inside the token is not an RFC 6750 b64token at all: the header is malformed.
    let inner_padding = format!("{}=.{}.{}", parts[0], parts[1], parts[2]);
    api.bearer("/below", &inner_padding)
        .await
        .assert_refused(400, "invalid_request");
}

#[tokio::test]
async fn an_untrusted_issuer_is_refused_before_any_fetch() {
    let api = Api::start();
    let token = api
        .token()
        .claim("iss", json!("https://evil.example.com/"))
        .sign();
    api.bearer("/below", &token)
        .await
        .assert_refused(401, "invalid_token");
    assert_eq!(
        (api.issuer.discovery_fetches(), api.issuer.jwks_fetches()),
        (0, 0)
    );
}

#[tokio::test]
async fn token_types_follow_rfc_9068() {
    let api = Api::start();
    for typ in ["at+jwt", "application/at+jwt", "JWT", "jwt"] {
        assert_eq!(
            api.bearer("/below", &api.token().header("typ", json!(typ)).sign())
                .await
                .status,
            200,
            "{typ}"
        );
    }
    let strict = Api::start_with(|c| c.require_at_jwt(true));
    assert_eq!(
        strict
            .bearer("/below", &strict.token().header("typ", json!("at+jwt")).sign())
            .await
            .status,
        200
    );
    strict
        .bearer("/below", &strict.token().header("typ", json!("JWT")).sign())
        .await
        .assert_refused(401, "invalid_token");
}

#[tokio::test]
async fn scopes_are_checked_exactly_with_403_and_the_scope() {
    let api = Api::start();
    let both = api.token().scope("  write:messages   read:messages ").sign();
    assert_eq!(api.bearer("/scoped", &both).await.status, 200);
    for token in [
        api.token().scope("read:messages").sign(),
        api.token().scope("READ:MESSAGES WRITE:MESSAGES").sign(),
        api.token()
            .claim("scope", json!(["read:messages", "write:messages"]))
            .sign(),
        api.token().sign(),
    ] {
        let answer = api.bearer("/scoped", &token).await;
        answer.assert_refused(403, "insufficient_scope");
        assert!(
            answer
                .challenge
                .as_deref()
                .is_some_and(|c| c.contains("scope=\"read:messages write:messages\"")),
            "{answer:?}"
        );
    }
    assert_eq!(
        api.bearer("/scoped-list", &api.token().scope("read:messages").sign())
            .await
            .status,
        200
    );
    assert_eq!(
        api.bearer("/any", &api.token().scope("admin").sign())
            .await
            .status,
        200
    );
    api.bearer("/any", &api.token().scope("write:messages").sign())
        .await
        .assert_refused(403, "insufficient_scope");
    assert_eq!(
        api.bearer("/perms", &api.token().permissions(["read:messages"]).sign())
            .await
            .status,
        200
    );
    for token in [
        api.token().scope("read:messages").sign(),
        api.token().claim("permissions", json!("read:messages")).sign(),
    ] {
        api.bearer("/perms", &token)
            .await
            .assert_refused(403, "insufficient_scope");
    }
}

#[tokio::test]
async fn a_dpop_bound_token_is_never_a_bearer_token() {
    for api in [Api::start(), Api::start_with(|c| c.dpop_enabled(false))] {
        let bound = api
            .token()
            .claim(
                "cnf",
                json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
            )
            .sign();
        api.bearer("/below", &bound)
            .await
            .assert_refused(401, "invalid_token");
    }
}

#[tokio::test]
async fn a_bearer_request_carrying_a_dpop_proof_is_refused() {
    let api = Api::start();
    let resp = api
        .http
        .get(api.url("/below"))
        .bearer_auth(api.token().sign())
        .header("dpop", "x.y.z");
    Answer::read(resp.send().await.expect("request"))
        .await
        .assert_refused(400, "invalid_request");
}

#[tokio::test]
async fn the_body_is_never_read_before_authentication() {
    let api = Api::start();
    let post = |auth: Option<String>| {
        let mut req = api
            .http
            .post(api.url("/messages"))
            .header("content-type", "application/json")
            .body("{not json");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };
    Answer::read(post(None).await.expect("request"))
        .await
        .assert_refused(401, "unauthorized");
    let forged = format!("Bearer {}", api.token().sign_with_unknown_key());
    Answer::read(post(Some(forged)).await.expect("request"))
        .await
        .assert_refused(401, "invalid_token");
    // Authenticated, the body is parsed and refused by the Json extractor.
    let ok = format!("Bearer {}", api.token().sign());
    assert_eq!(post(Some(ok)).await.expect("request").status(), 400);
    let created = api
        .http
        .post(api.url("/messages"))
        .bearer_auth(api.token().subject("bob").sign())
        .header("content-type", "application/json")
        .body(json!({"text": "hi"}).to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(created.status(), 201);
    assert_eq!(created.text().await.expect("body"), "bob wrote hi");
}

#[tokio::test]
async fn typed_custom_claims() {
    let api = Api::start();
    let token = api
        .token()
        .claim("https://example.com/roles", json!(["admin", "ops"]))
        .sign();
    assert_eq!(api.bearer("/typed", &token).await.text, "admin,ops");
    let malformed = api
        .token()
        .claim("https://example.com/roles", json!("admin"))
        .sign();
    api.bearer("/typed", &malformed)
        .await
        .assert_refused(401, "invalid_token");
}

#[tokio::test]
async fn the_middleware_protects_a_scope() {
    let api = Api::start();
    api.get("/mw/messages", None)
        .await
        .assert_refused(401, "unauthorized");
    api.bearer("/mw/messages", &api.token().sign())
        .await
        .assert_refused(403, "insufficient_scope");
    let answer = api
        .bearer(
            "/mw/messages",
            &api.token().subject("carol").scope("read:messages").sign(),
        )
        .await;
    assert_eq!((answer.status, answer.text.as_str()), (200, "middleware carol"));
}

#[tokio::test]
async fn optional_auth_refuses_bad_credentials() {
    let api = Api::start();
    assert_eq!(api.get("/optional/hello", None).await.text, "hello anonymous");
    assert_eq!(
        api.bearer("/optional/hello", &api.token().subject("dave").sign())
            .await
            .text,
        "hello dave"
    );
    api.bearer("/optional/hello", &api.token().expires_in(-5).sign())
        .await
        .assert_refused(401, "invalid_token");
    api.get("/optional/hello", Some("Bearer"))
        .await
        .assert_refused(400, "invalid_request");
}

#[tokio::test]
async fn leeway_applies_to_exp_and_nbf() {
    let api = Api::start_with(|c| c.leeway(std::time::Duration::from_secs(60)));
    assert_eq!(
        api.bearer("/below", &api.token().expires_in(-30).sign())
            .await
            .status,
        200
    );
    assert_eq!(
        api.bearer("/below", &api.token().not_before(now() + 30).sign())
            .await
            .status,
        200
    );
    api.bearer("/below", &api.token().expires_in(-90).sign())
        .await
        .assert_refused(401, "invalid_token");
}

#[tokio::test]
async fn several_audiences_may_be_accepted() {
    let api = Api::start_with(|c| c.audiences([AUDIENCE, "https://second.example.com"]));
    let token = api
        .issuer
        .token()
        .audiences(["https://x.example.com", "https://second.example.com"])
        .sign();
    assert_eq!(api.bearer("/below", &token).await.status, 200);
}

#[tokio::test]
async fn no_configuration_fails_closed() {
    let api = Api::unconfigured();
    let answer = api.bearer("/below", &api.token().sign()).await;
    answer.assert_refused(500, "internal_server_error");
}

#[tokio::test]
async fn the_error_response_can_be_customised_in_one_place() {
    let api = Api::start_with(|c| {
        c.on_refusal(|error, mut refusal| {
            refusal.set_header("X-Refused", "custom");
            assert_eq!(refusal.status, error.status());
            refusal
        })
    });
    let resp = api.http.get(api.url("/below")).send().await.expect("request");
    assert_eq!(
        resp.headers().get("x-refused").and_then(|v| v.to_str().ok()),
        Some("custom")
    );
    Answer::read(resp).await.assert_refused(401, "unauthorized");
}

#[tokio::test]
async fn a_verification_is_reused_only_under_the_validator_that_made_it() {
    use actix_web::{HttpResponse, web};
    use auth0_runtime::{Auth0, Claims, RequireAuth};

    let issuer = auth0_runtime::testing::TestIssuer::start();
    let outer = Auth0::new(issuer.config("https://outer.example.com")).expect("config");
    let inner = Auth0::new(issuer.config("https://inner.example.com")).expect("config");
    let (base, _server) = common::serve(move |cfg| {
        cfg.service(
            web::scope("/outer")
                .app_data(outer.clone())
                .wrap(RequireAuth::new())
                .service(web::scope("/inner").app_data(inner.clone()).route(
                    "",
                    web::get().to(|c: Claims| async move { HttpResponse::Ok().body(c.sub.clone()) }),
                ))
                .route(
                    "",
                    web::get().to(|c: Claims| async move { HttpResponse::Ok().body(c.sub.clone()) }),
                ),
        );
    });
    let http = reqwest::Client::new();
    let get = |path: &str, token: String| http.get(format!("{base}{path}")).bearer_auth(token).send();
    let outer_token = || issuer.token().audience("https://outer.example.com").sign();
    let both = || {
        issuer
            .token()
            .audiences(["https://outer.example.com", "https://inner.example.com"])
            .sign()
    };
    assert_eq!(get("/outer", outer_token()).await.expect("request").status(), 200);
    // The middleware accepted it under the outer validator; the inner route's validator refuses it.
    let refused = Answer::read(get("/outer/inner", outer_token()).await.expect("request")).await;
    refused.assert_refused(401, "invalid_token");
    assert_eq!(
        refused.description(),
        Some("the access token is not intended for this API")
    );
    assert_eq!(get("/outer/inner", both()).await.expect("request").status(), 200);
}
