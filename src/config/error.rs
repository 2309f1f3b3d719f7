//! [`ConfigError`]: a bad or missing variable, named with its value, in one line.

use std::ffi::{OsStr, OsString};
use std::fmt;

/// A configuration problem: the variable, the offending value, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable's name.
    pub variable: &'static str,
    /// The value as given (`None` when the variable is missing); it may not be UTF-8.
    pub value: Option<OsString>,
    /// What is wrong, and what was expected.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            None => write!(f, "{} is not set: {}", self.variable, self.problem),
            Some(v) => write!(
                f,
                "{}={} is invalid: {}",
                self.variable,
                quoted(v),
                self.problem
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// `value` in double quotes, escaped as Rust's `{:?}` escapes a string, with each byte that
/// is not part of valid UTF-8 shown as `\xNN`: always one printable line.
pub fn quoted(value: &OsStr) -> String {
    let mut out = String::from("\"");
    for chunk in value.as_encoded_bytes().utf8_chunks() {
        out.extend(chunk.valid().chars().flat_map(char::escape_debug));
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

/// The error for `variable` set to `value`.
pub(super) fn bad(variable: &'static str, value: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        value: Some(value.into()),
        problem: problem.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn quoting_escapes_controls_and_bad_bytes() {
        let cases: &[(&[u8], &str)] = &[
            (b"abc", r#""abc""#),
            (b"\xff", r#""\xff""#),
            (b"a\xc3b", r#""a\xc3b""#),
            ("é\n\"".as_bytes(), r#""é\n\"""#),
        ];
        for (raw, shown) in cases {
            assert_eq!(quoted(OsStr::from_bytes(raw)), *shown);
        }
    }
}
