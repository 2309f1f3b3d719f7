//! Starting CMD: the fork/exec of [`Supervisor::spawn`] in election mode (CMD gets the clean
//! process state of the parent module's docs), the plain [`exec`] of passthrough mode (CMD
//! keeps the state we inherited), [`check_command`] before an election, and [`SpawnError`] for
//! a CMD that cannot be started. The code that runs between fork and exec lives in `sys`.
//! `spawn` waits for the exec only until a deadline (a slow exec must not hold up the main
//! thread's deadline checks), so it does the PATH search itself, before the fork; `exec` and
//! `check_command` use the same search.

use crate::clock::BootInstant;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::atomic::Ordering;

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
    /// `PR_SET_PDEATHSIG = SIGKILL`, and its own process group (given the terminal's
    /// foreground if ours had it, as tini does), in both signal-target modes. Call from the
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
        let (pid, report) = sys::fork_exec(&image, self.pid).map_err(fail)?;
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
        if self.target == SignalTarget::Group {
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
/// looked up in PATH); same PID, no fork. CMD inherits the process state we were started with,
/// as after a plain `execve`: ignored signals, the signal mask, stdio, environment (SIGPIPE,
/// which [`init_process`](super::init_process) ignores, goes back to what it was). Returns
/// only on failure.
pub fn exec(argv: &[OsString]) -> SpawnError {
    let Some(program) = argv.first() else {
        return SpawnError::Other(
            String::new(),
            io::Error::new(io::ErrorKind::InvalidInput, "empty command"),
        );
    };
    let path = std::env::var_os("PATH");
    let paths = exec_paths(program, path.as_deref());
    if paths.is_empty() {
        return SpawnError::classify(program, io::Error::from_raw_os_error(sys::ENOENT));
    }
    let image = match sys::ExecImage::new(&paths, argv, std::env::vars_os()) {
        Ok(image) => image,
        Err(err) => return SpawnError::classify(program, err),
    };
    let restore_sigpipe = !super::SIGPIPE_WAS_IGNORED.load(Ordering::Relaxed);
    SpawnError::classify(program, sys::exec_in_place(&image, restore_sigpipe))
}

/// Election mode, before anything else: can CMD be started at all? `argv[0]` is looked up like
/// `execvp` would (the same PATH search as [`Supervisor::spawn`]): `NotFound` (127) when no
/// candidate exists, `NotExecutable` (126) when one exists but is not an executable file (a
/// directory, no execute permission, a `noexec` mount) and none is. Like tini, a CMD missing at
/// start is an error even if it could appear later: better one clear line now than winning
/// the election and failing then.
pub fn check_command(argv: &[OsString]) -> Result<(), SpawnError> {
    let Some(program) = argv.first() else {
        return Err(SpawnError::Other(
            String::new(),
            io::Error::new(io::ErrorKind::InvalidInput, "empty command"),
        ));
    };
    let path = std::env::var_os("PATH");
    let mut seen_eacces = false;
    // As execvp: the last candidate's error, unless one of them was there but not executable.
    let mut errno = sys::ENOENT;
    for candidate in exec_paths(program, path.as_deref()) {
        match std::fs::metadata(&candidate) {
            Ok(meta) if meta.is_file() => match sys::access_executable(&candidate) {
                Ok(()) => return Ok(()),
                Err(err) if err.raw_os_error() == Some(sys::EACCES) => seen_eacces = true,
                Err(err) => return Err(SpawnError::classify(program, err)),
            },
            // A directory, a FIFO, a device: execve says EACCES.
            Ok(_) => seen_eacces = true,
            Err(err) => match err.raw_os_error() {
                Some(sys::EACCES) => seen_eacces = true,
                // Not there (or a path component is no directory): try the next.
                Some(e @ (sys::ENOENT | sys::ENOTDIR)) => errno = e,
                _ => return Err(SpawnError::classify(program, err)),
            },
        }
    }
    let errno = if seen_eacces { sys::EACCES } else { errno };
    Err(SpawnError::classify(
        program,
        io::Error::from_raw_os_error(errno),
    ))
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
    fn check_command_finds_what_execve_would_refuse() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("k8s-ae-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = |name: &str, mode: u32| {
            let path = dir.join(name);
            std::fs::write(&path, "#!/bin/sh\n").expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            OsString::from(path)
        };
        let check = |program: OsString| check_command(&[program]).map_err(|e| e.exit_code());
        assert_eq!(check(file("runs", 0o755)), Ok(()));
        assert_eq!(check(file("plain", 0o644)), Err(126));
        assert_eq!(check(dir.clone().into_os_string()), Err(126));
        assert_eq!(check(dir.join("missing").into_os_string()), Err(127));
        // A path through a regular file: ENOTDIR, 126 as when execve says so.
        assert_eq!(check(dir.join("runs/x").into_os_string()), Err(126));
        assert!(matches!(check_command(&[]), Err(SpawnError::Other(..))));
        let _ = std::fs::remove_dir_all(&dir);
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
