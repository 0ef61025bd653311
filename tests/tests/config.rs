//! Configuration: every bad setting fails at startup with a message that names it and the fix;
//! `SSL_CERT_FILE` is honoured.

mod common;

use std::collections::HashMap;

use auth0_runtime::testing::TestIssuer;
use auth0_runtime::{Auth0, Auth0Config, ConfigError};
use common::AUDIENCE;

fn from(vars: &[(&str, &str)]) -> Result<Auth0, ConfigError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Auth0::new(Auth0Config::from_lookup(|name| vars.get(name).cloned())?)
}

type Vars<'a> = &'a [(&'a str, &'a str)];

const OK: [(&str, &str); 2] = [
    ("AUTH0_DOMAIN", "tenant.us.auth0.com"),
    ("AUTH0_AUDIENCE", "https://api.example.com"),
];

#[test]
fn a_good_environment_builds_a_validator() {
    assert!(from(&OK).is_ok());
    let all = [
        ("AUTH0_DOMAIN", "https://tenant.us.auth0.com/"),
        ("AUTH0_AUDIENCE", "https://api.example.com"),
        ("AUTH0_DPOP_ENABLED", "true"),
        ("AUTH0_DPOP_REQUIRED", "TRUE"),
        ("AUTH0_DPOP_IAT_LEEWAY", "10"),
        ("AUTH0_DPOP_IAT_OFFSET", "60"),
        ("AUTH0_LEEWAY", "5"),
        ("AUTH0_CACHE_TTL_SECONDS", "60"),
        ("AUTH0_CACHE_MAX_ENTRIES", "10"),
        ("AUTH0_HTTP_TIMEOUT_SECONDS", "3"),
        ("AUTH0_TRUST_PROXY", "true"),
        ("AUTH0_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
        ("AUTH0_TOKEN_CACHE_ENTRIES", "0"),
        ("AUTH0_CLIENT_ID", "id"),
        ("AUTH0_CLIENT_SECRET", "secret"),
    ];
    assert!(from(&all).is_ok());
    assert!(from(&[("AUTH0_DOMAINS", "a.example.com, b.example.com"), OK[1]]).is_ok());
}

#[test]
fn every_bad_setting_is_a_startup_error_that_names_it() {
    // (environment, how the message starts, a hint it contains)
    let cases: &[(Vars<'_>, &str, &str)] = &[
        (&[OK[1]], "AUTH0_DOMAIN is not set", "tenant.us.auth0.com"),
        (&[OK[0]], "AUTH0_AUDIENCE is not set", "identifier"),
        (
            &[("AUTH0_DOMAIN", "http://tenant.us.auth0.com"), OK[1]],
            "AUTH0_DOMAIN must be a host",
            "not a URL with http://",
        ),
        (
            &[("AUTH0_DOMAIN", "tenant.us.auth0.com/api"), OK[1]],
            "AUTH0_DOMAIN must be a bare host",
            "path",
        ),
        (
            &[("AUTH0_DOMAIN", "tenant.us.auth0.com?x=1"), OK[1]],
            "AUTH0_DOMAIN must be a bare host",
            "query",
        ),
        (
            &[("AUTH0_DOMAIN", "me:pw@tenant.us.auth0.com"), OK[1]],
            "AUTH0_DOMAIN must not contain credentials",
            "bare host",
        ),
        (
            &[("AUTH0_DOMAINS", "a.example.com,http://b.example.com"), OK[1]],
            "AUTH0_DOMAINS",
            "http://",
        ),
        (
            &[OK[0], OK[1], ("AUTH0_DPOP_ENABLED", "maybe")],
            "AUTH0_DPOP_ENABLED must be true or false",
            "",
        ),
        (
            &[
                OK[0],
                OK[1],
                ("AUTH0_DPOP_ENABLED", "false"),
                ("AUTH0_DPOP_REQUIRED", "true"),
            ],
            "AUTH0_DPOP_REQUIRED",
            "enable DPoP",
        ),
        (
            &[OK[0], OK[1], ("AUTH0_DPOP_IAT_LEEWAY", "-1")],
            "AUTH0_DPOP_IAT_LEEWAY must be a whole number of seconds",
            "like 30",
        ),
        (
            &[OK[0], OK[1], ("AUTH0_DPOP_IAT_OFFSET", "5m")],
            "AUTH0_DPOP_IAT_OFFSET must be a whole number of seconds",
            "like 300",
        ),
        (
            &[OK[0], OK[1], ("AUTH0_LEEWAY", "abc")],
            "AUTH0_LEEWAY must be a whole number of seconds",
            "",
        ),
        (
            &[OK[0], OK[1], ("AUTH0_CACHE_TTL_SECONDS", "0")],
            "AUTH0_CACHE_TTL_SECONDS must be at least 1 second",
            "",
        ),
        (
            &[OK[0], OK[1], ("AUTH0_CACHE_MAX_ENTRIES", "1")],
            "AUTH0_CACHE_MAX_ENTRIES must be at least 2",
            "",
        ),
        (
            &[OK[0], OK[1], ("AUTH0_CACHE_MAX_ENTRIES", "lots")],
            "AUTH0_CACHE_MAX_ENTRIES must be a whole number",
            "",
        ),
        (
            &[OK[0], OK[1], ("AUTH0_HTTP_TIMEOUT_SECONDS", "0")],
            "AUTH0_HTTP_TIMEOUT_SECONDS must be at least 1 second",
            "",
        ),
        (
            &[OK[0], OK[1], ("AUTH0_TRUST_PROXY", "2")],
            "AUTH0_TRUST_PROXY must be true or false",
            "",
        ),
        (
            &[OK[0], OK[1], ("AUTH0_CLIENT_ID", "id")],
            "AUTH0_CLIENT_SECRET and AUTH0_CLIENT_ID go together",
            "",
        ),
        (
            &[OK[0], OK[1], ("SSL_CERT_FILE", "/nonexistent/ca.pem")],
            "SSL_CERT_FILE names /nonexistent/ca.pem",
            "PEM",
        ),
    ];
    for (vars, start, hint) in cases {
        let message = from(vars).expect_err(start).to_string();
        assert!(message.starts_with(start), "{message}");
        assert!(message.contains(hint), "{message}");
    }
}

#[test]
fn algorithms_must_be_asymmetric() {
    // HMAC and `none` have no `Algorithm`: a shared secret cannot even be configured.
    for name in ["HS256", "HS384", "HS512", "none"] {
        let message = name
            .parse::<auth0_runtime::Algorithm>()
            .expect_err(name)
            .to_string();
        assert!(message.contains("asymmetric"), "{message}");
    }
    let config = Auth0Config::new("t.auth0.com", "https://api").algorithms([]);
    let message = Auth0::new(config).expect_err("no algorithm").to_string();
    assert!(message.contains("at least one algorithm"), "{message}");
}

#[tokio::test]
async fn auth0_algorithms_opts_in_to_other_asymmetric_algorithms() {
    use auth0_runtime::Algorithm;
    let issuer = TestIssuer::start();
    for alg in [Algorithm::PS256, Algorithm::ES256, Algorithm::RS384] {
        issuer.add_key(alg);
    }
    let domain = issuer.domain();
    let ca = issuer.ca_pem();
    let validator = |algorithms: Option<&str>| {
        let mut vars = vec![("AUTH0_DOMAIN", domain.as_str()), ("AUTH0_AUDIENCE", AUDIENCE)];
        if let Some(list) = algorithms {
            vars.push(("AUTH0_ALGORITHMS", list));
        }
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let config = Auth0Config::from_lookup(|name| vars.get(name).cloned()).expect("read");
        Auth0::new(config.root_certificates_pem(ca.as_bytes().to_vec())).expect("valid")
    };
    let signed = |alg| issuer.token().audience(AUDIENCE).alg(alg).sign();

    // RS256 only, by default.
    let default = validator(None);
    assert_eq!(status_with(default.clone(), &signed(Algorithm::RS256)).await, 200);
    for alg in [Algorithm::PS256, Algorithm::ES256, Algorithm::RS384] {
        assert_eq!(status_with(default.clone(), &signed(alg)).await, 401, "{alg}");
    }
    // Listed algorithms pass, others still do not.
    let listed = validator(Some("PS256, ES256"));
    assert_eq!(status_with(listed.clone(), &signed(Algorithm::PS256)).await, 200);
    assert_eq!(status_with(listed.clone(), &signed(Algorithm::ES256)).await, 200);
    assert_eq!(status_with(listed.clone(), &signed(Algorithm::RS256)).await, 401);
    assert_eq!(status_with(listed, &signed(Algorithm::RS384)).await, 401);

    // HMAC and `none` are refused at startup, with the reason; so is a name we do not know.
    for (list, why) in [
        ("RS256,HS256", "HMAC"),
        ("none", "unsigned"),
        ("rs256", "not a JWS algorithm this crate verifies"),
    ] {
        let error = from(&[OK[0], OK[1], ("AUTH0_ALGORITHMS", list)]).expect_err(list);
        let message = error.to_string();
        assert!(message.starts_with("AUTH0_ALGORITHMS "), "{message}");
        assert!(message.contains(why), "{message}");
    }
    let error = from(&[OK[0], OK[1], ("AUTH0_DPOP_ALGORITHMS", "HS512")]).expect_err("hmac proof");
    assert!(error.to_string().starts_with("AUTH0_DPOP_ALGORITHMS "), "{error}");
    // An empty list names its own setter and default.
    let error = from(&[OK[0], OK[1], ("AUTH0_DPOP_ALGORITHMS", ",")]).expect_err("no proof algorithm");
    let message = error.to_string();
    assert!(message.starts_with("AUTH0_DPOP_ALGORITHMS "), "{message}");
    assert!(
        message.contains("`dpop_algorithms`") && message.contains("ES256"),
        "{message}"
    );

    // A name listed twice is advertised once, in the challenge and in the metadata.
    let twice = from(&[
        OK[0],
        OK[1],
        ("AUTH0_DPOP_ALGORITHMS", "ES256, EdDSA, ES256"),
        ("AUTH0_RESOURCE_METADATA", "true"),
    ])
    .expect("valid configuration");
    let listed = &twice
        .resource_metadata()
        .expect("published")
        .dpop_signing_alg_values_supported;
    assert_eq!(listed, &["ES256", "EdDSA"]);
    let listed = Auth0Config::new("t.auth0.com", "https://api")
        .dpop_algorithms([Algorithm::ES256, Algorithm::ES256])
        .resource_metadata(true);
    let listed = Auth0::new(listed).expect("valid configuration");
    assert_eq!(
        listed
            .resource_metadata()
            .expect("published")
            .dpop_signing_alg_values_supported,
        ["ES256"]
    );
}

/// RFC 8725 §3.1: one key, one algorithm. A published key without `alg` is used with the first
/// configured algorithm its type fits, never with two.
#[tokio::test]
async fn a_key_without_alg_is_used_with_one_algorithm() {
    use auth0_runtime::Algorithm;
    let issuer = TestIssuer::start();
    let kid = issuer.add_key(Algorithm::PS256);
    let mut jwk = issuer.jwks()["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid.as_str()).cloned())
        .expect("published");
    jwk.as_object_mut().expect("object").remove("alg");
    assert!(issuer.remove_key(&kid));
    issuer.publish_jwk(jwk);
    let signed = |alg| {
        issuer
            .token()
            .audience(AUDIENCE)
            .kid(kid.as_str())
            .alg(alg)
            .sign()
    };
    for (preferred, other) in [
        (Algorithm::RS256, Algorithm::PS256),
        (Algorithm::PS256, Algorithm::RS256),
    ] {
        let auth0 = Auth0::new(issuer.config(AUDIENCE).algorithms([preferred, other])).expect("valid");
        assert_eq!(
            status_with(auth0.clone(), &signed(preferred)).await,
            200,
            "{preferred}"
        );
        assert_eq!(
            status_with(auth0, &signed(other)).await,
            401,
            "{other} with a {preferred} key"
        );
    }
}

#[tokio::test]
async fn ssl_cert_file_is_honoured() {
    let issuer = TestIssuer::start();
    let dir = std::env::temp_dir().join(format!("auth0-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ca = issuer.write_ca_file(&dir).expect("CA file");
    let domain = issuer.domain();
    let ca = ca.to_string_lossy().into_owned();
    let vars = [
        ("AUTH0_DOMAIN", domain.as_str()),
        ("AUTH0_AUDIENCE", AUDIENCE),
        ("SSL_CERT_FILE", ca.as_str()),
    ];
    let trusting = from(&vars).expect("config");
    let untrusting = from(&vars[..2]).expect("config");
    let token = issuer.token().audience(AUDIENCE).sign();
    assert_eq!(status_with(trusting, &token).await, 200);
    // Without the CA the issuer's certificate is not trusted: no keys, 503.
    assert_eq!(status_with(untrusting, &token).await, 503);
    drop(issuer);
}

async fn status_with(auth0: Auth0, token: &str) -> u16 {
    use actix_web::{App, test, web};
    let app = test::init_service(App::new().app_data(auth0).route("/", web::get().to(private))).await;
    let req = test::TestRequest::get()
        .uri("/")
        .insert_header(("authorization", format!("Bearer {token}")));
    let resp = test::call_service(&app, req.to_request()).await;
    resp.status().as_u16()
}

async fn private(claims: auth0_runtime::Claims) -> String {
    claims.sub.clone()
}
