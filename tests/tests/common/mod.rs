//! A real Actix server on loopback, protected by a validator that trusts a real test issuer.

#![allow(dead_code, unreachable_pub, clippy::expect_used)]

use std::net::TcpListener;
use std::sync::mpsc;

use actix_web::{App, HttpResponse, HttpServer, Responder, get, post, web};
use auth0_runtime::testing::TestIssuer;
use auth0_runtime::{Auth0, Auth0Config, Claims, RequireAuth, require_auth};
use serde::Deserialize;

pub const AUDIENCE: &str = "https://api.example.com";

/// A running API: its base URL, and the issuer whose tokens it accepts.
pub struct Api {
    pub base: String,
    pub issuer: TestIssuer,
    pub http: reqwest::Client,
    stop: Option<actix_web::dev::ServerHandle>,
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            drop(stop.stop(false));
        }
    }
}

impl Api {
    /// Starts the issuer and the API with the default configuration.
    pub fn start() -> Self {
        Self::start_with(|c| c)
    }

    /// Starts the issuer and the API with a configuration adjusted by `adjust`.
    pub fn start_with(adjust: impl FnOnce(Auth0Config) -> Auth0Config) -> Self {
        let issuer = TestIssuer::start();
        let auth0 = Auth0::new(adjust(issuer.config(AUDIENCE))).expect("valid configuration");
        Self::serve(issuer, Some(auth0))
    }

    /// Starts an API with no validator at all (neither app data nor global).
    pub fn unconfigured() -> Self {
        Self::serve(TestIssuer::start(), None)
    }

    fn serve(issuer: TestIssuer, auth0: Option<Auth0>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    let app = App::new();
                    let app = match &auth0 {
                        Some(a) => app.app_data(a.clone()),
                        None => app,
                    };
                    app.service(above)
                        .service(below)
                        .service(scoped)
                        .service(scoped_list)
                        .service(any)
                        .service(perms)
                        .service(create)
                        .service(typed)
                        .service(
                            web::scope("/mw")
                                .wrap(RequireAuth::new().scopes(["read:messages"]))
                                .route("/messages", web::get().to(plain)),
                        )
                        .service(
                            web::scope("/optional")
                                .wrap(RequireAuth::optional())
                                .route("/hello", web::get().to(optional)),
                        )
                })
                .workers(2)
                .listen(listener)
                .expect("listen")
                .run();
                let _ = tx.send(server.handle());
                let _ = server.await;
            });
        });
        let stop = rx.recv().ok();
        Self {
            base,
            issuer,
            http: reqwest::Client::new(),
            stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A valid token for this API.
    pub fn token(&self) -> auth0_runtime::testing::TokenBuilder {
        self.issuer.token().audience(AUDIENCE)
    }

    pub async fn get(&self, path: &str, authorization: Option<&str>) -> Answer {
        let mut req = self.http.get(self.url(path));
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        Answer::read(req.send().await.expect("request")).await
    }

    pub async fn bearer(&self, path: &str, token: &str) -> Answer {
        self.get(path, Some(&format!("Bearer {token}"))).await
    }

    /// `GET path` with `Authorization: DPoP <token>` and `DPoP: <proof>`.
    pub async fn dpop(&self, path: &str, token: &str, proof: &str) -> Answer {
        self.send(
            "GET",
            path,
            &[("authorization", &format!("DPoP {token}")), ("dpop", proof)],
        )
        .await
    }

    /// `method path` with `headers`, in order; a name given twice is sent as two header lines.
    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, self.url(path));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        Answer::read(req.send().await.expect("request")).await
    }
}

/// Serves any routes (`App::new().configure(routes)`) on loopback; returns the base URL and a
/// handle that stops the server when dropped.
pub fn serve<F>(routes: F) -> (String, Server)
where
    F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || App::new().configure(routes.clone()))
                .workers(1)
                .listen(listener)
                .expect("listen")
                .run();
            let _ = tx.send(server.handle());
            let _ = server.await;
        });
    });
    (base, Server(rx.recv().ok()))
}

/// Stops its server when dropped.
pub struct Server(Option<actix_web::dev::ServerHandle>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            drop(handle.stop(false));
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub challenge: Option<String>,
    pub retry_after: Option<String>,
    pub body: serde_json::Value,
    pub text: String,
}

impl Answer {
    pub async fn read(resp: reqwest::Response) -> Self {
        let status = resp.status().as_u16();
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let challenge = header("www-authenticate");
        let retry_after = header("retry-after");
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Self {
            status,
            challenge,
            retry_after,
            body,
            text,
        }
    }

    pub fn error(&self) -> Option<&str> {
        self.body["detail"]["error"].as_str()
    }

    pub fn description(&self) -> Option<&str> {
        self.body["detail"]["error_description"].as_str()
    }

    /// Asserts a refusal: status, `error` code in the body and, where there is one, in the
    /// challenge.
    #[track_caller]
    pub fn assert_refused(&self, status: u16, error: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.error(), Some(error), "{self:?}");
        let description = self.description().unwrap_or_default();
        assert!(!description.is_empty(), "{self:?}");
        if status == 401 && error == "unauthorized" {
            let c = self.challenge.as_deref().unwrap_or_default();
            assert!(
                c.starts_with("Bearer realm=\"api\"") || c.starts_with("DPoP "),
                "{self:?}"
            );
            assert!(
                !c.contains("error="),
                "a request without credentials gets a bare challenge: {c}"
            );
        } else if status < 500 {
            let c = self.challenge.as_deref().unwrap_or_default();
            assert!(c.contains(&format!("error=\"{error}\"")), "{self:?}");
            assert!(
                c.contains(&format!("error_description=\"{description}\"")),
                "{self:?}"
            );
        } else {
            assert_eq!(self.challenge, None, "{self:?}");
        }
    }
}

// The routes: both attribute orders, every argument form, a body extractor, typed claims, the
// middleware (required and optional).

#[require_auth]
#[get("/above")]
async fn above(claims: Claims) -> impl Responder {
    HttpResponse::Ok().body(format!("above {} {}", claims.sub, claims.scheme()))
}

#[get("/below")]
#[require_auth]
async fn below(claims: Claims) -> impl Responder {
    HttpResponse::Ok().body(format!("below {}", claims.sub))
}

#[get("/scoped")]
#[require_auth(scopes = "read:messages write:messages")]
async fn scoped(claims: Claims) -> impl Responder {
    HttpResponse::Ok().body(format!("scoped {}", claims.sub))
}

#[get("/scoped-list")]
#[require_auth(scopes = ["read:messages"])]
async fn scoped_list() -> impl Responder {
    HttpResponse::Ok().body("scoped-list")
}

#[get("/any")]
#[require_auth(any_scopes = ["admin", "read:messages"])]
async fn any() -> impl Responder {
    HttpResponse::Ok().body("any")
}

#[get("/perms")]
#[require_auth(permissions = ["read:messages"])]
async fn perms() -> impl Responder {
    HttpResponse::Ok().body("perms")
}

#[derive(Deserialize)]
struct NewMessage {
    text: String,
}

#[post("/messages")]
#[require_auth]
async fn create(claims: Claims, body: web::Json<NewMessage>) -> impl Responder {
    HttpResponse::Created().body(format!("{} wrote {}", claims.sub, body.text))
}

#[derive(Deserialize)]
struct Roles {
    #[serde(rename = "https://example.com/roles", default)]
    roles: Vec<String>,
}

#[get("/typed")]
#[require_auth]
async fn typed(claims: Claims<Roles>) -> impl Responder {
    HttpResponse::Ok().body(claims.custom().roles.join(","))
}

async fn plain(claims: Claims) -> impl Responder {
    HttpResponse::Ok().body(format!("middleware {}", claims.sub))
}

async fn optional(claims: Option<Claims>) -> impl Responder {
    match claims {
        Some(c) => HttpResponse::Ok().body(format!("hello {}", c.sub)),
        None => HttpResponse::Ok().body("hello anonymous"),
    }
}

/// A request as plain parts (GET https://api.example.com/x with these headers), as another
/// framework's adapter hands it to `Auth0::authenticate` or `authenticate_request`.
pub struct Parts(pub Vec<(&'static str, String)>);

impl auth0_runtime::RequestParts for Parts {
    fn method(&self) -> &str {
        "GET"
    }
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v.as_bytes())
    }
    fn scheme(&self) -> &str {
        "https"
    }
    fn host(&self) -> &str {
        "api.example.com"
    }
    fn path(&self) -> &str {
        "/x"
    }
}
