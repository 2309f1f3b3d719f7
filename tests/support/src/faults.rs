//! Fault injection: what a request (or a new connection) should suffer instead of, or before,
//! normal service. Faults are global or keyed by bearer token (to partition one replica).

use std::collections::HashMap;
use std::time::Duration;

/// A fault the server applies to new requests (existing watch streams are not affected;
/// use `ApiServer::end_watches` for those).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    #[default]
    None,
    /// Delay every response (and the start of watch streams) by this.
    Latency(Duration),
    /// Read the request, never answer; the connection stays open until the fault is cleared
    /// (then it is closed without an answer) or the server is dropped.
    Hang,
    /// Answer every request with this Status (e.g. 503, or 429 with `Retry-After` seconds).
    Status { code: u16, retry_after: Option<u64> },
    /// Close the TCP connection without answering (after reading the request).
    Reset,
    /// Close new connections right after accept, before TLS. As a per-token fault the token
    /// is only known after the request is read, so it then behaves like `Reset`.
    RefuseConnections,
    /// Answer every request with HTTP `code`, the extra `headers` and a hostile or broken
    /// `body` instead of serving it (a stand-in for a broken proxy or a compromised server;
    /// kube-apiserver never sends any of these). `{token}` in a header value is replaced by
    /// the request's bearer token. See `hostile.rs`.
    Answer {
        code: u16,
        headers: Vec<(String, String)>,
        body: Body,
    },
}

/// The body of a [`Fault::Answer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// This text, with every `{token}` replaced by the request's bearer token (to check that a
    /// client never logs what the server echoes). Sent with a Content-Length.
    Text(String),
    /// A Lease-shaped JSON object padded with a JSON array of zeros to exactly this many
    /// bytes (at least 80). Sent with a Content-Length.
    Huge(usize),
    /// A Lease-shaped JSON object of `size` bytes (at least one nest) whose padding array
    /// holds, side by side, arrays nested `depth` deep (`[[[...]]]`). Sent with a
    /// Content-Length.
    Nested { depth: usize, size: usize },
    /// A chunked body that never ends: `unit` repeated forever, written `chunk` bytes at a
    /// time with a pause of `every` before each chunk, until the client goes away, the fault
    /// is cleared or the server shuts down. `chunk: 1` with a pause drips; a watch-event line
    /// as `unit` with no pause floods a watch with events.
    Endless {
        unit: String,
        chunk: usize,
        every: Duration,
    },
}

#[derive(Default)]
pub struct Faults {
    global: Fault,
    per_token: HashMap<String, Fault>,
    /// Keyed by resource ("events"): wins over the others for requests to that resource.
    per_resource: HashMap<String, Fault>,
}

impl Faults {
    pub fn set_global(&mut self, f: Fault) {
        self.global = f;
    }

    pub fn set_token(&mut self, token: &str, f: Fault) {
        if f == Fault::None {
            self.per_token.remove(token);
        } else {
            self.per_token.insert(token.to_string(), f);
        }
    }

    pub fn clear(&mut self) {
        self.global = Fault::None;
        self.per_token.clear();
        self.per_resource.clear();
    }

    pub fn set_resource(&mut self, resource: &str, f: Fault) {
        if f == Fault::None {
            self.per_resource.remove(resource);
        } else {
            self.per_resource.insert(resource.to_string(), f);
        }
    }

    /// The fault for a request to `resource` carrying `token`: a per-resource fault wins,
    /// then a per-token one, then the global one.
    pub fn for_resource_request(&self, resource: &str, token: Option<&str>) -> Fault {
        match self.per_resource.get(resource) {
            Some(f) => f.clone(),
            None => self.for_request(token),
        }
    }

    pub fn global(&self) -> &Fault {
        &self.global
    }

    /// The fault for a request carrying `token`: a per-token fault wins over the global one.
    pub fn for_request(&self, token: Option<&str>) -> Fault {
        token
            .and_then(|t| self.per_token.get(t))
            .unwrap_or(&self.global)
            .clone()
    }
}
