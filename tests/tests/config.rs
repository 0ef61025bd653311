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
