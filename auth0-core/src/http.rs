//! Outbound HTTP: the shared client and its TLS roots, the response cap, and `Cache-Control`.

use std::time::Duration;

use reqwest::header::{CACHE_CONTROL, HeaderMap};

use crate::answer::ConfigError;
use crate::config::Auth0Config;

/// Largest discovery document or key set accepted, in bytes.
pub(crate) const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Why a capped body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Over [`MAX_RESPONSE_BYTES`], announced or streamed.
    TooLarge,
    /// The connection failed while reading.
    Transport(reqwest::Error),
}

/// The body of `response`, at most [`MAX_RESPONSE_BYTES`]: refused from `Content-Length` before
/// reading, or as soon as the chunks read pass the cap.
pub(crate) async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    let too_large = |len: u64| usize::try_from(len).map_or(true, |len| len > MAX_RESPONSE_BYTES);
    if response.content_length().is_some_and(too_large) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len().saturating_add(chunk.len()) > MAX_RESPONSE_BYTES {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The validator's shared client: timeouts, the same-origin redirect policy, and the extra CA
/// certificates.
pub(crate) fn build_client(config: &Auth0Config) -> Result<reqwest::Client, ConfigError> {
    match client_builder(config, true)?.build() {
        Ok(client) => Ok(client),
        // Read and parsed at startup, the file's certificates can still be refused by the TLS
        // backend (a PEM block that is not an X.509 certificate): say so under its own name.
        Err(error) if config.ca_file.is_some() && client_builder(config, false)?.build().is_ok() => {
            let path = config.ca_file.as_ref().map_or("", |ca| ca.path.as_str());
            Err(ConfigError::Invalid {
                var: "AUTH0_CA_FILE",
                problem: format!(
                    "names {path}, whose certificates cannot be used ({}): point it at a PEM file of CA \
                     certificates (-----BEGIN CERTIFICATE----- blocks)",
                    crate::observe::chain(&error)
                ),
            })
        }
        Err(error) => Err(ConfigError::Invalid {
            var: "SSL_CERT_FILE",
            problem: format!(
                "or the platform's certificates could not be loaded into the HTTP client: {}",
                crate::observe::chain(&error)
            ),
        }),
    }
}

/// The shared client's settings, with `AUTH0_CA_FILE`'s certificates or without them.
fn client_builder(config: &Auth0Config, with_ca_file: bool) -> Result<reqwest::ClientBuilder, ConfigError> {
    let mut builder = reqwest::Client::builder()
        .timeout(config.http_timeout)
        .connect_timeout(config.http_timeout)
        .redirect(redirect_policy())
        .user_agent(concat!("auth0-runtime/", env!("CARGO_PKG_VERSION")));
    for pem in &config.root_certificates {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|_| ConfigError::Invalid {
            var: "SSL_CERT_FILE",
            problem:
                "does not hold PEM certificates: point it at a file of -----BEGIN CERTIFICATE----- blocks"
                    .into(),
        })?;
        builder = builder.tls_certs_merge(certs);
    }
    if let (true, Some(ca)) = (with_ca_file, &config.ca_file) {
        builder = builder.tls_certs_merge(ca.certificates.iter().cloned());
    }
    Ok(builder)
}

/// `max-age` of the `Cache-Control` header(s), if any.
pub(crate) fn max_age(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|directive| {
            let (name, value) = directive.split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("max-age") {
                return None;
            }
            value.trim().trim_matches('"').parse::<u64>().ok()
        })
        .min()
        .map(Duration::from_secs)
}

/// A redirect policy for the shared client: follows at most 3 redirects, and only within the origin of
/// the first request (never to another host, port or scheme).
pub(crate) fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if attempt.previous().len() > 3 {
            attempt.error("too many redirects")
        } else if same_origin {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_max_age() {
        let mut headers = HeaderMap::new();
        assert_eq!(max_age(&headers), None);
        headers.insert(
            CACHE_CONTROL,
            reqwest::header::HeaderValue::from_static("public, Max-Age=15, stale-while-revalidate=15"),
        );
        assert_eq!(max_age(&headers), Some(Duration::from_secs(15)));
        headers.insert(
            CACHE_CONTROL,
            reqwest::header::HeaderValue::from_static("no-cache, max-age=\"7\""),
        );
        assert_eq!(max_age(&headers), Some(Duration::from_secs(7)));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod proptests {
    use proptest::prelude::*;
    use reqwest::header::HeaderValue;

    use super::*;

    /// One `Cache-Control` directive, as written.
    #[derive(Debug, Clone)]
    enum Directive {
        /// `max-age` with its value, the name's letter case (one bit per letter), the blanks around
        /// the name, `=` and value, and whether the value is quoted.
        MaxAge {
            seconds: u32,
            case: u8,
            blanks: [usize; 4],
            quoted: bool,
        },
        /// Any other directive, including near misses (`s-maxage`, `max-agex`, a `max-age` without
        /// a number) and quoted strings with commas.
        Other(String),
    }

    fn directive() -> impl Strategy<Value = Directive> {
        let others = prop::sample::select(vec![
            "no-cache",
            "no-store",
            "private",
            "public",
            "must-revalidate",
            "immutable",
            "s-maxage=1",
            "stale-while-revalidate=5",
            "stale-if-error=0",
            "no-cache=\"set-cookie\"",
            "private=\"x, y\"",
            "x-max-age=0",
            "max-agex=0",
            "max-age",
            "max-age=",
            "max-age=-1",
            "max-age=1.5",
            "max-age=abc",
            // Past u64: ignored, which lasts as long as RFC 9111 §1.2.2's 2^31 s would, since the
            // lifetime is capped by `cache_ttl` (at most a day).
            "max-age=99999999999999999999999",
            "",
        ]);
        prop_oneof![
            2 => (any::<u32>(), any::<u8>(), [0..3usize, 0..2usize, 0..2usize, 0..3usize], any::<bool>())
                .prop_map(|(seconds, case, blanks, quoted)| Directive::MaxAge { seconds, case, blanks, quoted }),
            2 => others.prop_map(|s| Directive::Other(s.to_owned())),
            1 => "[a-z-]{1,10}(=[a-z0-9]{0,4})?"
                .prop_filter("not max-age", |s| !s.split('=').next().unwrap_or("").eq_ignore_ascii_case("max-age"))
                .prop_map(Directive::Other),
        ]
    }

    impl Directive {
        fn text(&self) -> String {
            match self {
                Self::MaxAge {
                    seconds,
                    case,
                    blanks,
                    quoted,
                } => {
                    let name: String = "max-age"
                        .chars()
                        .enumerate()
                        .map(|(i, c)| {
                            if case >> (i % 8) & 1 == 1 {
                                c.to_ascii_uppercase()
                            } else {
                                c
                            }
                        })
                        .collect();
                    let [a, b, c, d] = blanks.map(|n| " ".repeat(n));
                    let value = if *quoted {
                        format!("\"{seconds}\"")
                    } else {
                        seconds.to_string()
                    };
                    format!("{a}{name}{b}={c}{value}{d}")
                }
                Self::Other(s) => s.clone(),
            }
        }

        fn max_age(&self) -> Option<u64> {
            match self {
                Self::MaxAge { seconds, .. } => Some(u64::from(*seconds)),
                Self::Other(_) => None,
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        // Property: reading `max-age` from `Cache-Control` never panics, whatever the header lines
        // hold; and the lifetime read is the smallest `max-age` among the directives of all the
        // lines, whatever their letter case, blanks and quoting, and whatever other directives
        // (including near misses such as `s-maxage` or `max-age=abc`) surround them; none without a
        // well-formed `max-age`.

        #[test]
        fn max_age_never_panics(lines in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..3)) {
            let mut headers = HeaderMap::new();
            for line in lines {
                if let Ok(value) = HeaderValue::from_bytes(&line) {
                    headers.append(CACHE_CONTROL, value);
                }
            }
            let _ = max_age(&headers);
        }

        #[test]
        fn max_age_is_the_smallest_directive(
            lines in prop::collection::vec(prop::collection::vec((directive(), " {0,2}"), 0..5), 1..4),
        ) {
            let mut headers = HeaderMap::new();
            for line in &lines {
                let text: Vec<String> = line.iter().map(|(d, blank)| format!("{blank}{}", d.text())).collect();
                headers.append(CACHE_CONTROL, HeaderValue::from_str(&text.join(",")).unwrap());
            }
            let expected = lines.iter().flatten().filter_map(|(d, _)| d.max_age()).min();
            prop_assert_eq!(max_age(&headers), expected.map(Duration::from_secs), "{:?}", headers);
        }
    }
}
