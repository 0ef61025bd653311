//! Tenant policy over real HTTP: a dynamic domains resolver, Auth0 Organizations, and DPoP server
//! nonces shared by two instances.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::{HttpResponse, Responder, get};
use auth0_runtime::testing::{DpopKey, TestIssuer};
use auth0_runtime::{Auth0, Auth0Config, Claims, DomainRequest, DpopNonces, ResolverError, require_auth};
use common::{AUDIENCE, Answer, Api, serve};

#[get("/hello")]
#[require_auth]
async fn hello(claims: Claims) -> impl Responder {
    HttpResponse::Ok().body(claims.sub.clone())
}

/// An API serving `/hello` with `auth0`, wrapped in `DpopNonces`.
fn api(auth0: Auth0) -> (String, common::Server) {
    serve(move |cfg| {
        cfg.app_data(auth0.clone())
            .service(actix_web::web::scope("").wrap(DpopNonces).service(hello));
    })
}

async fn get(base: &str, headers: &[(&str, &str)]) -> (Answer, Option<String>) {
    let mut request = reqwest::Client::new().get(format!("{base}/hello"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => panic!("request: {error}"),
    };
    let nonce = response
        .headers()
        .get("dpop-nonce")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (Answer::read(response).await, nonce)
}

#[tokio::test]
async fn the_domains_resolver_decides_per_request_and_before_any_fetch() {
    let home = TestIssuer::start();
    let tenant = TestIssuer::start();
    let calls = Arc::new(AtomicUsize::new(0));
    let tenant_domain = tenant.domain();
    let seen = Arc::clone(&calls);
    let config = home
        .config(AUDIENCE)
        .root_certificates_pem(tenant.ca_pem().as_bytes().to_vec())
        .domains_resolver(move |request: DomainRequest| {
            seen.fetch_add(1, Ordering::Relaxed);
            let answer = match request.header("x-tenant") {
                Some("acme") => Ok(vec![format!("https://{tenant_domain}/")]),
                Some("broken") => Err(ResolverError::from("the tenant directory is down")),
                _ => Ok(Vec::new()),
            };
            assert!(request.url().ends_with("/hello"), "{}", request.url());
            async move { answer }
        });
    let (base, _server) = api(Auth0::new(config).expect("valid configuration"));
    let bearer = |token: &str| format!("Bearer {token}");

    // The static issuer never asks the resolver.
    let token = home.token().audience(AUDIENCE).sign();
    assert_eq!(
        get(&base, &[("authorization", &bearer(&token))]).await.0.status,
        200
    );
    assert_eq!(calls.load(Ordering::Relaxed), 0);

    // Another issuer: refused, with no fetch, unless the resolver allows it for this request.
    let foreign = tenant.token().audience(AUDIENCE).sign();
    let (refused, _) = get(&base, &[("authorization", &bearer(&foreign))]).await;
    refused.assert_refused(401, "invalid_token");
    assert_eq!(
        refused.description(),
        Some("the access token was issued by an issuer this API does not trust")
    );
    assert_eq!((tenant.discovery_fetches(), tenant.jwks_fetches()), (0, 0));
    let allowed = [
        ("authorization", bearer(&foreign)),
        ("x-tenant", "acme".to_owned()),
    ];
    let allowed: Vec<(&str, &str)> = allowed.iter().map(|(n, v)| (*n, v.as_str())).collect();
    assert_eq!(get(&base, &allowed).await.0.status, 200);
    assert_eq!(get(&base, &allowed).await.0.status, 200);
    // Not cached by the library: the same (cached) token from another host is refused again.
    get(
        &base,
        &[("authorization", &bearer(&foreign)), ("x-tenant", "other")],
    )
    .await
    .0
    .assert_refused(401, "invalid_token");
    assert_eq!(calls.load(Ordering::Relaxed), 4);
    assert_eq!((tenant.discovery_fetches(), tenant.jwks_fetches()), (1, 1));

    // A failing resolver is an outage: 503 with Retry-After, not a bad token.
    let (down, _) = get(
        &base,
        &[("authorization", &bearer(&foreign)), ("x-tenant", "broken")],
    )
    .await;
    down.assert_refused(503, "temporarily_unavailable");
    assert_eq!(down.retry_after.as_deref(), Some("30"));
}

#[tokio::test]
async fn organizations_are_an_allow_list_or_a_requirement() {
    let api = Api::start_with(|c| c.organizations(["org_acme", "org_globex"]));
    assert_eq!(
        api.bearer("/below", &api.token().claim("org_id", "org_acme").sign())
            .await
            .status,
        200
    );
    for (token, description) in [
        (
            api.token().claim("org_id", "org_initech").sign(),
            "the access token is issued for an organization this API does not accept",
        ),
        (
            api.token().sign(),
            "the access token is not issued for an organization",
        ),
        (
            api.token().claim("org_id", 42).sign(),
            "the access token is not issued for an organization",
        ),
    ] {
        let answer = api.bearer("/below", &token).await;
        answer.assert_refused(401, "invalid_token");
        assert_eq!(answer.description(), Some(description));
    }

    let api = Api::start_with(|c| c.organization_required(true));
    assert_eq!(
        api.bearer("/below", &api.token().claim("org_id", "org_any").sign())
            .await
            .status,
        200
    );
    api.bearer("/below", &api.token().sign())
        .await
        .assert_refused(401, "invalid_token");

    let env = |name: &str| match name {
        "AUTH0_DOMAIN" => Some("tenant.auth0.com".to_owned()),
        "AUTH0_AUDIENCE" => Some(AUDIENCE.to_owned()),
        "AUTH0_ORGANIZATIONS" => Some("org_acme, acme".to_owned()),
        _ => None,
    };
    let error = Auth0::new(Auth0Config::from_lookup(env).expect("read")).expect_err("bad id");
    assert!(error.to_string().starts_with("AUTH0_ORGANIZATIONS "), "{error}");
}

#[tokio::test]
async fn dpop_nonces_are_asked_for_and_shared_by_every_instance() {
    let issuer = TestIssuer::start();
    let secret = vec![7u8; 32];
    let instance = |secrets: Vec<Vec<u8>>| {
        Auth0::new(issuer.config(AUDIENCE).dpop_nonce_secrets(secrets)).expect("valid configuration")
    };
    let (a, _a) = api(instance(vec![secret.clone()]));
    let (b, _b) = api(instance(vec![vec![9u8; 32], secret.clone()]));
    let (other, _other) = api(instance(vec![vec![1u8; 32]]));
    let key = DpopKey::generate();
    let token = issuer.token().audience(AUDIENCE).bind_to(&key).sign();
    let authorization = format!("DPoP {token}");
    let send = |base: &str, nonce: Option<&str>| {
        let mut proof = key.proof("GET", &format!("{base}/hello")).access_token(&token);
        if let Some(nonce) = nonce {
            proof = proof.nonce(nonce);
        }
        let proof = proof.sign();
        let (base, authorization) = (base.to_owned(), authorization.clone());
        async move { get(&base, &[("authorization", &authorization), ("dpop", &proof)]).await }
    };

    // No nonce: 401 use_dpop_nonce on the DPoP challenge, and the nonce to retry with.
    let (asked, nonce) = send(&a, None).await;
    asked.assert_refused(401, "use_dpop_nonce");
    let challenge = asked.challenge.clone().unwrap_or_default();
    assert!(challenge.contains("DPoP error=\"use_dpop_nonce\""), "{challenge}");
    let nonce = nonce.expect("a DPoP-Nonce header");
    assert_eq!(nonce.len(), 32);

    // The retry passes, on this instance and on another one with the same secret (even listed
    // second, as after a rotation).
    assert_eq!(send(&a, Some(&nonce)).await.0.status, 200);
    assert_eq!(send(&b, Some(&nonce)).await.0.status, 200);
    // An instance with another secret refuses it, and says which nonce it wants.
    let (refused, theirs) = send(&other, Some(&nonce)).await;
    refused.assert_refused(401, "use_dpop_nonce");
    assert_ne!(theirs.as_deref(), Some(nonce.as_str()));
    // A made-up nonce is refused too; Bearer requests are not concerned.
    send(&a, Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
        .await
        .0
        .assert_refused(401, "use_dpop_nonce");
    let plain = issuer.token().audience(AUDIENCE).sign();
    assert_eq!(
        get(&a, &[("authorization", &format!("Bearer {plain}"))])
            .await
            .0
            .status,
        200
    );
}
