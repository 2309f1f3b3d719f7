//! Status error bodies: any body with any HTTP status code and any `Retry-After` maps to an
//! [`Error`] without panicking; the error keeps the code, and 429 keeps a numeric Retry-After.
#![no_main]

use k8s_await_election::kube::{from_response, parse_retry_after, Error};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let code = 100 + u16::from_le_bytes([data[0], data[1]]) % 500;
    let split = usize::from(data[2]).min(data.len() - 3);
    let (header, body) = data[3..].split_at(split);
    let retry_after = parse_retry_after(&String::from_utf8_lossy(header));
    let e = from_response(code, body, retry_after);
    assert_eq!(e.status_code(), Some(code), "{e:?}");
    if code == 429 {
        assert_eq!(e.retry_after(), retry_after);
    }
    let _ = e.is_transient();
    let _ = e.to_string();
    assert!(!matches!(
        e,
        Error::Timeout | Error::Transport(_) | Error::Tls(_)
    ));
});
