//! The blocking REST client: one ureq agent (connection reuse) trusting only the cluster CA,
//! JSON get/create/replace/delete/list and line-delimited watch streams, each bounded by an
//! absolute deadline; the rotating bearer token (re-read and retried once after a 401);
//! `Status` bodies mapped to [`Error`]; server `Warning` headers logged once each; our token
//! scrubbed out of every error and warning ([`Client::redact`]). Bodies are read within the
//! size bound of `json` and decoded through its bounded first pass. Paths and queries are
//! built in `paths`, watch streams read in `watch`, `Warning` headers parsed in `warnings`.

use std::collections::HashSet;
use std::fmt;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::http::{self, Method, Response};
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use ureq::{Agent, Body};

use super::error::{self, Error};
use super::incluster::InClusterConfig;
use super::json::{self, MAX_BODY};
use super::paths::{list_query, normalize_path, query_string, ListParams};
use super::tls;
use super::token::{self, redact_text, Token, TokenSource, REFRESH_INTERVAL};
use super::warnings::new_warnings;
use super::watch::WatchStream;

/// Our `User-Agent`: the program and its version.
const USER_AGENT: &str = concat!("k8s-await-election/", env!("CARGO_PKG_VERSION"));
/// Largest error body we read (the rest is discarded, and so is the connection).
const MAX_ERROR_BODY: u64 = 64 * 1024;
/// A blocking client for the Kubernetes API. Cheap to clone (clones share the connection
/// pool and the token); usable from several threads.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    agent: Agent,
    base_url: String,
    ca_path: PathBuf,
    token: TokenSource,
    warnings: Mutex<HashSet<String>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url)
            .field("ca_path", &self.inner.ca_path)
            .field("token", &self.inner.token)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the API server and credentials of `cfg`.
    pub fn new(cfg: InClusterConfig) -> Result<Client, Error> {
        Self::with_token_refresh(cfg, REFRESH_INTERVAL)
    }

    /// Like [`new`](Self::new) with a different token re-read interval (for tests).
    #[doc(hidden)]
    pub fn with_token_refresh(cfg: InClusterConfig, refresh: Duration) -> Result<Client, Error> {
        let config = Agent::config_builder()
            .tls_config(tls::tls_config(&cfg.ca_certs))
            .https_only(true)
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(USER_AGENT)
            .accept("application/json")
            .build();
        let agent = Agent::with_parts(config, DefaultConnector::default(), IpLiteral);
        Ok(Client {
            inner: Arc::new(Inner {
                agent,
                base_url: cfg.base_url,
                ca_path: cfg.ca_path,
                token: TokenSource::new(cfg.token_path, cfg.token, refresh),
                warnings: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// `https://host:port` of the API server.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// GETs the object at `path` (e.g. [`lease_path`](super::lease_path)).
    pub fn get<T: DeserializeOwned>(&self, path: &str, deadline: Instant) -> Result<T, Error> {
        let resp = self.execute(Method::GET, path, "", None, deadline)?;
        self.read_json(resp, deadline)
    }

    /// POSTs `body` to `collection_path`, returning the created object.
    pub fn create<B: Serialize, T: DeserializeOwned>(
        &self,
        collection_path: &str,
        body: &B,
        deadline: Instant,
    ) -> Result<T, Error> {
        let bytes = encode(body)?;
        let resp = self.execute(Method::POST, collection_path, "", Some(bytes), deadline)?;
        self.read_json(resp, deadline)
    }

    /// PUTs `body` to `path`, returning the stored object.
    pub fn replace<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        deadline: Instant,
    ) -> Result<T, Error> {
        let bytes = encode(body)?;
        let resp = self.execute(Method::PUT, path, "", Some(bytes), deadline)?;
        self.read_json(resp, deadline)
    }

    /// DELETEs the object at `path`. The response body (a Status or the deleted object) is
    /// read (up to the body size bound) and ignored.
    pub fn delete(&self, path: &str, deadline: Instant) -> Result<(), Error> {
        let resp = self.execute(Method::DELETE, path, "", None, deadline)?;
        self.discard(resp, deadline)
    }

    /// POSTs `body` to `collection_path` when the created object is of no interest (an
    /// Event): the answer is read and ignored.
    pub fn post(&self, collection_path: &str, body: &[u8], deadline: Instant) -> Result<(), Error> {
        let resp = self.execute(
            Method::POST,
            collection_path,
            "",
            Some(body.to_vec()),
            deadline,
        )?;
        self.discard(resp, deadline)
    }

    /// Reads a successful answer's body to its end (bounded) and drops it.
    fn discard(&self, mut resp: Response<Body>, deadline: Instant) -> Result<(), Error> {
        let mut reader = resp.body_mut().with_config().limit(MAX_BODY).reader();
        io::copy(&mut reader, &mut io::sink()).map_err(|e| self.map_io(e, deadline))?;
        Ok(())
    }

    /// Lists `collection_path` with `params`; `T` is the list type (or `serde_json::Value`).
    pub fn list<T: DeserializeOwned>(
        &self,
        collection_path: &str,
        params: &ListParams,
        deadline: Instant,
    ) -> Result<T, Error> {
        let query = query_string(&list_query(params));
        let resp = self.execute(Method::GET, collection_path, &query, None, deadline)?;
        self.read_json(resp, deadline)
    }

    /// Starts a watch: `GET collection?watch=1&resourceVersion=..&fieldSelector=..
    /// &labelSelector=..&timeoutSeconds=..&allowWatchBookmarks=true`. An empty
    /// `resource_version` is left out (the server then starts with synthetic ADDED events).
    ///
    /// The stream ends (`None`) when the server closes it; reading past `deadline` yields
    /// `Err(Error::Timeout)`. After any `Err` the stream yields `None`.
    pub fn watch<T: DeserializeOwned>(
        &self,
        collection_path: &str,
        params: &ListParams,
        resource_version: &str,
        timeout_seconds: u32,
        deadline: Instant,
    ) -> Result<WatchStream<T>, Error> {
        let mut q = vec![("watch", "1".to_string())];
        if !resource_version.is_empty() {
            q.push(("resourceVersion", resource_version.to_string()));
        }
        q.extend(list_query(params));
        q.push(("timeoutSeconds", timeout_seconds.to_string()));
        q.push(("allowWatchBookmarks", "true".to_string()));
        let query = query_string(&q);
        let resp = self.execute(Method::GET, collection_path, &query, None, deadline)?;
        // Each line is bounded by `watch`; the stream as a whole only by its deadline.
        let reader = resp.into_body().into_with_config().limit(u64::MAX).reader();
        Ok(WatchStream::new(
            reader,
            deadline,
            collection_path.to_string(),
            self.clone(),
        ))
    }

    /// Sends one request (retrying once after a 401 if the token file changed) and returns
    /// the 2xx response with its body unread; any other status becomes an [`Error`].
    fn execute(
        &self,
        method: Method,
        path: &str,
        query: &str,
        body: Option<Vec<u8>>,
        deadline: Instant,
    ) -> Result<Response<Body>, Error> {
        let url = format!("{}{}{}", self.inner.base_url, normalize_path(path), query);
        let mut token = self.inner.token.current();
        let mut retried_401 = false;
        loop {
            let started = Instant::now();
            let remaining = deadline
                .checked_duration_since(started)
                .filter(|d| !d.is_zero())
                .ok_or(Error::Timeout)?;
            let result = self.send_once(&method, &url, body.as_deref(), &token, remaining);
            let mut resp = match result {
                Ok(r) => r,
                Err(e) => {
                    let err = self.redact(self.map_ureq(e, deadline), Some(&token));
                    log::debug!(
                        "{method} {path}{query} failed after {:?}: {err}",
                        started.elapsed()
                    );
                    return Err(err);
                }
            };
            let code = resp.status().as_u16();
            log::debug!(
                "{method} {path}{query} -> {code} in {:?}",
                started.elapsed()
            );
            self.log_warnings(resp.headers());
            if (200..300).contains(&code) {
                return Ok(resp);
            }
            let retry_after = resp
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(error::parse_retry_after);
            let mut text = Vec::new();
            // A body we cannot read still leaves us the status code.
            let _ = resp
                .body_mut()
                .as_reader()
                .take(MAX_ERROR_BODY)
                .read_to_end(&mut text);
            let err = self.redact(error::from_response(code, &text, retry_after), Some(&token));
            if code == 401 && !retried_401 {
                retried_401 = true;
                let fresh = self.inner.token.reload();
                if fresh != token {
                    log::info!("{method} {path}: 401 Unauthorized; retrying with the rotated service-account token");
                    token = fresh;
                    continue;
                }
            }
            return Err(err);
        }
    }

    fn send_once(
        &self,
        method: &Method,
        url: &str,
        body: Option<&[u8]>,
        token: &Token,
        remaining: Duration,
    ) -> Result<Response<Body>, ureq::Error> {
        let mut auth = http::HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| ureq::Error::BadUri(String::from("token is not a valid header value")))?;
        auth.set_sensitive(true);
        let builder = http::Request::builder()
            .method(method.clone())
            .uri(url)
            .header(http::header::AUTHORIZATION, auth);
        let agent = &self.inner.agent;
        match body {
            Some(b) => {
                let req = builder
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(b)?;
                let req = agent
                    .configure_request(req)
                    .timeout_global(Some(remaining))
                    .timeout_connect(Some(remaining))
                    .build();
                agent.run(req)
            }
            None => {
                let req = builder.body(())?;
                let req = agent
                    .configure_request(req)
                    .timeout_global(Some(remaining))
                    .timeout_connect(Some(remaining))
                    .build();
                agent.run(req)
            }
        }
    }

    fn read_json<T: DeserializeOwned>(
        &self,
        mut resp: Response<Body>,
        deadline: Instant,
    ) -> Result<T, Error> {
        let mut bytes = Vec::new();
        resp.body_mut()
            .with_config()
            .limit(MAX_BODY)
            .reader()
            .read_to_end(&mut bytes)
            .map_err(|e| self.redact(self.map_io(e, deadline), None))?;
        self.refuse_echo(&bytes)?;
        json::decode(&bytes).map_err(|e| {
            self.redact(
                Error::Decode(format!(
                    "response body is not the JSON object expected ({e}); starts with {:?}",
                    self.preview(&bytes)
                )),
                None,
            )
        })
    }

    fn log_warnings(&self, headers: &http::HeaderMap) {
        let token = self.inner.token.current();
        for text in new_warnings(&self.inner.warnings, headers) {
            let text = redact_text(text, token.expose());
            log::warn!("Kubernetes API warning: {text}");
        }
    }

    /// Scrubs our bearer token (the current one, and `used` if a request was sent with
    /// another) out of every message `e` carries. Every error this client returns, and every
    /// text of the server it logs, passes through here: whatever the server sends (bodies,
    /// `Status` messages, headers, watch events) may echo the token.
    pub(super) fn redact(&self, e: Error, used: Option<&Token>) -> Error {
        let current = self.inner.token.current();
        let e = e.redact(current.expose());
        match used {
            Some(t) if *t != current => e.redact(t.expose()),
            _ => e,
        }
    }

    /// Refuses an answer (a body or a watch line) that holds our current bearer token: a real
    /// API server never sends it back, and once decoded, a field of the object (a
    /// `holderIdentity`, say) could carry it into a log line, beyond the reach of
    /// [`redact`](Self::redact).
    pub(super) fn refuse_echo(&self, bytes: &[u8]) -> Result<(), Error> {
        let token = self.inner.token.current();
        let secret = token.expose();
        if token::answer_holds(bytes, secret) {
            return Err(Error::Decode(
                "the answer holds our bearer token (a server or proxy echoing credentials); \
                 refused"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The first 80 characters of `bytes` as text, for error messages, with our token
    /// redacted first (so that no part of it is left where the quote cuts it).
    pub(super) fn preview(&self, bytes: &[u8]) -> String {
        let token = self.inner.token.current();
        let window = &bytes[..bytes.len().min(80 + token.expose().len())];
        let text = redact_text(String::from_utf8_lossy(window).into_owned(), token.expose());
        text.chars().take(80).collect()
    }

    pub(super) fn map_io(&self, e: io::Error, deadline: Instant) -> Error {
        self.map_ureq(ureq::Error::from(e), deadline)
    }

    /// Maps a transport-level ureq error. Anything that failed after the deadline is
    /// reported as the deadline.
    fn map_ureq(&self, e: ureq::Error, deadline: Instant) -> Error {
        let mapped = map_ureq_error(e, &self.inner.ca_path);
        match mapped {
            Error::Transport(_) if Instant::now() >= deadline => Error::Timeout,
            other => other,
        }
    }
}

fn map_ureq_error(e: ureq::Error, ca_path: &std::path::Path) -> Error {
    match e {
        ureq::Error::Timeout(_) => Error::Timeout,
        ureq::Error::Rustls(r) => Error::Tls(tls::describe_rustls_error(&r, ca_path)),
        ureq::Error::Tls(m) => Error::Tls(format!("{m} (checking the server certificate)")),
        ureq::Error::Io(io) => {
            if let Some(r) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                return Error::Tls(tls::describe_rustls_error(r, ca_path));
            }
            match io.kind() {
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Error::Timeout,
                io::ErrorKind::ConnectionRefused => Error::Transport(format!(
                    "connection refused ({io}); is the API server up and KUBERNETES_SERVICE_PORT right?"
                )),
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof => Error::Transport(format!(
                    "the connection was closed by the server or the network ({io})"
                )),
                _ => Error::Transport(io.to_string()),
            }
        }
        ureq::Error::HostNotFound => Error::Transport(
            "cannot resolve the API server's host name (KUBERNETES_SERVICE_HOST)".to_string(),
        ),
        ureq::Error::ConnectionFailed => {
            Error::Transport("cannot connect to the API server".to_string())
        }
        ureq::Error::BodyExceedsLimit(n) => Error::Decode(format!(
            "the response body is larger than the {n} bytes we accept"
        )),
        ureq::Error::Protocol(p) => Error::Transport(format!("HTTP protocol error: {p}")),
        other => Error::Transport(other.to_string()),
    }
}

fn encode<B: Serialize>(body: &B) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(body)
        .map_err(|e| Error::Decode(format!("cannot encode the request body as JSON: {e}")))
}

/// Resolves IP literals only. The API server address is always an IP (see
/// [`super::incluster`]); not using ureq's default resolver keeps `getaddrinfo` out of the
/// static binary and avoids the thread ureq starts per lookup when a timeout is set.
#[derive(Debug)]
struct IpLiteral;

impl Resolver for IpLiteral {
    fn resolve(
        &self,
        uri: &Uri,
        _config: &Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().unwrap_or_default();
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let ip: std::net::IpAddr = bare.parse().map_err(|_| ureq::Error::HostNotFound)?;
        let mut addrs = self.empty();
        addrs.push(std::net::SocketAddr::new(ip, uri.port_u16().unwrap_or(443)));
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn types_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Client>();
        send_sync::<Error>();
        send::<WatchStream<Value>>();
    }
    #[test]
    fn user_agent_has_version() {
        assert!(USER_AGENT.starts_with("k8s-await-election/"));
        assert!(USER_AGENT.len() > "k8s-await-election/".len());
    }
}
