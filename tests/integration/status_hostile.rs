//! The status endpoint under 1,000 hostile connections of each kind (idle, a byte a second,
//! a head announcing a body that never comes, a connect flood): probes of `/status` and
//! `/metrics` are answered, the leader's threads and memory stay bounded, and its Lease keeps
//! being renewed. (Latency figures: `scripts/bench.sh`.)

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::procs::status_field;
use crate::status::{addr, free_port, request, status_doc};
use crate::wait::wait_for;

/// Hostile connections held open at once.
const HOSTILE: usize = 1000;
/// Probes of each path per kind.
const PROBES: usize = 10;
/// The leader may gain this many threads under attack (none expected: one server thread
/// serves every connection; a thread per connection would add up to its cap).
const EXTRA_THREADS: usize = 2;
/// The leader's resident memory may grow this much under attack (the connection cap times a
/// small buffer, in a debug build).
const EXTRA_RSS_KIB: u64 = 6 * 1024;

/// What the hostile clients do.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Connect and send nothing.
    Idle,
    /// Send a request head one byte a second, never finishing it.
    Drip,
    /// Send a complete head announcing a body (`Content-Length: 1`), then nothing; never read.
    BodyNeverComes,
    /// Replace the oldest of the open connections with a new one, as fast as possible.
    ConnectFlood,
}

const DRIP_HEAD: &[u8] = b"GET /status HTTP/1.1\r\nHost: x\r\nX-Slow: ";
const BODY_HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n";

/// A thread keeping [`HOSTILE`] connections of one kind open to the endpoint, reconnecting
/// those the server closes.
struct Attack {
    stop: Arc<AtomicBool>,
    /// Connections open now.
    open: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Attack {
    fn start(kind: Kind, port: u16) -> Attack {
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(AtomicUsize::new(0));
        let (s, o) = (Arc::clone(&stop), Arc::clone(&open));
        let thread = std::thread::spawn(move || attack(kind, port, &s, &o));
        Attack {
            stop,
            open,
            thread: Some(thread),
        }
    }
}

impl Drop for Attack {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A new hostile connection, its first bytes sent; None if the connect fails.
fn hostile_conn(kind: Kind, port: u16) -> Option<TcpStream> {
    let mut s = TcpStream::connect_timeout(&addr(port), Duration::from_secs(1)).ok()?;
    match kind {
        Kind::Drip => s.write_all(&DRIP_HEAD[..1]).ok()?,
        Kind::BodyNeverComes => s.write_all(BODY_HEAD).ok()?,
        Kind::Idle | Kind::ConnectFlood => {}
    }
    s.set_nonblocking(true).ok()?;
    Some(s)
}

/// False once the server closed `s` (what it sent is read and ignored).
fn alive(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

fn attack(kind: Kind, port: u16, stop: &AtomicBool, open: &AtomicUsize) {
    let mut conns: Vec<Option<TcpStream>> = (0..HOSTILE).map(|_| None).collect();
    // Bytes of the endless drip head sent on each connection.
    let mut dripped = vec![1usize; HOSTILE];
    let mut next = 0;
    let mut last_drip = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if let Kind::ConnectFlood = kind {
            conns[next] = hostile_conn(kind, port);
            next = (next + 1) % HOSTILE;
        } else {
            let drip = matches!(kind, Kind::Drip) && last_drip.elapsed() >= Duration::from_secs(1);
            if drip {
                last_drip = Instant::now();
            }
            for (slot, sent) in conns.iter_mut().zip(dripped.iter_mut()) {
                let dead = match slot {
                    Some(s) if drip => {
                        let byte = DRIP_HEAD.get(*sent).copied().unwrap_or(b'a');
                        *sent += 1;
                        s.write_all(&[byte]).is_err() || !alive(s)
                    }
                    Some(s) => !alive(s),
                    None => true,
                };
                if dead {
                    *slot = hostile_conn(kind, port);
                    *sent = 1;
                }
                if stop.load(Ordering::SeqCst) {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        open.store(conns.iter().flatten().count(), Ordering::SeqCst);
    }
}

/// (Threads, VmRSS in KiB) of `pid`.
fn threads_and_rss(pid: u32) -> (usize, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let threads = status_field(&text, "Threads")
        .and_then(|v| v.parse().ok())
        .expect("Threads");
    let rss = status_field(&text, "VmRSS")
        .and_then(|v| v.trim_end_matches(" kB").parse().ok())
        .expect("VmRSS");
    (threads, rss)
}

/// Raises this process's soft descriptor limit to the hard one: the attack needs 1,000.
#[allow(unsafe_code)]
fn raise_nofile_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of each call; setrlimit only
    // reads it.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    assert!(
        lim.rlim_cur >= 2 * HOSTILE as u64,
        "the hard descriptor limit {} is too low for this test",
        lim.rlim_max
    );
}

/// The Lease's `renewTime`.
fn renew_time(c: &Cluster) -> String {
    c.lease()
        .and_then(|l| l.pointer("/spec/renewTime")?.as_str().map(String::from))
        .unwrap_or_default()
}

#[test]
fn a_thousand_hostile_connections_of_any_kind_lock_no_probe_out() {
    raise_nofile_limit();
    let c = Cluster::new("status-hostile");
    let port = free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let a = c.replica(
        "a",
        None,
        &[("K8S_AWAIT_ELECTION_STATUS_ENDPOINT", &endpoint)],
    );
    wait_for("a to lead", Duration::from_secs(10), || {
        status_doc(port).filter(|d| d["leading"] == true)
    });
    let (threads0, rss0) = threads_and_rss(a.pid());

    for kind in [
        Kind::BodyNeverComes,
        Kind::ConnectFlood,
        Kind::Idle,
        Kind::Drip,
    ] {
        let renewed_before = renew_time(&c);
        let attack = Attack::start(kind, port);
        wait_for(
            &format!("{HOSTILE} {kind:?} connections"),
            Duration::from_secs(30),
            || (attack.open.load(Ordering::SeqCst) >= HOSTILE).then_some(()),
        );
        let mut slowest = Duration::ZERO;
        let mut peak = (0, 0);
        for _ in 0..PROBES {
            for path in ["/status", "/metrics"] {
                let t = Instant::now();
                let answer = request(port, "GET", path);
                slowest = slowest.max(t.elapsed());
                let (code, body) = answer.unwrap_or_else(|| {
                    panic!("{kind:?}: GET {path} not answered within 2 s\n{}", c.dump())
                });
                assert_eq!(code, 200, "{kind:?}: GET {path}: {body}");
                if path == "/status" {
                    let doc: serde_json::Value = serde_json::from_str(&body).expect("JSON");
                    assert_eq!(doc["leading"], true, "{kind:?}: {doc}");
                } else {
                    assert!(
                        body.contains("leader_election_master_status{name=\"test\"} 1\n"),
                        "{kind:?}: {body}"
                    );
                }
                let (threads, rss) = threads_and_rss(a.pid());
                peak = (peak.0.max(threads), peak.1.max(rss));
            }
        }
        // Renewals go on under attack.
        wait_for(
            &format!("a renewal during the {kind:?} attack"),
            Duration::from_secs(5),
            || (renew_time(&c) != renewed_before).then_some(()),
        );
        drop(attack);
        eprintln!(
            "{kind:?}: slowest probe {slowest:?}; peak threads {} (idle {threads0}), \
             peak VmRSS {} KiB (idle {rss0} KiB)",
            peak.0, peak.1
        );
        assert!(
            peak.0 <= threads0 + EXTRA_THREADS,
            "{kind:?}: {} threads under attack, {threads0} before",
            peak.0
        );
        assert!(
            peak.1 <= rss0 + EXTRA_RSS_KIB,
            "{kind:?}: VmRSS {} KiB under attack, {rss0} KiB before",
            peak.1
        );
    }
    assert_eq!(c.holder().as_deref(), Some("a"));
    assert_eq!(c.starts(), ["a"], "CMD ran once throughout");
}
