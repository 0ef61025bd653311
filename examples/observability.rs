//! What an operator sees: logs through `tracing-subscriber`, and the `auth0.*` metrics in
//! Prometheus format on the API's own port, next to the quickstart's three routes.
//!
//! ```text
//! cargo run -p examples --example observability
//! RUST_LOG=info,auth0_runtime=trace cargo run -p examples --example observability
//! ```
//!
//! Logs go to stderr, filtered by `RUST_LOG` (default `info,auth0_runtime=debug`: the
//! `auth0.verify` span of each verification, each refusal with its precise reason, each key-set
//! fetch). `GET /metrics` renders what the `metrics` feature of `auth0-runtime` records
//! (verification outcomes and durations, key-set fetches, cache hits, DPoP replays), and
//! `GET /health` the validator's readiness. Like the quickstart, it verifies your tenant's tokens
//! when `AUTH0_DOMAIN` is set, and otherwise starts the embedded test issuer and prints `curl`
//! commands with fresh tokens. The port is `PORT` (default 3000).

use actix_web::{App, HttpResponse, HttpServer, Responder, get, web};
use auth0_runtime::testing::TestIssuer;
use auth0_runtime::{Auth0, Claims, Readiness, require_auth};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tracing_subscriber::EnvFilter;

const AUDIENCE: &str = "https://quickstart.example.com";

/// Histogram buckets, seconds: a verification takes microseconds with the keys cached, a key-set
/// fetch tens of milliseconds to seconds.
const BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 0.25, 1.0, 2.5, 10.0,
];

#[get("/api/public")]
async fn public() -> impl Responder {
    HttpResponse::Ok().json(json!({
        "message": "Hello from a public endpoint! You don't need to be authenticated to see this."
    }))
}

#[get("/api/private")]
#[require_auth]
async fn private(claims: Claims) -> impl Responder {
    HttpResponse::Ok().json(json!({
        "message": "Hello from a private endpoint! You need to be authenticated to see this.",
        "sub": claims.sub,
    }))
}

#[get("/api/private-scoped")]
#[require_auth(scopes = "read:messages")]
async fn private_scoped(claims: Claims) -> impl Responder {
    HttpResponse::Ok().json(json!({
        "message": "Hello from a private endpoint! You need to be authenticated and have a scope of read:messages to see this.",
        "sub": claims.sub,
    }))
}

/// The Prometheus text format of every metric recorded so far.
#[get("/metrics")]
async fn metrics(prometheus: web::Data<PrometheusHandle>) -> impl Responder {
    // Drains histogram samples into their buckets; a long-running exporter also does it on a timer.
    prometheus.run_upkeep();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(prometheus.render())
}

/// 200 when the keys are cached and the replay store answers, 503 otherwise.
#[get("/health")]
async fn health(auth0: Auth0) -> Readiness {
    auth0.ready().await
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,auth0_runtime=debug"));
    if let Err(error) = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init()
    {
        eprintln!("error: cannot install the log subscriber: {error}");
        std::process::exit(1);
    }
    // The recorder only: this API serves /metrics on its own port (no listener of the exporter's).
    let prometheus = match PrometheusBuilder::new()
        .set_buckets(BUCKETS)
        .and_then(PrometheusBuilder::install_recorder)
    {
        Ok(handle) => handle,
        Err(error) => {
            eprintln!("error: cannot install the Prometheus recorder: {error}");
            std::process::exit(1);
        }
    };

    let port = examples::port(3000);
    // With the warm-up, the keys are fetched (and logged) before the port is bound.
    let issuer = examples::init_auth0_with(AUDIENCE, |_, config| config.warm_up(true))?;
    match &issuer {
        Some(issuer) => print_try_it(issuer, port),
        None => println!(
            "Verifying tokens of your tenant; listening on http://localhost:{port} (metrics on /metrics)"
        ),
    }
    let prometheus = web::Data::new(prometheus);
    HttpServer::new(move || {
        App::new()
            .app_data(prometheus.clone())
            .service(public)
            .service(private)
            .service(private_scoped)
            .service(metrics)
            .service(health)
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}

fn print_try_it(issuer: &TestIssuer, port: u16) {
    let base = format!("http://localhost:{port}");
    let with_scope = issuer.token().audience(AUDIENCE).scope("read:messages").sign();
    let wrong_audience = issuer.token().audience("https://another-api.example.com").sign();
    let expired = issuer.token().audience(AUDIENCE).expires_in(-120).sign();
    println!("Listening on {base}. Try, from another terminal, and watch this one's log:\n");
    println!("  curl -i {base}/api/private-scoped -H 'Authorization: Bearer {with_scope}'   # 200");
    println!(
        "  curl -i {base}/api/private -H 'Authorization: Bearer {wrong_audience}'   # 401, wrong audience"
    );
    println!("  curl -i {base}/api/private -H 'Authorization: Bearer {expired}'   # 401, expired");
    println!("  curl -i {base}/api/private -H 'Authorization: {with_scope}'   # 401, no Bearer prefix");
    println!();
    println!("Then the metrics and the readiness:\n");
    println!("  curl -s {base}/metrics | grep '^auth0_'");
    println!("  curl -i {base}/health");
    println!();
}
