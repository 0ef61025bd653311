//! What a request becomes before any I/O: validated (the reference SDK's rules), its form fields,
//! its flow, and its cache key.

use aws_lc_rs::digest;

use super::*;

/// Which flow a validated request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Connection,
    Exchange,
    OnBehalfOf,
}

impl Flow {
    /// The code of this flow's validation errors.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Self::Connection => CONNECTION_CODE,
            Self::Exchange | Self::OnBehalfOf => EXCHANGE_CODE,
        }
    }

    /// The `error` reported when the endpoint refuses without one of its own.
    pub(crate) fn default_endpoint_code(self) -> &'static str {
        match self {
            Self::Connection => "connection_token_error",
            Self::Exchange | Self::OnBehalfOf => "token_exchange_error",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Self::Connection => "connection",
            Self::Exchange => "exchange",
            Self::OnBehalfOf => "on-behalf-of",
        }
    }
}

/// A checked request: its form fields in the reference SDK's order (client authentication added
/// by the sender), its cache key, and whether to bypass the cache.
#[derive(Clone)]
pub(crate) struct Prepared {
    pub(crate) flow: Flow,
    /// Form fields, in order; `client_id` is filled by the sender where it belongs.
    pub(crate) fields: Vec<(&'static str, FieldValue)>,
    pub(crate) extra: Vec<(String, String)>,
    pub(crate) key: [u8; 32],
    pub(crate) force_refresh: bool,
    /// The subject token's `exp`, when it is a JWT that has one.
    subject_exp: Option<i64>,
    /// The actor token's `exp`, when there is one and it is a JWT that has one.
    actor_exp: Option<i64>,
}

impl Prepared {
    /// Refuses a subject or actor token that has expired by `now`, before the cache or the
    /// endpoint is asked: a cached answer must not outlive the token it was issued for, and the
    /// endpoint would refuse it anyway. 400 with the flow's code, as the other subject token rules.
    pub(crate) fn check_expiry(&self, now: i64) -> Result<(), ExchangeError> {
        let code = self.flow.code();
        if self.subject_exp.is_some_and(|exp| exp <= now) {
            return Err(ExchangeError::InvalidRequest {
                code,
                description: "subject_token has expired",
            });
        }
        if self.actor_exp.is_some_and(|exp| exp <= now) {
            return Err(ExchangeError::InvalidRequest {
                code,
                description: "actor_token has expired",
            });
        }
        Ok(())
    }

    /// The last second an answer may be reused: the earliest `exp` of the subject and actor
    /// tokens, if they are JWTs that have one.
    pub(crate) fn not_after(&self) -> Option<i64> {
        match (self.subject_exp, self.actor_exp) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("flow", &self.flow)
            .field("force_refresh", &self.force_refresh)
            .finish_non_exhaustive()
    }
}

/// The value of a named form field.
#[derive(Clone)]
pub(crate) enum FieldValue {
    Text(String),
    Static(&'static str),
    Token(Arc<str>),
    /// The configured client id, filled by the sender.
    ClientId,
}

/// Digest of every input that changes the answer, in an unambiguous encoding.
struct KeyHasher(digest::Context);

impl KeyHasher {
    fn new(flow: Flow) -> Self {
        let mut hasher = Self(digest::Context::new(&digest::SHA256));
        hasher.part(flow.tag());
        hasher
    }

    /// A length-prefixed part.
    fn part(&mut self, value: &str) {
        self.0.update(&(value.len() as u64).to_be_bytes());
        self.0.update(value.as_bytes());
    }

    fn optional(&mut self, value: Option<&str>) {
        match value {
            Some(v) => {
                self.0.update(&[1]);
                self.part(v);
            }
            None => self.0.update(&[0]),
        }
    }

    /// A token, by its own SHA-256.
    fn token(&mut self, token: &str) {
        let d = digest::digest(&digest::SHA256, token.as_bytes());
        self.0.update(d.as_ref());
    }

    fn finish(self) -> [u8; 32] {
        let mut out = [0; 32];
        out.copy_from_slice(self.0.finish().as_ref());
        out
    }
}

/// A value that counts only when not empty (the reference SDK sends falsy values not at all).
fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// A `scope` as sent and as keyed: its scope tokens sorted, without duplicates, joined by single
/// spaces (RFC 6749 §3.3: the order of the tokens does not matter). `None` when it holds no token.
///
/// Only RFC 6749 scope syntax is accepted: scope tokens of printable ASCII except `"` and `\\`,
/// separated by spaces. Any other character (a tab, a line break, non-ASCII) is refused rather than
/// read as a separator, so what is sent is exactly what the cache key holds.
fn normalize_scope(scope: Option<&str>, code: &'static str) -> Result<Option<String>, ExchangeError> {
    let Some(scope) = scope else {
        return Ok(None);
    };
    if !scope
        .bytes()
        .all(|b| matches!(b, b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
    {
        return Err(ExchangeError::InvalidRequest {
            code,
            description: "scope must be scope tokens separated by spaces (printable ASCII except '\"' and '\\')",
        });
    }
    let mut scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    scopes.sort_unstable();
    scopes.dedup();
    Ok((!scopes.is_empty()).then(|| scopes.join(" ")))
}

/// The `exp` of a token shaped like a compact JWS (three base64url segments, the second a JSON
/// object), read without verifying anything; `None` for an opaque token or one without a numeric
/// `exp`. Used only to stop reusing (and sending) a token that has expired, never to trust one.
pub(super) fn unverified_exp(token: &str) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Exp {
        exp: Option<f64>,
    }
    let mut segments = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (segments.next(), segments.next(), segments.next(), segments.next())
    else {
        return None;
    };
    let payload = crate::jws::decode(payload).ok()?;
    // A derived struct would also accept a JSON array.
    if payload.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let exp = serde_json::from_slice::<Exp>(&payload).ok()?.exp?;
    // `as` saturates; a fractional NumericDate is floored (at worst a second early).
    exp.is_finite().then(|| exp.floor() as i64)
}

/// The reference SDK's checks of a subject token: not blank, no surrounding whitespace, no
/// `Bearer ` prefix.
fn check_subject_token(token: &str, code: &'static str) -> Result<(), ExchangeError> {
    let invalid = |description| ExchangeError::InvalidRequest { code, description };
    if token.trim().is_empty() {
        return Err(invalid("subject_token cannot be blank or whitespace"));
    }
    if token.trim() != token {
        return Err(invalid(
            "subject_token must not include leading or trailing whitespace",
        ));
    }
    if token.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("bearer ")) {
        return Err(invalid(
            "subject_token must not include the 'Bearer ' prefix (case-insensitive check)",
        ));
    }
    Ok(())
}

impl ConnectionTokenRequest {
    pub(crate) fn prepare(&self) -> Result<Prepared, ExchangeError> {
        let flow = Flow::Connection;
        if self.connection.is_empty() {
            return Err(ExchangeError::MissingArgument {
                argument: "connection",
            });
        }
        let token = &self.subject_token.0;
        if token.is_empty() {
            return Err(ExchangeError::MissingArgument {
                argument: "access_token",
            });
        }
        check_subject_token(token, flow.code())?;
        let login_hint = present(&self.login_hint);
        let mut fields = vec![
            ("connection", FieldValue::Text(self.connection.clone())),
            ("requested_token_type", FieldValue::Static(FEDERATED_TOKEN_TYPE)),
            ("grant_type", FieldValue::Static(GRANT_FEDERATED)),
            ("client_id", FieldValue::ClientId),
            ("subject_token", FieldValue::Token(Arc::clone(token))),
            ("subject_token_type", FieldValue::Static(ACCESS_TOKEN_TYPE)),
        ];
        if let Some(hint) = login_hint {
            fields.push(("login_hint", FieldValue::Text(hint.to_owned())));
        }
        let mut key = KeyHasher::new(flow);
        key.token(token);
        key.part(&self.connection);
        key.optional(login_hint);
        Ok(Prepared {
            flow,
            fields,
            extra: Vec::new(),
            key: key.finish(),
            force_refresh: self.force_refresh,
            subject_exp: unverified_exp(token),
            actor_exp: None,
        })
    }
}

impl TokenExchangeRequest {
    pub(crate) fn prepare(&self, flow: Flow) -> Result<Prepared, ExchangeError> {
        let code = flow.code();
        let token = &self.subject_token.0;
        if token.is_empty() {
            return Err(ExchangeError::MissingArgument {
                argument: "subject_token",
            });
        }
        if self.subject_token_type.is_empty() {
            return Err(ExchangeError::MissingArgument {
                argument: "subject_token_type",
            });
        }
        check_subject_token(token, code)?;
        let invalid = |description| ExchangeError::InvalidRequest { code, description };
        if let Some((actor, actor_type)) = &self.actor {
            if actor.0.trim().is_empty() || actor.0.trim() != &*actor.0 {
                return Err(invalid(
                    "actor_token cannot be blank or include leading or trailing whitespace",
                ));
            }
            if actor_type.is_empty() {
                return Err(invalid("actor_token_type is required with actor_token"));
            }
        }
        let mut extra = Vec::new();
        for (name, value) in &self.extra {
            if RESERVED_PARAMETERS.iter().any(|r| r.eq_ignore_ascii_case(name)) {
                return Err(invalid(
                    "an extra parameter uses a reserved name and cannot be overridden",
                ));
            }
            match &value.0 {
                ExtraKind::One(v) => extra.push((name.clone(), v.clone())),
                ExtraKind::Many(values) if values.len() > MAX_EXTRA_VALUES => {
                    return Err(invalid("an extra parameter exceeds the maximum of 20 values"));
                }
                ExtraKind::Many(values) => extra.extend(values.iter().map(|v| (name.clone(), v.clone()))),
                ExtraKind::Unsupported => {
                    return Err(invalid(
                        "an extra parameter has an unsupported value: only strings, numbers, booleans and lists of them are allowed",
                    ));
                }
            }
        }
        let audience = present(&self.audience);
        let scope = normalize_scope(present(&self.scope), code)?;
        let requested = present(&self.requested_token_type);
        let organization = present(&self.organization);
        let mut fields = vec![
            ("grant_type", FieldValue::Static(GRANT_TOKEN_EXCHANGE)),
            ("subject_token", FieldValue::Token(Arc::clone(token))),
            (
                "subject_token_type",
                FieldValue::Text(self.subject_token_type.clone()),
            ),
        ];
        let mut push = |name, value: Option<&str>| {
            if let Some(v) = value {
                fields.push((name, FieldValue::Text(v.to_owned())));
            }
        };
        push("audience", audience);
        push("scope", scope.as_deref());
        push("requested_token_type", requested);
        push("organization", organization);
        if let Some((actor, actor_type)) = &self.actor {
            fields.push(("actor_token", FieldValue::Token(Arc::clone(&actor.0))));
            fields.push(("actor_token_type", FieldValue::Text(actor_type.clone())));
        }

        let mut key = KeyHasher::new(flow);
        key.token(token);
        key.part(&self.subject_token_type);
        key.optional(audience);
        key.optional(scope.as_deref());
        key.optional(requested);
        key.optional(organization);
        match &self.actor {
            Some((actor, actor_type)) => {
                key.0.update(&[1]);
                key.token(&actor.0);
                key.part(actor_type);
            }
            None => key.0.update(&[0]),
        }
        let mut sorted: Vec<&(String, String)> = extra.iter().collect();
        // Stable: the values of one name keep their order.
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        key.0.update(&(sorted.len() as u64).to_be_bytes());
        for (name, value) in sorted {
            key.part(name);
            key.part(value);
        }
        Ok(Prepared {
            flow,
            fields,
            extra,
            key: key.finish(),
            force_refresh: self.force_refresh,
            subject_exp: unverified_exp(token),
            actor_exp: self
                .actor
                .as_ref()
                .and_then(|(actor, _)| unverified_exp(&actor.0)),
        })
    }
}

impl OnBehalfOfRequest {
    pub(crate) fn prepare(&self) -> Result<Prepared, ExchangeError> {
        if self.audience.is_empty() {
            return Err(ExchangeError::MissingArgument { argument: "audience" });
        }
        TokenExchangeRequest::from(self.clone()).prepare(Flow::OnBehalfOf)
    }
}
