use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::LazyLock;

use proptest::prelude::*;

use super::env::parse_bool;
use super::*;
use crate::answer::ConfigError;
use crate::auth0::Auth0;

/// The variables `from_lookup` reads. One it reads that is not listed here gets arbitrary
/// values too (from the lookup itself), so a new setting is covered before it is listed.
const VARS: &[&str] = &[
    "AUTH0_DOMAIN",
    "AUTH0_DOMAINS",
    "AUTH0_AUDIENCE",
    "AUTH0_DPOP_ENABLED",
    "AUTH0_DPOP_REQUIRED",
    "AUTH0_TRUST_PROXY",
    "AUTH0_TRUSTED_PROXIES",
    "AUTH0_DPOP_IAT_LEEWAY",
    "AUTH0_DPOP_IAT_OFFSET",
    "AUTH0_LEEWAY",
    "AUTH0_CACHE_TTL_SECONDS",
    "AUTH0_HTTP_TIMEOUT_SECONDS",
    "AUTH0_CACHE_MAX_ENTRIES",
    "AUTH0_TOKEN_CACHE_ENTRIES",
    "AUTH0_CLIENT_ID",
    "AUTH0_CLIENT_SECRET",
    "AUTH0_WARM_UP",
    "AUTH0_REPLAY_STORE",
    "AUTH0_REPLAY_STORE_FAIL_OPEN",
];

/// Values near what some setting expects, and near misses.
const NEAR: &[&str] = &[
    "true",
    "FALSE",
    "yes",
    "off",
    "0",
    "1",
    "2",
    "10",
    "300",
    "301",
    "3600",
    "86400",
    "86401",
    "1000001",
    "18446744073709551616",
    "-1",
    "1e3",
    " 5 ",
    "tenant.us.auth0.com",
    "HTTPS://Tenant.Auth0.com/",
    "http://tenant.us.auth0.com",
    "localhost:8443",
    "localhost:0",
    "a..b",
    "a/b",
    "u@h",
    "é.com",
    "t.auth0.com,other.auth0.com",
    "t.auth0.com,",
    "10.0.0.0/8",
    "::1, 10.0.0.1",
    "10.0.0.0/33",
    "https://api.example.com",
    "redis://127.0.0.1:6379",
    "memory",
];

fn value() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(None),
        1 => "[ \t]{0,2}".prop_map(Some),
        2 => ".{0,16}".prop_map(Some),
        4 => prop::sample::select(NEAR).prop_map(|s| Some(s.to_owned())),
        1 => any::<u64>().prop_map(|n| Some(n.to_string())),
    ]
}

/// Files for `SSL_CERT_FILE`: one that does not exist, an empty one and one that is not PEM.
fn cert_files() -> &'static [PathBuf; 3] {
    static FILES: LazyLock<[PathBuf; 3]> = LazyLock::new(|| {
        let dir = std::env::temp_dir().join(format!("auth0-config-proptests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (empty, garbage) = (dir.join("empty.pem"), dir.join("garbage.pem"));
        std::fs::write(&empty, b"").unwrap();
        std::fs::write(&garbage, b"-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
        [dir.join("missing.pem"), empty, garbage]
    });
    &FILES
}

/// Values of the variables, by name (`None`: not set).
type Env = BTreeMap<&'static str, Option<String>>;

/// Values for [`VARS`], which `SSL_CERT_FILE` to use (if any), and values for other variables.
fn env() -> impl Strategy<Value = (Env, Option<usize>, Vec<Option<String>>)> {
    (
        VARS.iter()
            .map(|&name| value().prop_map(move |v| (name, v)))
            .collect::<Vec<_>>()
            .prop_map(|pairs| pairs.into_iter().collect()),
        proptest::option::weighted(0.1, 0..3usize),
        prop::collection::vec(value(), 1..4),
    )
}

/// Looks up `env`, and gives any other variable a value from `others`; remembers which
/// variables were asked for and which had a value.
struct Lookup<'a> {
    env: &'a Env,
    cert: Option<usize>,
    others: &'a [Option<String>],
    asked: RefCell<BTreeSet<String>>,
    set: RefCell<BTreeSet<String>>,
}

impl Lookup<'_> {
    fn get(&self, name: &str) -> Option<String> {
        self.asked.borrow_mut().insert(name.to_owned());
        let value = match self.env.get(name) {
            Some(v) => v.clone(),
            None if name == "SSL_CERT_FILE" => {
                self.cert.map(|i| cert_files()[i].to_string_lossy().into_owned())
            }
            None => {
                let pick = name.bytes().map(usize::from).sum::<usize>() % self.others.len();
                self.others[pick].clone()
            }
        };
        // A warm-up would fetch from the (unreachable) domains for up to the HTTP timeout:
        // its bad values are checked, never a good `true`.
        let value = match value {
            Some(v) if name == "AUTH0_WARM_UP" && parse_bool("AUTH0_WARM_UP", v.trim()) == Ok(true) => {
                Some("false".to_owned())
            }
            other => other,
        };
        if value.as_deref().is_some_and(|v| !v.trim().is_empty()) {
            self.set.borrow_mut().insert(name.to_owned());
        }
        value
    }
}

/// `Auth0::new` on `config`. Building an HTTP client takes tens of milliseconds, so one is
/// shared unless the case is about `SSL_CERT_FILE`, which only a built client reads.
fn build(config: Auth0Config, cert: Option<usize>) -> Result<Auth0, ConfigError> {
    static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(reqwest::Client::new);
    match cert {
        Some(_) => Auth0::new(config),
        None => Auth0::new(config.http_client(CLIENT.clone())),
    }
}

/// The variable a refusal is about, and its message.
fn about(error: &ConfigError) -> (&'static str, String) {
    match error {
        ConfigError::Missing { var, .. } | ConfigError::Invalid { var, .. } => (var, error.to_string()),
        ConfigError::AlreadyInitialized => panic!("a configuration cannot be initialised twice"),
    }
}

/// A valid environment.
fn baseline() -> Env {
    [
        ("AUTH0_DOMAIN", "tenant.us.auth0.com"),
        ("AUTH0_AUDIENCE", "https://api.example.com"),
        ("AUTH0_DPOP_ENABLED", "true"),
        ("AUTH0_DPOP_REQUIRED", "false"),
        ("AUTH0_TRUST_PROXY", "true"),
        ("AUTH0_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
        ("AUTH0_DPOP_IAT_LEEWAY", "30"),
        ("AUTH0_DPOP_IAT_OFFSET", "300"),
        ("AUTH0_LEEWAY", "5"),
        ("AUTH0_CACHE_TTL_SECONDS", "600"),
        ("AUTH0_HTTP_TIMEOUT_SECONDS", "10"),
        ("AUTH0_CACHE_MAX_ENTRIES", "100"),
        ("AUTH0_TOKEN_CACHE_ENTRIES", "4096"),
        ("AUTH0_CLIENT_ID", "client"),
        ("AUTH0_CLIENT_SECRET", "secret"),
        ("AUTH0_WARM_UP", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k, Some(v.to_owned())))
    .collect()
}

/// Regression: a bad domain was refused under `AUTH0_DOMAIN` when it came from a one-entry
/// `AUTH0_DOMAINS`, and under `AUTH0_DOMAINS` when it came from `AUTH0_DOMAIN` next to it.
/// Found by `a_bad_value_is_refused_by_its_name`.
#[test]
fn a_bad_domain_is_refused_under_the_variable_it_came_from() {
    let refusal = |vars: &[(&str, &str)]| {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let config = Auth0Config::from_lookup(|name| match name {
            "AUTH0_AUDIENCE" => Some("https://api.example.com".to_owned()),
            _ => vars.get(name).cloned(),
        });
        about(&config.and_then(Auth0::new).unwrap_err())
    };
    let (var, message) = refusal(&[("AUTH0_DOMAINS", "http://t.auth0.com")]);
    assert_eq!(var, "AUTH0_DOMAINS", "{message}");
    let (var, message) = refusal(&[("AUTH0_DOMAINS", "t.auth0.com,x/y")]);
    assert_eq!(var, "AUTH0_DOMAINS", "{message}");
    let (var, message) = refusal(&[("AUTH0_DOMAIN", "¡"), ("AUTH0_DOMAINS", "t.auth0.com")]);
    assert_eq!(var, "AUTH0_DOMAIN", "{message}");
    let (var, message) = refusal(&[("AUTH0_DOMAIN", "t.auth0.com"), ("AUTH0_DOMAINS", "a,")]);
    assert_eq!(var, "AUTH0_DOMAINS", "{message}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    // Property: reading the configuration from the environment (`from_lookup`, then the checks
    // of `Auth0::new`) never panics, whatever value each variable it reads holds; and every
    // refusal names the variable it is about: its message starts with that variable's name,
    // which is a variable that was read, and one that was set (or, if the refusal says it is
    // missing, one that was not), or the message also names the one that was set.

    #[test]
    fn every_refusal_names_its_variable((env, cert, others) in env()) {
        let lookup = Lookup { env: &env, cert, others: &others, asked: RefCell::default(), set: RefCell::default() };
        let refused = Auth0Config::from_lookup(|name| lookup.get(name)).and_then(|c| build(c, cert)).err();
        if let Some(error) = refused {
            let (var, message) = about(&error);
            let (asked, set) = (lookup.asked.borrow(), lookup.set.borrow());
            prop_assert!(message.starts_with(var), "{}", message);
            prop_assert!(asked.contains(var), "{} was not read: {}", var, message);
            match error {
                ConfigError::Missing { .. } => prop_assert!(!set.contains(var), "{}", message),
                _ => prop_assert!(
                    set.contains(var) || set.iter().any(|v| message.contains(&format!("{v} "))),
                    "{} names no variable that was set ({:?})", message, set
                ),
            }
        }
    }

    #[test]
    fn a_bad_value_is_refused_by_its_name(
        name in prop::sample::select(VARS),
        value in value(),
        cert in proptest::option::weighted(0.1, 0..3usize),
        plural in any::<bool>(),
    ) {
        let mut env = baseline();
        if plural {
            // The domain given as a list of one.
            let domain = env.remove("AUTH0_DOMAIN").unwrap();
            env.insert("AUTH0_DOMAINS", domain);
            // Token exchange needs AUTH0_DOMAIN itself: without it, client settings are
            // refused under AUTH0_DOMAIN, whatever their value.
            prop_assume!(!name.starts_with("AUTH0_CLIENT"));
            env.remove("AUTH0_CLIENT_ID");
            env.remove("AUTH0_CLIENT_SECRET");
        }
        env.insert(name, value.clone());
        let others = [None];
        let lookup = Lookup { env: &env, cert, others: &others, asked: RefCell::default(), set: RefCell::default() };
        match Auth0Config::from_lookup(|name| lookup.get(name)).and_then(|c| build(c, cert)) {
            Err(error) => {
                let (var, message) = about(&error);
                let expected = if cert.is_some() && var == "SSL_CERT_FILE" { var } else { name };
                prop_assert!(message.contains(&format!("{expected} ")), "{:?} = {:?}: {}", name, value, message);
            }
            // An empty file is no certificate, which is fine.
            Ok(_) => prop_assert!(cert != Some(0) && cert != Some(2), "{:?}", cert),
        }
    }
}
