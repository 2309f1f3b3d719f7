//! `test-apiserver`: an HTTPS stand-in for kube-apiserver serving Leases, Endpoints and
//! EndpointSlices with the real server's semantics (bearer tokens, RBAC-style denials, one
//! global resourceVersion, optimistic concurrency, validation, watches), plus a request log
//! and fault injection for tests. This file owns the public API; see README.md for the
//! fidelity notes.
//!
//! Modules: `tls` (certificates), `http` (HTTP/1.1 framing), `server` (listeners,
//! connections, shared state), `api` (routing, auth, verbs), `watch` (watch streams),
//! `store` (objects, resourceVersion, history), `schema` (wire decoding), `protobuf`
//! (protobuf request bodies), `validate`
//! (defaulting and validation), `selector` (label/field selectors), `status` (error bodies),
//! `discovery` (what kubectl reads first), `table` (Tables for kubectl), `faults`, `hostile`
//! (the bodies of `Fault::Answer`), `timefmt`, `bookmarks` (when watches get one), `namespaces`
//! (which exist; NamespaceLifecycle admission), `events` (core/v1 Events).

mod api;
mod bookmarks;
mod discovery;
mod events;
mod faults;
mod hostile;
mod http;
mod namespaces;
mod protobuf;
mod schema;
mod selector;
mod server;
mod status;
mod store;
mod table;
mod timefmt;
mod tls;
mod validate;
mod watch;

use std::fs::{self, OpenOptions};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::Value;

pub use faults::{Body, Fault};
use server::Shared;
use status::Kind;

/// Start-up options.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Also listen on [::1] if the host supports IPv6.
    pub ipv6: bool,
    /// Append `<unix_ms> <verb> <code> <path>` per request to this file (no tokens).
    pub request_log_file: Option<PathBuf>,
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    /// When the request had been read.
    pub at: std::time::Instant,
    pub token: Option<String>,
    pub method: String,
    /// get | list | watch | create | update | delete (also patch/deletecollection; "" for
    /// unparsable requests).
    pub verb: String,
    /// Percent-decoded path.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// HTTP status; 0 when no response was sent (Hang, Reset). Watches log 200 when the
    /// stream starts.
    pub code: u16,
    /// leases | endpoints | endpointslices | events | "" (unknown path)
    pub resource: String,
}

/// A running server. Dropping it stops accepting and closes every connection.
pub struct ApiServer {
    shared: Arc<Shared>,
    ca_pem: String,
    port: u16,
    port_v6: Option<u16>,
    acceptors: Vec<JoinHandle<()>>,
}

/// The current time as a Kubernetes MicroTime (`2026-11-24T08:15:30.123456Z`).
pub fn micro_time_now() -> String {
    timefmt::format_micro(timefmt::now())
}

fn kind_of(resource: &str) -> Kind {
    Kind::from_resource(resource).unwrap_or_else(|| {
        panic!("test-apiserver: unknown resource {resource:?} (leases|endpoints|endpointslices|events)")
    })
}

impl ApiServer {
    /// Starts with default options; panics on failure (test helper).
    pub fn start() -> ApiServer {
        ApiServer::start_with(Options::default()).expect("start test apiserver")
    }

    pub fn start_with(opts: Options) -> io::Result<ApiServer> {
        Self::start_on(opts, 0)
    }

    /// Like `start_with`, on a fixed IPv4 port (0 = any).
    pub fn start_on(opts: Options, port: u16) -> io::Result<ApiServer> {
        let material = tls::generate()?;
        let log_file = match &opts.request_log_file {
            Some(p) => Some(OpenOptions::new().create(true).append(true).open(p)?),
            None => None,
        };
        let shared = Arc::new(Shared::new(material.config, log_file));
        let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
        let port = v4.local_addr()?.port();
        let mut acceptors = Vec::new();
        let mut port_v6 = None;
        if opts.ipv6 {
            let bound = TcpListener::bind((Ipv6Addr::LOCALHOST, port))
                .or_else(|_| TcpListener::bind((Ipv6Addr::LOCALHOST, 0)));
            if let Ok(l6) = bound {
                port_v6 = Some(l6.local_addr()?.port());
                let s = shared.clone();
                acceptors.push(
                    thread::Builder::new()
                        .name("apiserver-accept6".into())
                        .spawn(move || server::accept_loop(s, l6))?,
                );
            }
        }
        let s = shared.clone();
        acceptors.push(
            thread::Builder::new()
                .name("apiserver-accept".into())
                .spawn(move || server::accept_loop(s, v4))?,
        );
        Ok(ApiServer {
            shared,
            ca_pem: material.ca_pem,
            port,
            port_v6,
            acceptors,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn port_v6(&self) -> Option<u16> {
        self.port_v6
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// `https://[::1]:PORT` if the IPv6 listener is up.
    pub fn url_v6(&self) -> Option<String> {
        self.port_v6.map(|p| format!("https://[::1]:{p}"))
    }

    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// Writes `token`, `ca.crt` and `namespace` into `dir` (created if missing), like
    /// /var/run/secrets/kubernetes.io/serviceaccount. Does not register the token.
    pub fn write_service_account_dir(
        &self,
        dir: &Path,
        token: &str,
        namespace: &str,
    ) -> io::Result<()> {
        fs::create_dir_all(dir)?;
        fs::write(dir.join("token"), token)?;
        fs::write(dir.join("ca.crt"), &self.ca_pem)?;
        fs::write(dir.join("namespace"), namespace)?;
        Ok(())
    }

    /// Accepts `token` as `user` (e.g. "system:serviceaccount:default:replica-1").
    pub fn add_token(&self, token: &str, user: &str) {
        self.shared
            .lock()
            .tokens
            .insert(token.to_string(), user.to_string());
    }

    /// Later requests with `token` get 401.
    pub fn remove_token(&self, token: &str) {
        self.shared.lock().tokens.remove(token);
    }

    /// Denies `verb` on `resource` to `token` with a 403 (either may be "*").
    pub fn forbid(&self, token: &str, verb: &str, resource: &str) {
        self.shared
            .lock()
            .forbidden
            .insert((token.into(), verb.into(), resource.into()));
    }

    /// Undoes `forbid` (same arguments).
    pub fn allow(&self, token: &str, verb: &str, resource: &str) {
        self.shared
            .lock()
            .forbidden
            .remove(&(token.into(), verb.into(), resource.into()));
    }

    pub fn get_object(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let kind = kind_of(resource);
        self.shared.lock().store.get(kind, namespace, name).cloned()
    }

    /// Create-or-replace without validation or preconditions. Assigns a new resourceVersion;
    /// keeps the stored uid/creationTimestamp on replace, otherwise uses the given ones or
    /// assigns them; fills kind/apiVersion/namespace; emits ADDED/MODIFIED.
    pub fn put_object(&self, resource: &str, namespace: &str, mut obj: Value) -> Value {
        let kind = kind_of(resource);
        let mut g = self.shared.lock();
        let name = store::name_of(&obj).to_string();
        assert!(!name.is_empty(), "put_object: metadata.name is required");
        if let Some(old) = g.store.get(kind, namespace, &name) {
            for f in ["uid", "creationTimestamp"] {
                if let Some(v) = old.pointer(&format!("/metadata/{f}")).cloned() {
                    obj["metadata"][f] = v;
                }
            }
        }
        g.namespaces.add(namespace);
        let stored = g.store.write(kind, namespace, obj);
        drop(g);
        self.shared.cond.notify_all();
        stored
    }

    /// Makes namespace `ns` exist: creates and updates in it are admitted from now on.
    /// `default`, `kube-system`, `kube-public` and `kube-node-lease` exist from the start, and
    /// `put_object` declares the namespace it writes to.
    pub fn add_namespace(&self, ns: &str) {
        self.shared.lock().namespaces.add(ns);
    }

    /// Makes namespace `ns` not exist (its objects stay, unlike a real namespace deletion):
    /// creates and updates in it get 404 `namespaces "ns" not found` from now on.
    pub fn remove_namespace(&self, ns: &str) -> bool {
        self.shared.lock().namespaces.remove(ns)
    }

    /// Whether namespace `ns` exists.
    pub fn has_namespace(&self, ns: &str) -> bool {
        self.shared.lock().namespaces.exists(ns)
    }

    /// Deletes an object (emitting DELETED); false if it did not exist.
    pub fn delete_object(&self, resource: &str, namespace: &str, name: &str) -> bool {
        let kind = kind_of(resource);
        let deleted = self
            .shared
            .lock()
            .store
            .delete(kind, namespace, name)
            .is_some();
        self.shared.cond.notify_all();
        deleted
    }

    /// Objects of `resource` in `namespace`, by name.
    pub fn list_objects(&self, resource: &str, namespace: &str) -> Vec<Value> {
        let kind = kind_of(resource);
        self.shared
            .lock()
            .store
            .list(kind, namespace)
            .into_iter()
            .cloned()
            .collect()
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> String {
        self.shared.lock().store.current_rv().to_string()
    }

    /// How many TCP connections the server has accepted (refused ones not counted); lets
    /// tests check that a client reuses connections.
    pub fn connections_accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Forgets the watch history: a watch from any older resourceVersion gets a 410 ERROR
    /// event. Open watch streams are not affected.
    pub fn compact(&self) {
        self.shared.lock().store.compact();
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.lock().log.clone()
    }

    pub fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }

    pub fn set_fault(&self, fault: Fault) {
        self.shared.lock().faults.set_global(fault);
        self.shared.cond.notify_all();
    }

    pub fn set_token_fault(&self, token: &str, fault: Fault) {
        self.shared.lock().faults.set_token(token, fault);
        self.shared.cond.notify_all();
    }

    /// A fault for every request to `resource` ("events", "leases", ...), whatever its token;
    /// it wins over global and per-token faults. `Fault::None` removes it.
    pub fn set_resource_fault(&self, resource: &str, fault: Fault) {
        self.shared.lock().faults.set_resource(resource, fault);
        self.shared.cond.notify_all();
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
        self.shared.cond.notify_all();
    }

    /// Drops every open watch connection now, without ending the chunked body (like an
    /// apiserver restart).
    pub fn end_watches(&self) {
        self.shared.lock().store.end_watches(true);
    }

    /// Ends every open watch stream cleanly (terminating chunk, connection kept), like a
    /// watch reaching its timeout.
    pub fn finish_watches(&self) {
        self.shared.lock().store.end_watches(false);
    }

    /// Makes every open watch stream go quiet for good while its connection stays open, like
    /// a connection left half-open by a partition or a crashed apiserver: no more events, no
    /// bookmarks, no end at `timeoutSeconds`. Watches started afterwards work normally.
    pub fn silence_watches(&self) {
        self.shared.lock().store.silence_watches();
    }

    /// Makes every open watch stream lose all its events from now on while it keeps sending
    /// its BOOKMARKs (a watch broken somewhere between the store and us that still looks
    /// alive). Watches started afterwards work normally.
    pub fn drop_watch_events(&self) {
        self.shared.lock().store.drop_watch_events();
    }

    /// How often watches with `allowWatchBookmarks=true` get a BOOKMARK (default 60 s, as
    /// the watch cache does); besides, each such watch gets one 2 s before its
    /// `timeoutSeconds` ends it. Applies to watches started afterwards.
    pub fn set_bookmark_interval(&self, d: Duration) {
        self.shared.lock().bookmark_interval = d;
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.lock().store.end_watches(true);
        self.shared.cond.notify_all();
        // Wake the blocking accept() calls.
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)),
            Duration::from_millis(500),
        );
        if let Some(p) = self.port_v6 {
            let _ = TcpStream::connect_timeout(
                &SocketAddr::from((Ipv6Addr::LOCALHOST, p)),
                Duration::from_millis(500),
            );
        }
        for a in self.acceptors.drain(..) {
            let _ = a.join();
        }
        self.shared.close_all();
    }
}
