//! The listening socket and the one server thread: bind, then a `poll(2)` loop over the
//! listener and every open connection ([`Conn`]), the connection cap and eviction, the
//! deadlines.
//!
//! The only part of the status endpoint doing I/O; what to answer comes from
//! [`views::respond`](super::views::respond).

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use log::debug;

use super::conn::{Conn, Progress, HEAD_TIMEOUT};
use super::http::{Request, Response};
use super::views::respond;
use super::{sys, Snapshot};
use crate::config::StatusEndpoint;

/// Connections open at once at most (fewer when the descriptor limit is low: see
/// [`connection_cap`]). A new connection beyond it closes the oldest open one.
pub const MAX_CONNECTIONS: usize = 128;
/// Connections the kernel queues for us to accept (std's default is 128): a connect flood
/// fills a short queue between two rounds of the loop, and a probe's connect dropped there
/// waits a whole SYN retransmission (1 s) for its next try.
const BACKLOG: u32 = 1024;
/// Stack size of the server thread.
const STACK_SIZE: usize = 64 * 1024;
/// Connections accepted in one round of the loop before the open ones get their turn.
const ACCEPT_BATCH: usize = 64;
/// How long the listener rests when accepting fails for want of resources.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);
/// The longest the loop sleeps with nothing due.
const IDLE_WAIT: Duration = Duration::from_secs(60);

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
        let listener = listen(endpoint)?;
        let local_addr = listener.local_addr()?;
        let cap = connection_cap(sys::nofile_soft_limit());
        let answer =
            move |req: &Request| respond(req, &snapshot.get(), Instant::now(), lease_duration);
        thread::Builder::new()
            .name("status".into())
            .stack_size(STACK_SIZE)
            .spawn(move || serve(&listener, cap, &answer))?;
        debug!("status endpoint listening on {local_addr} (at most {cap} connections)");
        Ok(StatusServer { local_addr })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

/// The connection cap for a soft descriptor limit of `nofile`: [`MAX_CONNECTIONS`], or half
/// the limit when that is less (the other half stays for the API client, CMD's pidfds, logs),
/// at least 4. We do not raise the limit: CMD inherits it, and it is not ours to change.
pub fn connection_cap(nofile: Option<u64>) -> usize {
    nofile.map_or(MAX_CONNECTIONS, |n| {
        usize::try_from(n / 2).map_or(MAX_CONNECTIONS, |half| half.clamp(4, MAX_CONNECTIONS))
    })
}

/// The non-blocking listener for `endpoint`, with a long accept queue, handing over only
/// connections that have sent something.
fn listen(endpoint: StatusEndpoint) -> io::Result<TcpListener> {
    let listener = bind(endpoint)?;
    listener.set_nonblocking(true)?;
    if let Err(e) = sys::set_listen_backlog(&listener, BACKLOG) {
        debug!("status endpoint: cannot lengthen the accept queue: {e}");
    }
    // Connections that say nothing never take one of our `cap` places, where a flood of them
    // would close a probe that took a few ms to send its request: the kernel keeps them until
    // they send, or for about the head timeout.
    if let Err(e) = sys::set_defer_accept(&listener, HEAD_TIMEOUT) {
        debug!("status endpoint: cannot defer accepting silent connections: {e}");
    }
    Ok(listener)
}

/// The listener for `endpoint` (see [`StatusServer::start`]).
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

/// The server loop: wait for the listener or any connection, expire what is overdue, move
/// every ready connection on, accept new ones (closing the oldest beyond `cap`). Never ends.
fn serve(listener: &TcpListener, cap: usize, answer: &impl Fn(&Request) -> Response) {
    let mut conns: VecDeque<Conn> = VecDeque::with_capacity(cap);
    let mut fds = Vec::with_capacity(cap + 1);
    // Accepting failed for want of descriptors or memory: rest the listener until then.
    let mut paused_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        conns.retain(|c| c.deadline() > now);
        paused_until = paused_until.filter(|t| *t > now);
        fds.clear();
        fds.push(sys::PollFd::new(
            listener.as_raw_fd(),
            paused_until.is_none(),
            false,
        ));
        fds.extend(conns.iter().map(|c| {
            let write = c.wants_write();
            sys::PollFd::new(c.fd(), !write, write)
        }));
        let wake = conns.iter().map(Conn::deadline).chain(paused_until).min();
        let wait = wake.map_or(IDLE_WAIT, |t| t.saturating_duration_since(now));
        if let Err(e) = sys::poll(&mut fds, wait) {
            debug!("status endpoint: poll failed: {e}");
            thread::sleep(ACCEPT_PAUSE);
            continue;
        }
        let now = Instant::now();
        let mut ready = fds[1..].iter().map(sys::PollFd::ready);
        conns.retain_mut(|c| {
            !ready.next().unwrap_or(false) || c.advance(now, answer) == Progress::Open
        });
        if paused_until.is_none() && fds[0].ready() {
            paused_until = accept(listener, &mut conns, cap, now, answer);
        }
    }
}

/// Accepts up to [`ACCEPT_BATCH`] connections and serves what each has sent already. Beyond
/// `cap` open connections the oldest is closed (slow or idle clients cannot lock a probe
/// out). Returns when to accept again if accepting failed for want of resources.
fn accept(
    listener: &TcpListener,
    conns: &mut VecDeque<Conn>,
    cap: usize,
    now: Instant,
    answer: &impl Fn(&Request) -> Response,
) -> Option<Instant> {
    for _ in 0..ACCEPT_BATCH {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            // EMFILE and friends: free a descriptor, or rest the listener.
            Err(e) if sys::is_out_of_resources(&e) => {
                debug!("status endpoint: accept failed: {e}");
                return match conns.pop_front() {
                    Some(_) => None,
                    None => Some(now + ACCEPT_PAUSE),
                };
            }
            // A connection that failed before we took it (reset, aborted, network errors
            // Linux passes on from the new socket): take the next one.
            Err(_) => continue,
        };
        if conns.len() >= cap {
            conns.pop_front();
        }
        let Ok(mut conn) = Conn::new(stream, now) else {
            continue;
        };
        // A probe's request is usually there already: answer it without another round.
        if conn.advance(now, answer) == Progress::Open {
            conns.push_back(conn);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::leader;
    use super::super::Status;
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    #[test]
    fn the_cap_follows_a_low_descriptor_limit() {
        assert_eq!(connection_cap(None), MAX_CONNECTIONS);
        assert_eq!(connection_cap(Some(1024)), MAX_CONNECTIONS);
        assert_eq!(connection_cap(Some(u64::MAX)), MAX_CONNECTIONS);
        assert_eq!(connection_cap(Some(100)), 50);
        assert_eq!(connection_cap(Some(3)), 4);
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
        // More idle connections than the cap.
        let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS + 20)
            .filter_map(|_| TcpStream::connect(addr).ok())
            .collect();
        assert!(idle.len() > MAX_CONNECTIONS);
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

    /// A probe that connects, then takes its time to send the request, while more
    /// connections than the cap come and go: the newcomers must not close the probe.
    #[test]
    fn a_probe_slow_to_send_outlives_a_flood_of_connections() {
        const CAP: usize = 4;
        let listener = listen(StatusEndpoint {
            ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            port: 0,
        })
        .expect("listen");
        let addr = listener.local_addr().expect("addr");
        let snapshot = Snapshot::new(leader(Instant::now()));
        let answer = move |req: &Request| {
            respond(req, &snapshot.get(), Instant::now(), Duration::from_secs(4))
        };
        thread::spawn(move || serve(&listener, CAP, &answer));
        let mut probe = TcpStream::connect(addr).expect("connect");
        // Newcomers that send a byte each: the server takes them, closing the oldest beyond
        // the cap. Wait until it has closed all but the cap of them.
        let flood: Vec<TcpStream> = (0..CAP + 6)
            .map(|_| {
                let mut s = TcpStream::connect(addr).expect("connect");
                s.write_all(b"G").expect("write");
                s.set_read_timeout(Some(Duration::from_millis(20)))
                    .expect("timeout");
                s
            })
            .collect();
        let closed = |mut s: &TcpStream| match s.read(&mut [0u8; 1]) {
            Ok(n) => n == 0,
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while flood.iter().filter(|s| closed(s)).count() < 6 {
            assert!(
                Instant::now() < deadline,
                "the server did not close the oldest of the flood"
            );
        }
        probe
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        probe
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("write");
        let mut out = String::new();
        let _ = probe.read_to_string(&mut out);
        assert!(
            out.starts_with("HTTP/1.1 200 OK\r\n"),
            "the probe got {out:?}"
        );
    }
}
