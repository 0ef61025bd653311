//! The embedded test issuer on its own, for pointing any API at it through the environment (as a
//! real tenant would be): it prints the variables to export and fresh tokens.
//!
//! ```text
//! cargo run -p examples --example test_issuer
//! ```

use std::time::Duration;

use auth0_runtime::testing::TestIssuer;

const AUDIENCE: &str = "https://quickstart.example.com";

fn main() -> std::io::Result<()> {
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
    println!("\nCtrl-C stops it.");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
