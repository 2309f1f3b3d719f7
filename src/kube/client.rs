//! The blocking REST client: one ureq agent (connection reuse) trusting only the cluster CA,
//! JSON get/create/replace/delete/list and line-delimited watch streams, each bounded by an
//! absolute deadline; the rotating bearer token (re-read and retried once after a 401);
//! `Status` bodies mapped to [`Error`]; server `Warning` headers logged once each.

use std::collections::HashSet;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use ureq::config::Config;
use ureq::http::Uri;
use ureq::http::{self, Method, Response};
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use ureq::{Agent, Body, BodyReader};

use super::error::{self, Error, Status};
use super::incluster::InClusterConfig;
use super::tls;
use super::token::{Token, TokenSource, REFRESH_INTERVAL};

const USER_AGENT: &str = concat!("k8s-await-election/", env!("CARGO_PKG_VERSION"));
/// Largest successful response body we accept.
const MAX_BODY: u64 = 64 * 1024 * 1024;
/// Largest error body we read (the rest is discarded, and so is the connection).
const MAX_ERROR_BODY: u64 = 64 * 1024;
/// Largest single watch event line.
const MAX_WATCH_EVENT: u64 = 16 * 1024 * 1024;
/// Distinct `Warning` texts remembered (so each is logged once); beyond this we stop logging.
const MAX_REMEMBERED_WARNINGS: usize = 256;

/// Label and field selectors of a list or watch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ListParams {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
}

impl ListParams {
    /// Selects the one object named `name` (`fieldSelector=metadata.name=<name>`).
    pub fn named(name: &str) -> ListParams {
        ListParams {
            label_selector: None,
            field_selector: Some(format!("metadata.name={name}")),
        }
    }
}

/// One event of a watch stream.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent<T> {
    Added(T),
    Modified(T),
    Deleted(T),
    /// The server's progress marker: resume a later watch from this resourceVersion.
    Bookmark {
        resource_version: String,
    },
}

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
    /// read and ignored.
    pub fn delete(&self, path: &str, deadline: Instant) -> Result<(), Error> {
        let mut resp = self.execute(Method::DELETE, path, "", None, deadline)?;
        let mut sink = Vec::new();
        resp.body_mut()
            .with_config()
            .limit(MAX_BODY)
            .reader()
            .read_to_end(&mut sink)
            .map_err(|e| self.map_io(e, deadline))?;
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
        let reader = resp.into_body().into_with_config().limit(u64::MAX).reader();
        Ok(WatchStream {
            reader: BufReader::new(reader),
            deadline,
            done: false,
            path: collection_path.to_string(),
            client: self.clone(),
            _marker: PhantomData,
        })
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
                    let err = self.map_ureq(e, deadline).redact(token.expose());
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
            let err = error::from_response(code, &text, retry_after).redact(token.expose());
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
            .map_err(|e| self.map_io(e, deadline))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::Decode(format!(
                "response body is not the JSON object expected ({e}); starts with {:?}",
                preview(&bytes)
            ))
        })
    }

    fn log_warnings(&self, headers: &http::HeaderMap) {
        for text in new_warnings(&self.inner.warnings, headers) {
            log::warn!("Kubernetes API warning: {text}");
        }
    }

    fn map_io(&self, e: io::Error, deadline: Instant) -> Error {
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

/// A watch: newline-delimited JSON events. See [`Client::watch`].
pub struct WatchStream<T> {
    reader: BufReader<BodyReader<'static>>,
    deadline: Instant,
    done: bool,
    path: String,
    client: Client,
    _marker: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for WatchStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchStream")
            .field("path", &self.path)
            .field("deadline", &self.deadline)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    object: serde_json::Value,
}

impl<T: DeserializeOwned> WatchStream<T> {
    fn next_event(&mut self) -> Option<Result<WatchEvent<T>, Error>> {
        loop {
            if Instant::now() >= self.deadline {
                return Some(Err(Error::Timeout));
            }
            let mut line = Vec::new();
            let read = (&mut self.reader)
                .take(MAX_WATCH_EVENT)
                .read_until(b'\n', &mut line);
            match read {
                Ok(0) => {
                    log::debug!("watch {} closed by the server", self.path);
                    return None;
                }
                Ok(_) => {}
                Err(e) => return Some(Err(self.client.map_io(e, self.deadline))),
            }
            if line.last() != Some(&b'\n') && line.len() as u64 >= MAX_WATCH_EVENT {
                return Some(Err(Error::Decode(format!(
                    "a watch event on {} is larger than {MAX_WATCH_EVENT} bytes",
                    self.path
                ))));
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(decode_event(&line));
        }
    }
}

fn decode_event<T: DeserializeOwned>(line: &[u8]) -> Result<WatchEvent<T>, Error> {
    let raw: RawEvent = serde_json::from_slice(line).map_err(|e| {
        Error::Decode(format!(
            "watch event is not JSON ({e}); starts with {:?}",
            preview(line)
        ))
    })?;
    let object = |o: serde_json::Value| {
        serde_json::from_value::<T>(o).map_err(|e| {
            Error::Decode(format!(
                "the object of a {} watch event is not the expected kind: {e}",
                raw.kind
            ))
        })
    };
    match raw.kind.as_str() {
        "ADDED" => Ok(WatchEvent::Added(object(raw.object.clone())?)),
        "MODIFIED" => Ok(WatchEvent::Modified(object(raw.object.clone())?)),
        "DELETED" => Ok(WatchEvent::Deleted(object(raw.object.clone())?)),
        "BOOKMARK" => {
            let rv = raw
                .object
                .pointer("/metadata/resourceVersion")
                .and_then(|v| v.as_str())
                .ok_or_else(|| {
                    Error::Decode("BOOKMARK watch event without metadata.resourceVersion".into())
                })?;
            Ok(WatchEvent::Bookmark {
                resource_version: rv.to_string(),
            })
        }
        "ERROR" => {
            let status: Status = serde_json::from_value(raw.object.clone()).unwrap_or_default();
            let code = status.code.unwrap_or(500);
            let body = serde_json::to_vec(&raw.object).unwrap_or_default();
            Err(error::from_status(code, &status, &body, None))
        }
        other => Err(Error::Decode(format!("unknown watch event type {other:?}"))),
    }
}

impl<T: DeserializeOwned> Iterator for WatchStream<T> {
    type Item = Result<WatchEvent<T>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_event();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

fn encode<B: Serialize>(body: &B) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(body)
        .map_err(|e| Error::Decode(format!("cannot encode the request body as JSON: {e}")))
}

fn normalize_path(path: &str) -> std::borrow::Cow<'_, str> {
    if path.starts_with('/') {
        path.into()
    } else {
        format!("/{path}").into()
    }
}

fn list_query(params: &ListParams) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if let Some(f) = params.field_selector.as_deref().filter(|s| !s.is_empty()) {
        q.push(("fieldSelector", f.to_string()));
    }
    if let Some(l) = params.label_selector.as_deref().filter(|s| !s.is_empty()) {
        q.push(("labelSelector", l.to_string()));
    }
    q
}

/// `?k=v&k2=v2` with values percent-encoded, or `""` for no parameters.
fn query_string(pairs: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(&percent_encode(k));
        out.push('=');
        out.push_str(&percent_encode(v));
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The texts of a `Warning` header value: `299 - "text"[, 299 - "text2"]`. A value that does
/// not follow the format is returned whole.
fn parse_warning_texts(value: &str) -> Vec<String> {
    // Split on commas outside quoted strings, then take each element's first quoted string
    // (warn-code SP warn-agent SP "text" [SP "date"]).
    let mut texts = Vec::new();
    let mut current: Option<String> = None; // the first quoted text of this element
    let mut in_quote = false;
    let mut quote_index = 0; // quoted strings seen in this element
    let mut buf = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if in_quote {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        buf.push(n);
                    }
                }
                '"' => {
                    in_quote = false;
                    if quote_index == 0 {
                        current = Some(std::mem::take(&mut buf));
                    }
                    buf.clear();
                    quote_index += 1;
                }
                c => buf.push(c),
            }
        } else {
            match c {
                '"' => in_quote = true,
                ',' => {
                    texts.extend(current.take());
                    quote_index = 0;
                }
                _ => {}
            }
        }
    }
    if !in_quote {
        texts.extend(current.take());
    }
    if texts.is_empty() && !value.trim().is_empty() {
        texts.push(value.trim().to_string());
    }
    texts
}

/// The `Warning` texts in `headers` not seen before (remembering them in `seen`).
fn new_warnings(seen: &Mutex<HashSet<String>>, headers: &http::HeaderMap) -> Vec<String> {
    let mut fresh = Vec::new();
    for value in headers.get_all(http::header::WARNING) {
        let Ok(value) = value.to_str() else { continue };
        for text in parse_warning_texts(value) {
            let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.len() < MAX_REMEMBERED_WARNINGS && seen.insert(text.clone()) {
                fresh.push(text);
            }
        }
    }
    fresh
}

fn preview(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned()
}

/// `/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}`
pub fn lease_path(ns: &str, name: &str) -> String {
    format!("{}/{}", leases_path(ns), percent_encode(name))
}

/// `/apis/coordination.k8s.io/v1/namespaces/{ns}/leases`
pub fn leases_path(ns: &str) -> String {
    format!(
        "/apis/coordination.k8s.io/v1/namespaces/{}/leases",
        percent_encode(ns)
    )
}

/// `/api/v1/namespaces/{ns}/endpoints/{name}`
pub fn endpoints_path(ns: &str, name: &str) -> String {
    format!("{}/{}", endpoints_collection(ns), percent_encode(name))
}

/// `/api/v1/namespaces/{ns}/endpoints`
pub fn endpoints_collection(ns: &str) -> String {
    format!("/api/v1/namespaces/{}/endpoints", percent_encode(ns))
}

/// `/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices/{name}`
pub fn endpointslice_path(ns: &str, name: &str) -> String {
    format!("{}/{}", endpointslices_path(ns), percent_encode(name))
}

/// `/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices`
pub fn endpointslices_path(ns: &str) -> String {
    format!(
        "/apis/discovery.k8s.io/v1/namespaces/{}/endpointslices",
        percent_encode(ns)
    )
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
    fn paths() {
        assert_eq!(
            lease_path("ns1", "my-lock"),
            "/apis/coordination.k8s.io/v1/namespaces/ns1/leases/my-lock"
        );
        assert_eq!(
            leases_path("ns1"),
            "/apis/coordination.k8s.io/v1/namespaces/ns1/leases"
        );
        assert_eq!(
            endpoints_path("ns1", "svc"),
            "/api/v1/namespaces/ns1/endpoints/svc"
        );
        assert_eq!(
            endpoints_collection("ns1"),
            "/api/v1/namespaces/ns1/endpoints"
        );
        assert_eq!(
            endpointslice_path("ns1", "svc-abc"),
            "/apis/discovery.k8s.io/v1/namespaces/ns1/endpointslices/svc-abc"
        );
        assert_eq!(
            endpointslices_path("ns1"),
            "/apis/discovery.k8s.io/v1/namespaces/ns1/endpointslices"
        );
        // Names cannot smuggle path segments or queries.
        assert_eq!(
            lease_path("a/b", "x?y"),
            "/apis/coordination.k8s.io/v1/namespaces/a%2Fb/leases/x%3Fy"
        );
        assert_eq!(normalize_path("api/v1"), "/api/v1");
    }

    #[test]
    fn queries() {
        assert_eq!(query_string(&list_query(&ListParams::default())), "");
        let p = ListParams {
            label_selector: Some("app=a,tier in (x, y)".into()),
            field_selector: Some("metadata.name=my-lock".into()),
        };
        assert_eq!(
            query_string(&list_query(&p)),
            "?fieldSelector=metadata.name%3Dmy-lock&labelSelector=app%3Da%2Ctier%20in%20%28x%2C%20y%29"
        );
        assert_eq!(
            ListParams::named("l").field_selector.as_deref(),
            Some("metadata.name=l")
        );
    }

    #[test]
    fn warning_header_texts() {
        assert_eq!(
            parse_warning_texts(
                r#"299 - "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice""#
            ),
            vec!["v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"]
        );
        assert_eq!(
            parse_warning_texts(r#"299 - "a, b", 299 - "say \"hi\"""#),
            vec!["a, b", r#"say "hi""#]
        );
        assert_eq!(
            parse_warning_texts(r#"299 - "x" "Sat, 01 Jan 2000 00:00:00 GMT", 299 - "y""#),
            vec!["x", "y"]
        );
        assert_eq!(parse_warning_texts("free text"), vec!["free text"]);
    }

    #[test]
    fn each_warning_is_reported_once() {
        let seen = Mutex::new(HashSet::new());
        let mut h = http::HeaderMap::new();
        h.append(
            http::header::WARNING,
            http::HeaderValue::from_static(r#"299 - "a""#),
        );
        h.append(
            http::header::WARNING,
            http::HeaderValue::from_static(r#"299 - "b", 299 - "a""#),
        );
        assert_eq!(new_warnings(&seen, &h), vec!["a", "b"]);
        assert!(new_warnings(&seen, &h).is_empty());
    }

    #[test]
    fn watch_events_decode() {
        let e: WatchEvent<Value> =
            decode_event(br#"{"type":"MODIFIED","object":{"metadata":{"name":"a"}}}"#).unwrap();
        assert!(matches!(e, WatchEvent::Modified(v) if v["metadata"]["name"] == "a"));
        let e: WatchEvent<Value> = decode_event(
            br#"{"type":"BOOKMARK","object":{"kind":"Lease","metadata":{"resourceVersion":"42"}}}"#,
        )
        .unwrap();
        assert_eq!(
            e,
            WatchEvent::Bookmark {
                resource_version: "42".into()
            }
        );
        let e = decode_event::<Value>(
            br#"{"type":"ERROR","object":{"kind":"Status","status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}}"#,
        )
        .unwrap_err();
        assert_eq!(e, Error::Gone("too old resource version: 1 (5)".into()));
        assert!(matches!(
            decode_event::<Value>(b"not json"),
            Err(Error::Decode(_))
        ));
        assert!(matches!(
            decode_event::<Value>(br#"{"type":"WHAT","object":{}}"#),
            Err(Error::Decode(_))
        ));
    }

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
