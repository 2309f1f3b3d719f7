//! Server `Warning` headers (RFC 9111 §5.5, as Kubernetes sends them): the texts, and which
//! of them are new, so each is logged once.

use std::collections::HashSet;
use std::sync::Mutex;

use ureq::http;

/// Distinct `Warning` texts remembered (so each is logged once); beyond this we stop logging.
const MAX_REMEMBERED_WARNINGS: usize = 256;

/// The texts of a `Warning` header value: `299 - "text"[, 299 - "text2"]`. A value that does
/// not follow the format is returned whole.
fn parse_warning_texts(value: &str) -> Vec<String> {
    // Split on commas outside quoted strings, then take each element's first quoted string
    // (warn-code SP warn-agent SP "text" [SP "date"]).
    let mut texts = Vec::new();
    let mut current: Option<String> = None; // the first quoted text of this element
    let mut in_quote = false;
    let mut quote_index = 0; // quoted strings seen in this element
    let mut buf = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if in_quote {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        buf.push(n);
                    }
                }
                '"' => {
                    in_quote = false;
                    if quote_index == 0 {
                        current = Some(std::mem::take(&mut buf));
                    }
                    buf.clear();
                    quote_index += 1;
                }
                c => buf.push(c),
            }
        } else {
            match c {
                '"' => in_quote = true,
                ',' => {
                    texts.extend(current.take());
                    quote_index = 0;
                }
                _ => {}
            }
        }
    }
    if !in_quote {
        texts.extend(current.take());
    }
    if texts.is_empty() && !value.trim().is_empty() {
        texts.push(value.trim().to_string());
    }
    texts
}

/// The `Warning` texts in `headers` not seen before (remembering them in `seen`).
pub(super) fn new_warnings(
    seen: &Mutex<HashSet<String>>,
    headers: &http::HeaderMap,
) -> Vec<String> {
    let mut fresh = Vec::new();
    for value in headers.get_all(http::header::WARNING) {
        let Ok(value) = value.to_str() else { continue };
        for text in parse_warning_texts(value) {
            let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.len() < MAX_REMEMBERED_WARNINGS && seen.insert(text.clone()) {
                fresh.push(text);
            }
        }
    }
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_header_texts() {
        assert_eq!(
            parse_warning_texts(
                r#"299 - "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice""#
            ),
            vec!["v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"]
        );
        assert_eq!(
            parse_warning_texts(r#"299 - "a, b", 299 - "say \"hi\"""#),
            vec!["a, b", r#"say "hi""#]
        );
        assert_eq!(
            parse_warning_texts(r#"299 - "x" "Sat, 01 Jan 2000 00:00:00 GMT", 299 - "y""#),
            vec!["x", "y"]
        );
        assert_eq!(parse_warning_texts("free text"), vec!["free text"]);
    }
    #[test]
    fn each_warning_is_reported_once() {
        let seen = Mutex::new(HashSet::new());
        let mut h = http::HeaderMap::new();
        h.append(
            http::header::WARNING,
            http::HeaderValue::from_static(r#"299 - "a""#),
        );
        h.append(
            http::header::WARNING,
            http::HeaderValue::from_static(r#"299 - "b", 299 - "a""#),
        );
        assert_eq!(new_warnings(&seen, &h), vec!["a", "b"]);
        assert!(new_warnings(&seen, &h).is_empty());
    }
}
