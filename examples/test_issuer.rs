//! The embedded test issuer on its own, for pointing any API at it through the environment (as a
//! real tenant would be): it prints the variables to export and fresh tokens.
//!
//! ```text
//! cargo run -p examples --example test_issuer
//! cargo run -p examples --example test_issuer -- --dpop [--method GET] [--url http://localhost:3000/api/private]
//! ```
//!
//! With `--dpop` it also prints a DPoP recipe: a token bound to a new key and ready `curl`
//! commands, each with a single-use proof for the method and URL given (the quickstart's private
//! route by default); Enter prints another proof, and a pasted `DPoP-Nonce` value one that carries
//! it. So DPoP, a Redis replay store and server nonces can be tried without writing a client.

use std::io::BufRead as _;
use std::time::Duration;

use auth0_runtime::testing::TestIssuer;
use examples::dpop_recipe::{DpopRecipe, Target};

const AUDIENCE: &str = "https://quickstart.example.com";

fn main() -> std::io::Result<()> {
    let dpop = match Target::from_args(std::env::args().skip(1)) {
        Ok(dpop) => dpop,
        Err(message) => {
            eprintln!("error: {message}");
            eprintln!("usage: test_issuer [--dpop] [--method METHOD] [--url URL]");
            std::process::exit(2);
        }
    };
    let issuer = TestIssuer::try_start()?;
    let ca = issuer.write_ca_file(&std::env::temp_dir())?;
    println!(
        "A test issuer is running at {}. In another terminal:\n",
        issuer.issuer()
    );
    println!(
        "  export AUTH0_DOMAIN={} AUTH0_AUDIENCE={AUDIENCE} AUTH0_CA_FILE={}",
        issuer.domain(),
        ca.display()
    );
    println!("  cargo run -p examples --example quickstart\n");
    println!("Tokens (valid for an hour):\n");
    println!("  TOKEN={}", issuer.token().audience(AUDIENCE).sign());
    println!(
        "  TOKEN_READ_MESSAGES={}",
        issuer.token().audience(AUDIENCE).scope("read:messages").sign()
    );
    println!();
    let Some(target) = dpop else {
        println!("--dpop also prints a DPoP token and proofs. Ctrl-C stops it.");
        return idle();
    };
    let recipe = DpopRecipe::new(&issuer, AUDIENCE, target);
    println!("{}", recipe.instructions(3));
    println!("Ctrl-C stops it.");
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        println!("\n  {}\n", recipe.answer(&line));
    }
    // No terminal (standard input closed): keep serving.
    idle()
}

/// Serves until the process is stopped.
fn idle() -> std::io::Result<()> {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
