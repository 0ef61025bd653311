//! Reading the configuration from `AUTH0_*` environment variables (and `.env`): the only room
//! that knows their names.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{Auth0Config, normalize_domain};
use crate::Algorithm;
use crate::answer::ConfigError;
use crate::answer::{invalid, shown};
use crate::dpop::ReplayStore;
use crate::exchange::ClientAssertionKey;

impl Auth0Config {
    /// Reads the settings from the environment, and from `.env` in the working directory, which
    /// never overrides a real environment variable. See the crate docs for the variables.
    ///
    /// `.env` is read with the `dotenv` feature (on by default); without it, only the
    /// environment is.
    pub fn from_env() -> Result<Self, ConfigError> {
        let dotenv = dotenv_file();
        Self::from_lookup(|name| std::env::var(name).ok().or_else(|| dotenv.get(name).cloned()))
    }

    /// Reads the settings through `lookup` (a variable name to its value), as [`Self::from_env`]
    /// does with the process environment; handy in tests.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let domains = match (get("AUTH0_DOMAIN"), get("AUTH0_DOMAINS")) {
            (Some(d), None) => vec![d],
            (None, Some(list)) => list.split(',').map(|d| d.trim().to_owned()).collect(),
            (Some(d), Some(list)) => {
                let mut all = vec![d];
                all.extend(list.split(',').map(|d| d.trim().to_owned()));
                all
            }
            (None, None) => {
                return Err(ConfigError::Missing {
                    var: "AUTH0_DOMAIN",
                    hint: if cfg!(feature = "dotenv") {
                        "set it to your tenant's domain, like tenant.us.auth0.com (or AUTH0_DOMAINS to \
                         a comma-separated list), in the environment or in .env in the working directory"
                    } else {
                        "set it to your tenant's domain, like tenant.us.auth0.com (or AUTH0_DOMAINS to \
                         a comma-separated list), in the environment"
                    },
                });
            }
        };
        // Checked again by `validate`; here a refusal can name the variable the value came from.
        for var in ["AUTH0_DOMAIN", "AUTH0_DOMAINS"] {
            for domain in get(var).iter().flat_map(|v| v.split(',')) {
                normalize_domain(var, domain)?;
            }
        }
        let audience = get("AUTH0_AUDIENCE").ok_or(ConfigError::Missing {
            var: "AUTH0_AUDIENCE",
            hint: "set it to your API's identifier (Auth0 dashboard, Applications > APIs: the API's \
                   Identifier, not a client id), like https://api.example.com",
        })?;
        let mut config = Self::new(String::new(), audience);
        config.domains = domains;

        if let Some(v) = get("AUTH0_ALGORITHMS") {
            config.algorithms = parse_algorithms("AUTH0_ALGORITHMS", &v)?;
        }
        if let Some(v) = get("AUTH0_DPOP_ALGORITHMS") {
            config.dpop_algorithms = parse_algorithms("AUTH0_DPOP_ALGORITHMS", &v)?;
        }
        if let Some(v) = get("AUTH0_DPOP_ENABLED") {
            config.dpop_enabled = parse_bool("AUTH0_DPOP_ENABLED", &v)?;
        }
        if let Some(v) = get("AUTH0_DPOP_REQUIRED") {
            config.dpop_required = parse_bool("AUTH0_DPOP_REQUIRED", &v)?;
        }
        if let Some(v) = get("AUTH0_TRUST_PROXY") {
            config.trust_proxy = parse_bool("AUTH0_TRUST_PROXY", &v)?;
        }
        if let Some(v) = get("AUTH0_TRUSTED_PROXIES") {
            config.trusted_proxies = v.split(',').map(|p| p.trim().to_owned()).collect();
        }
        if let Some(v) = get("AUTH0_ORGANIZATIONS") {
            config.organizations = v.split(',').map(|o| o.trim().to_owned()).collect();
        }
        if let Some(v) = get("AUTH0_ORGANIZATION_REQUIRED") {
            config.organization_required = parse_bool("AUTH0_ORGANIZATION_REQUIRED", &v)?;
        }
        if let Some(v) = get("AUTH0_WARM_UP") {
            config.warm_up = parse_bool("AUTH0_WARM_UP", &v)?;
        }
        if let Some(v) = get("AUTH0_DPOP_NONCE_SECRET") {
            config.dpop_nonce_secrets = v
                .split(',')
                .map(|secret| decode_secret(secret.trim()))
                .collect::<Result<_, _>>()?;
        }
        let publish = get("AUTH0_RESOURCE_METADATA")
            .map(|v| parse_bool("AUTH0_RESOURCE_METADATA", &v))
            .transpose()?;
        if let Some(publish) = publish {
            config.metadata = config.metadata.publish(publish);
        }
        if let Some(v) = get("AUTH0_RESOURCE_METADATA_URL") {
            if publish == Some(false) {
                return Err(invalid(
                    "AUTH0_RESOURCE_METADATA_URL",
                    "is set while AUTH0_RESOURCE_METADATA=false, which turns metadata off: unset one of \
                     them (the URL alone turns metadata on)",
                ));
            }
            config.metadata = config.metadata.served_at(v);
        }
        if let Some(v) = get("AUTH0_RESOURCE") {
            config.metadata.resource = Some(v);
        }
        if let Some(v) = get("AUTH0_SCOPES_SUPPORTED") {
            config.metadata.scopes = v
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = get("AUTH0_RESOURCE_DOCUMENTATION") {
            config.metadata.documentation = Some(v);
        }
        if let Some(v) = get("AUTH0_PUBLIC_ORIGINS") {
            config.public_origins = v.split(',').map(|o| o.trim().to_owned()).collect();
        }
        if let Some(v) = get("AUTH0_REPLAY_STORE_CAPACITY") {
            config.replay_store_capacity = v.parse().map_err(|_| {
                invalid(
                    "AUTH0_REPLAY_STORE_CAPACITY",
                    format!(
                        "must be a whole number of DPoP proofs, like 330000 (1000 a second over the proof \
                         window), not {}",
                        shown(&v)
                    ),
                )
            })?;
        }
        if let Some(v) = get("AUTH0_REPLAY_STORE") {
            config.replay_store = replay_store_from_env(&v)?;
        }
        if let Some(v) = get("AUTH0_REPLAY_STORE_FAIL_OPEN") {
            config.replay_store_fail_open = parse_bool("AUTH0_REPLAY_STORE_FAIL_OPEN", &v)?;
        }
        if let Some(v) = get("AUTH0_DPOP_IAT_LEEWAY") {
            config.dpop_iat_leeway = parse_seconds("AUTH0_DPOP_IAT_LEEWAY", &v, "30")?;
        }
        if let Some(v) = get("AUTH0_DPOP_IAT_OFFSET") {
            config.dpop_iat_offset = parse_seconds("AUTH0_DPOP_IAT_OFFSET", &v, "300")?;
        }
        if let Some(v) = get("AUTH0_LEEWAY") {
            config.leeway = parse_seconds("AUTH0_LEEWAY", &v, "5")?;
        }
        if let Some(v) = get("AUTH0_CACHE_TTL_SECONDS") {
            config.cache_ttl = parse_seconds("AUTH0_CACHE_TTL_SECONDS", &v, "600")?;
        }
        if let Some(v) = get("AUTH0_HTTP_TIMEOUT_SECONDS") {
            config.http_timeout = parse_seconds("AUTH0_HTTP_TIMEOUT_SECONDS", &v, "10")?;
        }
        if let Some(v) = get("AUTH0_CACHE_MAX_ENTRIES") {
            config.cache_max_entries = v.parse().map_err(|_| {
                invalid(
                    "AUTH0_CACHE_MAX_ENTRIES",
                    format!(
                        "must be a whole number of at least 2, like 100, not {}",
                        shown(&v)
                    ),
                )
            })?;
        }
        if let Some(v) = get("AUTH0_TOKEN_CACHE_ENTRIES") {
            config.token_cache_entries = v.parse().map_err(|_| {
                invalid(
                    "AUTH0_TOKEN_CACHE_ENTRIES",
                    format!(
                        "must be a whole number, like 4096 (0 turns the cache off), not {}",
                        shown(&v)
                    ),
                )
            })?;
        }
        config.client_id = get("AUTH0_CLIENT_ID");
        config.client_secret = get("AUTH0_CLIENT_SECRET");
        config.read_exchange_env(&get)?;
        if let Some(path) = get("SSL_CERT_FILE") {
            let pem = std::fs::read(&path).map_err(|e| {
                invalid(
                    "SSL_CERT_FILE",
                    format!(
                        "names {path}, which cannot be read ({e}): point it at a PEM file of CA certificates"
                    ),
                )
            })?;
            config.root_certificates.push(pem);
        }
        // Ours, unlike SSL_CERT_FILE, which is often set system-wide and then beats `.env`.
        if let Some(path) = get("AUTH0_CA_FILE") {
            config.ca_file = Some(CaFile::read(&path)?);
        }
        Ok(config)
    }

    /// `AUTH0_CLIENT_ASSERTION_KEY`, `AUTH0_CLIENT_ASSERTION_ALG`, `AUTH0_EXCHANGE_CACHE_ENTRIES`,
    /// and the rule that client credentials need `AUTH0_DOMAIN`.
    fn read_exchange_env(&mut self, get: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        const KEY: &str = "AUTH0_CLIENT_ASSERTION_KEY";
        if let Some(path) = get(KEY) {
            let pem = std::fs::read(&path).map_err(|e| {
                invalid(
                    KEY,
                    format!(
                        "names {path}, which cannot be read ({e}): point it at a PEM file of a private key"
                    ),
                )
            })?;
            self.client_assertion_key = Some(ClientAssertionKey::from_pem(pem)?);
        }
        if let Some(alg) = get("AUTH0_CLIENT_ASSERTION_ALG") {
            let alg = match alg.to_ascii_uppercase().as_str() {
                "RS256" => Algorithm::RS256,
                "PS256" => Algorithm::PS256,
                "ES256" => Algorithm::ES256,
                _ => {
                    return Err(invalid(
                        "AUTH0_CLIENT_ASSERTION_ALG",
                        format!("must be RS256, PS256 or ES256, not {}", shown(&alg)),
                    ));
                }
            };
            let key = self.client_assertion_key.take().ok_or(ConfigError::Missing {
                var: KEY,
                hint: "AUTH0_CLIENT_ASSERTION_ALG is set: set AUTH0_CLIENT_ASSERTION_KEY to the PEM file of the key",
            })?;
            self.client_assertion_key = Some(key.algorithm(alg));
        }
        if let Some(v) = get("AUTH0_EXCHANGE_CACHE_ENTRIES") {
            self.exchange_cache_entries = v.parse().map_err(|_| {
                invalid(
                    "AUTH0_EXCHANGE_CACHE_ENTRIES",
                    format!(
                        "must be a whole number, like 1000 (0 turns the cache off), not {}",
                        shown(&v)
                    ),
                )
            })?;
        }
        self.exchange_domain = get("AUTH0_DOMAIN");
        let credentials =
            self.client_id.is_some() || self.client_secret.is_some() || self.client_assertion_key.is_some();
        if credentials && self.exchange_domain.is_none() {
            return Err(ConfigError::Missing {
                var: "AUTH0_DOMAIN",
                hint: "token exchange (AUTH0_CLIENT_ID) needs the tenant's domain, whose token endpoint \
                       it calls: set AUTH0_DOMAIN (next to AUTH0_DOMAINS), like tenant.us.auth0.com",
            });
        }
        Ok(())
    }
}

/// `AUTH0_CA_FILE`: the file's path and the certificates read from it at startup.
#[derive(Clone)]
pub(crate) struct CaFile {
    pub(crate) path: String,
    pub(crate) certificates: Vec<reqwest::Certificate>,
}

impl fmt::Debug for CaFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaFile")
            .field("path", &self.path)
            .field("certificates", &self.certificates.len())
            .finish()
    }
}

impl CaFile {
    /// Reads and parses the file: it must hold at least one PEM certificate.
    fn read(path: &str) -> Result<Self, ConfigError> {
        const VAR: &str = "AUTH0_CA_FILE";
        const FIX: &str = "point it at a PEM file of CA certificates (-----BEGIN CERTIFICATE----- blocks)";
        let pem = std::fs::read(path)
            .map_err(|e| invalid(VAR, format!("names {path}, which cannot be read ({e}): {FIX}")))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| {
            invalid(
                VAR,
                format!("names {path}, which is not a well-formed PEM file: {FIX}"),
            )
        })?;
        if certificates.is_empty() {
            return Err(invalid(
                VAR,
                format!(
                    "names {path}, which holds no PEM certificate: {FIX}; a DER file converts with \
                     `openssl x509 -inform der -in ca.der -out ca.pem`"
                ),
            ));
        }
        Ok(Self {
            path: path.to_owned(),
            certificates,
        })
    }
}

/// The variables of `.env` in the working directory; none when it is missing or unreadable.
#[cfg(feature = "dotenv")]
pub(super) fn dotenv_file() -> HashMap<String, String> {
    dotenvy::from_filename_iter(".env")
        .map(|iter| iter.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// Without the `dotenv` feature there is no `.env`: only the environment counts.
#[cfg(not(feature = "dotenv"))]
pub(super) fn dotenv_file() -> HashMap<String, String> {
    HashMap::new()
}

/// `tenant.us.auth0.com`, `https://tenant.us.auth0.com/` and `localhost:8443` are fine; a scheme
/// other than https, a path, a query or credentials are refused.
/// A nonce secret: standard base64, padding optional; never echoed in an error.
pub(super) fn decode_secret(text: &str) -> Result<Vec<u8>, ConfigError> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const STANDARD: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    STANDARD.decode(text).map_err(|_| {
        invalid(
            "AUTH0_DPOP_NONCE_SECRET",
            "must be standard base64 of at least 32 random bytes (openssl rand -base64 32); a comma-separated list rotates secrets",
        )
    })
}

/// `AUTH0_REPLAY_STORE`: `memory` (the default store), or a Redis URL with the `redis` feature.
pub(super) fn replay_store_from_env(v: &str) -> Result<Option<Arc<dyn ReplayStore>>, ConfigError> {
    if !names_redis(v, cfg!(feature = "redis"))? {
        return Ok(None);
    }
    #[cfg(feature = "redis")]
    return crate::RedisReplayStore::new(v).map(|store| Some(Arc::new(store) as Arc<dyn ReplayStore>));
    // `names_redis` refused the URL: this build has no Redis support.
    #[cfg(not(feature = "redis"))]
    Ok(None)
}

/// Whether `AUTH0_REPLAY_STORE` names a Redis store (`false`: the memory store); a Redis URL in a
/// build without Redis support (`redis_built`) is refused. The value is never repeated in a
/// refusal: a Redis URL may hold a password.
pub(super) fn names_redis(v: &str, redis_built: bool) -> Result<bool, ConfigError> {
    const VAR: &str = "AUTH0_REPLAY_STORE";
    let lower = v.to_ascii_lowercase();
    if lower == "memory" {
        return Ok(false);
    }
    if !(lower.starts_with("redis://") || lower.starts_with("rediss://")) {
        return Err(invalid(
            VAR,
            "must be memory (the default, one store per process) or a Redis URL like \
             redis://host:6379/0 or rediss://:password@host:6380/0",
        ));
    }
    if !redis_built {
        return Err(invalid(
            VAR,
            "is a Redis URL, but this build has no Redis support: enable the `redis` feature of \
             auth0-runtime or auth0-axum (or set it to memory)",
        ));
    }
    Ok(true)
}

pub(super) fn parse_bool(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(var, format!("must be true or false, not {}", shown(v)))),
    }
}

pub(super) fn parse_seconds(var: &'static str, v: &str, example: &str) -> Result<Duration, ConfigError> {
    v.parse::<u64>().map(Duration::from_secs).map_err(|_| {
        invalid(
            var,
            format!(
                "must be a whole number of seconds, like {example}, not {}",
                shown(v)
            ),
        )
    })
}

/// A list of JWS algorithms, separated by commas or spaces. HMAC and `none` are refused with the
/// reason (RFC 8725 §3.1-3.2): a published key set cannot verify a shared secret.
pub(super) fn parse_algorithms(var: &'static str, v: &str) -> Result<Vec<Algorithm>, ConfigError> {
    let listed: Vec<Algorithm> = v
        .split([',', ' '])
        .filter(|name| !name.is_empty())
        .map(|name| {
            name.parse::<Algorithm>().map_err(|_| {
                let why = if name.eq_ignore_ascii_case("none") {
                    "is an unsigned token: never accepted".to_owned()
                } else if name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("HS")) {
                    "is an HMAC algorithm: a shared secret cannot be checked against the tenant's published \
                     keys, and accepting it lets anyone who has the public key sign tokens"
                        .to_owned()
                } else {
                    "is not a JWS algorithm this crate verifies".to_owned()
                };
                invalid(
                    var,
                    format!(
                        "lists {} which {why}; list asymmetric algorithms (JOSE names, case-sensitive) from \
                         RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA, like RS256 or RS256,PS256",
                        shown(name)
                    ),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(super::distinct(listed))
}
