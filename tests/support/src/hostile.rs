//! The answers of [`Fault::Answer`](crate::Fault::Answer): echoed tokens, oversized and deeply
//! nested bodies, and chunked bodies that never end (fast, dripping, or a flood of watch
//! events). Nothing here is what kube-apiserver would send; it is what a client must survive.

use std::io::Write;
use std::time::Duration;

use crate::api::Outcome;
use crate::faults::{Body, Fault};
use crate::http;
use crate::server::{Shared, Tls};

/// The bytes of a body with a known length, `{token}` replaced by `token` and
/// `{token-escaped}` by `token` with every character a JSON `\uXXXX` escape.
pub fn fixed_body(body: &Body, token: &str) -> Option<Vec<u8>> {
    match body {
        Body::Text(t) => {
            let escaped: String = token
                .encode_utf16()
                .map(|u| format!("\\u{u:04x}"))
                .collect();
            let text = t.replace("{token-escaped}", &escaped);
            Some(text.replace("{token}", token).into_bytes())
        }
        Body::Huge(n) => Some(padded(*n, b"0", b"0,")),
        Body::Nested { depth, size } => {
            let mut nest = vec![b'['; *depth];
            nest.extend(std::iter::repeat_n(b']', *depth));
            let mut more = nest.clone();
            more.push(b',');
            Some(padded(*size, &nest, &more))
        }
        Body::Endless { .. } => None,
    }
}

/// A Lease-shaped object of exactly `n` bytes (or its smallest form, with one `last`): a
/// `padding` array of `item,` repeated, then `last` (`item` without its comma), then spaces.
fn padded(n: usize, last: &[u8], item: &[u8]) -> Vec<u8> {
    let head = br#"{"kind":"Lease","apiVersion":"coordination.k8s.io/v1","metadata":{"name":"x"},"padding":["#;
    let mut b = head.to_vec();
    while b.len() + item.len() + last.len() + 2 <= n {
        b.extend_from_slice(item);
    }
    b.extend_from_slice(last);
    b.extend_from_slice(b"]}");
    if b.len() < n {
        b.resize(n, b' ');
    }
    b
}

/// Answers the request with `code`, `headers` and `body` (token: the request's bearer token).
pub fn answer(
    shared: &Shared,
    tls: &mut Tls,
    code: u16,
    headers: &[(String, String)],
    body: &Body,
    token: &str,
) -> Outcome {
    let current = Fault::Answer {
        code,
        headers: headers.to_vec(),
        body: body.clone(),
    };
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.clone(), v.replace("{token}", token)))
        .collect();
    if let Some(bytes) = fixed_body(body, token) {
        return match http::write_response(tls, code, &headers, &bytes, false) {
            Ok(()) => Outcome::Close,
            Err(_) => Outcome::Abort,
        };
    }
    let Body::Endless { unit, chunk, every } = body else {
        return Outcome::Abort;
    };
    if http::write_chunked_head_code(tls, code, &headers).is_err() {
        return Outcome::Abort;
    }
    let unit = unit.as_bytes();
    let chunk = (*chunk).max(1);
    let mut offset = 0;
    let mut buf = Vec::with_capacity(chunk);
    loop {
        if shared.is_shutdown() || shared.lock().faults.for_request(Some(token)) != current {
            return Outcome::Abort;
        }
        if *every > Duration::ZERO {
            shared.sleep(*every);
        }
        buf.clear();
        while buf.len() < chunk && !unit.is_empty() {
            let take = (chunk - buf.len()).min(unit.len() - offset);
            buf.extend_from_slice(&unit[offset..offset + take]);
            offset = (offset + take) % unit.len();
        }
        if http::write_chunk(tls, &buf).is_err() || tls.flush().is_err() {
            return Outcome::Abort;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_and_nested_have_the_asked_size_and_are_json() {
        let smallest = padded(0, b"0", b"0,").len();
        for n in [0, 100, 101, 1000, 4097] {
            let b = fixed_body(&Body::Huge(n), "").unwrap();
            assert_eq!(b.len(), n.max(smallest), "size {n}");
            let v: serde_json::Value = serde_json::from_slice(&b).expect("json");
            assert_eq!(v["kind"], "Lease");
            let b = fixed_body(&Body::Nested { depth: 3, size: n }, "").unwrap();
            assert_eq!(b.len(), n.max(smallest + 5), "size {n}");
            let v: serde_json::Value = serde_json::from_slice(&b).expect("json");
            assert_eq!(v["padding"][0][0][0], serde_json::json!([]));
        }
    }

    #[test]
    fn text_echoes_the_token() {
        let b = fixed_body(&Body::Text("a {token} b".into()), "tok").unwrap();
        assert_eq!(b, b"a tok b");
    }
}
