//! [`ConfigError`]: a bad or missing variable, named with its value, in one line.

use std::fmt;

/// A configuration problem: the variable, the offending value, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable's name.
    pub variable: &'static str,
    /// The value as given (`None` when the variable is missing).
    pub value: Option<String>,
    /// What is wrong, and what was expected.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            None => write!(f, "{} is not set: {}", self.variable, self.problem),
            Some(v) => write!(f, "{}={:?} is invalid: {}", self.variable, v, self.problem),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The error for `variable` set to `value`.
pub(super) fn bad(variable: &'static str, value: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        value: Some(value.to_string()),
        problem: problem.into(),
    }
}
