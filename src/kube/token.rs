//! The bearer token: read from the service-account `token` file, re-read as the kubelet
//! rotates it (at least once a minute, and at once after a 401), never logged.
//!
//! [`Token`] is the only type holding the secret; its `Debug` shows `<redacted>` and it has no
//! `Display`. A file that is briefly empty, missing or unreadable (the kubelet swaps a `..data`
//! symlink) keeps the last good token.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::error::Error;
use super::json;
use super::small_file;

/// How long a token read from the file is used before the file is read again. client-go
/// re-reads once a minute; we stay just under that.
pub(crate) const REFRESH_INTERVAL: Duration = Duration::from_secs(50);

/// A bearer token. Cloning is cheap enough (tokens are ~1 KB) and keeps locking short.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Token(String);

impl Token {
    /// The secret itself, for the `Authorization` header and for redaction only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Longest token file we read: a service-account token is about 1 KiB, a projected one a
/// few; anything beyond this is not a token.
pub(crate) const MAX_TOKEN_BYTES: u64 = 64 * 1024;

/// `text` with every occurrence of `secret` replaced by `<redacted>` (`text` itself when
/// `secret` is empty or absent).
pub(crate) fn redact_text(text: String, secret: &str) -> String {
    if secret.is_empty() || !text.contains(secret) {
        return text;
    }
    text.replace(secret, "<redacted>")
}

/// True if the answer `bytes` holds `secret` (non-empty), as is or in JSON string escapes
/// (`\u0041`, `\/`) that decoding would turn into it. Text with a backslash gets a second
/// look at its decoded strings and keys, within the bounds of [`json::check`] (anything
/// beyond them is refused when decoded anyway).
pub(crate) fn answer_holds(bytes: &[u8], secret: &str) -> bool {
    if secret.is_empty() {
        return false;
    }
    String::from_utf8_lossy(bytes).contains(secret)
        || (bytes.contains(&b'\\') && json::strings_contain(bytes, secret))
}

/// Why a token file could not be used.
#[derive(Debug)]
pub(crate) enum ReadError {
    File(small_file::ReadError),
    Empty,
    BadCharacters,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::File(e) => write!(f, "{e}"),
            ReadError::Empty => f.write_str("the file is empty"),
            ReadError::BadCharacters => {
                f.write_str("the file holds characters that cannot be sent in an HTTP header")
            }
        }
    }
}

/// Reads and validates a token file: a regular file of at most [`MAX_TOKEN_BYTES`] (a FIFO
/// or a device is refused without waiting on it); surrounding whitespace (the trailing
/// newline) is dropped; what remains must be non-empty visible ASCII.
pub(crate) fn read_token_file(path: &Path) -> Result<Token, ReadError> {
    let raw = small_file::read(path, MAX_TOKEN_BYTES).map_err(ReadError::File)?;
    let text = String::from_utf8(raw).map_err(|_| ReadError::BadCharacters)?;
    let token = text.trim();
    if token.is_empty() {
        return Err(ReadError::Empty);
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ReadError::BadCharacters);
    }
    Ok(Token(token.to_string()))
}

/// Reads the token file once at start-up, turning failure into an actionable config error.
pub(crate) fn read_initial(path: &Path) -> Result<Token, Error> {
    read_token_file(path).map_err(|e| {
        Error::Config(format!(
            "cannot use the service-account token {}: {e}; mount a service-account token \
             (automountServiceAccountToken must not be false) or set \
             K8S_AWAIT_ELECTION_SERVICEACCOUNT_DIR to a directory holding token, ca.crt \
             and namespace",
            path.display()
        ))
    })
}

struct State {
    token: Token,
    read_at: Instant,
    /// Whether we already warned about the current run of failed re-reads.
    warned: bool,
}

/// The rotating token of one client.
pub(crate) struct TokenSource {
    path: PathBuf,
    refresh: Duration,
    state: Mutex<State>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("path", &self.path)
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    pub(crate) fn new(path: PathBuf, initial: Token, refresh: Duration) -> TokenSource {
        TokenSource {
            path,
            refresh,
            state: Mutex::new(State {
                token: initial,
                read_at: Instant::now(),
                warned: false,
            }),
        }
    }

    /// The token to send now, re-reading the file if the last read is older than the
    /// refresh interval.
    pub(crate) fn current(&self) -> Token {
        let mut st = self.lock();
        if st.read_at.elapsed() >= self.refresh {
            self.reread(&mut st);
        }
        st.token.clone()
    }

    /// Re-reads the file now (after a 401). Returns the token to use from now on.
    pub(crate) fn reload(&self) -> Token {
        let mut st = self.lock();
        self.reread(&mut st);
        st.token.clone()
    }

    fn reread(&self, st: &mut State) {
        // A failed read is retried on the next refresh, not on every request.
        st.read_at = Instant::now();
        match read_token_file(&self.path) {
            Ok(t) => {
                if t != st.token {
                    log::debug!("service-account token changed on disk; using the new one");
                }
                st.token = t;
                st.warned = false;
            }
            Err(e) => {
                if !st.warned {
                    log::warn!(
                        "cannot re-read the service-account token {}: {e}; keeping the last good one",
                        self.path.display()
                    );
                    st.warned = true;
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave State inconsistent (plain assignments).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn answers_holding_the_token_as_is_or_escaped() {
        let secret = "abc.d/ef";
        // (answer, holds the token)
        let cases: [(&str, bool); 7] = [
            (r#"{"a":"abc.d/ef"}"#, true),
            (r#"{"a":"\u0061bc.d\/ef"}"#, true),
            (r#"{"\u0061bc.d/ef":1}"#, true),
            (r#"{"a":"abc.d\/eg"}"#, false),
            (r#"{"a":"\u0061bc"}"#, false),
            (r"not json \u0061bc.d/ef", false),
            ("plain abc.d/ef text", true),
        ];
        for (answer, holds) in cases {
            assert_eq!(answer_holds(answer.as_bytes(), secret), holds, "{answer}");
        }
        assert!(!answer_holds(b"anything", ""));
        // Beyond the value bound it is not decoded at all (decoding refuses it anyway).
        let huge = format!(r#"[{}"\u0061bc.d/ef"]"#, "0,".repeat(json::MAX_VALUES));
        assert!(!answer_holds(huge.as_bytes(), secret));
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "kube-token-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn reads_and_trims() {
        let d = temp_dir("trim");
        let p = d.join("token");
        fs::write(&p, "abc.def-ghi\n").unwrap();
        assert_eq!(read_token_file(&p).unwrap().expose(), "abc.def-ghi");
        fs::write(&p, "  \n").unwrap();
        assert!(matches!(read_token_file(&p), Err(ReadError::Empty)));
        fs::write(&p, "a b").unwrap();
        assert!(matches!(read_token_file(&p), Err(ReadError::BadCharacters)));
        fs::write(&p, [0xff, 0xfe]).unwrap();
        assert!(matches!(read_token_file(&p), Err(ReadError::BadCharacters)));
        fs::remove_file(&p).unwrap();
        assert!(matches!(read_token_file(&p), Err(ReadError::File(_))));
        let e = read_initial(&p).unwrap_err();
        assert!(matches!(&e, Error::Config(m) if m.contains("token")));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn debug_never_shows_the_token() {
        let t = Token("super-secret-token".into());
        let src = TokenSource::new("/x/token".into(), t.clone(), REFRESH_INTERVAL);
        let shown = format!("{t:?} {src:?}");
        assert!(!shown.contains("super-secret"), "{shown}");
    }

    #[test]
    fn rotation_and_keeping_last_good() {
        let d = temp_dir("rotate");
        let p = d.join("token");
        fs::write(&p, "one").unwrap();
        let initial = read_token_file(&p).unwrap();

        // Long refresh: current() keeps the cached token even though the file changed.
        let slow = TokenSource::new(p.clone(), initial.clone(), Duration::from_secs(3600));
        fs::write(&p, "two").unwrap();
        assert_eq!(slow.current().expose(), "one");
        // ...but a reload (after a 401) picks up the new one at once.
        assert_eq!(slow.reload().expose(), "two");

        // Zero refresh: every current() re-reads.
        let fast = TokenSource::new(p.clone(), initial, Duration::ZERO);
        assert_eq!(fast.current().expose(), "two");
        fs::write(&p, "").unwrap();
        assert_eq!(fast.current().expose(), "two", "empty file keeps last good");
        fs::remove_file(&p).unwrap();
        assert_eq!(
            fast.current().expose(),
            "two",
            "missing file keeps last good"
        );
        fs::write(&p, "three\n").unwrap();
        assert_eq!(fast.current().expose(), "three");
        // A rotation to a FIFO nobody writes, a device or a huge file neither hangs nor
        // fills memory: the last good token stays.
        fs::remove_file(&p).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(&p)
            .status()
            .unwrap();
        assert!(made.success());
        assert_eq!(fast.current().expose(), "three", "FIFO keeps last good");
        fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
        assert_eq!(
            fast.current().expose(),
            "three",
            "/dev/zero keeps last good"
        );
        fs::remove_file(&p).unwrap();
        fs::write(&p, vec![b'a'; MAX_TOKEN_BYTES as usize + 1]).unwrap();
        assert_eq!(
            fast.current().expose(),
            "three",
            "oversized keeps last good"
        );
        fs::write(&p, vec![b'a'; MAX_TOKEN_BYTES as usize]).unwrap();
        assert_eq!(fast.current().expose().len(), MAX_TOKEN_BYTES as usize);
        fs::remove_dir_all(&d).unwrap();
    }
}
