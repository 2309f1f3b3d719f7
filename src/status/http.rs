//! HTTP/1.x on the wire: parsing a request head ([`parse_head`] into a [`Request`]) and the
//! bytes of a [`Response`].
//!
//! Pure functions over byte buffers; no sockets, no clock, no election. The parser never
//! panics on any input and refuses garbage with a status code rather than an error.

/// Largest request head (request line and headers) we accept.
pub const MAX_HEAD: usize = 8 * 1024;

/// The parts of a request we look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method token as sent (`GET`, `HEAD`, …; case-sensitive).
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
    /// A complete, acceptable request head.
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
    /// The status code.
    pub code: u16,
    /// The `Content-Type` header value.
    pub content_type: &'static str,
    /// The body (left out of the bytes for `HEAD`; `Content-Length` always counts it).
    pub body: String,
    /// Extra header lines (without CRLF).
    pub headers: Vec<String>,
}

/// The content type of JSON bodies.
pub(super) const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

impl Response {
    /// A plain-text response with no extra headers.
    pub(super) fn text(code: u16, body: &str) -> Response {
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

/// The reason phrase for the status codes we send.
pub(super) fn reason(code: u16) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::req;
    use super::*;

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
}
