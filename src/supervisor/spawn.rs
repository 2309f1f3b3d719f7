//! Starting CMD: the fork/exec of [`Supervisor::spawn`] in election mode, the plain [`exec`] of
//! passthrough mode, and [`SpawnError`] for a CMD that cannot be started. Both give CMD the
//! clean process state of the parent module's docs; the code that runs between fork and exec
//! lives in `sys`. `spawn` waits for the exec only until a deadline (a slow exec must not hold
//! up the main thread's deadline checks), so it does the PATH search itself, before the fork.

use crate::clock::BootInstant;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::process::Command;

use super::sys;
use super::{Running, SignalTarget, Supervisor};

/// CMD could not be started.
#[derive(Debug)]
pub enum SpawnError {
    /// `argv[0]` was not found (not in PATH, or the path does not exist). Exit code 127.
    NotFound(String),
    /// `argv[0]` exists but cannot be executed (permissions, a directory, bad format). Exit 126.
    NotExecutable(String),
    /// Anything else: (`argv[0]`, cause). Exit code 126.
    Other(String, io::Error),
}

impl SpawnError {
    /// The shell's convention: 127 for "command not found", 126 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            SpawnError::NotFound(_) => 127,
            SpawnError::NotExecutable(_) | SpawnError::Other(..) => 126,
        }
    }

    fn classify(argv0: &OsStr, err: io::Error) -> SpawnError {
        let name = argv0.to_string_lossy().into_owned();
        match err.raw_os_error() {
            Some(sys::ENOENT) => SpawnError::NotFound(name),
            Some(sys::EACCES) | Some(sys::ENOEXEC) | Some(sys::EISDIR) | Some(sys::EPERM) => {
                SpawnError::NotExecutable(name)
            }
            _ => SpawnError::Other(name, err),
        }
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::NotFound(cmd) if cmd.contains('/') => {
                write!(f, "cannot run CMD {cmd:?}: no such file")
            }
            SpawnError::NotFound(cmd) => {
                write!(f, "cannot run CMD {cmd:?}: not found in PATH")
            }
            SpawnError::NotExecutable(cmd) => {
                write!(
                    f,
                    "cannot run CMD {cmd:?}: not executable (permission denied or not a program)"
                )
            }
            SpawnError::Other(cmd, err) => write!(f, "cannot run CMD {cmd:?}: {err}"),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpawnError::Other(_, err) => Some(err),
            _ => None,
        }
    }
}

impl Supervisor {
    /// Start CMD (`argv[0]` looked up in PATH, like `execvp`) with a clean process state: every
    /// signal disposition `SIG_DFL`, an empty signal mask, inherited stdio and environment,
    /// `PR_SET_PDEATHSIG = SIGKILL`, and in `Group` mode its own process group. Call from the
    /// main thread (the parent-death signal is tied to the forking thread). At most one CMD at a
    /// time: spawning while one runs, or before its exit was reported, is an error.
    ///
    /// Waits for the exec until `deadline` at most (`None`: as long as it takes), so that a
    /// slow exec (slow storage) cannot hold up the caller's own deadlines: an exec still
    /// pending then counts as started, and CMD is ours to stop like any other. If that exec
    /// fails after all, CMD exits with 127 and the reason is logged when it is reaped.
    pub fn spawn(
        &mut self,
        argv: &[OsString],
        deadline: Option<BootInstant>,
    ) -> Result<u32, SpawnError> {
        let Some(program) = argv.first() else {
            return Err(SpawnError::Other(
                String::new(),
                io::Error::new(io::ErrorKind::InvalidInput, "empty command"),
            ));
        };
        if self.child.is_some() || self.exited.is_some() {
            return Err(SpawnError::Other(
                program.to_string_lossy().into_owned(),
                io::Error::other("a CMD is already running (or its exit was not collected)"),
            ));
        }
        let fail = |err| SpawnError::classify(program, err);

        // Everything the child needs is made before the fork: it may not allocate.
        let path = std::env::var_os("PATH");
        let paths = exec_paths(program, path.as_deref());
        if paths.is_empty() {
            return Err(fail(io::Error::from_raw_os_error(sys::ENOENT)));
        }
        let image = sys::ExecImage::new(&paths, argv, std::env::vars_os()).map_err(fail)?;
        let group = self.target == SignalTarget::Group;
        let (pid, report) = sys::fork_exec(&image, group, self.pid).map_err(fail)?;
        // The report is awaited on the monotonic clock: the wait is short, and converted from
        // the boot-time deadline only now.
        let wait_until = deadline.map(|d| std::time::Instant::now() + d.remaining());
        let exec = match report.wait(wait_until) {
            sys::ExecOutcome::Started => None,
            sys::ExecOutcome::Failed(err) => {
                // The child exits right after its report.
                if let Err(e) = sys::reap_child(pid) {
                    log::warn!("cannot reap the failed CMD (pid {pid}): {e}");
                }
                return Err(fail(err));
            }
            sys::ExecOutcome::Pending => {
                log::warn!(
                    "CMD (pid {pid}) is still being exec'd at the deadline; not waiting any longer"
                );
                Some(PendingExec {
                    report,
                    program: program.clone(),
                })
            }
        };
        self.child = Some(Running { pid, exec });
        if group {
            self.last_pgid = Some(pid);
        }
        log::info!(pid = pid; "started CMD (pid {pid})");
        Ok(pid as u32)
    }
}

/// The exec of a CMD that [`Supervisor::spawn`] stopped waiting for: the pipe on which the
/// child reports it, and the program's name for the message.
#[derive(Debug)]
pub(super) struct PendingExec {
    report: sys::ExecReport,
    program: OsString,
}

impl PendingExec {
    /// CMD has exited: log why its exec failed, if it did (then it exited with 127).
    pub(super) fn after_exit(self) {
        if let sys::ExecOutcome::Failed(err) = self.report.wait(Some(std::time::Instant::now())) {
            let err = SpawnError::classify(&self.program, err);
            log::error!("{err} (the exec failed after the start stopped waiting)");
        }
    }
}

/// The paths `execvp` would try for `program`, in order: `program` itself when it names a
/// path (has a `/`), otherwise `program` in each directory of `path` (the PATH value; unset:
/// glibc's default), an empty directory meaning the current one. None for an empty `program`.
fn exec_paths(program: &OsStr, path: Option<&OsStr>) -> Vec<OsString> {
    let name = program.as_bytes();
    if name.is_empty() {
        return Vec::new();
    }
    if name.contains(&b'/') {
        return vec![program.to_owned()];
    }
    let path = path.map_or(sys::DEFAULT_PATH.as_bytes(), OsStr::as_bytes);
    path.split(|&b| b == b':')
        .map(|dir| {
            let mut candidate = dir.to_vec();
            if !dir.is_empty() {
                candidate.push(b'/');
            }
            candidate.extend_from_slice(name);
            OsString::from_vec(candidate)
        })
        .collect()
}

/// Passthrough mode (no election): replace this process with CMD, `execvp` style (`argv[0]`
/// looked up in PATH); same PID, no fork. CMD gets the same clean signal state as in election
/// mode (dispositions `SIG_DFL`, empty mask). Returns only on failure.
pub fn exec(argv: &[OsString]) -> SpawnError {
    let Some((program, args)) = argv.split_first() else {
        return SpawnError::Other(
            String::new(),
            io::Error::new(io::ErrorKind::InvalidInput, "empty command"),
        );
    };
    let mut cmd = Command::new(program);
    cmd.args(args);
    // No fork: the setup runs in this process right before execvp, and sets no parent-death
    // signal.
    sys::on_exec_restore_clean_state(&mut cmd, false, None);
    let err = cmd.exec();
    // Still here: exec failed after our dispositions were reset. Ignore SIGPIPE so reporting
    // the error cannot kill us on a closed pipe.
    let _ = sys::ignore_signal(sys::SIGPIPE);
    SpawnError::classify(program, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(program: &str, path: Option<&str>) -> Vec<OsString> {
        exec_paths(program.as_ref(), path.map(OsStr::new))
    }

    #[test]
    fn exec_paths_like_execvp() {
        assert_eq!(paths("/bin/true", Some("/x")), ["/bin/true"]);
        assert_eq!(paths("./run", None), ["./run"]);
        assert_eq!(paths("sh", Some("/a:/b/")), ["/a/sh", "/b//sh"]);
        // An empty entry is the current directory.
        assert_eq!(paths("sh", Some(":/a")), ["sh", "/a/sh"]);
        assert_eq!(paths("sh", Some("")), ["sh"]);
        assert_eq!(paths("sh", None), ["/bin/sh", "/usr/bin/sh"]);
        assert!(paths("", Some("/a")).is_empty());
    }

    #[test]
    fn spawn_error_codes_and_messages() {
        let nf = SpawnError::classify("nope".as_ref(), io::Error::from_raw_os_error(sys::ENOENT));
        assert_eq!(nf.exit_code(), 127);
        assert_eq!(nf.to_string(), "cannot run CMD \"nope\": not found in PATH");
        let ne = SpawnError::classify("/x".as_ref(), io::Error::from_raw_os_error(sys::EACCES));
        assert!(matches!(ne, SpawnError::NotExecutable(_)));
        assert_eq!(ne.exit_code(), 126);
        let other = SpawnError::classify("x".as_ref(), io::Error::from_raw_os_error(sys::E2BIG));
        assert!(matches!(other, SpawnError::Other(..)));
        assert_eq!(other.exit_code(), 126);
        assert!(!other.to_string().contains('\n'));
    }
}
