//! An API configured by `init_from_env()` alone, as an application would be: the Redis tests run
//! two of these against one Redis. Prints `listening on http://127.0.0.1:PORT` once it serves,
//! and logs to stderr.

use actix_web::{App, HttpServer, Responder, get};
use auth0_runtime::{Claims, require_auth};

#[get("/api/private")]
#[require_auth]
async fn private(claims: Claims) -> impl Responder {
    format!("{} {}", claims.sub, claims.scheme())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let _ = tracing::subscriber::set_global_default(tests::StderrLog);
    if let Err(error) = auth0_runtime::init_from_env() {
        eprintln!("{error}");
        std::process::exit(2);
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    println!("listening on http://{}", listener.local_addr()?);
    HttpServer::new(|| App::new().service(private))
        .workers(1)
        .listen(listener)?
        .run()
        .await
}
