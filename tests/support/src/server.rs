//! Listeners, connection threads and the state they share: accepts TCP connections (thread
//! per connection), applies `RefuseConnections`, runs the TLS handshake and the keep-alive
//! request loop, and tracks open sockets so dropping the server closes them all.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::api::{self, Outcome};
use crate::faults::{Fault, Faults};
use crate::http::{self, ConnBuf, ReadError};
use crate::namespaces::Namespaces;
use crate::status;
use crate::store::Store;
use crate::LoggedRequest;

pub type Tls = StreamOwned<ServerConnection, TcpStream>;

/// Everything requests read and write, behind one mutex (a test server needs no finer locks).
pub struct State {
    pub store: Store,
    /// token -> user name
    pub tokens: HashMap<String, String>,
    /// (token, verb, resource) denied by "RBAC"; "*" matches any verb/resource.
    pub forbidden: HashSet<(String, String, String)>,
    pub faults: Faults,
    pub log: Vec<LoggedRequest>,
    pub bookmark_interval: Duration,
    /// The namespaces that exist (NamespaceLifecycle).
    pub namespaces: Namespaces,
}

pub struct Shared {
    state: Mutex<State>,
    /// Notified on every store write, fault change, and shutdown.
    pub cond: Condvar,
    pub shutdown: AtomicBool,
    pub tls: Arc<ServerConfig>,
    conns: Mutex<HashMap<u64, TcpStream>>,
    next_conn: AtomicU64,
    /// TCP connections accepted (and not refused) so far.
    pub accepted: AtomicU64,
    log_file: Option<Mutex<File>>,
}

impl Shared {
    pub fn new(tls: Arc<ServerConfig>, log_file: Option<File>) -> Shared {
        Shared {
            state: Mutex::new(State {
                store: Store::default(),
                tokens: HashMap::new(),
                forbidden: HashSet::new(),
                faults: Faults::default(),
                log: Vec::new(),
                bookmark_interval: Duration::from_secs(60),
                namespaces: Namespaces::default(),
            }),
            cond: Condvar::new(),
            shutdown: AtomicBool::new(false),
            tls,
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            accepted: AtomicU64::new(0),
            log_file: log_file.map(Mutex::new),
        }
    }

    /// Locks the state, recovering from poisoning (a panicking test must not wedge the server).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Waits (releasing the lock) until `done` holds, the deadline passes, or shutdown.
    /// Returns the guard and whether `done` held.
    pub fn wait_until<'a>(
        &'a self,
        mut g: MutexGuard<'a, State>,
        deadline: Option<Instant>,
        mut done: impl FnMut(&State) -> bool,
    ) -> (MutexGuard<'a, State>, bool) {
        loop {
            if done(&g) {
                return (g, true);
            }
            if self.is_shutdown() {
                return (g, false);
            }
            let timeout = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(t) if !t.is_zero() => t,
                    _ => return (g, false),
                },
                None => Duration::from_secs(3600),
            };
            g = self
                .cond
                .wait_timeout(g, timeout)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Sleeps for `d` unless the server shuts down first.
    pub fn sleep(&self, d: Duration) {
        let g = self.lock();
        let _ = self.wait_until(g, Some(Instant::now() + d), |_| false);
    }

    pub fn record(&self, entry: LoggedRequest) {
        if let Some(f) = &self.log_file {
            let ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            let line = format!("{ms} {} {} {}\n", entry.verb, entry.code, entry.path);
            let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
            let _ = f.write_all(line.as_bytes());
        }
        self.lock().log.push(entry);
    }

    /// Closes every open connection (used on drop).
    pub fn close_all(&self) {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        for c in conns.values() {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

/// Accepts until shutdown; each connection gets its own thread.
pub fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    for tcp in listener.incoming() {
        if shared.is_shutdown() {
            break;
        }
        let Ok(tcp) = tcp else {
            // EMFILE and friends: back off briefly instead of spinning
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        if *shared.lock().faults.global() == Fault::RefuseConnections {
            let _ = tcp.shutdown(Shutdown::Both);
            continue;
        }
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let s = shared.clone();
        let spawned = thread::Builder::new()
            .name("apiserver-conn".into())
            .spawn(move || serve_connection(s, tcp));
        if spawned.is_err() {
            thread::sleep(Duration::from_millis(10));
        }
    }
}

fn serve_connection(shared: Arc<Shared>, tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    match tcp.try_clone() {
        Ok(c) => {
            shared
                .conns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, c);
        }
        Err(_) => return,
    }
    // Re-check after registering: a drop racing with accept must still close us.
    if !shared.is_shutdown() {
        if let Ok(conn) = ServerConnection::new(shared.tls.clone()) {
            let mut tls = StreamOwned::new(conn, tcp);
            if connection_loop(&shared, &mut tls) {
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
            let _ = tls.sock.shutdown(Shutdown::Both);
        }
    }
    shared
        .conns
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
}

/// Serves requests until the connection should close; returns whether to close gracefully.
fn connection_loop(shared: &Shared, tls: &mut Tls) -> bool {
    let mut buf = ConnBuf::default();
    loop {
        if shared.is_shutdown() {
            return false;
        }
        let req = match buf.read_request(tls) {
            Ok(r) => r,
            Err(ReadError::Bad(code, msg)) => {
                let e = status::ApiError::new(
                    code,
                    if code == 413 {
                        "RequestEntityTooLarge"
                    } else {
                        "BadRequest"
                    },
                    &msg,
                    None,
                );
                let body = serde_json::to_vec(&e.body).unwrap_or_default();
                shared.record(LoggedRequest {
                    at: Instant::now(),
                    token: None,
                    method: String::new(),
                    verb: String::new(),
                    path: String::new(),
                    query: String::new(),
                    code,
                    resource: String::new(),
                });
                let _ = http::write_response(tls, code, &[], &body, false);
                return true;
            }
            Err(ReadError::Closed) => return true,
            Err(ReadError::Io) => return false,
        };
        match api::handle(shared, tls, req) {
            Outcome::KeepAlive => {}
            Outcome::Close => return true,
            Outcome::Abort => return false,
        }
    }
}
