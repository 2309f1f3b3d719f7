//! Starting CMD: fork, then `execve` in the child, which reports the outcome on a close-on-exec
//! pipe. The parent waits for that report only as long as it may (`spawn`): unlike
//! `std::process::Command::spawn`, a slow exec cannot hold up the main thread.
//!
//! [`ExecImage`] is everything the child needs, made before the fork; [`fork_exec`] forks and
//! execs it; [`ExecReport`] is the read end of the report pipe; [`reap_child`] reaps a child
//! whose exec failed. [`exec_in_place`] is the passthrough exec: the same PATH search in this
//! process, without fork and without touching the inherited signal state. Between fork and
//! exec: only async-signal-safe raw syscalls.

use std::ffi::{CStr, CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::time::Instant;

use super::{cvt, Pid};

/// Runs in the forked child between fork and exec: only async-signal-safe raw syscalls, no
/// allocation, no locks. The parent-death signal (given that `parent` is our parent's pid),
/// every disposition `SIG_DFL`, an empty signal mask.
fn child_setup(parent: libc::pid_t, rtmax: libc::c_int) -> io::Result<()> {
    // SAFETY: all calls are async-signal-safe libc wrappers over syscalls, given valid
    // arguments (our own pid, valid signal numbers, pointers to locals).
    unsafe {
        // CMD must not outlive us. The parent-death signal fires when the forking *thread*
        // exits, so spawn from the main thread. If the parent already died before prctl, we
        // were re-parented: give up instead of running unsupervised.
        cvt(libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        ))?;
        if libc::getppid() != parent {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        // Every disposition back to SIG_DFL: handlers are reset by exec anyway, but ignored
        // signals (ours: SIGPIPE, SIGTTIN, SIGTTOU; or inherited ones) survive exec. This uses
        // the raw rt_sigaction syscall because libc's sigaction() refuses the signals it
        // reserves (glibc: 32 and 33), and those do arrive ignored: glibc's posix_spawn, which
        // Rust's Command uses, leaves signal 32 at SIG_IGN in the processes it starts.
        // An all-zero kernel `struct sigaction` is SIG_DFL with no flags and an empty mask on
        // every architecture; 64 bytes is more than any of them reads.
        let dfl = [0u64; 8];
        let sigset_size = libc::c_long::from((rtmax + 1) / 8);
        for sig in 1..=rtmax {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    libc::c_long::from(sig),
                    dfl.as_ptr(),
                    std::ptr::null_mut::<libc::c_void>(),
                    sigset_size,
                );
            }
        }
        // And an empty signal mask (a forked child inherits ours, which blocks nearly all).
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        cvt(libc::sigprocmask(
            libc::SIG_SETMASK,
            &empty,
            std::ptr::null_mut(),
        ))?;
    }
    Ok(())
}

/// Where glibc's `execvp` looks for a program when PATH is unset (`_CS_PATH`).
pub(crate) const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// The shell that runs an executable without a `#!` line (`ENOEXEC`), as glibc's `execvp` does.
const SHELL: &CStr = c"/bin/sh";

/// Everything the forked child needs to exec CMD, made before the fork: between fork and exec
/// the child may not allocate.
pub(crate) struct ExecImage {
    /// The paths to `execve`, in order (the PATH search of `execvp`, done by the caller).
    paths: Vec<CString>,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

impl ExecImage {
    /// The image of `argv` (`argv[0]` included), tried at each of `paths` in turn, with the
    /// environment `env` (`(name, value)` pairs). `InvalidInput` when a string holds a NUL byte.
    pub(crate) fn new(
        paths: &[OsString],
        argv: &[OsString],
        env: impl Iterator<Item = (OsString, OsString)>,
    ) -> io::Result<ExecImage> {
        let c_string = |bytes: Vec<u8>| {
            CString::new(bytes).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the command")
            })
        };
        let envp = env.map(|(name, value)| {
            let mut entry = name.into_vec();
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            c_string(entry)
        });
        Ok(ExecImage {
            paths: paths
                .iter()
                .map(|p| c_string(p.as_bytes().to_vec()))
                .collect::<io::Result<_>>()?,
            argv: argv
                .iter()
                .map(|a| c_string(a.as_bytes().to_vec()))
                .collect::<io::Result<_>>()?,
            envp: envp.collect::<io::Result<_>>()?,
        })
    }
}

/// A null-terminated array of pointers into `strings`, as `execve` takes it.
fn c_array<'a>(strings: impl Iterator<Item = &'a CStr>) -> Vec<*const libc::c_char> {
    strings
        .map(CStr::as_ptr)
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The read end of the pipe on which a forked child reports its exec: end of file once the
/// exec succeeded (the write end is close-on-exec) or the child died; an `errno` value when
/// the exec (or the set-up before it) failed.
#[derive(Debug)]
pub(crate) struct ExecReport(OwnedFd);

/// What an [`ExecReport`] said.
#[derive(Debug)]
pub(crate) enum ExecOutcome {
    /// The child has exec'd (or died without a word).
    Started,
    /// The child could not exec; it exits with code 127.
    Failed(io::Error),
    /// No word yet: the exec is still under way.
    Pending,
}

impl ExecReport {
    /// Wait for the child's report until `deadline` (`None`: as long as it takes; a deadline
    /// that has passed: only look).
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> ExecOutcome {
        let fd = self.0.as_raw_fd();
        loop {
            let timeout = deadline.map_or(-1, |d| {
                let left = d.saturating_duration_since(Instant::now());
                // Round up: waking before the deadline would report it pending too early.
                let ms = left.as_millis() + u128::from(left.subsec_nanos() % 1_000_000 != 0);
                libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
            });
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: `pfd` is a valid pollfd for one open descriptor we own.
            let ready = unsafe { libc::poll(&mut pfd, 1, timeout) };
            if ready == 0 {
                return ExecOutcome::Pending;
            }
            if ready < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // Cannot look: the child runs, and its exit will tell.
                return ExecOutcome::Pending;
            }
            let mut errno = [0u8; 4];
            // SAFETY: `errno` is a writable buffer of the given length; `fd` is ours.
            let got = unsafe { libc::read(fd, errno.as_mut_ptr().cast(), errno.len()) };
            return match got {
                0 => ExecOutcome::Started,
                4 => ExecOutcome::Failed(io::Error::from_raw_os_error(i32::from_ne_bytes(errno))),
                n if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {
                    continue
                }
                n if n < 0 => ExecOutcome::Failed(io::Error::last_os_error()),
                _ => ExecOutcome::Failed(io::Error::other("a truncated report from the child")),
            };
        }
    }
}

/// Start CMD: `fork(2)` from the calling thread; the child gives itself a clean process state
/// (every disposition `SIG_DFL`, an empty mask; its own process group, which takes over the
/// terminal if ours had it, as tini does; `PR_SET_PDEATHSIG = SIGKILL`, given that `parent` is
/// our pid),
/// then `execve`s each of `image`'s paths in turn like `execvp` (a program without `#!` line
/// runs under `/bin/sh`; `EACCES` wins over a later `ENOENT`), writing the `errno` to the
/// report pipe and exiting with 127 if none works. Returns the child's pid and the pipe's read
/// end. Call from the main thread (the parent-death signal is tied to the forking thread).
pub(crate) fn fork_exec(image: &ExecImage, parent: Pid) -> io::Result<(Pid, ExecReport)> {
    // Everything the child touches is made here, before the fork.
    let mut arrays = ExecArrays::of(image);
    let rtmax = libc::SIGRTMAX();
    // Is our group in the foreground of a terminal on stdin? (-1/ENOTTY if stdin is not a tty.)
    // Asked here, not in the child: we move the child to its group ourselves, so the child
    // may find itself there already.
    // SAFETY: tcgetpgrp and getpgrp only read process state.
    let had_terminal = unsafe { libc::tcgetpgrp(0) == libc::getpgrp() };
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 just opened both descriptors; nothing else owns them.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fork has no memory-safety preconditions; the child below runs only
    // async-signal-safe code (this process has other threads, whose locks may be held).
    let pid = cvt(unsafe { libc::fork() })?;
    if pid == 0 {
        let child = ForkedChild {
            arrays: &mut arrays,
            had_terminal,
            parent,
            rtmax,
        };
        // SAFETY: we are the forked child: `exec` makes only async-signal-safe raw syscalls
        // on memory prepared before the fork, and never returns (exec or _exit), so no
        // destructor of the parent's values runs here.
        unsafe { child.exec(write_end.as_raw_fd()) }
    }
    drop(write_end);
    // Also from here, as shells do: the group must exist once we return, even if the child has
    // not run yet (a step-down may signal the group). EACCES once it has exec'd.
    // SAFETY: setpgid on our own unreaped child has no memory-safety preconditions.
    unsafe { libc::setpgid(pid, pid) };
    Ok((pid, ExecReport(read_end)))
}

/// What the forked child works with: pointers to memory made before the fork.
struct ForkedChild<'a> {
    arrays: &'a mut ExecArrays,
    had_terminal: bool,
    parent: Pid,
    rtmax: libc::c_int,
}

impl ForkedChild<'_> {
    /// In the forked child: set up, exec, or report the `errno` on `report` and `_exit(127)`.
    ///
    /// # Safety
    /// Only in the child of a fork, with every pointer valid and every array null-terminated.
    unsafe fn exec(self, report: libc::c_int) -> ! {
        let errno = match self.set_up() {
            // SAFETY: the caller's promise: valid, null-terminated arrays.
            Ok(()) => unsafe { self.arrays.try_paths() },
            Err(err) => err.raw_os_error().unwrap_or(libc::EINVAL),
        };
        let bytes = errno.to_ne_bytes();
        // SAFETY: write and _exit are async-signal-safe; `bytes` is a valid buffer. The parent
        // holds the read end open until the child is reaped, so this cannot raise SIGPIPE.
        unsafe {
            libc::write(report, bytes.as_ptr().cast(), bytes.len());
            libc::_exit(127)
        }
    }

    /// The process group (and terminal), then the rest of CMD's clean state.
    fn set_up(&self) -> io::Result<()> {
        // SAFETY: setpgid, tcsetpgrp and getpid are async-signal-safe syscalls on our own
        // process and fd 0.
        unsafe {
            cvt(libc::setpgid(0, 0))?;
            if self.had_terminal {
                // Hand the terminal to CMD's new group, as tini does: a Ctrl-C then reaches
                // CMD's group once, directly, and not us (who would forward it a second time),
                // and an interactive CMD is not stopped by SIGTTIN on its first read. SIGTTOU
                // is still ignored here (inherited), so this cannot stop us. Best effort.
                libc::tcsetpgrp(0, libc::getpid());
            }
        }
        child_setup(self.parent, self.rtmax)
    }
}

/// The C arrays `execve` takes, made from an [`ExecImage`] (and pointing into it) before any
/// fork: the paths to try, argv, envp, and the argv of the `/bin/sh` fallback.
struct ExecArrays {
    paths: Vec<*const libc::c_char>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    /// [SHELL, the path that gave ENOEXEC (set when it happens), argv[1..]..., NULL].
    script_argv: Vec<*const libc::c_char>,
}

impl ExecArrays {
    fn of(image: &ExecImage) -> ExecArrays {
        ExecArrays {
            paths: c_array(image.paths.iter().map(CString::as_c_str)),
            argv: c_array(image.argv.iter().map(CString::as_c_str)),
            envp: c_array(image.envp.iter().map(CString::as_c_str)),
            script_argv: c_array(
                [SHELL, SHELL]
                    .into_iter()
                    .chain(image.argv.iter().skip(1).map(CString::as_c_str)),
            ),
        }
    }

    /// `execve` each path like glibc's `execvp`; returns the `errno` to report.
    ///
    /// Only async-signal-safe calls: usable in a forked child.
    ///
    /// # Safety
    /// The [`ExecImage`] these arrays were made of must still be alive.
    unsafe fn try_paths(&mut self) -> libc::c_int {
        let mut seen_eacces = false;
        let mut errno = libc::ENOENT;
        for &path in self.paths.iter().take_while(|p| !p.is_null()) {
            // SAFETY: `path` is a C string and `argv`/`envp` null-terminated arrays of C
            // strings pointing into the live image (the caller's promise); execve returns
            // only on failure.
            unsafe { libc::execve(path, self.argv.as_ptr(), self.envp.as_ptr()) };
            errno = last_errno();
            if errno == libc::ENOEXEC {
                if let Some(slot) = self.script_argv.get_mut(1) {
                    *slot = path;
                }
                // SAFETY: as above; `script_argv` is null-terminated and now holds `path`.
                unsafe {
                    libc::execve(
                        SHELL.as_ptr(),
                        self.script_argv.as_ptr(),
                        self.envp.as_ptr(),
                    )
                };
                errno = last_errno();
            }
            match errno {
                libc::EACCES => seen_eacces = true,
                libc::ENOENT | libc::ESTALE | libc::ENOTDIR | libc::ENODEV | libc::ETIMEDOUT => {}
                _ => return errno,
            }
        }
        if seen_eacces {
            libc::EACCES
        } else {
            errno
        }
    }
}

/// Passthrough: replace this process with `image` (each path in turn, as [`fork_exec`]'s child
/// does), leaving the signal state as it is: ignored signals, the mask, everything a plain
/// `execve` keeps. With `sigpipe_default`, SIGPIPE goes back to `SIG_DFL` just before (we
/// ignored it at start-up, the program must not inherit that); it is ignored again if every
/// exec fails. Returns only on failure, with the `errno` of `execvp`.
pub(crate) fn exec_in_place(image: &ExecImage, sigpipe_default: bool) -> io::Error {
    let mut arrays = ExecArrays::of(image);
    if sigpipe_default {
        let _ = super::signals::default_signal(libc::SIGPIPE);
    }
    // SAFETY: `arrays` points into `image`, which outlives the call.
    let errno = unsafe { arrays.try_paths() };
    if sigpipe_default {
        let _ = super::signals::ignore_signal(libc::SIGPIPE);
    }
    io::Error::from_raw_os_error(errno)
}

/// This thread's `errno` (async-signal-safe: no allocation).
fn last_errno() -> libc::c_int {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EINVAL)
}

/// `waitpid(pid, 0)`: wait until our child `pid` has exited, and reap it.
pub(crate) fn reap_child(pid: Pid) -> io::Result<()> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: `status` is a valid writable int.
        match cvt(unsafe { libc::waitpid(pid, &mut status, 0) }) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            other => return other.map(drop),
        }
    }
}
