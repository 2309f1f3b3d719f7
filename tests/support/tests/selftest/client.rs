//! A raw rustls + HTTP/1.1 client for pinning the server's wire behaviour (headers, chunked
//! watch streams, resets, keep-alive), plus the helpers the other modules share.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::{pem::PemObject, CertificateDer, ServerName};
use serde_json::{json, Value};
use test_apiserver::ApiServer;

pub const NS: &str = "default";
pub const TOKEN: &str = "token-1";
pub const USER: &str = "system:serviceaccount:default:replica-1";
pub const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
pub const ENDPOINTS: &str = "/api/v1/namespaces/default/endpoints";
pub const SLICES: &str = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";

/// A server with TOKEN registered as USER.
pub fn server() -> ApiServer {
    let s = ApiServer::start();
    s.add_token(TOKEN, USER);
    s
}

pub fn client_config(ca_pem: &str) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

#[derive(Debug)]
pub struct Resp {
    pub code: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Client {
    pub stream: StreamOwned<ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(srv: &ApiServer) -> Client {
        Client::try_connect(
            &srv.ca_pem(),
            SocketAddr::from(([127, 0, 0, 1], srv.port())),
        )
        .unwrap()
    }

    pub fn try_connect(ca_pem: &str, addr: SocketAddr) -> io::Result<Client> {
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let name = ServerName::IpAddress(addr.ip().into());
        let conn = ClientConnection::new(client_config(ca_pem), name).map_err(io::Error::other)?;
        let mut stream = StreamOwned::new(conn, tcp);
        // complete the handshake now so TLS errors surface here
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(Client {
            stream,
            buf: Vec::new(),
        })
    }

    pub fn set_timeout(&mut self, d: Duration) {
        self.stream.sock.set_read_timeout(Some(d)).unwrap();
    }

    /// Sends a request; `body` is sent as JSON with `Content-Type: application/json` unless
    /// `headers` already sets a Content-Type (use ("Content-Type", "") to send none).
    pub fn send(
        &mut self,
        method: &str,
        target: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> io::Result<()> {
        let mut req = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        if let Some(t) = token {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        let has_ct = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        for (k, v) in headers {
            if !v.is_empty() {
                req.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        if let Some(b) = body {
            if !has_ct {
                req.push_str("Content-Type: application/json\r\n");
            }
            req.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        if let Some(b) = body {
            bytes.extend_from_slice(b);
        }
        self.stream.write_all(&bytes)?;
        self.stream.flush()
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut tmp = [0u8; 8192];
        let n = self.stream.read(&mut tmp)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "eof"));
        }
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(())
    }

    fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let l: Vec<u8> = self.buf.drain(..p + 2).take(p).collect();
                return Ok(String::from_utf8(l).unwrap());
            }
            self.fill()?;
        }
    }

    fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            self.fill()?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Reads the status line and headers.
    pub fn read_head(&mut self) -> io::Result<(u16, Vec<(String, String)>)> {
        let status = self.line()?;
        let code: u16 = status
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status:?}"));
        let mut headers = Vec::new();
        loop {
            let l = self.line()?;
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap();
            headers.push((k.to_string(), v.trim().to_string()));
        }
        Ok((code, headers))
    }

    /// Reads one chunk of a chunked body; None at the terminating chunk.
    pub fn read_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        let size = usize::from_str_radix(self.line()?.trim(), 16).unwrap();
        if size == 0 {
            self.line()?;
            return Ok(None);
        }
        let data = self.take(size)?;
        self.take(2)?;
        Ok(Some(data))
    }

    pub fn read_response(&mut self) -> io::Result<Resp> {
        let (code, headers) = self.read_head()?;
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        let body = if get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            let mut b = Vec::new();
            while let Some(c) = self.read_chunk()? {
                b.extend(c);
            }
            b
        } else {
            let n: usize = get("content-length").map_or(0, |v| v.parse().unwrap());
            self.take(n)?
        };
        Ok(Resp {
            code,
            headers,
            body,
        })
    }

    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let b = body.map(|v| serde_json::to_vec(v).unwrap());
        self.send(method, target, token, b.as_deref(), &[]).unwrap();
        self.read_response().unwrap()
    }

    /// Starts a watch and returns the response head.
    pub fn watch(&mut self, target: &str, token: &str) -> (u16, Vec<(String, String)>) {
        self.send("GET", target, Some(token), None, &[]).unwrap();
        self.read_head().unwrap()
    }

    /// The next watch event, None when the stream ended cleanly.
    pub fn next_event(&mut self) -> io::Result<Option<Value>> {
        Ok(self.read_chunk()?.map(|c| {
            assert_eq!(c.last(), Some(&b'\n'), "one event per line");
            serde_json::from_slice(&c).unwrap()
        }))
    }
}

/// One-shot request on a fresh connection.
pub fn call(srv: &ApiServer, method: &str, target: &str, body: Option<&Value>) -> Resp {
    Client::connect(srv).request(method, target, Some(TOKEN), body)
}

pub fn lease(name: &str, holder: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "acquireTime": "2026-11-24T08:15:30.123456Z",
            "renewTime": "2026-11-24T08:15:30.123456Z",
            "leaseTransitions": 0
        }
    })
}

pub fn rv(obj: &Value) -> String {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Polls `f` until it returns Some, or panics after `secs`.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// (code, reason, message) of a `Status` answer, checking that it is one.
pub fn status_of(r: &Resp) -> (u16, String, String) {
    let j = r.json();
    assert_eq!(j["kind"], "Status", "{j}");
    assert_eq!(j["code"], r.code, "{j}");
    (
        r.code,
        j["reason"].as_str().unwrap_or("").into(),
        j["message"].as_str().unwrap_or("").into(),
    )
}
