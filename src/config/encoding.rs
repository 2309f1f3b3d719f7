//! Values that are not UTF-8: every variable we read must be text. Without this check a
//! lookup that yields only UTF-8 would see such a value as unset and silently use the default.

use std::ffi::OsString;

use super::error::ConfigError;
use super::vars::ENABLED;

/// Checks that each of `names` that is set holds valid UTF-8; the first that does not is a
/// [`ConfigError`] showing its bytes escaped (`\xff`). [`ENABLED`] is skipped: any non-empty
/// value enables election, text or not.
pub fn check_utf8(
    names: impl IntoIterator<Item = &'static str>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<(), ConfigError> {
    for name in names.into_iter().filter(|n| *n != ENABLED) {
        if let Some(value) = env(name) {
            if value.to_str().is_none() {
                return Err(ConfigError {
                    variable: name,
                    value: Some(value),
                    problem: "the value is not valid UTF-8 text".into(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn names_the_first_non_utf8_variable_and_skips_enabled() {
        let env = |k: &str| match k {
            "A" => Some(OsString::from("fine")),
            "B" | ENABLED => Some(OsString::from_vec(vec![b'x', 0xff])),
            _ => None,
        };
        assert_eq!(check_utf8(["A", ENABLED, "C"], &env), Ok(()));
        let e = check_utf8(["A", "B", "C"], &env).expect_err("B is not UTF-8");
        assert_eq!(e.variable, "B");
        assert_eq!(
            e.to_string(),
            r#"B="x\xff" is invalid: the value is not valid UTF-8 text"#
        );
    }
}
