//! Kubernetes name rules for the names we are given: DNS-1123 labels and subdomains,
//! DNS-1035 labels (Service names).

use super::error::{bad, ConfigError};

/// A DNS-1123 label: 1-63 lowercase letters, digits or '-', not starting or ending with '-'.
pub(super) fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

pub(super) fn check_dns1123_label(variable: &'static str, s: &str) -> Result<(), ConfigError> {
    if is_dns1123_label(s) {
        Ok(())
    } else {
        Err(bad(
            variable,
            s,
            "expected a DNS-1123 label: at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit",
        ))
    }
}

pub(super) fn check_dns1035_label(variable: &'static str, s: &str) -> Result<(), ConfigError> {
    if is_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase() {
        Ok(())
    } else {
        Err(bad(
            variable,
            s,
            "expected a DNS-1035 label: at most 63 lowercase letters, digits or '-', starting with a letter and ending with a letter or digit",
        ))
    }
}

pub(super) fn check_dns1123_subdomain(variable: &'static str, s: &str) -> Result<(), ConfigError> {
    if s.len() <= 253 && s.split('.').all(is_dns1123_label) {
        Ok(())
    } else {
        Err(bad(
            variable,
            s,
            "expected a DNS-1123 subdomain: at most 253 lowercase letters, digits, '-' or '.', each dot-separated part starting and ending with a letter or digit",
        ))
    }
}
