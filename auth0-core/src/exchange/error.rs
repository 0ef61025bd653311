//! [`ExchangeError`]: why a token exchange failed, with the reference SDK's codes and statuses.

use std::borrow::Cow;

/// Longest endpoint `error_description` passed through, in bytes.
const MAX_DESCRIPTION: usize = 256;
/// Longest endpoint `error` code passed through, in bytes.
const MAX_CODE: usize = 64;

/// Why a token exchange failed.
///
/// Every variant has an HTTP status, an `error` code and a description ([`ExchangeError::status`],
/// [`ExchangeError::code`], [`ExchangeError::description`]); as an Actix `ResponseError` it answers
/// `{"detail": {"error": …, "error_description": …}}` with that status, so `?` in a handler does
/// the right thing.
///
/// | variant | status | `error` |
/// |---|---|---|
/// | [`MissingArgument`](Self::MissingArgument) | 400 | `invalid_request` |
/// | [`InvalidRequest`](Self::InvalidRequest), [`NotConfigured`](Self::NotConfigured) | 400 | `get_access_token_for_connection_error` (Token Vault) or `get_token_by_exchange_profile_error` |
/// | [`Endpoint`](Self::Endpoint) | the endpoint's (4xx/5xx) | the endpoint's |
/// | [`ClientRejected`](Self::ClientRejected) | 502 | `invalid_client` |
/// | [`Timeout`](Self::Timeout) | 504 | `timeout_error` |
/// | [`Network`](Self::Network) | 502 | `network_error` |
/// | [`InvalidJson`](Self::InvalidJson) | 502 | `invalid_json` |
/// | [`InvalidResponse`](Self::InvalidResponse) | 502 | `invalid_response` |
/// | [`Internal`](Self::Internal) | 500 | `internal_server_error` |
///
/// Descriptions come from a fixed vocabulary, except the token endpoint's own `error_description`,
/// passed through (capped at 256 bytes; JSON-escaped in the body, never put in a header). No
/// variant ever holds a secret (client secret, assertion key, token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// A required input is missing or empty: 400 `invalid_request`.
    #[error("the argument `{argument}` is required")]
    MissingArgument {
        /// The reference SDK's name of the argument (`connection`, `access_token`,
        /// `subject_token`, `subject_token_type`, `audience`).
        argument: &'static str,
    },
    /// An input breaks a rule (whitespace around the subject token, a `Bearer ` prefix, a subject
    /// or actor JWT whose `exp` has passed, a `scope` outside RFC 6749 syntax, a reserved `extra`
    /// parameter, a list over 20 values, …): 400 with the flow's code.
    #[error("{description}")]
    InvalidRequest {
        /// `get_access_token_for_connection_error` or `get_token_by_exchange_profile_error`.
        code: &'static str,
        /// Which rule, in words.
        description: &'static str,
    },
    /// No client credentials are configured (`AUTH0_CLIENT_ID` with `AUTH0_CLIENT_SECRET` or
    /// `AUTH0_CLIENT_ASSERTION_KEY`): 400 with the flow's code, as in the reference SDK.
    #[error(
        "token exchange needs client credentials: set AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET or AUTH0_CLIENT_ASSERTION_KEY"
    )]
    NotConfigured {
        /// `get_access_token_for_connection_error` or `get_token_by_exchange_profile_error`.
        code: &'static str,
    },
    /// The token endpoint refused the exchange: its status (4xx or 5xx; 502 for anything else),
    /// `error` and `error_description`, passed through.
    #[error("the token endpoint answered {status} `{error}`")]
    Endpoint {
        /// The endpoint's HTTP status.
        status: u16,
        /// The endpoint's `error`, or `connection_token_error` / `token_exchange_error` when it
        /// sent none.
        error: String,
        /// The endpoint's `error_description`, capped.
        description: Option<String>,
    },
    /// The token endpoint refused this API's own client authentication (401, or `invalid_client`):
    /// a misconfiguration of the API, not the caller's fault, so 502 `invalid_client`.
    #[error("the token endpoint refused the client authentication ({status} `{error}`)")]
    ClientRejected {
        /// The endpoint's HTTP status.
        status: u16,
        /// The endpoint's `error`.
        error: String,
    },
    /// The token endpoint (or its discovery document) did not answer in time: 504 `timeout_error`.
    #[error("the token endpoint did not answer in time")]
    Timeout,
    /// The token endpoint (or its discovery document) could not be reached: 502 `network_error`.
    #[error("the token endpoint cannot be reached")]
    Network,
    /// The token endpoint answered 2xx with a body that is not JSON: 502 `invalid_json`.
    #[error("the token endpoint answered with invalid JSON")]
    InvalidJson,
    /// The token endpoint's answer (or discovery document) is unusable: no non-empty string
    /// `access_token`, a bad `expires_in`, an oversized body, no `token_endpoint`: 502
    /// `invalid_response`.
    #[error("invalid response: {0}")]
    InvalidResponse(&'static str),
    /// A fault of this library: 500 `internal_server_error`.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl ExchangeError {
    /// The HTTP status of the answer.
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingArgument { .. } | Self::InvalidRequest { .. } | Self::NotConfigured { .. } => 400,
            Self::Endpoint { status, .. } => *status,
            Self::ClientRejected { .. } | Self::Network | Self::InvalidJson | Self::InvalidResponse(_) => 502,
            Self::Timeout => 504,
            Self::Internal(_) => 500,
        }
    }

    /// The `error` code of the body.
    pub fn code(&self) -> &str {
        match self {
            Self::MissingArgument { .. } => "invalid_request",
            Self::InvalidRequest { code, .. } | Self::NotConfigured { code } => code,
            Self::Endpoint { error, .. } => error,
            Self::ClientRejected { .. } => "invalid_client",
            Self::Timeout => "timeout_error",
            Self::Network => "network_error",
            Self::InvalidJson => "invalid_json",
            Self::InvalidResponse(_) => "invalid_response",
            Self::Internal(_) => "internal_server_error",
        }
    }

    /// The `error_description` of the body: a sentence for people, from a fixed vocabulary, or
    /// the token endpoint's own description.
    pub fn description(&self) -> Cow<'_, str> {
        match self {
            Self::MissingArgument { argument } => Cow::Owned(format!(
                "the argument '{argument}' is required but was not provided"
            )),
            Self::InvalidRequest { description, .. } => Cow::Borrowed(description),
            Self::NotConfigured { .. } => Cow::Borrowed("token exchange is not configured for this API"),
            Self::Endpoint {
                description: Some(description),
                ..
            } => Cow::Borrowed(description),
            Self::Endpoint { status, .. } => {
                Cow::Owned(format!("the token endpoint refused the exchange (HTTP {status})"))
            }
            Self::ClientRejected { .. } => {
                Cow::Borrowed("the authorization server refused this API's client credentials")
            }
            Self::Timeout => Cow::Borrowed("the token endpoint did not answer in time"),
            Self::Network => Cow::Borrowed("the token endpoint cannot be reached"),
            Self::InvalidJson => Cow::Borrowed("the token endpoint returned invalid JSON"),
            Self::InvalidResponse(description) => Cow::Borrowed(description),
            Self::Internal(_) => Cow::Borrowed("the token exchange failed"),
        }
    }
}

/// The endpoint's `error`, if it is a plausible RFC 6749 §5.2 code (printable ASCII except `"` and
/// `\`, bounded).
pub(crate) fn endpoint_code(code: &str) -> Option<String> {
    let ok = !code.is_empty()
        && code.len() <= MAX_CODE
        && code
            .bytes()
            .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E));
    ok.then(|| code.to_owned())
}

/// The endpoint's `error_description`, without control characters and capped at a character
/// boundary.
pub(crate) fn endpoint_description(description: &str) -> Option<String> {
    let mut out = String::with_capacity(description.len().min(MAX_DESCRIPTION));
    for c in description.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_DESCRIPTION {
            break;
        }
        out.push(c);
    }
    let out = out.trim();
    (!out.is_empty()).then(|| out.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        let cases = [
            (
                ExchangeError::MissingArgument {
                    argument: "connection",
                },
                400,
                "invalid_request",
            ),
            (ExchangeError::Timeout, 504, "timeout_error"),
            (ExchangeError::Network, 502, "network_error"),
            (ExchangeError::InvalidJson, 502, "invalid_json"),
            (ExchangeError::InvalidResponse("x"), 502, "invalid_response"),
            (
                ExchangeError::ClientRejected {
                    status: 401,
                    error: "access_denied".into(),
                },
                502,
                "invalid_client",
            ),
            (
                ExchangeError::Endpoint {
                    status: 403,
                    error: "access_denied".into(),
                    description: None,
                },
                403,
                "access_denied",
            ),
        ];
        for (error, status, code) in cases {
            assert_eq!((error.status(), error.code()), (status, code), "{error:?}");
            assert!(!error.description().is_empty());
            let message = error.to_string();
            assert!(
                !message.ends_with('.') && message.starts_with(char::is_lowercase),
                "{message}"
            );
        }
    }

    #[test]
    fn endpoint_text_is_sanitised() {
        assert_eq!(endpoint_code("invalid_grant").as_deref(), Some("invalid_grant"));
        assert_eq!(endpoint_code("bad\"code"), None);
        assert_eq!(endpoint_code(""), None);
        assert_eq!(endpoint_code(&"x".repeat(65)), None);
        assert_eq!(
            endpoint_description("line\r\nbreak\u{0}").as_deref(),
            Some("linebreak")
        );
        let long = "é".repeat(200);
        let capped = endpoint_description(&long).unwrap_or_default();
        assert!(capped.len() <= MAX_DESCRIPTION && capped.chars().all(|c| c == 'é'));
        assert_eq!(endpoint_description("  \n "), None);
    }
}
