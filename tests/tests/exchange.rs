//! Token exchange over real HTTP: Token Vault, RFC 8693 profiles and on-behalf-of against the test
//! issuer's token endpoint, through `Auth0`'s methods and through Actix handlers (`Auth0` and
//! `AccessToken` extractors, `ExchangeError` answers). Covers the reference SDK's own exchange
//! cases, the wire format field by field, `private_key_jwt`, and every property of the
//! exchanged-token cache.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use actix_web::{HttpResponse, get, post, web};
use auth0_runtime::testing::{Algorithm, Endpoint, Fault, TestClient, TestIssuer, TokenReply, TokenRequest};
use auth0_runtime::{
    AccessToken, Auth0, Auth0Config, ClientAssertionKey, ConfigError, ConnectionTokenRequest, ExchangeError,
    OnBehalfOfRequest, TokenExchangeRequest, require_auth,
};
use base64::Engine as _;
use common::{AUDIENCE, Answer, now};
use serde_json::{Value, json};

const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const FEDERATED_GRANT: &str =
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token";
const FEDERATED_TYPE: &str = "http://auth0.com/oauth/token-type/federated-connection-access-token";
const EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const CUSTOM_TYPE: &str = "urn:example:external-token";
/// A fixed token for byte-exact comparisons (the scripted endpoint does not check it).
const FIXED_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyfDEyMyJ9.c2ln";

/// An issuer, one of its clients, and a validator configured with that client.
struct Setup {
    issuer: TestIssuer,
    client: TestClient,
    auth0: Auth0,
}

impl Setup {
    fn new() -> Self {
        Self::with(|c| c)
    }

    fn with(adjust: impl FnOnce(Auth0Config) -> Auth0Config) -> Self {
        let issuer = TestIssuer::start();
        let client = issuer.client();
        Self::for_client(issuer, client, adjust)
    }

    fn for_client(
        issuer: TestIssuer,
        client: TestClient,
        adjust: impl FnOnce(Auth0Config) -> Auth0Config,
    ) -> Self {
        let auth0 = Auth0::new(adjust(client.configure(issuer.config(AUDIENCE)))).expect("config");
        Self {
            issuer,
            client,
            auth0,
        }
    }

    /// A valid access token of the caller.
    fn caller(&self) -> String {
        self.issuer
            .token()
            .audience(AUDIENCE)
            .subject("auth0|alice")
            .sign()
    }

    fn requests(&self) -> Vec<TokenRequest> {
        self.issuer.token_requests()
    }

    fn last(&self) -> TokenRequest {
        self.requests().pop().expect("a token request")
    }

    async fn connection(
        &self,
        request: ConnectionTokenRequest,
    ) -> Result<auth0_runtime::ConnectionToken, ExchangeError> {
        self.auth0.token_for_connection(request).await
    }

    async fn exchange(
        &self,
        request: TokenExchangeRequest,
    ) -> Result<auth0_runtime::ExchangedToken, ExchangeError> {
        self.auth0.exchange_token(request).await
    }

    async fn obo(&self, request: OnBehalfOfRequest) -> Result<auth0_runtime::OnBehalfOfToken, ExchangeError> {
        self.auth0.token_on_behalf_of(request).await
    }
}

fn decode_jwt(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("b64"),
    )
    .expect("json")
}

#[track_caller]
fn assert_near_now(at: i64, offset: i64) {
    let expected = now() + offset;
    assert!((expected - 5..=expected + 1).contains(&at), "{at} vs {expected}");
}

// ---------------------------------------------------------------------------------------------
// Token Vault

#[tokio::test]
async fn token_vault_success_and_wire_format() {
    let s = Setup::new();
    s.issuer
        .set_connection_scope("google-oauth2", "https://www.googleapis.com/auth/calendar");
    let caller = s.caller();
    let token = s
        .connection(ConnectionTokenRequest::new("google-oauth2", &caller))
        .await
        .expect("exchange");
    assert!(token.access_token.expose().starts_with("upstream-google-oauth2-"));
    assert_eq!(token.scope, "https://www.googleapis.com/auth/calendar");
    assert_eq!(token.expires_in, 3600);
    assert_near_now(token.expires_at, 3600);
    assert_eq!(token.token_type.as_deref(), Some("Bearer"));
    assert_eq!(token.issued_token_type.as_deref(), Some(FEDERATED_TYPE));
    assert!(!format!("{token:?}").contains(token.access_token.expose()));

    let sent = s.last();
    assert_eq!(
        sent.names(),
        [
            "connection",
            "requested_token_type",
            "grant_type",
            "client_id",
            "subject_token",
            "subject_token_type"
        ]
    );
    assert_eq!(sent.field("connection"), Some("google-oauth2"));
    assert_eq!(sent.field("requested_token_type"), Some(FEDERATED_TYPE));
    assert_eq!(sent.field("grant_type"), Some(FEDERATED_GRANT));
    assert_eq!(sent.field("client_id"), Some(s.client.id()));
    assert_eq!(sent.field("subject_token"), Some(caller.as_str()));
    assert_eq!(sent.field("subject_token_type"), Some(ACCESS_TOKEN_TYPE));
    assert_eq!(
        sent.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let secret = s.client.secret().expect("secret").to_owned();
    assert_eq!(
        sent.basic_credentials(),
        Some((s.client.id().to_owned(), secret.clone()))
    );
    assert!(!sent.body.contains(&secret), "the secret never goes in the body");
}

#[tokio::test]
async fn token_vault_without_scope_answers_an_empty_scope_and_sends_the_login_hint() {
    let s = Setup::new();
    let caller = s.caller();
    let token = s
        .connection(ConnectionTokenRequest::new("github", &caller).login_hint("alice@example.com"))
        .await
        .expect("exchange");
    assert_eq!(token.scope, "");
    let sent = s.last();
    assert_eq!(sent.names().last(), Some(&"login_hint"));
    assert_eq!(sent.field("login_hint"), Some("alice@example.com"));
    // An empty hint is not sent.
    s.connection(
        ConnectionTokenRequest::new("github", &caller)
            .login_hint("")
            .force_refresh(true),
    )
    .await
    .expect("exchange");
    assert_eq!(s.last().field("login_hint"), None);
}

#[tokio::test]
async fn the_body_is_byte_for_byte_what_the_reference_sends() {
    // The reference SDK posts with httpx: `urlencode(params, doseq=True)` of the same dict, and
    // `Authorization: Basic base64("id:secret")`. These bodies were produced by Python's urlencode.
    let issuer = TestIssuer::start();
    let auth0 = Auth0::new(
        issuer
            .config(AUDIENCE)
            .client_credentials("my-client", "my-secret"),
    )
    .expect("config");
    issuer.push_token_reply(TokenReply::json(200, json!({"access_token": "x"})));
    auth0
        .token_for_connection(
            ConnectionTokenRequest::new("google-oauth2", FIXED_TOKEN).login_hint("alice@example.com"),
        )
        .await
        .expect("exchange");
    issuer.push_token_reply(TokenReply::json(200, json!({"access_token": "x"})));
    auth0
        .exchange_token(
            TokenExchangeRequest::new(FIXED_TOKEN, "urn:example:external")
                .audience("https://backend.example.com")
                .scope("read:data write:data")
                .requested_token_type(ACCESS_TOKEN_TYPE)
                .extra("device_id", "d-42")
                .extra("roles", ["admin", "audit or"])
                .extra("count", 3),
        )
        .await
        .expect("exchange");
    let sent = issuer.token_requests();
    assert_eq!(
        sent[0].body,
        "connection=google-oauth2&requested_token_type=http%3A%2F%2Fauth0.com%2Foauth%2Ftoken-type%2F\
         federated-connection-access-token&grant_type=urn%3Aauth0%3Aparams%3Aoauth%3Agrant-type%3A\
         token-exchange%3Afederated-connection-access-token&client_id=my-client&subject_token=\
         eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyfDEyMyJ9.c2ln&subject_token_type=urn%3Aietf%3Aparams%3A\
         oauth%3Atoken-type%3Aaccess_token&login_hint=alice%40example.com"
    );
    assert_eq!(
        sent[1].body,
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=\
         eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyfDEyMyJ9.c2ln&subject_token_type=urn%3Aexample%3Aexternal\
         &audience=https%3A%2F%2Fbackend.example.com&scope=read%3Adata+write%3Adata&requested_token_type=\
         urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&device_id=d-42&roles=admin&roles=audit+or\
         &count=3"
    );
    for request in &sent {
        assert_eq!(
            request.authorization.as_deref(),
            Some("Basic bXktY2xpZW50Om15LXNlY3JldA==")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Validation, before any I/O

#[tokio::test]
async fn invalid_input_is_refused_before_any_request() {
    let s = Setup::new();
    s.issuer.reset_counters();
    let expect = |r: Result<(), ExchangeError>, status: u16, code: &str, description: &str| {
        let e = r.expect_err(description);
        assert_eq!((e.status(), e.code()), (status, code), "{e:?}");
        assert_eq!(e.description(), description);
    };
    let connection = |c: &str, t: &str| ConnectionTokenRequest::new(c, t);
    let vault = "get_access_token_for_connection_error";
    let profile = "get_token_by_exchange_profile_error";
    expect(
        s.connection(connection("", "tok")).await.map(drop),
        400,
        "invalid_request",
        "the argument 'connection' is required but was not provided",
    );
    expect(
        s.connection(connection("c", "")).await.map(drop),
        400,
        "invalid_request",
        "the argument 'access_token' is required but was not provided",
    );
    expect(
        s.exchange(TokenExchangeRequest::new("", CUSTOM_TYPE))
            .await
            .map(drop),
        400,
        "invalid_request",
        "the argument 'subject_token' is required but was not provided",
    );
    expect(
        s.exchange(TokenExchangeRequest::new("tok", "")).await.map(drop),
        400,
        "invalid_request",
        "the argument 'subject_token_type' is required but was not provided",
    );
    expect(
        s.obo(OnBehalfOfRequest::new("tok", "")).await.map(drop),
        400,
        "invalid_request",
        "the argument 'audience' is required but was not provided",
    );
    let bad_tokens = [
        (" ", "subject_token cannot be blank or whitespace"),
        ("\t \n", "subject_token cannot be blank or whitespace"),
        (
            " tok",
            "subject_token must not include leading or trailing whitespace",
        ),
        (
            "tok ",
            "subject_token must not include leading or trailing whitespace",
        ),
        (
            "Bearer tok",
            "subject_token must not include the 'Bearer ' prefix (case-insensitive check)",
        ),
        (
            "bearer tok",
            "subject_token must not include the 'Bearer ' prefix (case-insensitive check)",
        ),
        (
            "BEARER tok",
            "subject_token must not include the 'Bearer ' prefix (case-insensitive check)",
        ),
    ];
    for (token, description) in bad_tokens {
        expect(
            s.exchange(TokenExchangeRequest::new(token, CUSTOM_TYPE))
                .await
                .map(drop),
            400,
            profile,
            description,
        );
        expect(
            s.obo(OnBehalfOfRequest::new(token, "https://b")).await.map(drop),
            400,
            profile,
            description,
        );
        expect(
            s.connection(connection("c", token)).await.map(drop),
            400,
            vault,
            description,
        );
    }
    assert!(s.requests().is_empty());
    assert_eq!(s.issuer.discovery_fetches(), 0, "not even discovery");
}

#[tokio::test]
async fn an_expired_subject_or_actor_token_is_refused_before_any_request() {
    let s = Setup::new();
    s.issuer.reset_counters();
    let expired = s
        .issuer
        .token()
        .audience(AUDIENCE)
        .subject("auth0|alice")
        .expires_in(-10)
        .sign();
    let live = s.caller();
    let check = |r: Result<(), ExchangeError>, code: &str, description: &str| {
        let e = r.expect_err(description);
        assert_eq!(
            (e.status(), e.code(), e.description().as_ref()),
            (400, code, description),
            "{e:?}"
        );
    };
    let vault = "get_access_token_for_connection_error";
    let profile = "get_token_by_exchange_profile_error";
    check(
        s.connection(ConnectionTokenRequest::new("google-oauth2", &expired))
            .await
            .map(drop),
        vault,
        "subject_token has expired",
    );
    check(
        s.obo(OnBehalfOfRequest::new(&expired, "https://b"))
            .await
            .map(drop),
        profile,
        "subject_token has expired",
    );
    check(
        s.exchange(TokenExchangeRequest::new(&expired, ACCESS_TOKEN_TYPE))
            .await
            .map(drop),
        profile,
        "subject_token has expired",
    );
    check(
        s.exchange(
            TokenExchangeRequest::new(&live, ACCESS_TOKEN_TYPE).actor_token(&expired, ACCESS_TOKEN_TYPE),
        )
        .await
        .map(drop),
        profile,
        "actor_token has expired",
    );
    // Even when asked to bypass the cache.
    check(
        s.obo(OnBehalfOfRequest::new(&expired, "https://b").force_refresh(true))
            .await
            .map(drop),
        profile,
        "subject_token has expired",
    );
    assert!(s.requests().is_empty());
    assert_eq!(s.issuer.discovery_fetches(), 0, "not even discovery");
    // An opaque subject token has no exp to read: it goes to the endpoint as before.
    s.exchange(TokenExchangeRequest::new("opaque-external-token", CUSTOM_TYPE))
        .await
        .expect("opaque");
    assert_eq!(s.requests().len(), 1);
}

#[tokio::test]
async fn scopes_outside_rfc_6749_syntax_are_refused_before_any_request() {
    let s = Setup::new();
    s.issuer.reset_counters();
    let caller = s.caller();
    for scope in [
        "read\twrite",
        "read\nwrite",
        "read\u{a0}write",
        "caf\u{e9}",
        "a\"b",
        "a\\b",
    ] {
        for result in [
            s.obo(OnBehalfOfRequest::new(&caller, "https://b").scope(scope))
                .await
                .map(drop),
            s.exchange(TokenExchangeRequest::new("external", CUSTOM_TYPE).scope(scope))
                .await
                .map(drop),
        ] {
            let e = result.expect_err(scope);
            assert_eq!(
                (e.status(), e.code()),
                (400, "get_token_by_exchange_profile_error"),
                "{scope:?}"
            );
            assert!(e.description().starts_with("scope must be"), "{e:?}");
        }
    }
    assert!(s.requests().is_empty());
    assert_eq!(s.issuer.discovery_fetches(), 0, "not even discovery");
}

#[tokio::test]
async fn reserved_extra_parameters_are_refused_in_any_case() {
    let s = Setup::new();
    let reserved = auth0_runtime::RESERVED_PARAMETERS;
    assert_eq!(reserved.len(), 21);
    for name in reserved {
        let title: String = name
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("_");
        for variant in [name.to_owned(), name.to_ascii_uppercase(), title] {
            let error = s
                .exchange(TokenExchangeRequest::new("tok", CUSTOM_TYPE).extra(variant.as_str(), "x"))
                .await
                .expect_err(&variant);
            assert_eq!(
                (error.status(), error.code()),
                (400, "get_token_by_exchange_profile_error")
            );
            assert_eq!(
                error.description(),
                "an extra parameter uses a reserved name and cannot be overridden"
            );
            assert!(!error.description().contains(&variant), "no echo of the input");
        }
    }
    assert!(s.requests().is_empty());
}

#[tokio::test]
async fn extra_lists_are_capped_at_twenty_values_and_objects_are_refused() {
    let s = Setup::new();
    let twenty: Vec<String> = (1..=20).map(|i| format!("v{i}")).collect();
    s.exchange(TokenExchangeRequest::new("external", CUSTOM_TYPE).extra("values", twenty.clone()))
        .await
        .expect("twenty values");
    assert_eq!(s.last().values("values"), twenty);
    let mut over = twenty;
    over.push("v21".to_owned());
    let error = s
        .exchange(TokenExchangeRequest::new("external", CUSTOM_TYPE).extra("values", over))
        .await
        .expect_err("21 values");
    assert_eq!(error.code(), "get_token_by_exchange_profile_error");
    assert_eq!(
        error.description(),
        "an extra parameter exceeds the maximum of 20 values"
    );
    for bad in [json!({"nested": true}), json!(null), json!([[1, 2]])] {
        let error = s
            .exchange(TokenExchangeRequest::new("external", CUSTOM_TYPE).extra("x", bad.clone()))
            .await
            .expect_err("unsupported");
        assert!(error.description().contains("unsupported value"), "{bad}");
    }
    assert_eq!(s.requests().len(), 1);
}

#[tokio::test]
async fn without_client_credentials_each_flow_says_so() {
    let issuer = TestIssuer::start();
    let auth0 = Auth0::new(issuer.config(AUDIENCE)).expect("config");
    let caller = issuer.token().audience(AUDIENCE).sign();
    let e = auth0
        .token_for_connection(ConnectionTokenRequest::new("c", &caller))
        .await
        .expect_err("no credentials");
    assert_eq!(
        (e.status(), e.code()),
        (400, "get_access_token_for_connection_error")
    );
    assert_eq!(e.description(), "token exchange is not configured for this API");
    let e = auth0
        .exchange_token(TokenExchangeRequest::new("t", CUSTOM_TYPE))
        .await
        .expect_err("no credentials");
    assert_eq!(
        (e.status(), e.code()),
        (400, "get_token_by_exchange_profile_error")
    );
    let e = auth0
        .token_on_behalf_of(OnBehalfOfRequest::new(&caller, "https://b"))
        .await
        .expect_err("none");
    assert_eq!(e.code(), "get_token_by_exchange_profile_error");
    assert!(
        e.to_string().contains("AUTH0_CLIENT_ID"),
        "the log message says how to fix it"
    );
    assert!(issuer.token_requests().is_empty());
}

// ---------------------------------------------------------------------------------------------
// RFC 8693 and on-behalf-of

#[tokio::test]
async fn custom_exchange_sends_every_optional_field_in_order() {
    let s = Setup::new();
    let actor = s.issuer.token().audience(AUDIENCE).subject("agent|7").sign();
    let token = s
        .exchange(
            TokenExchangeRequest::new("external-token", CUSTOM_TYPE)
                .audience("https://backend.example.com")
                .scope("openid offline_access read:data")
                .requested_token_type(ACCESS_TOKEN_TYPE)
                .organization("org_123")
                .actor_token(&actor, ACCESS_TOKEN_TYPE)
                .extra("device_id", "d-42")
                .extra("attempt", 2)
                .extra("trusted", true)
                .extra("roles", vec!["admin", "auditor"]),
        )
        .await
        .expect("exchange");
    let sent = s.last();
    assert_eq!(
        sent.names(),
        [
            "grant_type",
            "subject_token",
            "subject_token_type",
            "audience",
            "scope",
            "requested_token_type",
            "organization",
            "actor_token",
            "actor_token_type",
            "device_id",
            "attempt",
            "trusted",
            "roles",
            "roles"
        ]
    );
    let expected: HashMap<&str, &str> = [
        ("grant_type", EXCHANGE_GRANT),
        ("subject_token", "external-token"),
        ("subject_token_type", CUSTOM_TYPE),
        ("audience", "https://backend.example.com"),
        // Sent as the cache key holds it: the set of scope tokens, sorted.
        ("scope", "offline_access openid read:data"),
        ("requested_token_type", ACCESS_TOKEN_TYPE),
        ("organization", "org_123"),
        ("actor_token", actor.as_str()),
        ("actor_token_type", ACCESS_TOKEN_TYPE),
        ("device_id", "d-42"),
        ("attempt", "2"),
        ("trusted", "true"),
    ]
    .into_iter()
    .collect();
    for (name, value) in expected {
        assert_eq!(sent.field(name), Some(value), "{name}");
    }
    assert_eq!(sent.values("roles"), ["admin", "auditor"]);
    assert_eq!(
        sent.field("client_id"),
        None,
        "RFC 8693 requests carry the client in Basic only"
    );
    assert!(sent.basic_credentials().is_some());

    // The issuer's answer: a real token, an ID token for `openid`, a refresh token.
    assert_eq!(token.expires_in, 86_400);
    assert_eq!(token.scope.as_deref(), Some("offline_access openid read:data"));
    assert_eq!(token.issued_token_type.as_deref(), Some(ACCESS_TOKEN_TYPE));
    assert!(token.id_token.is_some() && token.refresh_token.is_some());
    let claims = decode_jwt(token.access_token.expose());
    assert_eq!(claims["aud"], "https://backend.example.com");
    assert_eq!(claims["org_id"], "org_123");
    assert_eq!(claims["act"]["sub"], "agent|7");
    assert_eq!(claims["azp"], s.client.id());
    let text = format!("{token:?}");
    assert!(
        !text.contains(token.access_token.expose()) && !text.contains("v1.refresh"),
        "{text}"
    );
}

#[tokio::test]
async fn minimal_exchange_sends_three_fields() {
    let s = Setup::new();
    let token = s
        .exchange(TokenExchangeRequest::new("external", CUSTOM_TYPE))
        .await
        .expect("exchange");
    assert_eq!(
        s.last().names(),
        ["grant_type", "subject_token", "subject_token_type"]
    );
    assert_eq!(token.scope, None);
    assert!(token.id_token.is_none() && token.refresh_token.is_none());
    // Empty optional values are not sent, as in the reference SDK.
    s.exchange(
        TokenExchangeRequest::new("external", CUSTOM_TYPE)
            .audience("")
            .scope("")
            .requested_token_type("")
            .organization("")
            .force_refresh(true),
    )
    .await
    .expect("exchange");
    assert_eq!(
        s.last().names(),
        ["grant_type", "subject_token", "subject_token_type"]
    );
}

#[tokio::test]
async fn on_behalf_of_wire_format_and_result() {
    let s = Setup::new();
    let caller = s.caller();
    let token = s
        .obo(OnBehalfOfRequest::new(&caller, "https://billing.example.com").scope("read:invoices"))
        .await
        .expect("exchange");
    let sent = s.last();
    assert_eq!(
        sent.names(),
        [
            "grant_type",
            "subject_token",
            "subject_token_type",
            "audience",
            "scope",
            "requested_token_type"
        ]
    );
    assert_eq!(sent.field("grant_type"), Some(EXCHANGE_GRANT));
    assert_eq!(sent.field("subject_token"), Some(caller.as_str()));
    assert_eq!(sent.field("subject_token_type"), Some(ACCESS_TOKEN_TYPE));
    assert_eq!(sent.field("requested_token_type"), Some(ACCESS_TOKEN_TYPE));
    assert_eq!(sent.field("audience"), Some("https://billing.example.com"));
    assert_eq!(sent.field("client_id"), None);
    let claims = decode_jwt(token.access_token.expose());
    assert_eq!(
        (claims["sub"].as_str(), claims["aud"].as_str()),
        (Some("auth0|alice"), Some("https://billing.example.com"))
    );
    assert_eq!(token.scope.as_deref(), Some("read:invoices"));
    assert_eq!(token.token_type.as_deref(), Some("Bearer"));
    assert_near_now(token.expires_at, 86_400);

    // Without scope: not sent.
    s.obo(OnBehalfOfRequest::new(&caller, "https://billing.example.com"))
        .await
        .expect("exchange");
    assert_eq!(s.last().field("scope"), None);
}

#[tokio::test]
async fn the_issuer_refuses_a_subject_token_it_did_not_sign() {
    let s = Setup::new();
    let forged = s.issuer.token().audience(AUDIENCE).sign_with_unknown_key();
    let e = s
        .obo(OnBehalfOfRequest::new(&forged, "https://b"))
        .await
        .expect_err("forged");
    assert_eq!((e.status(), e.code()), (400, "invalid_request"));
    assert_eq!(e.description(), "Invalid subject_token: bad signature");
    // An expired one never gets there: it is refused before any request.
    let expired = s.issuer.token().audience(AUDIENCE).expires_in(-5).sign();
    let before = s.requests().len();
    let e = s
        .connection(ConnectionTokenRequest::new("c", &expired))
        .await
        .expect_err("expired");
    assert_eq!(e.description(), "subject_token has expired");
    assert_eq!(s.requests().len(), before);
}

// ---------------------------------------------------------------------------------------------
// The endpoint's errors and bad answers

#[tokio::test]
async fn endpoint_errors_are_passed_through_with_and_without_json() {
    let s = Setup::with(|c| c.exchange_cache_entries(0));
    let caller = s.caller();
    s.issuer.push_token_reply(TokenReply::json(
        403,
        json!({"error": "access_denied", "error_description": "the user has not linked that account"}),
    ));
    let e = s
        .connection(ConnectionTokenRequest::new("c", &caller))
        .await
        .expect_err("403");
    assert_eq!((e.status(), e.code()), (403, "access_denied"));
    assert_eq!(e.description(), "the user has not linked that account");

    // JSON without a description; `text/json` counts as JSON.
    s.issuer.push_token_reply(TokenReply::body(
        429,
        "text/json; charset=utf-8",
        r#"{"error":"too_many_requests"}"#,
    ));
    let e = s
        .exchange(TokenExchangeRequest::new("t", CUSTOM_TYPE))
        .await
        .expect_err("429");
    assert_eq!((e.status(), e.code()), (429, "too_many_requests"));
    assert_eq!(
        e.description(),
        "the token endpoint refused the exchange (HTTP 429)"
    );

    // Not JSON: the flow's default code, the endpoint's status.
    for (status, body) in [(500, "<h1>oops</h1>"), (503, "")] {
        s.issuer
            .push_token_reply(TokenReply::body(status, "text/html", body));
        let e = s
            .connection(ConnectionTokenRequest::new("c", &caller))
            .await
            .expect_err("non-JSON");
        assert_eq!((e.status(), e.code()), (status, "connection_token_error"));
        s.issuer
            .push_token_reply(TokenReply::body(status, "text/html", body));
        let e = s
            .obo(OnBehalfOfRequest::new(&caller, "https://b"))
            .await
            .expect_err("non-JSON");
        assert_eq!((e.status(), e.code()), (status, "token_exchange_error"));
    }
    // A JSON-looking body under a non-JSON content type is not read (as in the reference SDK).
    s.issuer.push_token_reply(TokenReply::body(
        400,
        "text/plain",
        r#"{"error":"invalid_grant"}"#,
    ));
    let e = s
        .exchange(TokenExchangeRequest::new("t", CUSTOM_TYPE))
        .await
        .expect_err("400");
    assert_eq!(e.code(), "token_exchange_error");
    // A redirect is not passed through as such.
    s.issuer.push_token_reply(TokenReply::body(302, "text/html", ""));
    let e = s
        .exchange(TokenExchangeRequest::new("t", CUSTOM_TYPE))
        .await
        .expect_err("302");
    assert_eq!(e.status(), 502);
    // An error code that is not an RFC 6749 error is replaced; a long description is capped.
    s.issuer.push_token_reply(TokenReply::json(
        400,
        json!({"error": "bad \"quote\"", "error_description": format!("line\nbreak {}", "x".repeat(400))}),
    ));
    let e = s
        .exchange(TokenExchangeRequest::new("t", CUSTOM_TYPE))
        .await
        .expect_err("400");
    assert_eq!(e.code(), "token_exchange_error");
    assert!(e.description().len() <= 256 && e.description().starts_with("linebreak x"));
}

#[tokio::test]
async fn a_refused_client_authentication_is_a_502() {
    let issuer = TestIssuer::start();
    let real = issuer.client();
    let auth0 = Auth0::new(
        issuer
            .config(AUDIENCE)
            .client_credentials(real.id(), "wrong-secret"),
    )
    .expect("config");
    let caller = issuer.token().audience(AUDIENCE).sign();
    let e = auth0
        .token_for_connection(ConnectionTokenRequest::new("c", &caller))
        .await
        .expect_err("401");
    assert_eq!((e.status(), e.code()), (502, "invalid_client"));
    assert_eq!(
        e.description(),
        "the authorization server refused this API's client credentials"
    );
    assert!(
        matches!(e, ExchangeError::ClientRejected { status: 401, .. }),
        "{e:?}"
    );
    assert!(!format!("{e:?} {e}").contains("wrong-secret"));
    // `invalid_client` under another status is the same misconfiguration.
    issuer.push_token_reply(TokenReply::json(400, json!({"error": "invalid_client"})));
    let e = auth0
        .exchange_token(TokenExchangeRequest::new("t", CUSTOM_TYPE))
        .await
        .expect_err("400");
    assert_eq!((e.status(), e.code()), (502, "invalid_client"));
}

#[tokio::test]
async fn timeouts_network_errors_and_bad_json() {
    let s = Setup::with(|c| {
        c.http_timeout(Duration::from_millis(700))
            .exchange_cache_entries(0)
    });
    let caller = s.caller();
    // Warm discovery so that the scripted replies meet the token request.
    s.exchange(TokenExchangeRequest::new("t", CUSTOM_TYPE))
        .await
        .expect("warm-up");

    s.issuer
        .push_token_reply(TokenReply::normal().delay(Duration::from_millis(1500)));
    let e = s
        .connection(ConnectionTokenRequest::new("c", &caller))
        .await
        .expect_err("timeout");
    assert_eq!(e, ExchangeError::Timeout);
    assert_eq!((e.status(), e.code()), (504, "timeout_error"));

    s.issuer.push_token_reply(TokenReply::hang_up());
    let e = s
        .obo(OnBehalfOfRequest::new(&caller, "https://b"))
        .await
        .expect_err("network");
    assert_eq!((e.status(), e.code()), (502, "network_error"));

    s.issuer
        .push_token_reply(TokenReply::body(200, "application/json", "{not json"));
    let e = s
        .exchange(TokenExchangeRequest::new("t", CUSTOM_TYPE))
        .await
        .expect_err("bad JSON");
    assert_eq!((e.status(), e.code()), (502, "invalid_json"));
    s.issuer
        .push_token_reply(TokenReply::body(200, "text/html", "<html>"));
    let e = s
        .connection(ConnectionTokenRequest::new("c", &caller))
        .await
        .expect_err("bad JSON");
    assert_eq!(e.code(), "invalid_json");
}

#[tokio::test]
async fn every_bad_access_token_and_expires_in_shape_is_an_invalid_response() {
    let s = Setup::with(|c| c.exchange_cache_entries(0));
    let bad = [
        json!({}),
        json!({"access_token": ""}),
        json!({"access_token": null}),
        json!({"access_token": 42}),
        json!({"access_token": ["x"]}),
        json!({"access_token": {"t": "x"}}),
        json!({"access_token": "x", "expires_in": -1}),
        json!({"access_token": "x", "expires_in": "-60"}),
        json!({"access_token": "x", "expires_in": 1.5}),
        json!({"access_token": "x", "expires_in": "1.5"}),
        json!({"access_token": "x", "expires_in": "soon"}),
        json!({"access_token": "x", "expires_in": null}),
        json!({"access_token": "x", "expires_in": true}),
        json!({"access_token": "x", "expires_in": {}}),
        json!(["access_token"]),
    ];
    for body in bad {
        s.issuer.push_token_reply(TokenReply::json(200, body.clone()));
        let e = s
            .exchange(TokenExchangeRequest::new("t", CUSTOM_TYPE))
            .await
            .expect_err("bad shape");
        assert_eq!((e.status(), e.code()), (502, "invalid_response"), "{body}");
    }
    for (expires_in, expected) in [
        (json!("3600"), 3600),
        (json!(120), 120),
        (json!(0), 0),
        (json!(7200.0), 7200),
    ] {
        s.issuer.push_token_reply(TokenReply::json(
            200,
            json!({"access_token": "x", "expires_in": expires_in}),
        ));
        let token = s
            .exchange(TokenExchangeRequest::new("t", CUSTOM_TYPE))
            .await
            .expect("good shape");
        assert_eq!(token.expires_in, expected);
    }
    // Missing: 3600, as in the reference SDK.
    s.issuer
        .push_token_reply(TokenReply::json(200, json!({"access_token": "x"})));
    let token = s
        .exchange(TokenExchangeRequest::new("t", CUSTOM_TYPE))
        .await
        .expect("default");
    assert_eq!(token.expires_in, 3600);
    // 201 is a success too.
    s.issuer
        .push_token_reply(TokenReply::json(201, json!({"access_token": "created"})));
    let token = s
        .exchange(TokenExchangeRequest::new("t", CUSTOM_TYPE))
        .await
        .expect("201");
    assert_eq!(token.access_token.expose(), "created");
}

// ---------------------------------------------------------------------------------------------
// Discovery

#[tokio::test]
async fn the_token_endpoint_is_discovered_once_and_checked() {
    let s = Setup::with(|c| c.exchange_cache_entries(0));
    s.issuer.reset_counters();
    for _ in 0..3 {
        s.exchange(TokenExchangeRequest::new("t", CUSTOM_TYPE))
            .await
            .expect("exchange");
    }
    assert_eq!(s.issuer.discovery_fetches(), 1);
    assert_eq!(s.requests().len(), 3);

    let other = Setup::new();
    other
        .issuer
        .set_discovery_issuer(Some("https://evil.example.com/".to_owned()));
    let e = other
        .exchange(TokenExchangeRequest::new("t", CUSTOM_TYPE))
        .await
        .expect_err("mismatch");
    assert_eq!((e.status(), e.code()), (502, "invalid_response"));
    other.issuer.set_discovery_issuer(None);
    other.issuer.set_fault(Fault::Down);
    // Past the back-off of the first failure (1 s); the next one doubles it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let e = other
        .exchange(TokenExchangeRequest::new("t", CUSTOM_TYPE))
        .await
        .expect_err("down");
    assert_eq!(e.code(), "network_error");
    other.issuer.set_fault(Fault::None);
    // Backed off like a key fetch (2 s after a second failure), then asked again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    other
        .exchange(TokenExchangeRequest::new("t", CUSTOM_TYPE))
        .await
        .expect("a failure is not kept past its back-off");
    assert!(other.requests().len() == 1);
}

#[tokio::test]
async fn keys_and_exchange_share_one_discovery_document() {
    let s = Setup::new();
    s.issuer.reset_counters();
    let (base, _server) = serve(Some(s.auth0.clone()));
    // Verifying the caller fetches discovery; the exchange reuses it.
    let answer = get(&base, "/api/connection/google-oauth2", Some(&s.caller())).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!((s.issuer.discovery_fetches(), s.issuer.jwks_fetches()), (1, 1));
    assert_eq!(s.requests().len(), 1);
}

#[tokio::test]
async fn a_failing_discovery_is_fetched_once_and_its_failure_shared() {
    let s = Setup::with(|c| c.exchange_cache_entries(0).http_timeout(Duration::from_secs(1)));
    s.issuer.reset_counters();
    // Slower than the client's timeout: eight concurrent exchanges wait for one fetch and all
    // get its timeout, together (not eight timeouts in a row).
    s.issuer
        .set_fault_on(Endpoint::Discovery, Fault::Slow(Duration::from_secs(3)));
    let started = std::time::Instant::now();
    let calls = (0..8).map(|i| s.exchange(TokenExchangeRequest::new(format!("t{i}"), CUSTOM_TYPE)));
    let results = futures_util::future::join_all(calls).await;
    for result in &results {
        let e = result.as_ref().expect_err("timeout");
        assert_eq!((e.status(), e.code()), (504, "timeout_error"));
    }
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(s.issuer.discovery_fetches(), 1);

    // An outage: ten exchanges within the back-off make no fetch and get the same failure.
    s.issuer.set_fault_on(Endpoint::Discovery, Fault::ServerError);
    for i in 0..10 {
        let e = s
            .exchange(TokenExchangeRequest::new(format!("u{i}"), CUSTOM_TYPE))
            .await
            .expect_err("backing off");
        assert_eq!(e.code(), "timeout_error");
    }
    assert_eq!(s.issuer.discovery_fetches(), 1);
    assert!(s.requests().is_empty());
}

// ---------------------------------------------------------------------------------------------
// private_key_jwt

#[tokio::test]
async fn private_key_jwt_in_every_algorithm() {
    for alg in [Algorithm::RS256, Algorithm::PS256, Algorithm::ES256] {
        let issuer = TestIssuer::start();
        let client = issuer.client_with_key(alg);
        let s = Setup::for_client(issuer, client, |c| c.exchange_cache_entries(0));
        let caller = s.caller();
        s.connection(ConnectionTokenRequest::new("google-oauth2", &caller))
            .await
            .expect("vault");
        s.obo(OnBehalfOfRequest::new(&caller, "https://b"))
            .await
            .expect("obo");
        s.obo(OnBehalfOfRequest::new(&caller, "https://b"))
            .await
            .expect("obo again");
        let sent = s.requests();
        assert_eq!(sent.len(), 3);
        let mut jtis = Vec::new();
        for request in &sent {
            assert_eq!(request.authorization, None, "no Basic with private_key_jwt");
            assert_eq!(request.field("client_assertion_type"), Some(ASSERTION_TYPE));
            assert_eq!(request.field("client_secret"), None);
            let names = request.names();
            assert_eq!(
                &names[names.len() - 2..],
                ["client_assertion_type", "client_assertion"]
            );
            let (header, claims) = request.client_assertion().expect("assertion");
            assert_eq!(header["alg"], format!("{alg:?}"));
            assert_eq!(claims["iss"], s.client.id());
            assert_eq!(claims["sub"], s.client.id());
            assert_eq!(claims["aud"], s.issuer.issuer());
            let (iat, exp) = (claims["iat"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
            assert!(exp - iat <= 60 && exp > now(), "{claims}");
            jtis.push(claims["jti"].as_str().unwrap().to_owned());
        }
        jtis.dedup();
        assert_eq!(jtis.len(), 3, "a fresh jti per request");
        assert_eq!(
            sent[0].field("client_id"),
            Some(s.client.id()),
            "Token Vault keeps its client_id"
        );
        assert_eq!(sent[1].field("client_id"), None);
    }
}

#[tokio::test]
async fn a_key_the_issuer_does_not_know_is_refused_as_a_502() {
    let issuer = TestIssuer::start();
    let registered = issuer.client_with_key(Algorithm::ES256);
    let stranger = TestIssuer::start().client_with_key(Algorithm::ES256);
    let key = ClientAssertionKey::from_pem(stranger.private_key_pem().unwrap()).unwrap();
    let auth0 = Auth0::new(issuer.config(AUDIENCE).client_assertion(registered.id(), key)).expect("config");
    let e = auth0
        .token_on_behalf_of(OnBehalfOfRequest::new(
            issuer.token().audience(AUDIENCE).sign(),
            "https://b",
        ))
        .await
        .expect_err("bad signature");
    assert_eq!((e.status(), e.code()), (502, "invalid_client"));
}

#[tokio::test]
async fn the_assertion_key_is_read_from_the_environment() {
    let issuer = TestIssuer::start();
    let client = issuer.client_with_key(Algorithm::PS256);
    let dir = std::env::temp_dir().join(format!("auth0-exchange-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_path = dir.join("client.pem");
    std::fs::write(&key_path, client.private_key_pem().unwrap()).unwrap();
    let ca_path = issuer.write_ca_file(&dir).unwrap();
    let vars: HashMap<&str, String> = [
        ("AUTH0_DOMAIN", issuer.domain()),
        ("AUTH0_AUDIENCE", AUDIENCE.to_owned()),
        ("SSL_CERT_FILE", ca_path.to_string_lossy().into_owned()),
        ("AUTH0_CLIENT_ID", client.id().to_owned()),
        (
            "AUTH0_CLIENT_ASSERTION_KEY",
            key_path.to_string_lossy().into_owned(),
        ),
        ("AUTH0_CLIENT_ASSERTION_ALG", "PS256".to_owned()),
        ("AUTH0_EXCHANGE_CACHE_ENTRIES", "10".to_owned()),
    ]
    .into_iter()
    .collect();
    let config = Auth0Config::from_lookup(|name| vars.get(name).cloned()).expect("config");
    assert!(!format!("{config:?}").contains("PRIVATE"));
    let auth0 = Auth0::new(config).expect("validator");
    auth0
        .token_on_behalf_of(OnBehalfOfRequest::new(
            issuer.token().audience(AUDIENCE).sign(),
            "https://b",
        ))
        .await
        .expect("exchange");
    let (header, _) = issuer.token_requests()[0].client_assertion().unwrap();
    assert_eq!(header["alg"], "PS256");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn exchange_settings_are_checked_at_startup() {
    let dir = std::env::temp_dir().join(format!("auth0-exchange-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_a_key = dir.join("not-a-key.pem");
    std::fs::write(
        &not_a_key,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let ec = dir.join("ec.pem");
    std::fs::write(
        &ec,
        TestIssuer::start()
            .client_with_key(Algorithm::ES256)
            .private_key_pem()
            .unwrap(),
    )
    .unwrap();
    let (not_a_key, ec) = (
        not_a_key.to_string_lossy().into_owned(),
        ec.to_string_lossy().into_owned(),
    );
    let base = [
        ("AUTH0_DOMAIN", "tenant.us.auth0.com"),
        ("AUTH0_AUDIENCE", AUDIENCE),
    ];
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("AUTH0_CLIENT_ID", "id")],
            "AUTH0_CLIENT_SECRET and AUTH0_CLIENT_ID go together",
        ),
        (vec![("AUTH0_CLIENT_SECRET", "s")], "AUTH0_CLIENT_ID is not set"),
        (
            vec![
                ("AUTH0_CLIENT_ID", "id"),
                ("AUTH0_CLIENT_SECRET", "s"),
                ("AUTH0_CLIENT_ASSERTION_KEY", &ec),
            ],
            "AUTH0_CLIENT_ASSERTION_KEY and AUTH0_CLIENT_SECRET are both set",
        ),
        (
            vec![
                ("AUTH0_CLIENT_ID", "id"),
                ("AUTH0_CLIENT_ASSERTION_KEY", "/nonexistent/key.pem"),
            ],
            "AUTH0_CLIENT_ASSERTION_KEY names /nonexistent/key.pem",
        ),
        (
            vec![
                ("AUTH0_CLIENT_ID", "id"),
                ("AUTH0_CLIENT_ASSERTION_KEY", &not_a_key),
            ],
            "AUTH0_CLIENT_ASSERTION_KEY holds no PEM private key",
        ),
        (
            vec![
                ("AUTH0_CLIENT_ID", "id"),
                ("AUTH0_CLIENT_ASSERTION_KEY", &ec),
                ("AUTH0_CLIENT_ASSERTION_ALG", "RS256"),
            ],
            "AUTH0_CLIENT_ASSERTION_ALG must be ES256 for a P-256 key",
        ),
        (
            vec![
                ("AUTH0_CLIENT_ID", "id"),
                ("AUTH0_CLIENT_ASSERTION_KEY", &ec),
                ("AUTH0_CLIENT_ASSERTION_ALG", "HS256"),
            ],
            "AUTH0_CLIENT_ASSERTION_ALG must be RS256, PS256 or ES256",
        ),
        (
            vec![("AUTH0_CLIENT_ASSERTION_ALG", "ES256")],
            "AUTH0_CLIENT_ASSERTION_KEY is not set",
        ),
        (
            vec![("AUTH0_EXCHANGE_CACHE_ENTRIES", "many")],
            "AUTH0_EXCHANGE_CACHE_ENTRIES must be a whole number",
        ),
        (
            vec![("AUTH0_EXCHANGE_CACHE_ENTRIES", "2000000")],
            "AUTH0_EXCHANGE_CACHE_ENTRIES must be at most",
        ),
    ];
    let build = |vars: &[(&str, &str)]| -> Result<Auth0, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Auth0::new(Auth0Config::from_lookup(|name| map.get(name).cloned())?)
    };
    for (extra, start) in cases {
        let mut vars = base.to_vec();
        vars.extend(extra);
        let message = build(&vars).expect_err(start).to_string();
        assert!(message.starts_with(start), "{message}");
        assert!(
            !message.contains("AAAA") && !message.contains("MIG"),
            "no key material: {message}"
        );
    }
    // Client credentials need AUTH0_DOMAIN, even with AUTH0_DOMAINS (as in the reference SDK).
    let message = build(&[
        ("AUTH0_DOMAINS", "a.example.com,b.example.com"),
        ("AUTH0_AUDIENCE", AUDIENCE),
        ("AUTH0_CLIENT_ID", "id"),
        ("AUTH0_CLIENT_SECRET", "s"),
    ])
    .expect_err("no AUTH0_DOMAIN")
    .to_string();
    assert!(
        message.starts_with("AUTH0_DOMAIN is not set") && message.contains("AUTH0_CLIENT_ID"),
        "{message}"
    );
    // Good combinations.
    assert!(
        build(&[
            base[0],
            base[1],
            ("AUTH0_CLIENT_ID", "id"),
            ("AUTH0_CLIENT_ASSERTION_KEY", &ec)
        ])
        .is_ok()
    );
    let auth0 = build(&[
        base[0],
        base[1],
        ("AUTH0_CLIENT_ID", "id"),
        ("AUTH0_CLIENT_SECRET", "top-secret"),
    ])
    .unwrap();
    assert!(!format!("{auth0:?}").contains("top-secret"));
    // In code, several domains need `exchange_domain`.
    let several = Auth0Config::new("a.example.com", AUDIENCE)
        .domains(["a.example.com", "b.example.com"])
        .client_credentials("id", "s");
    assert!(
        Auth0::new(several.clone())
            .unwrap_err()
            .to_string()
            .starts_with("AUTH0_DOMAIN is not set")
    );
    assert!(Auth0::new(several.exchange_domain("a.example.com")).is_ok());
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------------------------
// The exchanged-token cache

#[tokio::test]
async fn a_repeat_exchange_is_served_from_the_cache() {
    let s = Setup::new();
    let caller = s.caller();
    let first = s
        .connection(ConnectionTokenRequest::new("google-oauth2", &caller))
        .await
        .expect("first");
    let second = s
        .connection(ConnectionTokenRequest::new("google-oauth2", &caller))
        .await
        .expect("second");
    assert_eq!(first.access_token, second.access_token);
    assert_eq!(s.requests().len(), 1);
    let obo = || OnBehalfOfRequest::new(&caller, "https://b").scope("read write");
    let a = s.obo(obo()).await.expect("obo");
    let b = s
        .obo(OnBehalfOfRequest::new(&caller, "https://b").scope("write read"))
        .await
        .expect("obo");
    assert_eq!(a.access_token, b.access_token, "scopes are compared as a set");
    assert_eq!(s.requests().len(), 2);
}

#[tokio::test]
async fn every_input_is_part_of_the_cache_key() {
    let s = Setup::new();
    let caller = s.caller();
    let other_caller = s.issuer.token().audience(AUDIENCE).subject("auth0|bob").sign();
    let vault = [
        ConnectionTokenRequest::new("google-oauth2", &caller),
        ConnectionTokenRequest::new("github", &caller),
        ConnectionTokenRequest::new("google-oauth2", &other_caller),
        ConnectionTokenRequest::new("google-oauth2", &caller).login_hint("alice@example.com"),
    ];
    for request in vault.iter().cloned().chain(vault.iter().cloned()) {
        s.connection(request).await.expect("vault");
    }
    assert_eq!(s.requests().len(), 4);
    s.issuer.clear_token_requests();
    let base = || TokenExchangeRequest::new("external", CUSTOM_TYPE);
    let exchanges = [
        base(),
        TokenExchangeRequest::new("external-2", CUSTOM_TYPE),
        TokenExchangeRequest::new("external", "urn:example:other"),
        base().audience("https://a"),
        base().scope("read"),
        base().requested_token_type(ACCESS_TOKEN_TYPE),
        base().organization("org_1"),
        base().actor_token("actor", "urn:example:actor"),
        base().extra("k", "v"),
        base().extra("k", "w"),
        base().extra("k", ["v", "w"]),
    ];
    for request in exchanges.iter().cloned().chain(exchanges.iter().cloned()) {
        s.exchange(request).await.expect("exchange");
    }
    assert_eq!(s.requests().len(), exchanges.len());
    s.issuer.clear_token_requests();
    // The on-behalf-of flow never shares an entry with the same RFC 8693 request.
    s.obo(OnBehalfOfRequest::new(&caller, "https://a"))
        .await
        .expect("obo");
    s.exchange(
        TokenExchangeRequest::new(&caller, ACCESS_TOKEN_TYPE)
            .audience("https://a")
            .requested_token_type(ACCESS_TOKEN_TYPE),
    )
    .await
    .expect("exchange");
    assert_eq!(s.requests().len(), 2);
}

#[tokio::test]
async fn an_entry_is_reused_until_sixty_seconds_before_expiry() {
    let s = Setup::new();
    let request = || TokenExchangeRequest::new("external", CUSTOM_TYPE);
    s.issuer.push_token_reply(TokenReply::json(
        200,
        json!({"access_token": "short", "expires_in": 62}),
    ));
    let first = s.exchange(request()).await.expect("first");
    let again = s.exchange(request()).await.expect("cached");
    assert_eq!(again.access_token.expose(), "short");
    assert_eq!(again.expires_at, first.expires_at);
    assert!(again.expires_in <= first.expires_in);
    assert_eq!(s.requests().len(), 1);
    // Past expires_at - 60 s: asked again.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    s.issuer.push_token_reply(TokenReply::json(
        200,
        json!({"access_token": "renewed", "expires_in": 60}),
    ));
    assert_eq!(
        s.exchange(request())
            .await
            .expect("renewed")
            .access_token
            .expose(),
        "renewed"
    );
    // A token living 60 s or less is never reused.
    s.issuer.push_token_reply(TokenReply::json(
        200,
        json!({"access_token": "again", "expires_in": 60}),
    ));
    assert_eq!(
        s.exchange(request()).await.expect("again").access_token.expose(),
        "again"
    );
    assert_eq!(s.requests().len(), 3);
}

#[tokio::test]
async fn a_cached_answer_is_not_served_after_the_subject_token_expires() {
    let s = Setup::new();
    // Answers that live far longer than the caller's token: a day (on-behalf-of), an hour (Token
    // Vault), and an actor token that expires first.
    let short = s
        .issuer
        .token()
        .audience(AUDIENCE)
        .subject("auth0|alice")
        .expires_in(2)
        .sign();
    let live = s.caller();
    let obo = || OnBehalfOfRequest::new(&short, "https://b");
    let vault = || ConnectionTokenRequest::new("google-oauth2", &short);
    let acting =
        || TokenExchangeRequest::new(&live, ACCESS_TOKEN_TYPE).actor_token(&short, ACCESS_TOKEN_TYPE);
    for _ in 0..2 {
        let token = s.obo(obo()).await.expect("obo");
        assert_eq!(token.expires_in, 86_400, "the answer's own lifetime is reported");
        s.connection(vault()).await.expect("vault");
        s.exchange(acting()).await.expect("actor");
    }
    assert_eq!(s.requests().len(), 3, "the repeats were cached");

    // Past the token's exp (whole seconds): no cached answer, no request.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let expired = |r: Result<(), ExchangeError>| r.expect_err("expired").description().into_owned();
    assert_eq!(expired(s.obo(obo()).await.map(drop)), "subject_token has expired");
    assert_eq!(
        expired(s.connection(vault()).await.map(drop)),
        "subject_token has expired"
    );
    assert_eq!(
        expired(s.exchange(acting()).await.map(drop)),
        "actor_token has expired"
    );
    assert_eq!(s.requests().len(), 3);
}

#[tokio::test]
async fn scopes_differing_only_in_spaces_share_an_entry_and_send_the_same_bytes() {
    let s = Setup::new();
    let caller = s.caller();
    let obo = |scope: &str| OnBehalfOfRequest::new(&caller, "https://b").scope(scope);
    let first = s.obo(obo("read write")).await.expect("first");
    for scope in ["read  write", " write read ", "write read read"] {
        let again = s.obo(obo(scope)).await.expect("cached");
        assert_eq!(again.access_token, first.access_token, "{scope:?}");
    }
    assert_eq!(s.requests().len(), 1, "one entry");
    // Asked again (bypassing the cache), each sends exactly the bytes of the first request.
    for scope in ["  read   write  ", "write read"] {
        s.obo(obo(scope).force_refresh(true)).await.expect("refresh");
    }
    let sent = s.requests();
    assert_eq!(sent.len(), 3);
    assert!(sent[0].body.contains("&scope=read+write&"), "{}", sent[0].body);
    assert!(sent.iter().all(|r| r.body == sent[0].body));
    // A tab is not a separator: refused, never answered from the "read write" entry.
    let e = s.obo(obo("read\twrite")).await.expect_err("tab");
    assert_eq!(
        (e.status(), e.code()),
        (400, "get_token_by_exchange_profile_error")
    );
    assert_eq!(s.requests().len(), 3);
}

#[tokio::test]
async fn an_absurd_expires_in_is_clamped_to_366_days() {
    const MAX: u64 = 366 * 24 * 60 * 60;
    let s = Setup::new();
    for expires_in in [
        json!(9_000_000_000_000_000_u64),
        json!("99999999999999999999999"),
        json!(1e300),
    ] {
        s.issuer.push_token_reply(TokenReply::json(
            200,
            json!({"access_token": "long", "expires_in": expires_in}),
        ));
        let token = s
            .exchange(TokenExchangeRequest::new("external", CUSTOM_TYPE).force_refresh(true))
            .await
            .expect("clamped");
        assert_eq!(token.expires_in, MAX, "{expires_in}");
        assert_near_now(token.expires_at, MAX as i64);
    }
    // Cached with the clamped lifetime, and reported so.
    let cached = s
        .exchange(TokenExchangeRequest::new("external", CUSTOM_TYPE))
        .await
        .expect("cached");
    assert_eq!(cached.access_token.expose(), "long");
    assert!(cached.expires_in <= MAX && cached.expires_in > MAX - 5);
    assert_eq!(s.requests().len(), 3);
}

#[tokio::test]
async fn force_refresh_bypasses_the_cache_and_replaces_the_entry() {
    let s = Setup::new();
    let caller = s.caller();
    let a = s
        .connection(ConnectionTokenRequest::new("c", &caller))
        .await
        .expect("a");
    let b = s
        .connection(ConnectionTokenRequest::new("c", &caller).force_refresh(true))
        .await
        .expect("b");
    assert_ne!(a.access_token, b.access_token);
    let c = s
        .connection(ConnectionTokenRequest::new("c", &caller))
        .await
        .expect("c");
    assert_eq!(b.access_token, c.access_token, "the refreshed answer is cached");
    assert_eq!(s.requests().len(), 2);
}

#[tokio::test]
async fn failures_are_not_cached() {
    let s = Setup::new();
    let caller = s.caller();
    s.issuer
        .push_token_reply(TokenReply::json(503, json!({"error": "temporarily_unavailable"})));
    let e = s
        .obo(OnBehalfOfRequest::new(&caller, "https://b"))
        .await
        .expect_err("503");
    assert_eq!(e.status(), 503);
    s.obo(OnBehalfOfRequest::new(&caller, "https://b"))
        .await
        .expect("the next call asks again");
    s.obo(OnBehalfOfRequest::new(&caller, "https://b"))
        .await
        .expect("now cached");
    assert_eq!(s.requests().len(), 2);
}

#[tokio::test]
async fn zero_entries_turn_the_cache_off() {
    let s = Setup::with(|c| c.exchange_cache_entries(0));
    let caller = s.caller();
    for _ in 0..3 {
        s.connection(ConnectionTokenRequest::new("c", &caller))
            .await
            .expect("vault");
    }
    assert_eq!(s.requests().len(), 3);
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let s = Setup::with(|c| c.exchange_cache_entries(2));
    let caller = s.caller();
    for connection in ["a", "b", "c"] {
        s.connection(ConnectionTokenRequest::new(connection, &caller))
            .await
            .expect("vault");
    }
    s.connection(ConnectionTokenRequest::new("c", &caller))
        .await
        .expect("kept");
    s.connection(ConnectionTokenRequest::new("b", &caller))
        .await
        .expect("kept");
    assert_eq!(s.requests().len(), 3);
    s.connection(ConnectionTokenRequest::new("a", &caller))
        .await
        .expect("evicted, asked again");
    assert_eq!(s.requests().len(), 4);
}

#[tokio::test]
async fn identical_concurrent_exchanges_share_one_request() {
    let s = Setup::new();
    let caller = s.caller();
    // Warm discovery, then make the endpoint slow enough for every caller to overlap.
    s.exchange(TokenExchangeRequest::new("warm", CUSTOM_TYPE))
        .await
        .expect("warm-up");
    s.issuer.clear_token_requests();
    s.issuer
        .push_token_reply(TokenReply::normal().delay(Duration::from_millis(400)));
    let calls = (0..20).map(|_| s.obo(OnBehalfOfRequest::new(&caller, "https://b")));
    let results = futures_util::future::join_all(calls).await;
    let first = results[0].as_ref().expect("ok").access_token.clone();
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_ok_and(|t| t.access_token == first))
    );
    assert_eq!(s.requests().len(), 1);

    // A failure is shared by the callers of its flight, and not kept.
    s.issuer.push_token_reply(
        TokenReply::json(500, json!({"error": "server_error"})).delay(Duration::from_millis(400)),
    );
    let calls = (0..10).map(|_| s.connection(ConnectionTokenRequest::new("c", &caller)));
    let results = futures_util::future::join_all(calls).await;
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_err_and(|e| e.status() == 500))
    );
    assert_eq!(s.requests().len(), 2);
    s.connection(ConnectionTokenRequest::new("c", &caller))
        .await
        .expect("asked again");
    assert_eq!(s.requests().len(), 3);
}

#[tokio::test]
async fn a_cancelled_exchange_does_not_stall_the_others() {
    let s = Setup::new();
    let caller = s.caller();
    s.exchange(TokenExchangeRequest::new("warm", CUSTOM_TYPE))
        .await
        .expect("warm-up");
    s.issuer
        .push_token_reply(TokenReply::normal().delay(Duration::from_secs(3)));
    let auth0 = s.auth0.clone();
    let token = caller.clone();
    let leader = tokio::spawn(async move {
        auth0
            .token_on_behalf_of(OnBehalfOfRequest::new(&token, "https://b"))
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiter = {
        let auth0 = s.auth0.clone();
        let token = caller.clone();
        tokio::spawn(async move {
            auth0
                .token_on_behalf_of(OnBehalfOfRequest::new(&token, "https://b"))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    leader.abort();
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(2), waiter)
        .await
        .expect("not stalled");
    assert!(result.expect("task").is_ok());
    assert!(started.elapsed() < Duration::from_secs(2));
}

// ---------------------------------------------------------------------------------------------
// Through Actix handlers: the `Auth0` and `AccessToken` extractors, `ExchangeError` answers

#[get("/api/connection/{connection}")]
#[require_auth]
async fn connection_route(
    auth0: Auth0,
    token: AccessToken,
    path: web::Path<String>,
) -> Result<HttpResponse, ExchangeError> {
    let connection = path.into_inner();
    let upstream = auth0
        .token_for_connection(ConnectionTokenRequest::new(connection.as_str(), &token))
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "connection": connection,
        "scope": upstream.scope,
        "expires_at": upstream.expires_at,
    })))
}

/// As in `examples/token_vault.rs`: a missing `audience` is left to the exchange, which answers
/// the JSON 400 `invalid_request` (a required field would make Actix answer a plain-text 400).
#[derive(serde::Deserialize)]
struct OboQuery {
    #[serde(default)]
    audience: String,
    scope: Option<String>,
}

#[get("/api/on-behalf-of")]
#[require_auth]
async fn obo_route(
    auth0: Auth0,
    token: AccessToken,
    query: web::Query<OboQuery>,
) -> Result<HttpResponse, ExchangeError> {
    let mut request = OnBehalfOfRequest::new(&token, query.audience.as_str());
    if let Some(scope) = &query.scope {
        request = request.scope(scope.as_str());
    }
    let downstream = auth0.token_on_behalf_of(request).await?;
    Ok(HttpResponse::Ok().json(json!({
        "audience": query.audience,
        "scope": downstream.scope,
        "expires_in": downstream.expires_in,
        "token_type": downstream.token_type,
        "issued_token_type": downstream.issued_token_type,
    })))
}

/// The raw token, without `#[require_auth]`: the extractor verifies on its own.
#[get("/api/raw")]
async fn raw_route(token: AccessToken) -> HttpResponse {
    HttpResponse::Ok().body(token.as_str().to_owned())
}

#[get("/api/raw-debug")]
async fn raw_debug_route(token: AccessToken) -> HttpResponse {
    HttpResponse::Ok().body(format!("{token:?}"))
}

#[post("/api/validator")]
async fn validator_route(auth0: Auth0) -> HttpResponse {
    HttpResponse::Ok().body(format!("{auth0:?}"))
}

fn serve(auth0: Option<Auth0>) -> (String, common::Server) {
    common::serve(move |cfg| {
        if let Some(auth0) = &auth0 {
            cfg.app_data(auth0.clone());
        }
        cfg.service(connection_route)
            .service(obo_route)
            .service(raw_route)
            .service(raw_debug_route)
            .service(validator_route);
    })
}

async fn get(base: &str, path: &str, token: Option<&str>) -> Answer {
    let mut request = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Answer::read(request.send().await.expect("request")).await
}

#[tokio::test]
async fn handlers_exchange_with_one_line_and_answer_errors_as_json() {
    let s = Setup::new();
    s.issuer
        .set_connection_scope("google-oauth2", "calendar.readonly");
    let (base, _server) = serve(Some(s.auth0.clone()));
    let caller = s.caller();

    let answer = get(&base, "/api/connection/google-oauth2", Some(&caller)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["connection"], "google-oauth2");
    assert_eq!(answer.body["scope"], "calendar.readonly");
    assert!(
        !answer.text.contains("upstream-"),
        "the upstream token is never answered"
    );
    assert_eq!(
        s.last().field("subject_token"),
        Some(caller.as_str()),
        "the verified raw token"
    );

    let answer = get(
        &base,
        "/api/on-behalf-of?audience=https://billing.example.com&scope=read:invoices",
        Some(&caller),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.body,
        json!({
            "audience": "https://billing.example.com",
            "scope": "read:invoices",
            "expires_in": 86_400,
            "token_type": "Bearer",
            "issued_token_type": ACCESS_TOKEN_TYPE,
        })
    );

    // An endpoint error: its status and body, JSON-escaped, no challenge, not cacheable.
    s.issuer.push_token_reply(TokenReply::json(
        403,
        json!({"error": "access_denied", "error_description": "no \"linked\" account\r\nX-Injected: yes"}),
    ));
    let response = reqwest::Client::new()
        .get(format!("{base}/api/connection/slack"))
        .bearer_auth(&caller)
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.headers().get("x-injected").is_none());
    let answer = Answer::read(response).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.challenge, None);
    assert_eq!(
        answer.body,
        json!({"detail": {"error": "access_denied", "error_description": "no \"linked\" accountX-Injected: yes"}})
    );

    // Timeouts and bad answers are 5xx with the reference's codes.
    s.issuer
        .push_token_reply(TokenReply::body(200, "text/html", "<html>"));
    let answer = get(&base, "/api/connection/dropbox", Some(&caller)).await;
    assert_eq!((answer.status, answer.error()), (502, Some("invalid_json")));
    assert_eq!(
        answer.description(),
        Some("the token endpoint returned invalid JSON")
    );

    // Unauthenticated callers never reach the exchange.
    let before = s.requests().len();
    get(&base, "/api/connection/google-oauth2", None)
        .await
        .assert_refused(401, "unauthorized");
    assert_eq!(s.requests().len(), before);
}

#[tokio::test]
async fn a_missing_audience_answers_the_json_invalid_request() {
    let s = Setup::new();
    let (base, _server) = serve(Some(s.auth0.clone()));
    let caller = s.caller();
    for path in [
        "/api/on-behalf-of",
        "/api/on-behalf-of?scope=read:invoices",
        "/api/on-behalf-of?audience=",
    ] {
        let response = reqwest::Client::new()
            .get(format!("{base}{path}"))
            .bearer_auth(&caller)
            .send()
            .await
            .expect("request");
        assert_eq!(response.headers()["content-type"], "application/json", "{path}");
        let answer = Answer::read(response).await;
        assert_eq!(answer.status, 400, "{path}: {answer:?}");
        assert_eq!(answer.challenge, None);
        assert_eq!(
            answer.body,
            json!({"detail": {
                "error": "invalid_request",
                "error_description": "the argument 'audience' is required but was not provided"
            }}),
            "{path}"
        );
    }
    assert!(s.requests().is_empty());
}

#[tokio::test]
async fn the_access_token_extractor_verifies_on_its_own() {
    let s = Setup::new();
    let (base, _server) = serve(Some(s.auth0.clone()));
    let caller = s.caller();
    let answer = get(&base, "/api/raw", Some(&caller)).await;
    assert_eq!((answer.status, answer.text.as_str()), (200, caller.as_str()));
    let expired = s.issuer.token().audience(AUDIENCE).expires_in(-10).sign();
    get(&base, "/api/raw", Some(&expired))
        .await
        .assert_refused(401, "invalid_token");
    get(&base, "/api/raw", None)
        .await
        .assert_refused(401, "unauthorized");
    let answer = get(&base, "/api/raw-debug", Some(&caller)).await;
    assert_eq!(answer.text, "AccessToken(<redacted>)");
    // Extra spaces after the scheme, as the verifier allows them.
    let response = reqwest::Client::new()
        .get(format!("{base}/api/raw"))
        .header("authorization", format!("bearer    {caller}"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.text().await.expect("body"), caller);
    // A DPoP-bound token, with its proof.
    let key = auth0_runtime::testing::DpopKey::generate();
    let bound = s.issuer.token().audience(AUDIENCE).bind_to(&key).sign();
    let proof = key
        .proof("GET", &format!("{base}/api/raw"))
        .access_token(&bound)
        .sign();
    let response = reqwest::Client::new()
        .get(format!("{base}/api/raw"))
        .header("authorization", format!("DPoP {bound}"))
        .header("dpop", proof)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), bound);
}

#[tokio::test]
async fn the_auth0_extractor_comes_from_app_data_or_fails_closed() {
    let s = Setup::new();
    let (base, _server) = serve(Some(s.auth0.clone()));
    let response = reqwest::Client::new()
        .post(format!("{base}/api/validator"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    assert!(text.starts_with("Auth0"), "{text}");
    assert!(!text.contains(s.client.secret().unwrap()));

    let (bare, _server) = serve(None);
    let answer = Answer::read(
        reqwest::Client::new()
            .post(format!("{bare}/api/validator"))
            .send()
            .await
            .expect("request"),
    )
    .await;
    answer.assert_refused(500, "internal_server_error");
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let issuer = TestIssuer::start();
    let client = issuer.client();
    let key_client = issuer.client_with_key(Algorithm::RS256);
    let text = format!(
        "{client:?} {key_client:?} {:?} {:?}",
        client.configure(issuer.config(AUDIENCE)),
        key_client.configure(issuer.config(AUDIENCE))
    );
    assert!(!text.contains(client.secret().unwrap()), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    let key = ClientAssertionKey::from_pem(key_client.private_key_pem().unwrap()).unwrap();
    assert_eq!(
        format!("{key:?}"),
        "ClientAssertionKey { alg: RS256, kid: None, .. }"
    );
    let requests = format!(
        "{:?} {:?} {:?}",
        ConnectionTokenRequest::new("c", "subject-secret").login_hint("hint-secret@example.com"),
        TokenExchangeRequest::new("subject-secret", "t")
            .actor_token("actor-secret", "t")
            .extra("device_code", "extra-secret")
            .extra("codes", ["list-secret"]),
        OnBehalfOfRequest::new("subject-secret", "a")
    );
    assert!(!requests.contains("-secret"), "{requests}");
    assert!(
        requests.contains("login_hint: Some(<redacted>)")
            && requests.contains(r#"extra: ["device_code", "codes"]"#),
        "{requests}"
    );
}
