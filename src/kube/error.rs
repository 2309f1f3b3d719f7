//! The one error type of the Kubernetes boundary: [`Error`], how API `Status` bodies and
//! transport failures map onto it, and how it is shown to a user.
//!
//! Nothing in here ever sees the bearer token; the client additionally scrubs the current
//! token out of any server-provided message before it becomes an [`Error`].

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::token::redact_text;

/// Everything that can go wrong talking to the Kubernetes API.
///
/// The variants for HTTP errors carry the server's message verbatim (the `message` field of
/// the `Status` object, or the start of the body when it is not a `Status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// 404: the object does not exist.
    NotFound(String),
    /// 404 on a create or update whose namespace does not exist (the NamespaceLifecycle
    /// admission plugin's answer: a Status with `details.kind: namespaces`).
    NamespaceNotFound {
        /// The namespace that does not exist (`details.name`).
        namespace: String,
        /// The server's message (`namespaces "X" not found`).
        message: String,
    },
    /// 409 with reason `AlreadyExists`: a create (POST) of a name that exists.
    AlreadyExists(String),
    /// 409 (any other reason): an update carried a stale `metadata.resourceVersion`.
    Conflict(String),
    /// 401: the token was missing, wrong or expired (even after re-reading the token file).
    Unauthorized(String),
    /// 403: RBAC denied the request; the message is the server's, verbatim.
    Forbidden(String),
    /// 422: the object failed validation.
    Invalid(String),
    /// 429: API priority and fairness throttled us.
    TooManyRequests {
        /// The `Retry-After` header, when the server sent one in seconds.
        retry_after: Option<Duration>,
        /// The server's message.
        message: String,
    },
    /// 410 (usually a watch `ERROR` event): the resourceVersion has been compacted.
    Gone(String),
    /// 5xx.
    Server {
        /// The HTTP status code.
        code: u16,
        /// The server's message.
        message: String,
    },
    /// Any other non-2xx status (400, 405, 415, ...).
    Http {
        /// The HTTP status code.
        code: u16,
        /// The Status object's `reason`, or the canonical reason phrase when it had none.
        reason: String,
        /// The server's message.
        message: String,
    },
    /// The request's deadline passed before it finished.
    Timeout,
    /// Connection refused or reset, name resolution, other I/O or HTTP protocol failures.
    Transport(String),
    /// The TLS handshake failed, most often because the server's certificate is not trusted.
    Tls(String),
    /// A 2xx response whose body is not what we expected.
    Decode(String),
    /// The in-cluster configuration (environment, service-account files) is unusable.
    Config(String),
}

impl Error {
    /// Whether the request may succeed if tried again on the next period without any change
    /// on our side: throttling, server errors, timeouts, transport failures and 401 (the
    /// client re-reads the token file after a 401, so a rotated token fixes it).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::TooManyRequests { .. }
                | Error::Server { .. }
                | Error::Timeout
                | Error::Transport(_)
                | Error::Unauthorized(_)
        )
    }

    /// How long the server asked us to wait before retrying (429 `Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::TooManyRequests { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status code of an API error, if this error came from an HTTP response.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Error::NotFound(_) | Error::NamespaceNotFound { .. } => Some(404),
            Error::AlreadyExists(_) | Error::Conflict(_) => Some(409),
            Error::Unauthorized(_) => Some(401),
            Error::Forbidden(_) => Some(403),
            Error::Invalid(_) => Some(422),
            Error::TooManyRequests { .. } => Some(429),
            Error::Gone(_) => Some(410),
            Error::Server { code, .. } | Error::Http { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Replaces every occurrence of `secret` in the messages this error carries.
    pub(crate) fn redact(self, secret: &str) -> Error {
        let r = |s: String| redact_text(s, secret);
        match self {
            Error::NotFound(m) => Error::NotFound(r(m)),
            Error::NamespaceNotFound { namespace, message } => Error::NamespaceNotFound {
                namespace,
                message: r(message),
            },
            Error::AlreadyExists(m) => Error::AlreadyExists(r(m)),
            Error::Conflict(m) => Error::Conflict(r(m)),
            Error::Unauthorized(m) => Error::Unauthorized(r(m)),
            Error::Forbidden(m) => Error::Forbidden(r(m)),
            Error::Invalid(m) => Error::Invalid(r(m)),
            Error::TooManyRequests {
                retry_after,
                message,
            } => Error::TooManyRequests {
                retry_after,
                message: r(message),
            },
            Error::Gone(m) => Error::Gone(r(m)),
            Error::Server { code, message } => Error::Server {
                code,
                message: r(message),
            },
            Error::Http {
                code,
                reason,
                message,
            } => Error::Http {
                code,
                reason: r(reason),
                message: r(message),
            },
            Error::Timeout => Error::Timeout,
            Error::Transport(m) => Error::Transport(r(m)),
            Error::Tls(m) => Error::Tls(r(m)),
            Error::Decode(m) => Error::Decode(r(m)),
            Error::Config(m) => Error::Config(r(m)),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(m) => write!(f, "not found (HTTP 404): {m}"),
            Error::NamespaceNotFound { namespace, message } => write!(
                f,
                "the namespace {namespace:?} does not exist (HTTP 404: {message})"
            ),
            Error::AlreadyExists(m) => write!(f, "already exists (HTTP 409): {m}"),
            Error::Conflict(m) => write!(f, "conflict (HTTP 409): {m}"),
            Error::Unauthorized(m) => write!(
                f,
                "the API server rejected the service-account token (HTTP 401: {m}); \
                 check that the token file is current and the service account still exists"
            ),
            Error::Forbidden(m) => write!(
                f,
                "permission denied (HTTP 403): {m}; grant the pod's service account this \
                 permission with a Role and RoleBinding"
            ),
            Error::Invalid(m) => write!(f, "the API server rejected the object (HTTP 422): {m}"),
            Error::TooManyRequests {
                retry_after,
                message,
            } => {
                write!(f, "the API server is throttling requests (HTTP 429")?;
                if let Some(d) = retry_after {
                    write!(f, ", retry after {}s", d.as_secs())?;
                }
                write!(f, "): {message}")
            }
            Error::Gone(m) => write!(f, "resource version too old (HTTP 410): {m}"),
            Error::Server { code, message } => {
                write!(f, "the API server failed (HTTP {code}): {message}")
            }
            Error::Http {
                code,
                reason,
                message,
            } => write!(
                f,
                "unexpected API response (HTTP {code} {reason}): {message}"
            ),
            Error::Timeout => write!(
                f,
                "the API request did not finish before its deadline (server slow or unreachable)"
            ),
            Error::Transport(m) => write!(f, "cannot talk to the Kubernetes API server: {m}"),
            Error::Tls(m) => write!(f, "TLS failure talking to the Kubernetes API server: {m}"),
            Error::Decode(m) => {
                write!(f, "unexpected response from the Kubernetes API server: {m}")
            }
            Error::Config(m) => write!(f, "in-cluster configuration: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// The fields of a `meta/v1 Status` object we care about.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Status {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub code: Option<u16>,
    #[serde(default)]
    pub details: Option<StatusDetails>,
}

/// `Status.details`: which object an error is about.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct StatusDetails {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
}

impl Status {
    /// The namespace a 404 is about, when it is the namespace itself that is missing
    /// (`details: {kind: "namespaces", name: X}` in the core group).
    fn missing_namespace(&self) -> Option<&str> {
        let d = self.details.as_ref()?;
        let core = d.group.as_deref().unwrap_or("").is_empty();
        (core && d.kind.as_deref() == Some("namespaces"))
            .then(|| d.name.as_deref().filter(|n| !n.is_empty()))
            .flatten()
    }
}

/// Largest part of a non-`Status` error body quoted in a message.
const MAX_QUOTED_BODY: usize = 200;

/// The message of an error body: the `Status` message when the body is one, otherwise the
/// first line of the body (shortened), otherwise the canonical reason phrase.
fn body_message(status: &Status, body: &[u8], code: u16) -> String {
    if let Some(m) = status.message.as_deref().filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    if let Some(r) = status.reason.as_deref().filter(|r| !r.is_empty()) {
        return r.to_string();
    }
    let text = String::from_utf8_lossy(body);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    match line {
        Some(l) => {
            let mut s: String = l.chars().take(MAX_QUOTED_BODY).collect();
            if s.len() < l.len() {
                s.push_str("...");
            }
            s
        }
        None => canonical_reason(code).to_string(),
    }
}

/// Maps an error response (status code, body, `Retry-After` header) to an [`Error`].
pub fn from_response(code: u16, body: &[u8], retry_after: Option<Duration>) -> Error {
    let status: Status = serde_json::from_slice(body).unwrap_or_default();
    from_status(code, &status, body, retry_after)
}

/// Maps a decoded `Status` (from a response or a watch `ERROR` event) to an [`Error`].
/// The HTTP code wins; `reason` only splits 409 into AlreadyExists and Conflict and names
/// codes we do not know.
pub(crate) fn from_status(
    code: u16,
    status: &Status,
    body: &[u8],
    retry_after: Option<Duration>,
) -> Error {
    let message = body_message(status, body, code);
    let reason = status.reason.as_deref().unwrap_or("");
    match code {
        401 => Error::Unauthorized(message),
        403 => Error::Forbidden(message),
        404 => match status.missing_namespace() {
            Some(ns) => Error::NamespaceNotFound {
                namespace: ns.to_string(),
                message,
            },
            None => Error::NotFound(message),
        },
        409 if reason == "AlreadyExists" => Error::AlreadyExists(message),
        409 => Error::Conflict(message),
        410 => Error::Gone(message),
        422 => Error::Invalid(message),
        429 => Error::TooManyRequests {
            retry_after,
            message,
        },
        500..=599 => Error::Server { code, message },
        _ => Error::Http {
            code,
            reason: if reason.is_empty() {
                canonical_reason(code).to_string()
            } else {
                reason.to_string()
            },
            message,
        },
    }
}

/// Longest `Retry-After` we honour: a larger value (or a hostile one that would overflow a
/// deadline) is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Parses a `Retry-After` header given in seconds (what the API server sends), at most
/// `MAX_RETRY_AFTER` (ten minutes). HTTP dates are not supported and yield `None`.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs = value.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

fn canonical_reason(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        410 => "Gone",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unexpected Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_body(code: u16, reason: &str, message: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code
        }))
        .unwrap()
    }

    #[test]
    fn huge_retry_after_is_capped() {
        assert_eq!(
            parse_retry_after("18446744073709551615"),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
    }

    #[test]
    fn maps_status_codes_and_reasons() {
        let nf = from_response(
            404,
            &status_body(
                404,
                "NotFound",
                r#"leases.coordination.k8s.io "x" not found"#,
            ),
            None,
        );
        assert_eq!(
            nf,
            Error::NotFound(r#"leases.coordination.k8s.io "x" not found"#.into())
        );
        // NamespaceLifecycle's answer to a create in a missing namespace.
        let body = serde_json::to_vec(&serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "namespaces \"nope\" not found", "reason": "NotFound",
            "details": {"name": "nope", "kind": "namespaces"}, "code": 404
        }))
        .unwrap();
        assert_eq!(
            from_response(404, &body, None),
            Error::NamespaceNotFound {
                namespace: "nope".into(),
                message: r#"namespaces "nope" not found"#.into()
            }
        );
        assert!(matches!(
            from_response(409, &status_body(409, "AlreadyExists", "exists"), None),
            Error::AlreadyExists(m) if m == "exists"
        ));
        assert!(matches!(
            from_response(409, &status_body(409, "Conflict", "modified"), None),
            Error::Conflict(m) if m == "modified"
        ));
        assert!(matches!(
            from_response(401, &status_body(401, "Unauthorized", "Unauthorized"), None),
            Error::Unauthorized(_)
        ));
        assert!(matches!(
            from_response(422, &status_body(422, "Invalid", "bad"), None),
            Error::Invalid(_)
        ));
        assert!(matches!(
            from_response(410, &status_body(410, "Expired", "too old"), None),
            Error::Gone(_)
        ));
        assert_eq!(
            from_response(
                503,
                &status_body(503, "ServiceUnavailable", "try later"),
                None
            ),
            Error::Server {
                code: 503,
                message: "try later".into()
            }
        );
        assert_eq!(
            from_response(
                415,
                &status_body(415, "UnsupportedMediaType", "no content type"),
                None
            ),
            Error::Http {
                code: 415,
                reason: "UnsupportedMediaType".into(),
                message: "no content type".into()
            }
        );
        let tmr = from_response(
            429,
            &status_body(429, "TooManyRequests", "slow down"),
            Some(Duration::from_secs(3)),
        );
        assert_eq!(tmr.retry_after(), Some(Duration::from_secs(3)));
        assert!(tmr.is_transient());
        assert_eq!(tmr.status_code(), Some(429));
    }

    #[test]
    fn forbidden_keeps_rbac_message_verbatim() {
        let msg = r#"leases.coordination.k8s.io "x" is forbidden: User "system:serviceaccount:ns:sa" cannot update resource "leases" in API group "coordination.k8s.io" in the namespace "ns""#;
        let e = from_response(403, &status_body(403, "Forbidden", msg), None);
        assert_eq!(e, Error::Forbidden(msg.into()));
        assert!(e.to_string().contains(msg));
        assert!(!e.is_transient());
    }

    #[test]
    fn non_status_bodies_are_quoted_or_named() {
        let e = from_response(502, b"<html>\n  Bad gateway from proxy\n</html>", None);
        assert_eq!(
            e,
            Error::Server {
                code: 502,
                message: "<html>".into()
            }
        );
        let e = from_response(400, b"", None);
        assert_eq!(
            e,
            Error::Http {
                code: 400,
                reason: "Bad Request".into(),
                message: "Bad Request".into()
            }
        );
        let long = "x".repeat(1000);
        match from_response(500, long.as_bytes(), None) {
            Error::Server { message, .. } => assert!(message.len() <= MAX_QUOTED_BODY + 3),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn retry_after_parsing() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 1 "), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn transient_classification() {
        assert!(Error::Timeout.is_transient());
        assert!(Error::Transport("reset".into()).is_transient());
        assert!(Error::Server {
            code: 500,
            message: String::new()
        }
        .is_transient());
        assert!(Error::Unauthorized(String::new()).is_transient());
        assert!(!Error::Conflict(String::new()).is_transient());
        assert!(!Error::Tls(String::new()).is_transient());
        assert!(!Error::Config(String::new()).is_transient());
        assert!(!Error::Forbidden(String::new()).is_transient());
    }

    #[test]
    fn redact_scrubs_secret_everywhere() {
        let e = Error::Http {
            code: 400,
            reason: "BadRequest secret-tok".into(),
            message: "token secret-tok is odd".into(),
        }
        .redact("secret-tok");
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("secret-tok"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn display_is_one_line() {
        for e in [
            Error::Timeout,
            Error::Tls("certificate unknown".into()),
            Error::Unauthorized("Unauthorized".into()),
            Error::TooManyRequests {
                retry_after: Some(Duration::from_secs(2)),
                message: "m".into(),
            },
        ] {
            assert!(!e.to_string().contains('\n'));
        }
    }
}
