//! The listening socket and its threads: bind, the accept loop, the connection caps and
//! eviction, and serving one connection (read the head, answer, drain, close).
//!
//! The only part of the status endpoint doing I/O; what to answer comes from
//! [`views::respond`](super::views::respond).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, warn};

use super::http::{parse_head, reason, Parse, Request, Response, MAX_HEAD};
use super::views::respond;
use super::Snapshot;
use crate::config::StatusEndpoint;

/// Time a client has to send its whole request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// Time a client has to take our response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(3);
/// Connections served at once before the oldest still-reading one is evicted.
pub const SOFT_CAP: usize = 64;
/// Connection threads at most (evicted ones take a moment to exit); beyond it: 503.
pub const HARD_CAP: usize = 2 * SOFT_CAP;
/// Stack size of the server's threads.
const STACK_SIZE: usize = 64 * 1024;
/// Request body bytes we read and discard after answering (so the close is clean).
const MAX_DRAIN: usize = 64 * 1024;
/// Time we wait for those bytes at most.
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::leader;
    use super::super::Status;
    use super::*;

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
