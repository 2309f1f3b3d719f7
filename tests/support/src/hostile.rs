//! The answers of [`Fault::Answer`](crate::Fault::Answer): echoed tokens, oversized and deeply
//! nested bodies, and chunked bodies that never end (fast, dripping, or a flood of watch
//! events). Nothing here is what kube-apiserver would send; it is what a client must survive.

use std::io::Write;
use std::time::Duration;

use crate::api::Outcome;
use crate::faults::{Body, Fault};
use crate::http;
use crate::server::{Shared, Tls};

/// The bytes of a body with a known length, `{token}` replaced by `token`.
pub fn fixed_body(body: &Body, token: &str) -> Option<Vec<u8>> {
    match body {
        Body::Text(t) => Some(t.replace("{token}", token).into_bytes()),
        Body::Huge(n) => Some(huge(*n)),
        Body::Nested(n) => {
            let mut b = vec![b'['; *n];
            b.extend(std::iter::repeat_n(b']', *n));
            Some(b)
        }
        Body::Endless { .. } => None,
    }
}

/// A Lease-shaped object of exactly `n` bytes (at least the bytes of its fixed part).
fn huge(n: usize) -> Vec<u8> {
    let head = br#"{"kind":"Lease","apiVersion":"coordination.k8s.io/v1","metadata":{"name":"x"},"padding":["#;
    let mut b = head.to_vec();
    let zeros = n.saturating_sub(head.len() + 2);
    // "0,0,...,0" takes 2k - 1 bytes for k zeros; pad an odd remainder with a space.
    let k = zeros.div_ceil(2);
    for i in 0..k {
        b.extend_from_slice(if i + 1 == k { b"0" } else { b"0," });
    }
    if k > 0 && zeros % 2 == 0 {
        b.push(b' ');
    }
    b.extend_from_slice(b"]}");
    b
}

/// Answers the request with `code` and `body` (token: the request's bearer token).
pub fn answer(shared: &Shared, tls: &mut Tls, code: u16, body: &Body, token: &str) -> Outcome {
    if let Some(bytes) = fixed_body(body, token) {
        return match http::write_response(tls, code, &[], &bytes, false) {
            Ok(()) => Outcome::Close,
            Err(_) => Outcome::Abort,
        };
    }
    let Body::Endless { unit, chunk, every } = body else {
        return Outcome::Abort;
    };
    if http::write_chunked_head_code(tls, code, &[]).is_err() {
        return Outcome::Abort;
    }
    let current = Fault::Answer {
        code,
        body: body.clone(),
    };
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
    fn huge_has_the_asked_size_and_is_json() {
        for n in [0, 100, 101, 1000, 4097] {
            let b = huge(n);
            assert_eq!(b.len(), n.max(huge(0).len()), "size {n}");
            let v: serde_json::Value = serde_json::from_slice(&b).expect("json");
            assert_eq!(v["kind"], "Lease");
        }
    }

    #[test]
    fn text_echoes_the_token() {
        let b = fixed_body(&Body::Text("a {token} b".into()), "tok").unwrap();
        assert_eq!(b, b"a tok b");
        assert_eq!(fixed_body(&Body::Nested(2), "").unwrap(), b"[[]]");
    }
}
