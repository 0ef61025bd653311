//! Configuration: [`Auth0Config`], read from code or from the environment, validated at startup.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::Algorithm;
use crate::answer::AuthError;
use crate::answer::ConfigError;
use crate::dpop::ReplayStore;
use crate::exchange::ClientAssertionKey;

fn invalid(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var,
        problem: problem.into(),
    }
}

/// A setting's value as a message shows it: quoted and escaped (so blanks and control characters
/// are visible), cut after 64 characters. Never used for secrets.
pub(crate) fn shown(value: &str) -> String {
    const MAX: usize = 64;
    match value.char_indices().nth(MAX) {
        Some((end, _)) => format!("{:?}…", &value[..end]),
        None => format!("{value:?}"),
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

/// Why a [`Auth0Config::domains_resolver`] could not answer; logged, never shown to clients.
pub type ResolverError = Box<dyn std::error::Error + Send + Sync>;

/// The resolver's future, boxed.
pub(crate) type ResolverFuture = Pin<Box<dyn Future<Output = Result<Vec<String>, ResolverError>> + Send>>;
/// A domains resolver, type-erased.
pub(crate) type DomainsResolver = Arc<dyn Fn(DomainRequest) -> ResolverFuture + Send + Sync>;

/// What a [`Auth0Config::domains_resolver`] is told about a request whose token names an issuer
/// that is not in the static list.
#[derive(Clone)]
pub struct DomainRequest {
    pub(crate) url: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) issuer: String,
}

/// Headers whose values are credentials: their values never reach a log.
const SECRET_HEADERS: [&str; 4] = ["authorization", "dpop", "cookie", "proxy-authorization"];

impl fmt::Debug for DomainRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let secret = SECRET_HEADERS.iter().any(|s| name.eq_ignore_ascii_case(s));
                (name.as_str(), if secret { "<redacted>" } else { value.as_str() })
            })
            .collect();
        f.debug_struct("DomainRequest")
            .field("url", &self.url)
            .field("headers", &headers)
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl DomainRequest {
    /// The URL the request was sent to (`http://api.example.com/api/private`), from the connection
    /// and `Host`, or from forwarded headers when the proxy is trusted.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The first value of the header `name` (any letter case) that is valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header line with a text value, names in lower case.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The token's `iss`, **not verified yet**: only which tenant the caller claims to come from.
    pub fn unverified_issuer(&self) -> &str {
        &self.issuer
    }
}

/// A hook that renders every refusal: the one place to customise error responses.
pub type ErrorHandler =
    Arc<dyn Fn(&AuthError, actix_web::HttpResponse) -> actix_web::HttpResponse + Send + Sync>;

/// The settings of a validator, built in code or read from the environment.
///
/// Nothing is checked until [`crate::Auth0::new`] (or [`crate::init`]) turns it into a validator,
/// which fails with a [`ConfigError`] that says how to fix the setting.
///
/// ```
/// use std::time::Duration;
/// use auth0_runtime::{Auth0, Auth0Config};
///
/// let config = Auth0Config::new("tenant.us.auth0.com", "https://api.example.com")
///     .dpop_required(true)
///     .leeway(Duration::from_secs(5));
/// let auth0 = Auth0::new(config)?;
/// # Ok::<(), auth0_runtime::ConfigError>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct Auth0Config {
    pub(crate) domains: Vec<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) dpop_enabled: bool,
    pub(crate) dpop_required: bool,
    pub(crate) dpop_algorithms: Vec<Algorithm>,
    pub(crate) dpop_iat_leeway: Duration,
    pub(crate) dpop_iat_offset: Duration,
    pub(crate) leeway: Duration,
    pub(crate) require_at_jwt: bool,
    pub(crate) cache_ttl: Duration,
    pub(crate) cache_max_entries: usize,
    pub(crate) token_cache_entries: usize,
    pub(crate) refetch_cooldown: Duration,
    pub(crate) stale_limit: Duration,
    pub(crate) http_timeout: Duration,
    pub(crate) trust_proxy: bool,
    pub(crate) trusted_proxies: Vec<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<String>,
    pub(crate) root_certificates: Vec<Vec<u8>>,
    /// `AUTH0_CA_FILE`, read and parsed.
    pub(crate) ca_file: Option<CaFile>,
    /// Fetch discovery and keys while the validator is built (`crate::health`).
    pub(crate) warm_up: bool,
    pub(crate) http_client: Option<reqwest::Client>,
    pub(crate) error_handler: Option<ErrorHandler>,
    pub(crate) replay_store: Option<Arc<dyn ReplayStore>>,
    pub(crate) replay_store_capacity: usize,
    pub(crate) replay_store_fail_open: bool,
    pub(crate) public_origins: Vec<String>,
    pub(crate) organizations: Vec<String>,
    pub(crate) organization_required: bool,
    pub(crate) log_subject: bool,
    pub(crate) dpop_nonce_secrets: Vec<Vec<u8>>,
    pub(crate) domains_resolver: Option<DomainsResolver>,
    pub(crate) new_issuers: crate::keys::NewIssuerBudget,
    pub(crate) metadata: crate::metadata::MetadataSettings,
    /// Unix seconds; tests of the crate move it.
    pub(crate) clock: fn() -> i64,
    // Token exchange (see `crate::exchange`).
    pub(crate) exchange_domain: Option<String>,
    pub(crate) client_assertion_key: Option<ClientAssertionKey>,
    pub(crate) exchange_cache_entries: usize,
    /// (issuer, JWK set) served for that issuer without any fetch: the testing kit's offline
    /// validator (`TestIssuer::validator`). Nothing else sets it.
    #[cfg(feature = "testing")]
    pub(crate) static_keys: Option<Arc<(String, serde_json::Value)>>,
}

impl fmt::Debug for Auth0Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth0Config")
            .field("domains", &self.domains)
            .field("audiences", &self.audiences)
            .field("algorithms", &self.algorithms)
            .field("dpop_enabled", &self.dpop_enabled)
            .field("dpop_required", &self.dpop_required)
            .field("leeway", &self.leeway)
            .field("cache_ttl", &self.cache_ttl)
            .field("trust_proxy", &self.trust_proxy)
            .field("warm_up", &self.warm_up)
            .field("ca_file", &self.ca_file)
            .field("replay_store_fail_open", &self.replay_store_fail_open)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("client_assertion_key", &self.client_assertion_key)
            .field("exchange_cache_entries", &self.exchange_cache_entries)
            .finish_non_exhaustive()
    }
}

impl Auth0Config {
    /// Settings for one tenant domain (`tenant.us.auth0.com`, or a custom domain) and the API's
    /// audience (its identifier in the Auth0 dashboard). Every other setting has its default.
    pub fn new(domain: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            domains: vec![domain.into()],
            audiences: vec![audience.into()],
            algorithms: vec![Algorithm::RS256],
            dpop_enabled: true,
            dpop_required: false,
            dpop_algorithms: vec![Algorithm::ES256],
            dpop_iat_leeway: Duration::from_secs(30),
            dpop_iat_offset: Duration::from_secs(300),
            leeway: Duration::ZERO,
            require_at_jwt: false,
            cache_ttl: Duration::from_secs(600),
            cache_max_entries: 100,
            token_cache_entries: 4096,
            refetch_cooldown: Duration::from_secs(30),
            stale_limit: crate::keys::STALE_LIMIT,
            http_timeout: Duration::from_secs(10),
            trust_proxy: false,
            trusted_proxies: Vec::new(),
            client_id: None,
            client_secret: None,
            root_certificates: Vec::new(),
            ca_file: None,
            warm_up: false,
            http_client: None,
            error_handler: None,
            replay_store: None,
            replay_store_capacity: crate::MemoryReplayStore::DEFAULT_CAPACITY,
            replay_store_fail_open: false,
            public_origins: Vec::new(),
            organizations: Vec::new(),
            organization_required: false,
            log_subject: false,
            dpop_nonce_secrets: Vec::new(),
            domains_resolver: None,
            new_issuers: crate::keys::NewIssuerBudget::default(),
            metadata: crate::metadata::MetadataSettings::default(),
            clock: crate::clock::now,
            exchange_domain: None,
            client_assertion_key: None,
            exchange_cache_entries: 1000,
            #[cfg(feature = "testing")]
            static_keys: None,
        }
    }

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
        if let Some(v) = get("AUTH0_RESOURCE_METADATA") {
            config.metadata.enabled = parse_bool("AUTH0_RESOURCE_METADATA", &v)?;
        }
        if let Some(v) = get("AUTH0_RESOURCE_METADATA_URL") {
            config.metadata.url = Some(v);
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

    /// Accept tokens from several domains (custom domains of one tenant, or several tenants).
    /// Replaces the domain given to [`Self::new`].
    pub fn domains<I, S>(mut self, domains: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.domains = domains.into_iter().map(Into::into).collect();
        self
    }

    /// Accept tokens whose `aud` contains any of these audiences. Replaces the audience given to
    /// [`Self::new`].
    pub fn audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// The signature algorithms accepted for access tokens (default `[RS256]`). Only asymmetric
    /// algorithms can be verified against a published key set.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Accept the DPoP scheme (default `true`).
    pub fn dpop_enabled(mut self, enabled: bool) -> Self {
        self.dpop_enabled = enabled;
        self
    }

    /// Accept only the DPoP scheme (default `false`). Needs DPoP enabled.
    pub fn dpop_required(mut self, required: bool) -> Self {
        self.dpop_required = required;
        self
    }

    /// The algorithms accepted for DPoP proofs (default `[ES256]`); asymmetric only.
    pub fn dpop_algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.dpop_algorithms = algorithms.into_iter().collect();
        self
    }

    /// How far in the future a DPoP proof's `iat` may be (default 30 s).
    pub fn dpop_iat_leeway(mut self, leeway: Duration) -> Self {
        self.dpop_iat_leeway = leeway;
        self
    }

    /// How old a DPoP proof may be (default 300 s).
    pub fn dpop_iat_offset(mut self, offset: Duration) -> Self {
        self.dpop_iat_offset = offset;
        self
    }

    /// Clock leeway applied to the access token's `exp` and `nbf` (default 0).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Require `typ` to be `at+jwt` (RFC 9068); by default a missing `typ` or `JWT` is accepted too.
    pub fn require_at_jwt(mut self, strict: bool) -> Self {
        self.require_at_jwt = strict;
        self
    }

    /// Longest lifetime of a cached discovery document or key set (default 600 s);
    /// `Cache-Control: max-age` can only shorten it.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Entries per cache (default 100, at least 2).
    pub fn cache_max_entries(mut self, entries: usize) -> Self {
        self.cache_max_entries = entries;
        self
    }

    /// Slots of the verified-token cache (default 4096; 0 turns it off). A token seen before skips
    /// parsing and the signature check; its expiry is still checked on every request, and a
    /// changed key set empties the cache.
    pub fn token_cache_entries(mut self, entries: usize) -> Self {
        self.token_cache_entries = entries;
        self
    }

    /// Shortest time between two key-set fetches caused by unknown key ids (default 30 s).
    pub fn refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.refetch_cooldown = cooldown;
        self
    }

    /// Timeout of every outbound request (default 10 s). Ignored with [`Self::http_client`].
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// Fetch the discovery document and the key set of every configured domain while the validator
    /// is built (default `false`; `AUTH0_WARM_UP=true`): [`crate::Auth0::new`], [`crate::init`] and
    /// [`crate::init_from_env`] return once they are cached, or after the HTTP timeout, so the first
    /// requests do not wait for them. Works inside `#[actix_web::main]`: the fetches run on a
    /// short-lived thread of their own, never on (or blocking) the caller's runtime. An unreachable
    /// tenant is a warning, not an error; requests then fetch the keys as usual. See also
    /// [`crate::Auth0::warm_up`] and [`crate::Auth0::ready`].
    ///
    /// ```no_run
    /// use auth0_runtime::Auth0Config;
    ///
    /// #[actix_web::main]
    /// async fn main() -> std::io::Result<()> {
    ///     let config = Auth0Config::new("tenant.us.auth0.com", "https://api.example.com").warm_up(true);
    ///     if let Err(error) = auth0_runtime::init(config) {
    ///         eprintln!("{error}");
    ///         std::process::exit(2);
    ///     }
    ///     // The keys are cached (or the tenant was unreachable, and a warning says so).
    ///     Ok(())
    /// }
    /// ```
    pub fn warm_up(mut self, warm: bool) -> Self {
        self.warm_up = warm;
        self
    }

    /// How long past their lifetime the last good discovery document and key set are still
    /// served while refreshes fail (default 24 hours). Past it, requests get 503 until the issuer
    /// answers again, and tokens verified earlier stop passing.
    pub fn stale_limit(mut self, limit: Duration) -> Self {
        self.stale_limit = limit;
        self
    }

    /// Honour `X-Forwarded-Proto/Host/Prefix` when building the request URL a DPoP proof must
    /// match (default `false`). Enable only behind a proxy that sets these headers itself.
    pub fn trust_proxy(mut self, trust: bool) -> Self {
        self.trust_proxy = trust;
        self
    }

    /// Honour forwarded headers only from these peers: addresses or CIDR blocks (`10.0.0.0/8`,
    /// `::1`). Needs [`Self::trust_proxy`]; without a list, every peer is trusted.
    pub fn trusted_proxies<I, S>(mut self, proxies: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.trusted_proxies = proxies.into_iter().map(Into::into).collect();
        self
    }

    /// The API's public origins, as clients address it (`https://api.example.com`, one per
    /// deployment name or region that serves the same routes). When set, a DPoP proof's `htu`
    /// origin must be one of these, whatever `Host` or forwarded headers say, and only the path
    /// is taken from the request: a proof made for another deployment is refused.
    pub fn public_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.public_origins = origins.into_iter().map(Into::into).collect();
        self
    }

    /// Accept only tokens of these Auth0 Organizations: the token's `org_id` must be one of them
    /// (`org_…` ids). A token without `org_id` is refused too.
    pub fn organizations<I, S>(mut self, organizations: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.organizations = organizations.into_iter().map(Into::into).collect();
        self
    }

    /// Record the token's subject (`sub`) on the `auth0.verify` span (default `false`): a user id is
    /// personal data, so logs carry it only when you say so. Nothing else of a token is logged.
    pub fn log_subject(mut self, log: bool) -> Self {
        self.log_subject = log;
        self
    }

    /// Accept only tokens issued for an organization: the token must carry some `org_id`.
    pub fn organization_required(mut self, required: bool) -> Self {
        self.organization_required = required;
        self
    }

    /// Turn DPoP server nonces on (RFC 9449 §8): each secret at least 32 random bytes; the first
    /// makes nonces, all are accepted (list a new secret first to rotate). Every instance given
    /// the same secrets accepts every other's nonces, with no shared state. A proof without a
    /// valid nonce gets 401 `use_dpop_nonce` and a `DPoP-Nonce` header to retry with.
    pub fn dpop_nonce_secrets<I, S>(mut self, secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Vec<u8>>,
    {
        self.dpop_nonce_secrets = secrets.into_iter().map(Into::into).collect();
        self
    }

    /// Publish RFC 9728 Protected Resource Metadata (default off; `AUTH0_RESOURCE_METADATA`): the
    /// document [`Auth0::resource_metadata`](crate::Auth0::resource_metadata) holds, served by
    /// [`protected_resource_metadata`](crate::protected_resource_metadata), and named by a
    /// `resource_metadata="…"` parameter on every challenge, so that a refused OAuth client (an MCP
    /// client) finds the tenant to get a token from. Its URL is derived from the resource
    /// identifier (RFC 9728 §3.1: `https://api.example.com/mcp` →
    /// `https://api.example.com/.well-known/oauth-protected-resource/mcp`) unless
    /// [`Self::resource_metadata_url`] says otherwise.
    pub fn resource_metadata(mut self, publish: bool) -> Self {
        self.metadata.enabled = publish;
        self
    }

    /// Where the metadata is served, when not at the derived URL (`AUTH0_RESOURCE_METADATA_URL`;
    /// a proxy that rewrites paths, say). Turns metadata on.
    pub fn resource_metadata_url(mut self, url: impl Into<String>) -> Self {
        self.metadata.url = Some(url.into());
        self
    }

    /// The resource identifier the metadata names (`AUTH0_RESOURCE`): the API's URL, like
    /// `https://mcp.example.com/mcp`. Default: the (first) audience, which for an MCP server is
    /// its URL.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.metadata.resource = Some(resource.into());
        self
    }

    /// The scopes the metadata lists as `scopes_supported` (`AUTH0_SCOPES_SUPPORTED`, separated
    /// by spaces or commas).
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.metadata.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// A page for developers that the metadata links as `resource_documentation`
    /// (`AUTH0_RESOURCE_DOCUMENTATION`).
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.metadata.documentation = Some(url.into());
        self
    }

    /// Bound the fetches for issuers that a [`Self::domains_resolver`] allowed and nothing is
    /// cached for yet: at most `concurrent` at once and `per_minute` started per minute, across
    /// all such issuers (default 4 and 60). A request that would need one more is answered 503
    /// `temporarily_unavailable` with `Retry-After`. Configured domains never count against it.
    pub fn new_issuer_fetches(mut self, concurrent: usize, per_minute: u32) -> Self {
        self.new_issuers = crate::keys::NewIssuerBudget {
            concurrent,
            per_minute,
        };
        self
    }

    /// Decide per request which issuers are trusted, besides the static domain list: `resolver`
    /// gets the request (URL, headers) and the token's unverified issuer, and returns the allowed
    /// domains (or issuer URLs). Nothing is fetched for an issuer it does not return (401
    /// `invalid_token`); its answer is not cached (it may depend on the request); an error is
    /// logged and answered 503 `temporarily_unavailable`.
    ///
    /// The issuer it is given is the token's own claim, before any signature check: anyone can
    /// write any issuer there. Return domains derived from something you trust (the request's
    /// host, a tenant table), never the unverified issuer itself: a resolver that echoes it lets
    /// every forged token name a new server for this API to fetch from. Fetches for issuers
    /// nothing is cached for are bounded ([`Self::new_issuer_fetches`]), but the bound is shared
    /// by every caller, so an echoing resolver still lets a flood of forged tokens crowd out real
    /// new tenants.
    ///
    /// ```
    /// use auth0_runtime::{Auth0Config, DomainRequest, ResolverError};
    ///
    /// let config = Auth0Config::new("tenant.us.auth0.com", "https://api.example.com")
    ///     .domains_resolver(|request: DomainRequest| async move {
    ///         // e.g. one custom domain per customer host
    ///         let domains = match request.header("host") {
    ///             Some("acme.example.com") => vec!["login.acme.example.com".to_owned()],
    ///             _ => Vec::new(),
    ///         };
    ///         Ok::<_, ResolverError>(domains)
    ///     });
    /// # let _ = config;
    /// ```
    pub fn domains_resolver<F, Fut, E>(mut self, resolver: F) -> Self
    where
        F: Fn(DomainRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<String>, E>> + Send + 'static,
        E: Into<ResolverError> + 'static,
    {
        self.domains_resolver = Some(Arc::new(move |request| {
            let answer = resolver(request);
            Box::pin(async move { answer.await.map_err(Into::into) })
        }));
        self
    }

    /// How many DPoP proofs the default in-memory replay store holds (default
    /// [`MemoryReplayStore::DEFAULT_CAPACITY`](crate::MemoryReplayStore::DEFAULT_CAPACITY): 1 000
    /// proofs a second over the default 330-second window, about 8 MB). Size it for your peak
    /// DPoP request rate times the proof window; when full, new proofs get 503. Ignored with
    /// [`Self::replay_store`].
    pub fn replay_store_capacity(mut self, records: usize) -> Self {
        self.replay_store_capacity = records;
        self
    }

    /// Client credentials, needed only for token exchange.
    pub fn client_credentials(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self.client_secret = Some(secret.into());
        self
    }

    /// Client credentials with `private_key_jwt` authentication (RFC 7523): token exchanges are
    /// authenticated by a client assertion signed with `key` instead of a secret. `AUTH0_CLIENT_ID`
    /// with `AUTH0_CLIENT_ASSERTION_KEY` (a PEM file) does the same from the environment.
    pub fn client_assertion(mut self, id: impl Into<String>, key: ClientAssertionKey) -> Self {
        self.client_id = Some(id.into());
        self.client_assertion_key = Some(key);
        self
    }

    /// The tenant domain whose token endpoint token exchanges use (default: `AUTH0_DOMAIN`, or the
    /// only domain configured). Needed with several domains.
    pub fn exchange_domain(mut self, domain: impl Into<String>) -> Self {
        self.exchange_domain = Some(domain.into());
        self
    }

    /// Entries of the exchanged-token cache (default 1000; 0 turns it off). A repeat exchange with
    /// the same inputs reuses the earlier answer until 60 s before it expires, and identical
    /// concurrent exchanges share one request.
    pub fn exchange_cache_entries(mut self, entries: usize) -> Self {
        self.exchange_cache_entries = entries;
        self
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

    /// Trust these CA certificates (PEM) for outbound HTTPS, next to the platform's roots.
    /// `SSL_CERT_FILE` does the same from the environment.
    pub fn root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(pem.into());
        self
    }

    /// Use this HTTP client for discovery and key sets instead of building one. It should
    /// have timeouts and refuse redirects to other origins.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Render every refusal through `handler`, which gets the error and the response this crate
    /// would send (status, JSON body, `WWW-Authenticate`) and returns the one to send.
    ///
    /// ```
    /// use auth0_runtime::Auth0Config;
    ///
    /// let config = Auth0Config::new("tenant.us.auth0.com", "https://api.example.com")
    ///     .on_error(|error, mut response| {
    ///         response.headers_mut().insert(
    ///             actix_web::http::header::CACHE_CONTROL,
    ///             actix_web::http::header::HeaderValue::from_static("no-store"),
    ///         );
    ///         let _ = error.code();
    ///         response
    ///     });
    /// ```
    pub fn on_error<F>(mut self, handler: F) -> Self
    where
        F: Fn(&AuthError, actix_web::HttpResponse) -> actix_web::HttpResponse + Send + Sync + 'static,
    {
        self.error_handler = Some(Arc::new(handler));
        self
    }

    /// Where DPoP proofs are remembered so each is accepted once (default: a bounded in-memory
    /// store). Several instances of one API should share a store, e.g. one backed by Redis
    /// (`RedisReplayStore`, feature `redis`; `AUTH0_REPLAY_STORE=redis://…` from the
    /// environment).
    pub fn replay_store(mut self, store: impl ReplayStore) -> Self {
        self.replay_store = Some(Arc::new(store));
        self
    }

    /// What a DPoP request gets when the replay store cannot be reached
    /// ([`ReplayOutcome::Unreachable`](crate::ReplayOutcome::Unreachable): down, or slower than
    /// its timeout). `false` (the default) fails closed: 503 `temporarily_unavailable` with
    /// `Retry-After`. `true` fails open: the proof is accepted without a replay check, and a
    /// warning (at most one every 10 s) counts the proofs accepted so. Bearer requests are never
    /// affected, and a store that answers it is full still refuses. `AUTH0_REPLAY_STORE_FAIL_OPEN`
    /// from the environment.
    pub fn replay_store_fail_open(mut self, fail_open: bool) -> Self {
        self.replay_store_fail_open = fail_open;
        self
    }

    /// The public origins, normalised (`https://api.example.com`, no trailing `/`).
    pub(crate) fn origins(&self) -> Result<Vec<String>, ConfigError> {
        self.public_origins
            .iter()
            .map(|raw| {
                let bad = || {
                    invalid(
                        "AUTH0_PUBLIC_ORIGINS",
                        format!(
                            "must list origins like https://api.example.com (scheme and host, an optional \
                             port, no path), not {}",
                            shown(raw)
                        ),
                    )
                };
                let normal = crate::normalize_htu(raw.trim()).ok_or_else(bad)?;
                let origin = normal.strip_suffix('/').ok_or_else(bad)?;
                let bare = raw.trim().trim_end_matches('/');
                let has_path_or_query = bare.contains(['?', '#']) || bare.matches('/').count() > 2;
                if has_path_or_query || origin.matches('/').count() > 2 {
                    return Err(bad());
                }
                Ok(origin.to_owned())
            })
            .collect()
    }

    /// The trusted proxy blocks, parsed.
    pub(crate) fn proxy_blocks(&self) -> Result<Vec<Cidr>, ConfigError> {
        if !self.trusted_proxies.is_empty() && !self.trust_proxy {
            return Err(invalid(
                "AUTH0_TRUSTED_PROXIES",
                "is set while AUTH0_TRUST_PROXY is false: set AUTH0_TRUST_PROXY=true to honour forwarded headers",
            ));
        }
        self.trusted_proxies
            .iter()
            .map(|p| {
                Cidr::parse(p).ok_or_else(|| {
                    invalid(
                        "AUTH0_TRUSTED_PROXIES",
                        format!(
                            "must list addresses or CIDR blocks, like 10.0.0.0/8, ::1, not {}",
                            shown(p)
                        ),
                    )
                })
            })
            .collect()
    }

    /// Checks every setting; the validator is built only from a checked configuration.
    pub(crate) fn validate(&self) -> Result<Vec<String>, ConfigError> {
        if self.domains.is_empty() {
            return Err(ConfigError::Missing {
                var: "AUTH0_DOMAIN",
                hint: "set it to your tenant's domain, like tenant.us.auth0.com",
            });
        }
        let var = if self.domains.len() > 1 {
            "AUTH0_DOMAINS"
        } else {
            "AUTH0_DOMAIN"
        };
        let issuers = self
            .domains
            .iter()
            .map(|d| normalize_domain(var, d).map(|host| format!("https://{host}/")))
            .collect::<Result<Vec<_>, _>>()?;
        if self.audiences.is_empty() || self.audiences.iter().any(|a| a.trim().is_empty()) {
            return Err(ConfigError::Missing {
                var: "AUTH0_AUDIENCE",
                hint: "set it to your API's identifier from the Auth0 dashboard, like https://api.example.com",
            });
        }
        check_algorithms("algorithms", &self.algorithms)?;
        check_algorithms("dpop_algorithms", &self.dpop_algorithms)?;
        if self.dpop_required && !self.dpop_enabled {
            return Err(invalid(
                "AUTH0_DPOP_REQUIRED",
                "is true while AUTH0_DPOP_ENABLED is false: enable DPoP, or do not require it",
            ));
        }
        // Upper bounds: past them a setting quietly turns a check off or holds memory for nothing.
        let at_most = |var: &'static str, value: Duration, max: u64, why: &str| {
            if value.as_secs() > max {
                Err(invalid(
                    var,
                    format!("must be at most {max} seconds, not {}: {why}", value.as_secs()),
                ))
            } else {
                Ok(())
            }
        };
        at_most(
            "AUTH0_LEEWAY",
            self.leeway,
            300,
            "a longer clock leeway accepts expired tokens",
        )?;
        at_most(
            "AUTH0_DPOP_IAT_LEEWAY",
            self.dpop_iat_leeway,
            300,
            "proofs are made just before use",
        )?;
        at_most(
            "AUTH0_DPOP_IAT_OFFSET",
            self.dpop_iat_offset,
            3600,
            "a proof is for one request, now",
        )?;
        at_most(
            "AUTH0_CACHE_TTL_SECONDS",
            self.cache_ttl,
            86_400,
            "keys must be re-read at least daily",
        )?;
        at_most(
            "stale_limit",
            self.stale_limit,
            7 * 86_400,
            "keys an issuer stopped publishing must not be trusted for long",
        )?;
        at_most(
            "AUTH0_HTTP_TIMEOUT_SECONDS",
            self.http_timeout,
            120,
            "a request waits for it",
        )?;
        if self.new_issuers.concurrent == 0 || self.new_issuers.per_minute == 0 {
            return Err(invalid(
                "new_issuer_fetches",
                format!(
                    "must allow at least one fetch, like (4, 60), not ({}, {}): with none, no new issuer could ever be verified",
                    self.new_issuers.concurrent, self.new_issuers.per_minute
                ),
            ));
        }
        if self.token_cache_entries > 1_000_000 {
            return Err(invalid(
                "AUTH0_TOKEN_CACHE_ENTRIES",
                format!(
                    "must be at most 1000000, like 4096, not {}",
                    self.token_cache_entries
                ),
            ));
        }
        if self.cache_max_entries > 10_000 {
            return Err(invalid(
                "AUTH0_CACHE_MAX_ENTRIES",
                format!("must be at most 10000, like 100, not {}", self.cache_max_entries),
            ));
        }
        if let Some(bad) = self.organizations.iter().find(|o| {
            !o.starts_with("org_")
                || o.len() < 5
                || !o.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }) {
            return Err(invalid(
                "AUTH0_ORGANIZATIONS",
                format!(
                    "must list organization ids like org_W4o8zTCcNB2kFEnA, comma-separated, not {}",
                    shown(bad)
                ),
            ));
        }
        if let Some(short) = self.dpop_nonce_secrets.iter().find(|s| s.len() < 32) {
            return Err(invalid(
                "AUTH0_DPOP_NONCE_SECRET",
                format!(
                    "has a secret of {} bytes: each must be at least 32 random bytes, base64 (openssl rand -base64 32)",
                    short.len()
                ),
            ));
        }
        if !self.dpop_nonce_secrets.is_empty() && !self.dpop_enabled {
            return Err(invalid(
                "AUTH0_DPOP_NONCE_SECRET",
                "is set while AUTH0_DPOP_ENABLED is false: nonces are for DPoP proofs",
            ));
        }
        if !(1..=50_000_000).contains(&self.replay_store_capacity) {
            return Err(invalid(
                "AUTH0_REPLAY_STORE_CAPACITY",
                format!(
                    "must be between 1 and 50000000 DPoP proofs, like 330000, not {}",
                    self.replay_store_capacity
                ),
            ));
        }
        if self.cache_max_entries < 2 {
            return Err(invalid(
                "AUTH0_CACHE_MAX_ENTRIES",
                format!("must be at least 2, like 100, not {}", self.cache_max_entries),
            ));
        }
        if self.cache_ttl.is_zero() {
            return Err(invalid(
                "AUTH0_CACHE_TTL_SECONDS",
                "must be at least 1 second, like 600, not 0",
            ));
        }
        if self.http_timeout.is_zero() {
            return Err(invalid(
                "AUTH0_HTTP_TIMEOUT_SECONDS",
                "must be at least 1 second, like 10, not 0",
            ));
        }
        Ok(issuers)
    }
}

/// An address block: `10.0.0.0/8`, `2001:db8::/32`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    prefix: u32,
}

impl Cidr {
    fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u32>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(bits);
        (prefix <= bits).then_some(Self { addr, prefix })
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let mask = |bits: u32, width: u32| if bits == 0 { 0 } else { u128::MAX << (width - bits) };
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let m = mask(self.prefix, 32) as u32;
                u32::from(net) & m == u32::from(ip) & m
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let m = mask(self.prefix, 128);
                u128::from(net) & m == u128::from(ip) & m
            }
            _ => false,
        }
    }
}

fn check_algorithms(var: &'static str, algorithms: &[Algorithm]) -> Result<(), ConfigError> {
    if algorithms.is_empty() {
        return Err(invalid(var, "must name at least one algorithm, like RS256"));
    }
    Ok(())
}

/// The variables of `.env` in the working directory; none when it is missing or unreadable.
#[cfg(feature = "dotenv")]
fn dotenv_file() -> HashMap<String, String> {
    dotenvy::from_filename_iter(".env")
        .map(|iter| iter.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// Without the `dotenv` feature there is no `.env`: only the environment counts.
#[cfg(not(feature = "dotenv"))]
fn dotenv_file() -> HashMap<String, String> {
    HashMap::new()
}

/// `tenant.us.auth0.com`, `https://tenant.us.auth0.com/` and `localhost:8443` are fine; a scheme
/// other than https, a path, a query or credentials are refused.
/// A nonce secret: standard base64, padding optional; never echoed in an error.
fn decode_secret(text: &str) -> Result<Vec<u8>, ConfigError> {
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

/// The issuer URL of a domain as a resolver returns it (`tenant.auth0.com`,
/// `https://tenant.auth0.com/`), or `None` if it is not one.
pub(crate) fn issuer_of(domain: &str) -> Option<String> {
    normalize_domain("domains_resolver", domain)
        .ok()
        .map(|host| format!("https://{host}/"))
}

pub(crate) fn normalize_domain(var: &'static str, raw: &str) -> Result<String, ConfigError> {
    let d = raw.trim();
    let lower = d.to_ascii_lowercase();
    // The host a mistaken value most likely meant (after a scheme, before a path): the fix.
    let meant = || {
        let rest = d.split_once("://").map_or(d, |(_, rest)| rest);
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        (!host.is_empty()).then(|| format!("set it to {}", shown(&host.to_ascii_lowercase())))
    };
    let fix = |problem: &str| match meant() {
        Some(fix) => invalid(var, format!("{problem}: {fix}, not {}", shown(d))),
        None => invalid(var, format!("{problem}, not {}", shown(d))),
    };
    if d.contains('@') {
        // The value may hold a password: it is never shown.
        let problem = "must not contain credentials (the value is not shown)";
        // Only what follows the last `@`: a password cannot hide there.
        let host = d
            .rsplit_once('@')
            .and_then(|(_, after)| after.split(['/', '?', '#']).next())
            .filter(|host| !host.is_empty());
        return Err(match host {
            Some(host) => invalid(
                var,
                format!(
                    "{problem}: set it to the bare host {}",
                    shown(&host.to_ascii_lowercase())
                ),
            ),
            None => invalid(
                var,
                format!("{problem}: use a bare host like tenant.us.auth0.com"),
            ),
        });
    }
    if lower.starts_with("http://") {
        return Err(fix(
            "must be a host like tenant.us.auth0.com, not a URL with http:// (keys are only fetched over https)",
        ));
    }
    let host = if lower.starts_with("https://") { &d[8..] } else { d };
    let host = host.strip_suffix('/').unwrap_or(host);
    if host.is_empty() {
        return Err(invalid(
            var,
            "must not be empty: set it to a host like tenant.us.auth0.com",
        ));
    }
    if host.contains("://") {
        return Err(fix("must be a host like tenant.us.auth0.com, not a URL"));
    }
    if host.contains(['/', '?', '#']) {
        return Err(fix(
            "must be a bare host like tenant.us.auth0.com, without a path, query or fragment",
        ));
    }
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let name_ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !name_ok {
        return Err(invalid(
            var,
            format!(
                "has an invalid host name: use a host like tenant.us.auth0.com, not {}",
                shown(host)
            ),
        ));
    }
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err(invalid(
            var,
            format!(
                "has an invalid port: use a host like localhost:8443, not {}",
                shown(host)
            ),
        ));
    }
    Ok(host.to_ascii_lowercase())
}

/// `AUTH0_REPLAY_STORE`: `memory` (the default store), or a Redis URL with the `redis` feature.
fn replay_store_from_env(v: &str) -> Result<Option<Arc<dyn ReplayStore>>, ConfigError> {
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
fn names_redis(v: &str, redis_built: bool) -> Result<bool, ConfigError> {
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
             auth0-runtime (or set it to memory)",
        ));
    }
    Ok(true)
}

fn parse_bool(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(var, format!("must be true or false, not {}", shown(v)))),
    }
}

fn parse_seconds(var: &'static str, v: &str, example: &str) -> Result<Duration, ConfigError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn issuers(domain: &str) -> Result<Vec<String>, ConfigError> {
        Auth0Config::new(domain, "https://api").validate()
    }

    #[test]
    fn proxy_blocks() {
        let v4 = Cidr::parse("10.1.0.0/16").expect("cidr");
        assert!(
            v4.contains("10.1.200.3".parse().expect("ip")) && !v4.contains("10.2.0.1".parse().expect("ip"))
        );
        assert!(
            v4.contains("::ffff:10.1.0.9".parse().expect("ip")),
            "IPv4-mapped peers match IPv4 blocks"
        );
        let one = Cidr::parse("::1").expect("cidr");
        assert!(one.contains("::1".parse().expect("ip")) && !one.contains("::2".parse().expect("ip")));
        assert!(Cidr::parse("0.0.0.0/0").is_some_and(|c| c.contains("8.8.8.8".parse().expect("ip"))));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", ""] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn values_are_shown_quoted_escaped_and_cut() {
        assert_eq!(shown("maybe"), "\"maybe\"");
        assert_eq!(shown("a\"b\n"), "\"a\\\"b\\n\"");
        let long = "é".repeat(100);
        assert_eq!(shown(&long), format!("{:?}…", "é".repeat(64)));
    }

    #[test]
    fn domains_are_normalised() {
        for d in [
            "tenant.auth0.com",
            "https://tenant.auth0.com/",
            " HTTPS://Tenant.Auth0.com ",
            "tenant.auth0.com/",
        ] {
            assert_eq!(
                issuers(d),
                Ok(vec!["https://tenant.auth0.com/".to_owned()]),
                "{d}"
            );
        }
        assert_eq!(
            issuers("localhost:8443"),
            Ok(vec!["https://localhost:8443/".to_owned()])
        );
    }

    /// `AUTH0_REPLAY_STORE`: `memory`, or a Redis URL only in a build with the `redis` feature;
    /// a refusal never repeats the value (a Redis URL may hold a password).
    #[test]
    fn the_replay_store_setting() {
        for memory in ["memory", "Memory"] {
            assert_eq!(names_redis(memory, false), Ok(false));
            assert_eq!(names_redis(memory, true), Ok(false));
        }
        let url = "redis://:hunter2@127.0.0.1:6379/2";
        assert_eq!(names_redis(url, true), Ok(true));
        assert_eq!(names_redis("REDISS://h:6380", true), Ok(true));
        let missing = names_redis(url, false).expect_err("no redis feature").to_string();
        assert_eq!(
            missing,
            "AUTH0_REPLAY_STORE is a Redis URL, but this build has no Redis support: enable the \
             `redis` feature of auth0-runtime (or set it to memory)"
        );
        for other in ["memcached://h", "redis:/h", "http://:hunter2@h", "mem"] {
            let refused = names_redis(other, true).expect_err(other).to_string();
            assert!(
                refused.starts_with("AUTH0_REPLAY_STORE must be memory"),
                "{refused}"
            );
            assert!(!refused.contains("hunter2"), "{refused}");
        }
    }

    /// Without the `redis` feature, a Redis URL in the environment stops the app at startup and
    /// names the feature to enable.
    #[cfg(not(feature = "redis"))]
    #[test]
    fn a_redis_url_needs_the_redis_feature() {
        let env = |name: &str| match name {
            "AUTH0_DOMAIN" => Some("tenant.us.auth0.com".to_owned()),
            "AUTH0_AUDIENCE" => Some("https://api.example.com".to_owned()),
            "AUTH0_REPLAY_STORE" => Some("redis://:hunter2@127.0.0.1:6379/2".to_owned()),
            _ => None,
        };
        let message = Auth0Config::from_lookup(env)
            .expect_err("no redis feature")
            .to_string();
        assert!(
            message.starts_with("AUTH0_REPLAY_STORE is a Redis URL"),
            "{message}"
        );
        assert!(
            message.contains("enable the `redis` feature of auth0-runtime"),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn bad_domains_are_refused_with_a_fix() {
        for d in [
            "http://tenant.auth0.com",
            "tenant.auth0.com/path",
            "tenant.auth0.com?x=1",
            "user:pw@tenant.auth0.com",
            "",
            "ftp://x",
            "tenant..com",
            "host:0",
            "host:99999",
            "ten ant.com",
        ] {
            let err = issuers(d).expect_err(d).to_string();
            assert!(err.starts_with("AUTH0_DOMAIN "), "{err}");
        }
        assert!(
            issuers("http://t.auth0.com")
                .expect_err("http")
                .to_string()
                .contains("not a URL with http://")
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod proptests {
    use std::cell::RefCell;
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::PathBuf;
    use std::sync::LazyLock;

    use proptest::prelude::*;

    use super::*;
    use crate::verify::Auth0;

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
}
