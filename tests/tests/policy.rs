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

/// Loopback "issuers" that accept connections and never answer, counting them.
struct Silent {
    ports: Vec<u16>,
    accepted: Arc<AtomicUsize>,
}

impl Silent {
    fn start(count: usize) -> Self {
        let accepted = Arc::new(AtomicUsize::new(0));
        let ports = (0..count)
            .map(|_| {
                let (listener, port) = match std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr().map(|a| (l, a.port())))
                {
                    Ok(bound) => bound,
                    Err(error) => panic!("bind: {error}"),
                };
                let accepted = Arc::clone(&accepted);
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    for stream in listener.incoming().flatten() {
                        accepted.fetch_add(1, Ordering::SeqCst);
                        held.push(stream);
                    }
                });
                port
            })
            .collect();
        Self { ports, accepted }
    }

    fn issuer(&self, i: usize) -> String {
        format!("https://127.0.0.1:{}/", self.ports[i])
    }
}

#[tokio::test]
async fn forged_issuers_cannot_make_unbounded_fetches_through_an_echoing_resolver() {
    let home = TestIssuer::start();
    // The resolver the docs warn against: it trusts whatever issuer the token names.
    let config = home
        .config(AUDIENCE)
        .http_timeout(std::time::Duration::from_secs(1))
        .new_issuer_fetches(2, 3)
        .domains_resolver(|request: DomainRequest| {
            let issuer = request.unverified_issuer().to_owned();
            async move { Ok::<_, ResolverError>(vec![issuer]) }
        });
    let (base, _server) = api(Auth0::new(config).expect("valid configuration"));
    let silent = Silent::start(9);
    let forged = |i: usize| {
        let token = home.token().audience(AUDIENCE).issuer(silent.issuer(i)).sign();
        format!("Bearer {token}")
    };

    // Six forged issuers at once: two fetches run, the other four are refused without one.
    let answers = futures_util::future::join_all((0..6).map(|i| {
        let (base, authorization) = (base.clone(), forged(i));
        async move { get(&base, &[("authorization", &authorization)]).await.0 }
    }))
    .await;
    for answer in &answers {
        answer.assert_refused(503, "temporarily_unavailable");
        assert_eq!(answer.retry_after.as_deref(), Some("30"));
    }
    assert_eq!(silent.accepted.load(Ordering::SeqCst), 2);

    // The two fetches have timed out: one more may start this minute (3 per minute), then none.
    for i in 6..9 {
        get(&base, &[("authorization", &forged(i))])
            .await
            .0
            .assert_refused(503, "temporarily_unavailable");
    }
    assert_eq!(silent.accepted.load(Ordering::SeqCst), 3);

    // The configured issuer is not concerned.
    let token = home.token().audience(AUDIENCE).sign();
    assert_eq!(
        get(&base, &[("authorization", &format!("Bearer {token}"))])
            .await
            .0
            .status,
        200
    );
}

#[test]
fn the_new_issuer_budget_must_allow_a_fetch() {
    let config = Auth0Config::new("tenant.auth0.com", AUDIENCE).new_issuer_fetches(0, 10);
    let error = Auth0::new(config).expect_err("no fetch allowed");
    assert!(error.to_string().starts_with("new_issuer_fetches "), "{error}");
}

#[tokio::test]
async fn a_domain_requests_debug_output_hides_credentials() {
    let home = TestIssuer::start();
    let seen = Arc::new(std::sync::Mutex::new(String::new()));
    let record = Arc::clone(&seen);
    let config = home
        .config(AUDIENCE)
        .domains_resolver(move |request: DomainRequest| {
            *record.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = format!("{request:?}");
            async { Ok::<_, ResolverError>(Vec::new()) }
        });
    let (base, _server) = api(Auth0::new(config).expect("valid configuration"));
    let token = home
        .token()
        .audience(AUDIENCE)
        .issuer("https://elsewhere.example.com/")
        .sign();
    let authorization = format!("Bearer {token}");
    let (answer, _) = get(
        &base,
        &[
            ("authorization", &authorization),
            ("cookie", "session=cookie-secret"),
            ("proxy-authorization", "Basic proxy-secret"),
            ("x-tenant", "acme"),
        ],
    )
    .await;
    answer.assert_refused(401, "invalid_token");
    let debug = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    assert!(debug.contains("\"x-tenant\", \"acme\""), "{debug}");
    assert!(debug.contains("https://elsewhere.example.com/"), "{debug}");
    for secret in [token.as_str(), "cookie-secret", "proxy-secret"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    assert_eq!(debug.matches("<redacted>").count(), 3, "{debug}");
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
        (
            api.token().claim("org_id", "").sign(),
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
    // An empty `org_id` names no organization.
    let empty = api
        .bearer("/below", &api.token().claim("org_id", "").sign())
        .await;
    empty.assert_refused(401, "invalid_token");
    assert_eq!(
        empty.description(),
        Some("the access token is not issued for an organization")
    );

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
