//! Every check of a configuration, run once when the validator is built: a bad setting fails at
//! startup with a message that says how to fix it.

use std::net::IpAddr;
use std::time::Duration;

use super::{Auth0Config, normalize_domain};
use crate::Algorithm;
use crate::answer::ConfigError;
use crate::answer::{invalid, shown};

impl Auth0Config {
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
        check_algorithms("AUTH0_ALGORITHMS", "algorithms", "RS256", &self.algorithms)?;
        check_algorithms(
            "AUTH0_DPOP_ALGORITHMS",
            "dpop_algorithms",
            "ES256",
            &self.dpop_algorithms,
        )?;
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
    pub(super) fn parse(s: &str) -> Option<Self> {
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

pub(super) fn check_algorithms(
    var: &'static str,
    setter: &str,
    example: &str,
    algorithms: &[Algorithm],
) -> Result<(), ConfigError> {
    if algorithms.is_empty() {
        return Err(invalid(
            var,
            format!("(or `{setter}` in code) must name at least one algorithm, like {example}"),
        ));
    }
    Ok(())
}
