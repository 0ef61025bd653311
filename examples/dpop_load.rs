//! DPoP load run: the replay store's memory under load, measured against a baseline of the same
//! run, and the end-to-end cost of a DPoP request next to a Bearer one.
//!
//! ```text
//! cargo run --release -p examples --example dpop_load
//! ```
//!
//! Starts a protected API (itself, in a child process, with the embedded test issuer and the
//! default configuration, `AUTH0_*` variables honoured), warms it up, records the server's
//! resident memory as the baseline, then sends `REQUESTS` (default 120 000) DPoP requests, each with
//! a fresh proof, from `CONCURRENCY` (default 32) connections, and reports the server's peak
//! resident memory (`VmHWM`) against the baseline plus the replay store's whole table (capacity ×
//! bytes a record). The requests come from `CLIENTS` (default 16) keys, each with a token of its own
//! subject: one key or subject may hold only 1/8 of the store. Then the same number of Bearer
//! requests, for the rate ratio (the client signs every proof on the same cores, so that ratio is
//! an upper bound of DPoP's cost). Everything stays on 127.0.0.1 and the run stops by itself.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use actix_web::{App, HttpResponse, HttpServer, Responder, get};
use auth0_runtime::testing::{DpopKey, TestIssuer};
use auth0_runtime::{Claims, MemoryReplayStore, require_auth};

const AUDIENCE: &str = "https://load.example.com";

#[get("/api/private")]
#[require_auth]
async fn private(claims: Claims) -> impl Responder {
    HttpResponse::Ok().body(claims.sub.clone())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--serve") => serve(args.get(2).map(String::as_str).unwrap_or_default()),
        _ => drive(),
    }
}

/// The server: prints `BASE=` and the tokens (one per key thumbprint in `jkts`, comma-separated),
/// then serves until killed.
fn serve(jkts: &str) -> std::io::Result<()> {
    let issuer = TestIssuer::try_start()?;
    let mut config = issuer.config(AUDIENCE);
    if let Ok(capacity) = std::env::var("AUTH0_REPLAY_STORE_CAPACITY") {
        config = config.replay_store_capacity(capacity.parse().map_err(std::io::Error::other)?);
    }
    auth0_runtime::init(config).map_err(std::io::Error::other)?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    println!("BASE=http://{}", listener.local_addr()?);
    for (n, jkt) in jkts.split(',').enumerate() {
        let bound = issuer
            .token()
            .audience(AUDIENCE)
            .subject(format!("load|{n}"))
            .bind_to_jkt(jkt)
            .expires_in(3600)
            .sign();
        println!("DPOP_TOKEN={bound}");
    }
    println!(
        "BEARER_TOKEN={}",
        issuer.token().audience(AUDIENCE).expires_in(3600).sign()
    );
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| App::new().service(private))
            .workers(2)
            .listen(listener)?
            .run()
            .await
    })
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Kills the server when the run ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `VmRSS` and `VmHWM` of `pid`, in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn drive() -> std::io::Result<()> {
    let requests = env_usize("REQUESTS", 120_000);
    let concurrency = env_usize("CONCURRENCY", 32);
    let warmup = env_usize("WARMUP", 2_000);
    let keys: Vec<DpopKey> = (0..env_usize("CLIENTS", 16).max(1))
        .map(|_| DpopKey::generate())
        .collect();
    let jkts: Vec<String> = keys.iter().map(DpopKey::thumbprint).collect();
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--serve", &jkts.join(",")])
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout"))?;
    let server = Server(child);
    let (mut base, mut dpop_tokens, mut bearer_token) = (String::new(), Vec::new(), String::new());
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(v) = line.strip_prefix("BASE=") {
            base = v.to_owned();
        } else if let Some(v) = line.strip_prefix("DPOP_TOKEN=") {
            dpop_tokens.push(v.to_owned());
        } else if let Some(v) = line.strip_prefix("BEARER_TOKEN=") {
            bearer_token = v.to_owned();
            break;
        }
    }
    let pid = server.0.id();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let url = format!("{base}/api/private");
    let load = Load {
        http: reqwest::Client::new(),
        url,
        clients: keys.into_iter().zip(dpop_tokens).collect(),
        bearer_token,
    };
    let load = Arc::new(load);

    runtime.block_on(load.clone().run(Mode::Dpop, warmup, concurrency))?;
    runtime.block_on(load.clone().run(Mode::Bearer, warmup, concurrency))?;
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (baseline_rss, baseline_hwm) = memory(pid);

    let dpop = runtime.block_on(load.clone().run(Mode::Dpop, requests, concurrency))?;
    let (after_rss, peak) = memory(pid);
    let bearer = runtime.block_on(load.run(Mode::Bearer, requests, concurrency))?;

    let store = MemoryReplayStore::new(env_usize(
        "AUTH0_REPLAY_STORE_CAPACITY",
        MemoryReplayStore::DEFAULT_CAPACITY,
    ));
    let table_kib = (store.memory_bytes() / 1024) as u64;
    let per_record = store.memory_bytes() as f64 / store.capacity() as f64;
    let bound = baseline_hwm.max(baseline_rss) + table_kib;
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "DPoP   {requests} requests, {concurrency} connections: {:.0} req/s ({} refused)",
        dpop.rate, dpop.refused
    );
    println!(
        "Bearer {requests} requests, {concurrency} connections: {:.0} req/s ({} refused)",
        bearer.rate, bearer.refused
    );
    println!("DPoP / Bearer rate: {:.2}", dpop.rate / bearer.rate);
    println!(
        "server memory: baseline {:.1} MiB (VmHWM after warm-up), after the DPoP run {:.1} MiB, peak {:.1} MiB",
        mib(baseline_hwm),
        mib(after_rss),
        mib(peak)
    );
    println!(
        "replay store: capacity {} records, {:.1} bytes a record, {:.1} MiB in all",
        store.capacity(),
        per_record,
        mib(table_kib)
    );
    println!(
        "peak {:.1} MiB vs baseline + store {:.1} MiB: {:.2}x {}",
        mib(peak),
        mib(bound),
        peak as f64 / bound as f64,
        if peak <= bound { "PASS" } else { "FAIL" }
    );
    let failed = dpop.refused + bearer.refused > 0 || peak > bound;
    // Stop the server before exiting: `exit` runs no destructor.
    drop(server);
    if failed {
        std::process::exit(1);
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Mode {
    Dpop,
    Bearer,
}

struct Load {
    http: reqwest::Client,
    url: String,
    /// Keys, each with the token bound to it.
    clients: Vec<(DpopKey, String)>,
    bearer_token: String,
}

struct Outcome {
    rate: f64,
    refused: usize,
}

impl Load {
    async fn run(
        self: Arc<Self>,
        mode: Mode,
        requests: usize,
        concurrency: usize,
    ) -> std::io::Result<Outcome> {
        let next = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                let (load, next, refused) = (Arc::clone(&self), Arc::clone(&next), Arc::clone(&refused));
                tokio::spawn(async move {
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= requests {
                            break;
                        }
                        let request = match mode {
                            Mode::Dpop => {
                                let (key, token) = &load.clients[n % load.clients.len()];
                                let proof = key.proof("GET", &load.url).access_token(token).sign();
                                load.http
                                    .get(&load.url)
                                    .header("authorization", format!("DPoP {token}"))
                                    .header("dpop", proof)
                            }
                            Mode::Bearer => load.http.get(&load.url).bearer_auth(&load.bearer_token),
                        };
                        let ok = match request.send().await {
                            Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
                            Err(_) => false,
                        };
                        if !ok {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.map_err(std::io::Error::other)?;
        }
        Ok(Outcome {
            rate: requests as f64 / started.elapsed().as_secs_f64(),
            refused: refused.load(Ordering::Relaxed),
        })
    }
}
