//! RFC 9728 Protected Resource Metadata over real HTTP: the document an MCP client reads, and the
//! `resource_metadata` parameter of every challenge that sends it there.

#![allow(clippy::expect_used)]

mod common;

use actix_web::{HttpResponse, Responder, get, web};
use auth0_runtime::testing::TestIssuer;
use auth0_runtime::{Auth0, Auth0Config, Claims, protected_resource_metadata, require_auth};
use common::{Answer, serve};
use serde_json::json;

const RESOURCE: &str = "https://mcp.example.com/mcp";
const METADATA_URL: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

#[get("/mcp")]
#[require_auth(scopes = "tools:call")]
async fn mcp(claims: Claims) -> impl Responder {
    HttpResponse::Ok().body(claims.sub.clone())
}

/// An API for `auth0` serving `/mcp` and the metadata at the validator's own path.
fn api(auth0: Auth0) -> (String, common::Server) {
    serve(move |cfg| {
        let path = auth0
            .resource_metadata_path()
            .unwrap_or("/.well-known/oauth-protected-resource")
            .to_owned();
        cfg.app_data(auth0.clone())
            .route(&path, web::get().to(protected_resource_metadata))
            .service(mcp);
    })
}

async fn send(url: &str, token: Option<&str>) -> (Answer, Option<String>) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => panic!("request: {error}"),
    };
    let cache = response
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (Answer::read(response).await, cache)
}

#[tokio::test]
async fn an_mcp_client_is_sent_from_a_refusal_to_the_metadata_and_on_to_the_tenant() {
    let issuer = TestIssuer::start();
    let config = issuer
        .config(RESOURCE)
        .resource_metadata(true)
        .scopes_supported(["tools:call", "tools:list"])
        .resource_documentation("https://docs.example.com/mcp");
    let auth0 = Auth0::new(config).expect("valid configuration");
    assert_eq!(
        auth0.resource_metadata_path(),
        Some("/.well-known/oauth-protected-resource/mcp")
    );
    let (base, _server) = api(auth0);

    // No token: a bare challenge on both schemes, each naming the metadata (RFC 9728 §5.1).
    let (refused, _) = send(&format!("{base}/mcp"), None).await;
    refused.assert_refused(401, "unauthorized");
    let challenge = refused.challenge.clone().unwrap_or_default();
    assert_eq!(
        challenge,
        format!(
            "Bearer realm=\"api\", resource_metadata=\"{METADATA_URL}\", \
             DPoP algs=\"ES256\", resource_metadata=\"{METADATA_URL}\""
        )
    );
    // A bad token and a missing scope carry it too, next to their error.
    let (expired, _) = send(
        &format!("{base}/mcp"),
        Some(&issuer.token().audience(RESOURCE).expires_in(-60).sign()),
    )
    .await;
    expired.assert_refused(401, "invalid_token");
    assert!(
        expired
            .challenge
            .as_deref()
            .is_some_and(|c| c.contains(&format!("resource_metadata=\"{METADATA_URL}\""))),
        "{expired:?}"
    );
    let (scopeless, _) = send(
        &format!("{base}/mcp"),
        Some(&issuer.token().audience(RESOURCE).scope("tools:list").sign()),
    )
    .await;
    scopeless.assert_refused(403, "insufficient_scope");
    let challenge = scopeless.challenge.clone().unwrap_or_default();
    assert!(challenge.contains("scope=\"tools:call\""), "{challenge}");
    assert!(
        challenge.contains(&format!("resource_metadata=\"{METADATA_URL}\"")),
        "{challenge}"
    );

    // The document, at the path the URL names.
    let (metadata, cache) = send(&format!("{base}/.well-known/oauth-protected-resource/mcp"), None).await;
    assert_eq!(metadata.status, 200, "{metadata:?}");
    assert_eq!(cache.as_deref(), Some("max-age=3600"));
    assert_eq!(
        metadata.body,
        json!({
            "resource": RESOURCE,
            "authorization_servers": [issuer.issuer()],
            "scopes_supported": ["tools:call", "tools:list"],
            "bearer_methods_supported": ["header"],
            "dpop_signing_alg_values_supported": ["ES256"],
            "resource_documentation": "https://docs.example.com/mcp"
        })
    );

    // The token the tenant issues for that resource passes.
    let (ok, _) = send(
        &format!("{base}/mcp"),
        Some(&issuer.token().audience(RESOURCE).scope("tools:call").sign()),
    )
    .await;
    assert_eq!(ok.status, 200, "{ok:?}");
}

#[tokio::test]
async fn without_metadata_challenges_stay_as_they_were_and_the_handler_answers_404() {
    let issuer = TestIssuer::start();
    let auth0 = Auth0::new(issuer.config(RESOURCE)).expect("valid configuration");
    assert_eq!(auth0.resource_metadata(), None);
    let (base, _server) = api(auth0);
    let (refused, _) = send(&format!("{base}/mcp"), None).await;
    refused.assert_refused(401, "unauthorized");
    assert_eq!(
        refused.challenge.as_deref(),
        Some("Bearer realm=\"api\", DPoP algs=\"ES256\"")
    );
    let (missing, _) = send(&format!("{base}/.well-known/oauth-protected-resource"), None).await;
    assert_eq!(missing.status, 404);
}

#[test]
fn metadata_is_configured_from_the_environment_and_checked_at_startup() {
    let env = |extra: &'static [(&'static str, &'static str)]| {
        move |name: &str| match name {
            "AUTH0_DOMAIN" => Some("tenant.auth0.com".to_owned()),
            "AUTH0_AUDIENCE" => Some("urn:my-api".to_owned()),
            "AUTH0_DPOP_REQUIRED" => Some("true".to_owned()),
            _ => extra
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned()),
        }
    };
    let auth0 = |extra| Auth0::new(Auth0Config::from_lookup(env(extra)).expect("read"));

    // An audience that is no URL cannot be the resource: the error says to set AUTH0_RESOURCE.
    let error = auth0(&[("AUTH0_RESOURCE_METADATA", "true")]).expect_err("urn audience");
    assert!(error.to_string().starts_with("AUTH0_AUDIENCE "), "{error}");
    assert!(error.to_string().contains("AUTH0_RESOURCE"), "{error}");

    let auth0 = auth0(&[
        ("AUTH0_RESOURCE_METADATA_URL", "https://api.example.com/meta"),
        ("AUTH0_RESOURCE", "https://api.example.com/"),
        ("AUTH0_SCOPES_SUPPORTED", "read:a, write:a"),
    ])
    .expect("valid configuration");
    assert_eq!(auth0.resource_metadata_path(), Some("/meta"));
    let document = auth0.resource_metadata().expect("published");
    assert_eq!(document.resource, "https://api.example.com/");
    assert_eq!(document.authorization_servers, ["https://tenant.auth0.com/"]);
    assert_eq!(document.scopes_supported, ["read:a", "write:a"]);
    assert!(document.dpop_bound_access_tokens_required);

    type Env = &'static [(&'static str, &'static str)];
    let refused: [(Env, &str); 3] = [
        (
            &[("AUTH0_RESOURCE_METADATA_URL", "https://api.example.com/meta?x=1")],
            // The URN audience is the resource, and is refused first.
            "AUTH0_AUDIENCE ",
        ),
        (
            &[
                ("AUTH0_RESOURCE_METADATA_URL", "https://api.example.com/meta?x=1"),
                ("AUTH0_RESOURCE", "https://api.example.com"),
            ],
            "AUTH0_RESOURCE_METADATA_URL ",
        ),
        (
            &[
                ("AUTH0_RESOURCE_METADATA", "true"),
                ("AUTH0_RESOURCE", "https://api.example.com"),
                ("AUTH0_SCOPES_SUPPORTED", "read:\"a\""),
            ],
            "AUTH0_SCOPES_SUPPORTED ",
        ),
    ];
    for (extra, blamed) in refused {
        let error = Auth0::new(Auth0Config::from_lookup(env(extra)).expect("read")).expect_err(blamed);
        assert!(error.to_string().starts_with(blamed), "{error}");
    }
    // A resource the URL parser would rewrite cannot be published as written and served at the
    // URL derived from it: refused, with the form to write.
    for resource in [
        "https://api.example.com/caf\u{e9}",
        "https://api.example.com/caf%C3%A9",
        "https://api.example.com/a\tb",
        "https://API.example.com/mcp",
    ] {
        let error = Auth0::new(
            Auth0Config::new("tenant.auth0.com", "urn:my-api")
                .resource(resource)
                .resource_metadata(true),
        )
        .expect_err(resource);
        assert!(error.to_string().starts_with("AUTH0_RESOURCE "), "{error}");
        assert!(error.to_string().contains("percent-encoding"), "{error}");
    }
    // Turned off and given a URL in one environment: refused rather than guessed.
    let both: Env = &[
        ("AUTH0_RESOURCE_METADATA", "false"),
        ("AUTH0_RESOURCE_METADATA_URL", "https://api.example.com/meta"),
        ("AUTH0_RESOURCE", "https://api.example.com"),
    ];
    let error = Auth0Config::from_lookup(env(both)).expect_err("false with a URL");
    assert!(
        error.to_string().starts_with("AUTH0_RESOURCE_METADATA_URL "),
        "{error}"
    );
    assert!(
        error.to_string().contains("AUTH0_RESOURCE_METADATA=false"),
        "{error}"
    );
    // In code, the last word wins.
    let off = Auth0Config::new("tenant.auth0.com", "https://api.example.com")
        .resource_metadata_url("https://api.example.com/meta")
        .resource_metadata(false);
    assert_eq!(Auth0::new(off).expect("valid").resource_metadata(), None);

    let docs: Env = &[
        ("AUTH0_RESOURCE_METADATA", "true"),
        ("AUTH0_RESOURCE", "https://api.example.com"),
        ("AUTH0_RESOURCE_DOCUMENTATION", "docs"),
    ];
    let error = Auth0::new(Auth0Config::from_lookup(env(docs)).expect("read")).expect_err("docs");
    assert!(
        error.to_string().starts_with("AUTH0_RESOURCE_DOCUMENTATION "),
        "{error}"
    );
}
