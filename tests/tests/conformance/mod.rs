//! The quickstart's answers, written once and run against every adapter's quickstart
//! (`quickstart_actix.rs`, `quickstart_axum.rs`): same routes, same statuses, same error codes,
//! same headers byte for byte. A server is started per case, over real HTTP on loopback, with a
//! validator that trusts a real test issuer.

#![allow(dead_code, unreachable_pub, clippy::expect_used, clippy::panic)]

use auth0_runtime::testing::{DpopKey, TestIssuer};
use auth0_runtime::{Auth0, Auth0Config};
use examples::quickstart::AUDIENCE;

/// A running quickstart: its base URL, and whatever stops it when dropped.
pub struct Served {
    pub base: String,
    pub stop: Box<dyn std::any::Any + Send>,
}

/// Starts an adapter's quickstart on 127.0.0.1:0 with this validator (none: no validator at all,
/// as the tests never install a global one).
pub type Serve = fn(Option<Auth0>) -> Served;

/// The challenge of a request without credentials, with both schemes accepted.
pub const BARE: &str = "Bearer realm=\"api\", DPoP algs=\"ES256\"";

/// A running quickstart and the issuer its validator trusts.
pub struct Api {
    pub issuer: TestIssuer,
    pub auth0: Auth0,
    pub base: String,
    http: reqwest::Client,
    _served: Served,
}

impl Api {
    pub fn start(serve: Serve, adjust: impl FnOnce(Auth0Config) -> Auth0Config) -> Self {
        let issuer = TestIssuer::start();
        let auth0 = Auth0::new(adjust(issuer.config(AUDIENCE))).expect("valid configuration");
        let served = serve(Some(auth0.clone()));
        Self {
            issuer,
            auth0,
            base: served.base.clone(),
            http: reqwest::Client::new(),
            _served: served,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        get(&self.http, &self.url(path), headers).await
    }

    pub async fn bearer(&self, path: &str, token: &str) -> Answer {
        self.get(path, &[("authorization", &format!("Bearer {token}"))])
            .await
    }

    pub async fn dpop(&self, path: &str, token: &str, proof: &str) -> Answer {
        self.get(
            path,
            &[("authorization", &format!("DPoP {token}")), ("dpop", proof)],
        )
        .await
    }
}

async fn get(http: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = http.get(url);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                v.to_str().unwrap_or("<not ASCII>").to_owned(),
            )
        })
        .collect();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    Answer {
        status,
        headers,
        body,
        text,
    }
}

/// An answer: status, headers (name in lower case) and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn error(&self) -> Option<&str> {
        self.body["detail"]["error"].as_str()
    }

    pub fn description(&self) -> &str {
        self.body["detail"]["error_description"]
            .as_str()
            .unwrap_or_default()
    }

    /// A refusal, exactly: status, error code, challenge (or none), and the headers every refusal
    /// carries.
    #[track_caller]
    pub fn assert_refused(&self, status: u16, error: &str, challenge: Option<&str>) {
        assert_eq!((self.status, self.error()), (status, Some(error)), "{self:?}");
        assert_eq!(self.header("www-authenticate"), challenge, "{self:?}");
        assert_eq!(self.header("cache-control"), Some("no-store"), "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"), "{self:?}");
        assert_eq!(self.header("retry-after"), None, "{self:?}");
        let members: Vec<&String> = self.body["detail"]
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(members, ["error", "error_description"], "{self:?}");
    }
}

/// The challenge of a Bearer request refused with `error`, both schemes accepted.
pub fn on_bearer(error: &str, description: &str, extra: &str) -> String {
    format!(
        "Bearer realm=\"api\", error=\"{error}\", error_description=\"{description}\"{extra}, DPoP algs=\"ES256\""
    )
}

/// The challenge of a DPoP request (or a proof) refused with `error`, both schemes accepted.
pub fn on_dpop(error: &str, description: &str) -> String {
    format!(
        "Bearer realm=\"api\", DPoP error=\"{error}\", error_description=\"{description}\", algs=\"ES256\""
    )
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

// ---- the cases ----------------------------------------------------------------------------------

pub async fn public_is_open(serve: Serve) {
    let api = Api::start(serve, |c| c);
    let answer = api.get("/api/public", &[]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, examples::quickstart::public_message());
    assert_eq!(answer.header("content-type"), Some("application/json"));
}

pub async fn private_without_a_token_gets_the_bare_challenge(serve: Serve) {
    let api = Api::start(serve, |c| c);
    let answer = api.get("/api/private", &[]).await;
    answer.assert_refused(401, "unauthorized", Some(BARE));
    assert_eq!(answer.description(), "authentication is required");
    // An unknown scheme is no credentials either.
    let answer = api.get("/api/private", &[("authorization", "Basic dTpw")]).await;
    answer.assert_refused(401, "unauthorized", Some(BARE));
}

pub async fn a_valid_bearer_token_passes(serve: Serve) {
    let api = Api::start(serve, |c| c);
    let token = api
        .issuer
        .token()
        .audience(AUDIENCE)
        .subject("auth0|alice")
        .sign();
    let answer = api.bearer("/api/private", &token).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, examples::quickstart::private_message("auth0|alice"));
    assert_eq!(answer.header("dpop-nonce"), None);
    let scoped = api
        .issuer
        .token()
        .audience(AUDIENCE)
        .subject("auth0|alice")
        .scope("read:messages")
        .sign();
    let answer = api.bearer("/api/private-scoped", &scoped).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.body,
        examples::quickstart::private_scoped_message("auth0|alice")
    );
}

pub async fn an_expired_token_is_invalid(serve: Serve) {
    let api = Api::start(serve, |c| c);
    let t = now();
    let token = api
        .issuer
        .token()
        .audience(AUDIENCE)
        .issued_at(t - 7200)
        .expires_at(t - 3600)
        .sign();
    let answer = api.bearer("/api/private", &token).await;
    let description = "the access token has expired";
    answer.assert_refused(
        401,
        "invalid_token",
        Some(&on_bearer("invalid_token", description, "")),
    );
    assert_eq!(answer.description(), description);
}

pub async fn a_missing_scope_is_insufficient_scope(serve: Serve) {
    let api = Api::start(serve, |c| c);
    let token = api
        .issuer
        .token()
        .audience(AUDIENCE)
        .scope("write:messages")
        .sign();
    let answer = api.bearer("/api/private-scoped", &token).await;
    let description = "the access token lacks a required scope";
    let challenge = on_bearer("insufficient_scope", description, ", scope=\"read:messages\"");
    answer.assert_refused(403, "insufficient_scope", Some(&challenge));
}

pub async fn a_malformed_authorization_is_a_bad_request(serve: Serve) {
    let api = Api::start(serve, |c| c);
    let answer = api
        .get("/api/private", &[("authorization", "Bearer not a token")])
        .await;
    let description = "the Authorization header is malformed";
    answer.assert_refused(
        400,
        "invalid_request",
        Some(&on_bearer("invalid_request", description, "")),
    );
    let answer = api.get("/api/private", &[("authorization", "Bearer")]).await;
    let description = "the Authorization header has no token";
    answer.assert_refused(
        400,
        "invalid_request",
        Some(&on_bearer("invalid_request", description, "")),
    );
}

pub async fn dpop_passes_once_and_binds_the_token(serve: Serve) {
    let api = Api::start(serve, |c| c);
    let key = DpopKey::generate();
    let token = api
        .issuer
        .token()
        .audience(AUDIENCE)
        .subject("auth0|bob")
        .bind_to(&key)
        .sign();
    let proof = key
        .proof("GET", &api.url("/api/private"))
        .access_token(&token)
        .sign();
    let answer = api.dpop("/api/private", &token, &proof).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, examples::quickstart::private_message("auth0|bob"));
    // The same proof again: a replay.
    let answer = api.dpop("/api/private", &token, &proof).await;
    let description = "the DPoP proof has already been used";
    answer.assert_refused(
        401,
        "invalid_dpop_proof",
        Some(&on_dpop("invalid_dpop_proof", description)),
    );
    // The bound token without its proof, as a Bearer token.
    let answer = api.bearer("/api/private", &token).await;
    assert_eq!(
        (answer.status, answer.error()),
        (401, Some("invalid_token")),
        "{answer:?}"
    );
    let challenge = on_bearer("invalid_token", answer.description(), "");
    answer.assert_refused(401, "invalid_token", Some(&challenge));
}

pub async fn dpop_nonces_are_asked_for_then_accepted(serve: Serve) {
    let api = Api::start(serve, |c| c.dpop_nonce_secrets([vec![7u8; 32]]));
    let key = DpopKey::generate();
    let token = api.issuer.token().audience(AUDIENCE).bind_to(&key).sign();
    let url = api.url("/api/private");
    let proof = key.proof("GET", &url).access_token(&token).sign();
    let answer = api.dpop("/api/private", &token, &proof).await;
    let challenge = on_dpop("use_dpop_nonce", answer.description());
    answer.assert_refused(401, "use_dpop_nonce", Some(&challenge));
    let nonce = answer
        .header("dpop-nonce")
        .expect("a DPoP-Nonce header")
        .to_owned();
    assert_eq!(Some(&nonce), api.auth0.dpop_nonce().as_ref());
    let retry = key.proof("GET", &url).access_token(&token).nonce(&nonce).sign();
    let answer = api.dpop("/api/private", &token, &retry).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    // The nonce is current: nothing to renew.
    assert_eq!(answer.header("dpop-nonce"), None, "{answer:?}");
}

pub async fn metadata_is_served_and_named_in_challenges(serve: Serve) {
    let api = Api::start(serve, |c| c.resource_metadata(true));
    let path = api.auth0.resource_metadata_path().expect("published").to_owned();
    let answer = api.get(&path, &[]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("cache-control"), Some("max-age=3600"));
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let document = serde_json::to_value(api.auth0.resource_metadata().expect("published")).expect("json");
    assert_eq!(answer.body, document);
    assert_eq!(answer.body["resource"], AUDIENCE);
    let url = format!("{AUDIENCE}{path}");
    let answer = api.get("/api/private", &[]).await;
    let challenge = format!(
        "Bearer realm=\"api\", resource_metadata=\"{url}\", DPoP algs=\"ES256\", resource_metadata=\"{url}\""
    );
    answer.assert_refused(401, "unauthorized", Some(&challenge));
}

pub async fn readiness_is_ready_once_keys_are_cached(serve: Serve) {
    let api = Api::start(serve, |c| c.warm_up(true));
    let answer = api.get("/health", &[]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.body["ready"], true, "{answer:?}");
}

pub async fn without_a_validator_protected_routes_fail_closed(serve: Serve) {
    let served = serve(None);
    let http = reqwest::Client::new();
    let answer = get(&http, &format!("{}/api/private", served.base), &[]).await;
    answer.assert_refused(500, "internal_server_error", None);
    assert_eq!(answer.description(), "authentication is not configured");
    let answer = get(&http, &format!("{}/api/public", served.base), &[]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

/// One test per case, against the quickstart `serve` starts.
#[macro_export]
macro_rules! conformance_tests {
    ($serve:path) => {
        $crate::conformance_tests!(@each $serve;
            public_is_open,
            private_without_a_token_gets_the_bare_challenge,
            a_valid_bearer_token_passes,
            an_expired_token_is_invalid,
            a_missing_scope_is_insufficient_scope,
            a_malformed_authorization_is_a_bad_request,
            dpop_passes_once_and_binds_the_token,
            dpop_nonces_are_asked_for_then_accepted,
            metadata_is_served_and_named_in_challenges,
            readiness_is_ready_once_keys_are_cached,
            without_a_validator_protected_routes_fail_closed,
        );
    };
    (@each $serve:path; $($case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                conformance::$case($serve).await;
            }
        )*
    };
}
