//! A minimal HTTP/1.1 layer over any byte stream (the TLS stream in practice): request
//! parsing with Content-Length or chunked bodies and keep-alive, plain JSON responses with
//! Content-Length, and chunked streaming responses for watches. Malformed input is reported
//! as `ReadError::Bad`, never a panic.

use std::io::{self, Read, Write};

/// Largest request body accepted (the real apiserver's limit is 3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;
const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Percent-decoded path.
    pub path: String,
    /// Raw query string (without `?`).
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// HTTP/1.1 without `Connection: close`.
    pub keep_alive: bool,
}

#[derive(Debug)]
pub enum ReadError {
    /// Clean EOF between requests.
    Closed,
    Io,
    /// Malformed request: answer 400 (or the given code) and close.
    Bad(u16, String),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Io
    }
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All values of a query parameter, percent-decoded (`+` is a space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k, true).as_deref() == Some(name))
                .then(|| percent_decode(v, true))
                .flatten()
        })
    }

    pub fn bearer_token(&self) -> Option<String> {
        let v = self.header("authorization")?.trim();
        let (scheme, tok) = v.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let tok = tok.trim();
        (!tok.is_empty()).then(|| tok.to_string())
    }
}

pub fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Buffered reader state for one connection (bytes read past the current request stay here).
#[derive(Default)]
pub struct ConnBuf {
    buf: Vec<u8>,
}

impl ConnBuf {
    fn fill<S: Read>(&mut self, s: &mut S) -> io::Result<usize> {
        let mut tmp = [0u8; 16 * 1024];
        let n = s.read(&mut tmp)?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    /// Takes exactly `n` bytes, reading more as needed.
    fn take<S: Read>(&mut self, s: &mut S, n: usize) -> Result<Vec<u8>, ReadError> {
        while self.buf.len() < n {
            if self.fill(s)? == 0 {
                return Err(ReadError::Bad(400, "unexpected EOF in body".into()));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Takes one CRLF-terminated line (without the CRLF).
    fn line<S: Read>(&mut self, s: &mut S) -> Result<String, ReadError> {
        loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let l: Vec<u8> = self.buf.drain(..p + 2).take(p).collect();
                return String::from_utf8(l).map_err(|_| ReadError::Bad(400, "bad line".into()));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(ReadError::Bad(400, "line too long".into()));
            }
            if self.fill(s)? == 0 {
                return Err(ReadError::Bad(400, "unexpected EOF".into()));
            }
        }
    }

    /// Reads one request. Returns `Closed` on EOF before any byte of a request.
    pub fn read_request<S: Read + Write>(&mut self, s: &mut S) -> Result<Request, ReadError> {
        let end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(ReadError::Bad(431, "request header too large".into()));
            }
            let n = match self.fill(s) {
                Ok(n) => n,
                Err(e) if self.buf.is_empty() => {
                    return Err(if is_eof_like(&e) {
                        ReadError::Closed
                    } else {
                        ReadError::Io
                    })
                }
                Err(_) => return Err(ReadError::Io),
            };
            if n == 0 {
                return Err(if self.buf.is_empty() {
                    ReadError::Closed
                } else {
                    ReadError::Bad(400, "unexpected EOF in request head".into())
                });
            }
        };
        let head: Vec<u8> = self.buf.drain(..end + 4).collect();
        let head = String::from_utf8(head)
            .map_err(|_| ReadError::Bad(400, "request head is not UTF-8".into()))?;
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or("");
        let mut parts = request_line.split(' ');
        let (method, target, version) =
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(m), Some(t), Some(v), None) if !m.is_empty() && t.starts_with('/') => {
                    (m, t, v)
                }
                _ => {
                    return Err(ReadError::Bad(
                        400,
                        format!("malformed request line {request_line:?}"),
                    ))
                }
            };
        if !method.bytes().all(|c| c.is_ascii_uppercase()) {
            return Err(ReadError::Bad(400, "malformed method".into()));
        }
        let http11 = match version {
            "HTTP/1.1" => true,
            "HTTP/1.0" => false,
            _ => return Err(ReadError::Bad(505, "unsupported HTTP version".into())),
        };
        let mut headers = Vec::new();
        for l in lines {
            if l.is_empty() {
                continue;
            }
            let Some((k, v)) = l.split_once(':') else {
                return Err(ReadError::Bad(400, format!("malformed header line {l:?}")));
            };
            if k.is_empty() || k.contains(' ') {
                return Err(ReadError::Bad(400, format!("malformed header name {k:?}")));
            }
            headers.push((k.to_string(), v.trim().to_string()));
        }
        let (raw_path, query) = target.split_once('?').unwrap_or((target, ""));
        let path = percent_decode(raw_path, false)
            .ok_or_else(|| ReadError::Bad(400, "bad percent-encoding in path".into()))?;
        let mut req = Request {
            method: method.to_string(),
            path,
            query: query.to_string(),
            headers,
            body: Vec::new(),
            keep_alive: http11,
        };
        if let Some(c) = req.header("connection") {
            let c = c.to_ascii_lowercase();
            if c.contains("close") {
                req.keep_alive = false;
            } else if c.contains("keep-alive") {
                req.keep_alive = true;
            }
        }
        if req
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
            && http11
        {
            s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            s.flush()?;
        }
        let chunked = req
            .header("transfer-encoding")
            .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
        if chunked {
            req.body = self.read_chunked(s)?;
        } else if let Some(cl) = req.header("content-length") {
            let n: usize = cl
                .parse()
                .map_err(|_| ReadError::Bad(400, format!("bad Content-Length {cl:?}")))?;
            if n > MAX_BODY {
                return Err(ReadError::Bad(413, "request body too large".into()));
            }
            req.body = self.take(s, n)?;
        }
        Ok(req)
    }

    fn read_chunked<S: Read>(&mut self, s: &mut S) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        loop {
            let line = self.line(s)?;
            let size_str = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_str, 16)
                .map_err(|_| ReadError::Bad(400, format!("bad chunk size {size_str:?}")))?;
            if body.len() + size > MAX_BODY {
                return Err(ReadError::Bad(413, "request body too large".into()));
            }
            if size == 0 {
                // trailers until an empty line
                while !self.line(s)?.is_empty() {}
                return Ok(body);
            }
            body.extend(self.take(s, size)?);
            if !self.take(s, 2)?.eq(b"\r\n") {
                return Err(ReadError::Bad(400, "missing CRLF after chunk".into()));
            }
        }
    }
}

fn is_eof_like(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::NotConnected
    )
}

pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        410 => "Gone",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

fn head(code: u16, headers: &[(String, String)], keep_alive: bool) -> String {
    let mut h = format!("HTTP/1.1 {code} {}\r\n", reason_phrase(code));
    h.push_str("Content-Type: application/json\r\nCache-Control: no-cache, private\r\n");
    h.push_str(&format!("Audit-Id: {}\r\n", crate::timefmt::new_uid()));
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    if !keep_alive {
        h.push_str("Connection: close\r\n");
    }
    h
}

/// Writes a complete response with a Content-Length body.
pub fn write_response<W: Write>(
    w: &mut W,
    code: u16,
    headers: &[(String, String)],
    body: &[u8],
    keep_alive: bool,
) -> io::Result<()> {
    let mut out = head(code, headers, keep_alive);
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    w.write_all(&bytes)?;
    w.flush()
}

/// Starts a chunked (streaming) 200 response.
pub fn write_chunked_head<W: Write>(w: &mut W, headers: &[(String, String)]) -> io::Result<()> {
    write_chunked_head_code(w, 200, headers)
}

/// Starts a chunked (streaming) response with status `code`.
pub fn write_chunked_head_code<W: Write>(
    w: &mut W,
    code: u16,
    headers: &[(String, String)],
) -> io::Result<()> {
    let mut out = head(code, headers, true);
    out.push_str("Transfer-Encoding: chunked\r\n\r\n");
    w.write_all(out.as_bytes())?;
    w.flush()
}

pub fn write_chunk<W: Write>(w: &mut W, data: &[u8]) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    w.write_all(&out)?;
    w.flush()
}

pub fn finish_chunked<W: Write>(w: &mut W) -> io::Result<()> {
    w.write_all(b"0\r\n\r\n")?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Duplex<'a> {
        input: &'a [u8],
        output: Vec<u8>,
    }
    impl Read for Duplex<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }
    impl Write for Duplex<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    fn duplex(input: &[u8]) -> Duplex<'_> {
        Duplex {
            input,
            output: Vec::new(),
        }
    }

    #[test]
    fn parses_pipelined_and_chunked() {
        let raw = b"POST /a?x=1&y=a%3Db HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n{}GET /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        let mut s = duplex(raw);
        let mut c = ConnBuf::default();
        let r = c.read_request(&mut s).unwrap();
        assert_eq!(r.body, b"{}");
        assert_eq!(s.output, b"HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!(r.query_param("y").as_deref(), Some("a=b"));
        let r = c.read_request(&mut s).unwrap();
        assert_eq!(r.body, b"abc");
        assert!(!r.keep_alive);
        assert!(matches!(c.read_request(&mut s), Err(ReadError::Closed)));
        let mut s = duplex(b"garbage\r\n\r\n");
        assert!(matches!(
            ConnBuf::default().read_request(&mut s),
            Err(ReadError::Bad(400, _))
        ));
    }
}
