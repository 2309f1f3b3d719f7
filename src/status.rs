//! The status HTTP endpoint (`K8S_AWAIT_ELECTION_STATUS_ENDPOINT`) and the Prometheus metrics.
//!
//! Owns the listening socket, its threads, a tiny hand-written HTTP/1.x server on `std::net`,
//! and the three views of the election it serves. It only ever reads an
//! [`election::Snapshot`]; it never talks to Kubernetes or touches CMD.
//!
//! # Paths
//! | request | answer |
//! |---|---|
//! | `GET`/`HEAD /status` | JSON view of the election: name, identity, lock, holder, leading, last renewal, lease expiry, counters |
//! | `GET`/`HEAD /metrics` | Prometheus text format 0.0.4 (`leader_election_master_status`, `leader_election_slowpath_total` as in client-go, and `k8s_await_election_*`) |
//! | anything else, any method | the Go tool's health check: `200 {"status": "ok"}`, or `500 {"status": "expired"}` while we lead and have not renewed for lease duration + 2 s |
//!
//! The health check is client-go's `HealthzAdaptor` with `Check(2s)`: unhealthy only when we
//! are leading and `now > last renew + lease duration + 2 s` (monotonic clock); followers are
//! always healthy. `/status` and `/metrics` with other methods answer 405.
//!
//! # Hardening
//! - A request head is at most [`MAX_HEAD`] bytes (else `431`) and must arrive within
//!   [`READ_TIMEOUT`] (else the connection is closed); garbage gets `400`; nothing panics on
//!   input. Every response carries `Connection: close`.
//! - One thread per connection (64 KiB stacks), at most [`SOFT_CAP`] of them. A connection
//!   beyond that evicts the oldest connection that is still sending its request (slow or idle
//!   clients cannot lock a liveness probe out); at [`HARD_CAP`] threads new connections are
//!   answered `503` and closed.
//! - `:PORT` binds `[::]:PORT` (dual-stack with the usual `net.ipv6.bindv6only=0`) and falls
//!   back to `0.0.0.0:PORT` where IPv6 is unavailable.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{debug, warn};

use crate::config::StatusEndpoint;
use crate::election::{Snapshot, Status};
use crate::timefmt;

/// Largest request head (request line and headers) we accept.
pub const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its whole request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// Time a client has to take our response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(3);
/// Connections served at once before the oldest still-reading one is evicted.
pub const SOFT_CAP: usize = 64;
/// Connection threads at most (evicted ones take a moment to exit); beyond it: 503.
pub const HARD_CAP: usize = 2 * SOFT_CAP;
/// client-go's `HealthzAdaptor` tolerance (`Check(2 * time.Second)` in the Go tool).
pub const EXPIRY_TOLERANCE: Duration = Duration::from_secs(2);
/// Stack size of the server's threads.
const STACK_SIZE: usize = 64 * 1024;
/// Request body bytes we read and discard after answering (so the close is clean).
const MAX_DRAIN: usize = 64 * 1024;
const DRAIN_TIMEOUT: Duration = Duration::from_millis(250);

/// The running status server. Dropping it does not stop the server thread.
#[derive(Debug)]
pub struct StatusServer {
    local_addr: SocketAddr,
}

impl StatusServer {
    /// Binds now (a bind failure is returned), then serves on a background thread.
    /// `endpoint.ip == None` means `:PORT`: `[::]:PORT`, or `0.0.0.0:PORT` without IPv6.
    pub fn start(
        endpoint: StatusEndpoint,
        snapshot: Arc<Snapshot>,
        lease_duration: Duration,
    ) -> io::Result<StatusServer> {
        let listener = bind(endpoint)?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            snapshot,
            lease_duration,
            active: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            reading: Mutex::new(HashMap::new()),
        });
        thread::Builder::new()
            .name("status".into())
            .stack_size(STACK_SIZE)
            .spawn(move || accept_loop(listener, shared))?;
        debug!("status endpoint listening on {local_addr}");
        Ok(StatusServer { local_addr })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

fn bind(endpoint: StatusEndpoint) -> io::Result<TcpListener> {
    match endpoint.ip {
        Some(ip) => TcpListener::bind(SocketAddr::new(ip, endpoint.port)),
        None => {
            match TcpListener::bind(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                endpoint.port,
            )) {
                Ok(l) => Ok(l),
                // The port is taken (or not ours to take): IPv4 would fail the same way.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
                    ) =>
                {
                    Err(e)
                }
                Err(e) => {
                    debug!(
                        "cannot bind [::]:{} ({e}); falling back to IPv4",
                        endpoint.port
                    );
                    TcpListener::bind(SocketAddr::new(
                        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                        endpoint.port,
                    ))
                }
            }
        }
    }
}

/// State shared by the acceptor and the connection threads.
struct Shared {
    snapshot: Arc<Snapshot>,
    lease_duration: Duration,
    /// Connection threads alive.
    active: AtomicUsize,
    next_id: AtomicU64,
    /// Connections still sending their request: id → (accepted at, a handle to shut it down).
    reading: Mutex<HashMap<u64, (Instant, TcpStream)>>,
}

impl Shared {
    fn reading(&self) -> MutexGuard<'_, HashMap<u64, (Instant, TcpStream)>> {
        self.reading.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Shuts the oldest still-reading connection down; false if there is none.
    fn evict_oldest(&self) -> bool {
        let mut reading = self.reading();
        let oldest = reading
            .iter()
            .min_by_key(|(_, (at, _))| *at)
            .map(|(id, _)| *id);
        match oldest.and_then(|id| reading.remove(&id)) {
            Some((_, stream)) => {
                let _ = stream.shutdown(Shutdown::Both);
                true
            }
            None => false,
        }
    }
}

/// Decrements the thread count and forgets the connection when a connection thread ends,
/// however it ends.
struct Slot {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.reading().remove(&self.id);
        self.shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends: do not spin.
                debug!("status endpoint: accept failed: {e}");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let active = shared.active.load(Ordering::SeqCst);
        if active >= HARD_CAP || (active >= SOFT_CAP && !shared.evict_oldest()) {
            reject(stream);
            continue;
        }
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(handle) = stream.try_clone() {
            shared.reading().insert(id, (Instant::now(), handle));
        }
        shared.active.fetch_add(1, Ordering::SeqCst);
        let slot = Slot {
            shared: Arc::clone(&shared),
            id,
        };
        let spawned = thread::Builder::new()
            .name("status-conn".into())
            .stack_size(STACK_SIZE)
            .spawn(move || serve(stream, slot));
        if let Err(e) = spawned {
            // The closure (and with it the stream and the slot) is dropped: closed, counted down.
            warn!("status endpoint: cannot start a connection thread: {e}");
        }
    }
}

fn reject(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let resp = Response::text(503, "too many connections\n");
    let _ = stream.write_all(&resp.to_bytes(false));
    let _ = stream.shutdown(Shutdown::Both);
}

fn serve(mut stream: TcpStream, slot: Slot) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let head = read_head(&mut stream);
    slot.shared.reading().remove(&slot.id);
    let (resp, head_only, drain_after) = match head {
        ReadOutcome::Request(req) => {
            let status = slot.shared.snapshot.get();
            let resp = respond(&req, &status, Instant::now(), slot.shared.lease_duration);
            (resp, req.method == "HEAD", req.has_body)
        }
        // The rest of a refused request may still be arriving: drain it too.
        ReadOutcome::Reject(code) => (Response::text(code, reason(code)), false, true),
        ReadOutcome::Gone => return,
    };
    if stream.write_all(&resp.to_bytes(head_only)).is_err() {
        return;
    }
    let _ = stream.flush();
    if drain_after {
        // Unread request bytes would turn our close into a reset that can destroy the
        // response in flight; take (a bounded amount of) them first.
        let _ = stream.shutdown(Shutdown::Write);
        drain(&mut stream);
    }
}

fn drain(stream: &mut TcpStream) {
    let until = Instant::now() + DRAIN_TIMEOUT;
    let mut buf = [0u8; 1024];
    let mut total = 0;
    while total < MAX_DRAIN {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}

enum ReadOutcome {
    Request(Request),
    /// Answer with this status code and close.
    Reject(u16),
    /// The client went away or was too slow: just close.
    Gone,
}

fn read_head(stream: &mut TcpStream) -> ReadOutcome {
    let until = Instant::now() + READ_TIMEOUT;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return ReadOutcome::Gone;
        }
        let n = match stream.read(&mut chunk) {
            Ok(0) => return ReadOutcome::Gone,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return ReadOutcome::Gone,
        };
        let room = (MAX_HEAD + 4).saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..n.min(room)]);
        match parse_head(&buf) {
            Parse::Incomplete if buf.len() >= MAX_HEAD => return ReadOutcome::Reject(431),
            Parse::Incomplete => {}
            Parse::Done(req) => return ReadOutcome::Request(req),
            Parse::Bad(code) => return ReadOutcome::Reject(code),
        }
    }
}

/// The parts of a request we look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The request announced a body (`Content-Length` > 0 or `Transfer-Encoding`).
    pub has_body: bool,
}

/// The result of parsing a (possibly partial) request head.
#[derive(Debug, PartialEq, Eq)]
pub enum Parse {
    /// More bytes are needed.
    Incomplete,
    Done(Request),
    /// Answer with this status code and close.
    Bad(u16),
}

/// Parses an HTTP/1.x request head from the start of `buf`. Never panics.
pub fn parse_head(buf: &[u8]) -> Parse {
    // Tolerate empty lines before the request line (RFC 9112, 2.2).
    let Some(start) = buf.iter().position(|&b| b != b'\r' && b != b'\n') else {
        return if buf.len() > MAX_HEAD {
            Parse::Bad(400)
        } else {
            Parse::Incomplete
        };
    };
    let buf = &buf[start..];
    let end = match find_head_end(buf) {
        Some(end) => end,
        None if buf.len() > MAX_HEAD => return Parse::Bad(431),
        None => {
            // Refuse obvious garbage early rather than waiting for more of it.
            if buf.contains(&0) {
                return Parse::Bad(400);
            }
            return Parse::Incomplete;
        }
    };
    if end > MAX_HEAD {
        return Parse::Bad(431);
    }
    let Ok(head) = std::str::from_utf8(&buf[..end]) else {
        return Parse::Bad(400);
    };
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Parse::Bad(400);
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Parse::Bad(400);
    }
    match version {
        "HTTP/1.0" | "HTTP/1.1" => {}
        v if v.starts_with("HTTP/") => return Parse::Bad(505),
        _ => return Parse::Bad(400),
    }
    let Some(path) = request_path(target) else {
        return Parse::Bad(400);
    };
    let mut has_body = false;
    for line in lines {
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Parse::Bad(400);
        };
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Parse::Bad(400);
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            match value.parse::<u64>() {
                Ok(n) => has_body |= n > 0,
                Err(_) => return Parse::Bad(400),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            has_body = true;
        }
    }
    Parse::Done(Request {
        method: method.to_string(),
        path,
        has_body,
    })
}

/// Index just past the blank line that ends the head (`\r\n\r\n` or bare `\n\n`).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

/// The path of an origin-form (`/a?b`), absolute-form (`http://h/a`) or asterisk-form target.
fn request_path(target: &str) -> Option<String> {
    if target.is_empty() || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return None;
    }
    let path = if target.starts_with('/') || target == "*" {
        target
    } else {
        let rest = target
            .strip_prefix("http://")
            .or_else(|| target.strip_prefix("https://"))?;
        rest.find('/').map_or("/", |i| &rest[i..])
    };
    let path = path.split(['?', '#']).next().unwrap_or("/");
    Some(if path.is_empty() {
        "/".to_string()
    } else {
        path.to_string()
    })
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A response ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub code: u16,
    pub content_type: &'static str,
    pub body: String,
    /// Extra header lines (without CRLF).
    pub headers: Vec<String>,
}

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";
/// The Prometheus text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Response {
    fn text(code: u16, body: &str) -> Response {
        Response {
            code,
            content_type: TEXT,
            body: body.to_string(),
            headers: Vec::new(),
        }
    }

    /// The bytes on the wire; `head_only` leaves the body out (for `HEAD`).
    pub fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
            self.code,
            reason(self.code),
            self.content_type,
            self.body.len()
        );
        for h in &self.headers {
            out.push_str(h);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        if !head_only {
            out.push_str(&self.body);
        }
        out.into_bytes()
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// client-go's `HealthzAdaptor.Check(2s)`: false only while leading with the last renewal
/// more than lease duration + 2 s ago. A leader without a recorded renewal counts as healthy.
pub fn is_expired(status: &Status, now: Instant, lease_duration: Duration) -> bool {
    status.leading
        && status
            .last_renew
            .is_some_and(|at| now.saturating_duration_since(at) > lease_duration + EXPIRY_TOLERANCE)
}

/// The answer to `req` given the election `status` at `now`.
pub fn respond(req: &Request, status: &Status, now: Instant, lease_duration: Duration) -> Response {
    let expired = is_expired(status, now, lease_duration);
    let own = match req.path.as_str() {
        "/status" => Some(Route::Status),
        "/metrics" => Some(Route::Metrics),
        _ => None,
    };
    let Some(route) = own else {
        // The Go tool's answer, for every other path and method.
        let (code, body) = if expired {
            (500, "{\"status\": \"expired\"}")
        } else {
            (200, "{\"status\": \"ok\"}")
        };
        return Response {
            code,
            content_type: JSON,
            body: body.to_string(),
            headers: Vec::new(),
        };
    };
    if req.method != "GET" && req.method != "HEAD" {
        let mut r = Response::text(405, "method not allowed\n");
        r.headers.push("Allow: GET, HEAD".to_string());
        return r;
    }
    match route {
        Route::Status => Response {
            code: 200,
            content_type: JSON,
            body: status_json(status, expired),
            headers: Vec::new(),
        },
        Route::Metrics => Response {
            code: 200,
            content_type: METRICS_CONTENT_TYPE,
            body: metrics_text(status),
            headers: Vec::new(),
        },
    }
}

enum Route {
    Status,
    Metrics,
}

/// The `/status` document.
pub fn status_json(status: &Status, expired: bool) -> String {
    let time = |t: Option<SystemTime>| t.map(timefmt::micro_time);
    let doc = serde_json::json!({
        "status": if expired { "expired" } else { "ok" },
        "name": status.name,
        "identity": status.identity,
        "lock": status.lock,
        "holder": status.holder,
        "leading": status.leading,
        "lastRenewTime": time(status.last_renew_wall),
        "leaseExpiryTime": time(status.expires_wall),
        "renewals": status.renewals,
        "renewFailures": status.renew_failures,
        "transitions": status.transitions,
        "slowpath": status.slowpath,
    });
    let mut text = doc.to_string();
    text.push('\n');
    text
}

/// The `/metrics` document (Prometheus text format 0.0.4).
pub fn metrics_text(status: &Status) -> String {
    let label = format!("{{name=\"{}\"}}", escape_label(&status.name));
    let mut out = String::with_capacity(1536);
    let mut metric = |name: &str, kind: &str, help: &str, value: &str| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name}{label} {value}");
    };
    metric(
        "leader_election_master_status",
        "gauge",
        "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease. Please make sure to group by name.",
        if status.leading { "1" } else { "0" },
    );
    metric(
        "leader_election_slowpath_total",
        "counter",
        "Total number of slow path exercised in renewing leader leases. 'name' is the string used to identify the lease. Please make sure to group by name.",
        &status.slowpath.to_string(),
    );
    metric(
        "k8s_await_election_renewals_total",
        "counter",
        "Successful acquisitions and renewals of the lease by this replica.",
        &status.renewals.to_string(),
    );
    metric(
        "k8s_await_election_renewal_failures_total",
        "counter",
        "Failed attempts to renew the lease while leading.",
        &status.renew_failures.to_string(),
    );
    metric(
        "k8s_await_election_transitions_total",
        "counter",
        "Times this replica became the leader.",
        &status.transitions.to_string(),
    );
    if let Some(secs) = status
        .last_renew_wall
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
    {
        metric(
            "k8s_await_election_last_renew_timestamp_seconds",
            "gauge",
            "Wall-clock time of this replica's last successful acquisition or renewal of the lease.",
            &format!("{:.3}", secs.as_secs_f64()),
        );
    }
    out
}

/// Escapes a label value: backslash, double quote and line feed.
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            has_body: false,
        }
    }

    fn leader(last_renew: Instant) -> Status {
        Status {
            name: "my-election".into(),
            identity: "pod-0".into(),
            lock: "ns/my-lock".into(),
            holder: Some("pod-0".into()),
            leading: true,
            last_renew: Some(last_renew),
            last_renew_wall: Some(UNIX_EPOCH + Duration::from_micros(1_795_594_530_123_456)),
            expires_wall: Some(UNIX_EPOCH + Duration::from_secs(1_795_594_534)),
            renewals: 7,
            renew_failures: 2,
            transitions: 1,
            slowpath: 3,
        }
    }

    #[test]
    fn parses_ordinary_requests() {
        let p = parse_head(
            b"GET /healthz?x=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: kube-probe/1.31\r\n\r\n",
        );
        assert_eq!(p, Parse::Done(req("GET", "/healthz")));
        let p = parse_head(b"HEAD http://example:9999/metrics HTTP/1.0\n\n");
        assert_eq!(p, Parse::Done(req("HEAD", "/metrics")));
        let p = parse_head(b"\r\nPOST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!(
            p,
            Parse::Done(Request {
                method: "POST".into(),
                path: "/".into(),
                has_body: true
            })
        );
        let p = parse_head(b"OPTIONS * HTTP/1.1\r\n\r\n");
        assert_eq!(p, Parse::Done(req("OPTIONS", "*")));
    }

    #[test]
    fn partial_heads_wait_for_more() {
        assert_eq!(parse_head(b""), Parse::Incomplete);
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n"),
            Parse::Incomplete
        );
    }

    #[test]
    fn garbage_is_refused_never_panics() {
        for bad in [
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"GET /\r\n\r\n",
            b"G\xffT / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET nopath HTTP/1.1\r\n\r\n",
            b"GET /a\x00b HTTP/1.1\r\n\r\n",
            b"\x00\x00\x00",
        ] {
            assert!(matches!(parse_head(bad), Parse::Bad(400)), "{bad:?}");
        }
        assert_eq!(
            parse_head(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            Parse::Bad(505)
        );
        // Arbitrary byte soup of every length: no panic.
        let soup: Vec<u8> = (0..2000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for n in 0..soup.len() {
            let _ = parse_head(&soup[..n]);
        }
    }

    #[test]
    fn oversized_heads_get_431() {
        let mut big = b"GET / HTTP/1.1\r\nX-Fill: ".to_vec();
        big.resize(MAX_HEAD + 10, b'a');
        assert_eq!(parse_head(&big), Parse::Bad(431));
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_head(&big), Parse::Bad(431));
    }

    #[test]
    fn expiry_follows_client_go_check() {
        let lease = Duration::from_secs(15);
        let t0 = Instant::now();
        let s = leader(t0);
        assert!(!is_expired(&s, t0, lease));
        assert!(
            !is_expired(&s, t0 + Duration::from_secs(17), lease),
            "exactly +2s is still ok"
        );
        assert!(is_expired(&s, t0 + Duration::from_millis(17_001), lease));
        let follower = Status {
            leading: false,
            ..leader(t0)
        };
        assert!(!is_expired(
            &follower,
            t0 + Duration::from_secs(3600),
            lease
        ));
        let fresh = Status {
            last_renew: None,
            ..leader(t0)
        };
        assert!(!is_expired(&fresh, t0 + Duration::from_secs(3600), lease));
    }

    #[test]
    fn compatible_answers_on_every_other_path_and_method() {
        let lease = Duration::from_secs(4);
        let t0 = Instant::now();
        let s = leader(t0);
        for (m, p) in [
            ("GET", "/"),
            ("POST", "/healthz"),
            ("DELETE", "/x/y"),
            ("PUT", "*"),
        ] {
            let r = respond(&req(m, p), &s, t0, lease);
            assert_eq!(
                (r.code, r.body.as_str()),
                (200, "{\"status\": \"ok\"}"),
                "{m} {p}"
            );
            let r = respond(&req(m, p), &s, t0 + Duration::from_secs(7), lease);
            assert_eq!(
                (r.code, r.body.as_str()),
                (500, "{\"status\": \"expired\"}"),
                "{m} {p}"
            );
        }
        let r = respond(&req("POST", "/metrics"), &s, t0, lease);
        assert_eq!(r.code, 405);
        assert!(r.headers.contains(&"Allow: GET, HEAD".to_string()));
    }

    #[test]
    fn status_document() {
        let t0 = Instant::now();
        let r = respond(
            &req("GET", "/status"),
            &leader(t0),
            t0,
            Duration::from_secs(4),
        );
        assert_eq!(r.code, 200);
        let v: serde_json::Value = serde_json::from_str(&r.body).expect("json");
        assert_eq!(v["status"], "ok");
        assert_eq!(v["name"], "my-election");
        assert_eq!(v["identity"], "pod-0");
        assert_eq!(v["lock"], "ns/my-lock");
        assert_eq!(v["holder"], "pod-0");
        assert_eq!(v["leading"], true);
        assert_eq!(v["lastRenewTime"], "2026-11-25T08:15:30.123456Z");
        assert_eq!(v["leaseExpiryTime"], "2026-11-25T08:15:34.000000Z");
        assert_eq!(v["renewals"], 7);
        assert_eq!(v["renewFailures"], 2);
        assert_eq!(v["transitions"], 1);
        assert_eq!(v["slowpath"], 3);
        let v: serde_json::Value =
            serde_json::from_str(&status_json(&Status::default(), false)).expect("json");
        assert_eq!(v["holder"], serde_json::Value::Null);
        assert_eq!(v["lastRenewTime"], serde_json::Value::Null);
    }

    #[test]
    fn metrics_text_format() {
        let t0 = Instant::now();
        let text = metrics_text(&leader(t0));
        for line in [
            "# TYPE leader_election_master_status gauge",
            "leader_election_master_status{name=\"my-election\"} 1",
            "# TYPE leader_election_slowpath_total counter",
            "leader_election_slowpath_total{name=\"my-election\"} 3",
            "# TYPE k8s_await_election_renewals_total counter",
            "k8s_await_election_renewals_total{name=\"my-election\"} 7",
            "k8s_await_election_renewal_failures_total{name=\"my-election\"} 2",
            "k8s_await_election_transitions_total{name=\"my-election\"} 1",
            "k8s_await_election_last_renew_timestamp_seconds{name=\"my-election\"} 1795594530.123",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every sample has HELP and TYPE lines right before it, and the text ends in a newline.
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if !l.starts_with('#') {
                assert!(lines[i - 1].starts_with("# TYPE "), "{l}");
                assert!(lines[i - 2].starts_with("# HELP "), "{l}");
            }
        }
        assert!(text.ends_with('\n'));
        let follower = Status {
            name: "a\"b\\c\nd".into(),
            ..Status::default()
        };
        let text = metrics_text(&follower);
        assert!(
            text.contains("leader_election_master_status{name=\"a\\\"b\\\\c\\nd\"} 0\n"),
            "{text}"
        );
        assert!(!text.contains("last_renew_timestamp"));
    }

    #[test]
    fn wire_format() {
        let r = Response::text(200, "hi");
        let full = String::from_utf8(r.to_bytes(false)).expect("utf8");
        assert!(full.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(full.contains("\r\nContent-Length: 2\r\n"));
        assert!(full.contains("\r\nConnection: close\r\n"));
        assert!(full.ends_with("\r\n\r\nhi"));
        let head = String::from_utf8(r.to_bytes(true)).expect("utf8");
        assert!(head.ends_with(
            "Content-Length: 2\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
        ));
    }

    fn probe(addr: SocketAddr) -> String {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    }

    #[test]
    fn any_address_endpoint_serves_ipv4_and_ipv6() {
        let server = StatusServer::start(
            StatusEndpoint { ip: None, port: 0 },
            Snapshot::new(Status::default()),
            Duration::from_secs(4),
        )
        .expect("bind");
        let port = server.local_addr().port();
        let v4 = probe(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        assert!(v4.starts_with("HTTP/1.1 200 OK\r\n"), "{v4}");
        if server.local_addr().is_ipv6() {
            let v6 = probe(SocketAddr::from((Ipv6Addr::LOCALHOST, port)));
            assert!(v6.starts_with("HTTP/1.1 200 OK\r\n"), "{v6}");
        }
    }

    #[test]
    fn serves_and_survives_idle_connections() {
        let snapshot = Snapshot::new(leader(Instant::now()));
        let server = StatusServer::start(
            StatusEndpoint {
                ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                port: 0,
            },
            snapshot,
            Duration::from_secs(4),
        )
        .expect("bind");
        let addr = server.local_addr();
        // More idle connections than the soft cap.
        let idle: Vec<TcpStream> = (0..SOFT_CAP + 20)
            .filter_map(|_| TcpStream::connect(addr).ok())
            .collect();
        assert!(idle.len() > SOFT_CAP);
        let started = Instant::now();
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.ends_with("{\"status\": \"ok\"}"), "{out}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        drop(idle);
    }
}
