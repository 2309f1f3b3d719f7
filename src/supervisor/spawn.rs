//! Starting CMD: the fork/exec of [`Supervisor::spawn`] in election mode, the plain [`exec`] of
//! passthrough mode, and [`SpawnError`] for a CMD that cannot be started. Both give CMD the
//! clean process state of the parent module's docs; the code that runs between fork and exec
//! lives in `sys`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
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
    /// Start CMD (`argv[0]` looked up in PATH) with a clean process state: every signal
    /// disposition `SIG_DFL`, an empty signal mask, inherited stdio and environment,
    /// `PR_SET_PDEATHSIG = SIGKILL`, and in `Group` mode its own process group. Call from the
    /// main thread (the parent-death signal is tied to the forking thread). At most one CMD at a
    /// time: spawning while one runs, or before its exit was reported, is an error.
    pub fn spawn(&mut self, argv: &[OsString]) -> Result<u32, SpawnError> {
        let Some((program, args)) = argv.split_first() else {
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

        let group = self.target == SignalTarget::Group;
        let mut cmd = Command::new(program);
        cmd.args(args);
        sys::on_exec_restore_clean_state(&mut cmd, group, Some(self.pid));
        let child = cmd.spawn().map_err(|e| SpawnError::classify(program, e))?;
        // Dropping `child` neither waits nor kills: we reap with waitpid(-1) ourselves.
        let pid = child.id();
        drop(child);
        self.child = Some(Running {
            pid: pid as sys::Pid,
        });
        if group {
            self.last_pgid = Some(pid as sys::Pid);
        }
        log::info!("started CMD (pid {pid})");
        Ok(pid)
    }
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
