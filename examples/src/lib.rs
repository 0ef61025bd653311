//! Shared start-up of the examples: a real tenant when `AUTH0_DOMAIN` is set (environment or
//! `.env`), otherwise the embedded test issuer, so every example runs with no Auth0 account.

use auth0_runtime::testing::TestIssuer;

pub mod axum_quickstart;
pub mod dpop_recipe;
pub mod quickstart;

/// Configures the global validator for `audience`. Returns the embedded issuer when there is no
/// tenant configured; keep it alive as long as the server runs. A bad setting ends the program
/// with its message, which says how to fix it.
///
/// # Errors
/// The embedded issuer failing to start.
pub fn init_auth0(audience: &str) -> std::io::Result<Option<TestIssuer>> {
    init_auth0_with(audience, |_, config| config)
}

/// [`init_auth0`], with the embedded issuer's configuration adjusted by `adjust` (e.g. to give it
/// client credentials the issuer accepts). A tenant is configured from the environment alone.
///
/// # Errors
/// The embedded issuer failing to start.
pub fn init_auth0_with(
    audience: &str,
    adjust: impl FnOnce(&TestIssuer, auth0_runtime::Auth0Config) -> auth0_runtime::Auth0Config,
) -> std::io::Result<Option<TestIssuer>> {
    // `RUST_LOG=auth0_runtime=debug` shows why each token was refused. Logs go to stderr: stdout
    // holds what the examples print to copy (the quickstart's curl commands).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour codes in a log redirected to a file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    if tenant_configured() {
        if let Err(error) = auth0_runtime::init_from_env() {
            eprintln!("error: {error}");
            std::process::exit(2);
        }
        return Ok(None);
    }
    let issuer = TestIssuer::try_start()?;
    let config = adjust(&issuer, issuer.config(audience));
    auth0_runtime::init(config).map_err(std::io::Error::other)?;
    println!(
        "No AUTH0_DOMAIN set: using the embedded test issuer at {}",
        issuer.issuer()
    );
    Ok(Some(issuer))
}

fn tenant_configured() -> bool {
    let env = |name| std::env::var_os(name).is_some();
    let dotenv = std::fs::read_to_string(".env")
        .is_ok_and(|f| f.lines().any(|l| l.trim_start().starts_with("AUTH0_DOMAIN")));
    env("AUTH0_DOMAIN") || env("AUTH0_DOMAINS") || dotenv
}

/// The port to listen on: `PORT`, or `default`.
pub fn port(default: u16) -> u16 {
    std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(default)
}
