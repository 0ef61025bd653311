//! The DPoP recipe `test_issuer --dpop` prints: a token bound to a new key, and ready `curl`
//! commands that send it with a fresh proof of that key, so DPoP, a shared replay store and server
//! nonces can be tried against an API configured from the environment without writing a client.

use auth0_runtime::testing::{DpopKey, TestIssuer};

/// The quickstart's private route: where the proofs are for unless `--url` says otherwise.
pub const DEFAULT_URL: &str = "http://localhost:3000/api/private";

/// What the proofs are for: the request's method and absolute URL (the proof's `htm` and `htu`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The HTTP method, as sent.
    pub method: String,
    /// The absolute URL the client calls.
    pub url: String,
}

impl Target {
    /// Reads `test_issuer`'s arguments (without the program name): `--dpop`, `--method METHOD`
    /// (default `GET`) and `--url URL` (default [`DEFAULT_URL`]); either of the last two implies
    /// the first. `None` without any of them.
    ///
    /// # Errors
    /// An unknown argument, a flag without its value, or a URL that is not absolute `http(s)`,
    /// as a message for the user.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Option<Self>, String> {
        let mut wanted = false;
        let mut method = "GET".to_owned();
        let mut url = DEFAULT_URL.to_owned();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--dpop" => {}
                "--method" => method = value("--method")?,
                "--url" => url = value("--url")?,
                other => {
                    return Err(format!(
                        "unknown argument `{other}`, expected `--dpop`, `--method` or `--url`"
                    ));
                }
            }
            wanted = true;
        }
        if !is_absolute(&url) {
            return Err(format!(
                "--url must be the absolute URL the client calls, like {DEFAULT_URL}, not {url:?}"
            ));
        }
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(format!(
                "--method must be an HTTP method like GET or POST, not {method:?}"
            ));
        }
        Ok(wanted.then_some(Self { method, url }))
    }
}

/// A token bound to a new key, and proofs of that key for one [`Target`], as `curl` commands.
#[derive(Debug)]
pub struct DpopRecipe {
    key: DpopKey,
    token: String,
    target: Target,
}

impl DpopRecipe {
    /// A new key, and a token of `issuer` for `audience` bound to it (`cnf.jkt`), with the
    /// `read:messages` scope (so the quickstart's scoped route takes it too), valid for an hour.
    #[must_use]
    pub fn new(issuer: &TestIssuer, audience: &str, target: Target) -> Self {
        let key = DpopKey::generate();
        let token = issuer
            .token()
            .audience(audience)
            .scope("read:messages")
            .bind_to(&key)
            .sign();
        Self { key, token, target }
    }

    /// The DPoP-bound access token.
    #[must_use]
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A `curl` command sending the token with a fresh proof (a new `jti`, `iat` now), which
    /// carries `nonce` when given.
    #[must_use]
    pub fn curl(&self, nonce: Option<&str>) -> String {
        let Target { method, url } = &self.target;
        let mut proof = self.key.proof(method, url).access_token(&self.token);
        if let Some(nonce) = nonce {
            proof = proof.nonce(nonce);
        }
        let request = match method.as_str() {
            "GET" => "-i".to_owned(),
            "HEAD" => "-I".to_owned(),
            other => format!("-i -X {other}"),
        };
        format!(
            "curl {request} {} -H 'Authorization: DPoP {}' -H 'DPoP: {}'",
            quoted(url),
            self.token,
            proof.sign()
        )
    }

    /// The recipe as `test_issuer --dpop` prints it: `proofs` commands, and how to get more.
    #[must_use]
    pub fn instructions(&self, proofs: usize) -> String {
        let Target { method, url } = &self.target;
        let mut text = format!(
            "DPoP: a token bound to a new key (scope read:messages, valid for an hour), with {proofs} \
             proofs of that key for {method} {url}.\nEach proof is accepted once, within 5 minutes:\n\n"
        );
        for _ in 0..proofs {
            text.push_str(&format!("  {}   # 200\n", self.curl(None)));
        }
        text.push_str(
            "\n  # A proof sent again is refused (401 invalid_dpop_proof), and so is the token sent as \
             'Authorization: Bearer'.\n  # With server nonces on (AUTH0_DPOP_NONCE_SECRET set for the \
             API), the answer is 401 use_dpop_nonce with a DPoP-Nonce header.\n\n\
             Press Enter here for another proof. For a proof that carries a nonce, paste the \
             DPoP-Nonce value (or the whole header line) first.\n",
        );
        text
    }

    /// What `test_issuer` prints for one line typed on its standard input: a `curl` command with a
    /// fresh proof, carrying the nonce the line holds (`<nonce>` or `DPoP-Nonce: <nonce>`), if any.
    #[must_use]
    pub fn answer(&self, line: &str) -> String {
        let line = line.trim();
        let nonce = match line.split_once(':') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("dpop-nonce") => value.trim(),
            _ => line,
        };
        self.curl((!nonce.is_empty()).then_some(nonce))
    }
}

/// `http://` or `https://` and a host: the URLs a proof can name.
fn is_absolute(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    ["http://", "https://"].iter().any(|scheme| {
        lower
            .strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with(['/', '?', '#']))
    })
}

/// `text` as one shell word.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
