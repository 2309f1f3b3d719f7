//! Sockets: waiting on many descriptors at once ([`poll`] over [`PollFd`]s), the length of a
//! listener's accept queue ([`set_listen_backlog`]), accepting only connections that have
//! sent something ([`set_defer_accept`]), how many
//! descriptors this process may open ([`nofile_soft_limit`]) and what running out of them
//! looks like ([`is_out_of_resources`]). Used by the status endpoint's single server thread.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use super::cvt;

/// One descriptor to wait on and, after [`poll`], what it is ready for. Laid out exactly as
/// the kernel's `struct pollfd`, so a slice of them is passed to `poll(2)` as is.
#[repr(transparent)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct PollFd(libc::pollfd);

impl PollFd {
    /// Waits on `fd` for input (`read`) and/or room to write (`write`). Errors and hang-ups
    /// are always reported. A descriptor that is not open is reported, not undefined.
    pub(crate) fn new(fd: RawFd, read: bool, write: bool) -> PollFd {
        let mut events = 0;
        if read {
            events |= libc::POLLIN;
        }
        if write {
            events |= libc::POLLOUT;
        }
        PollFd(libc::pollfd {
            fd,
            events,
            revents: 0,
        })
    }

    /// Something happened on the descriptor (data, room, an error, a hang-up, or it is not
    /// open): the caller should try its read or write now.
    pub(crate) fn ready(&self) -> bool {
        self.0.revents != 0
    }
}

/// `poll(2)`: waits until one of `fds` is ready or `timeout` passed (rounded up to whole
/// milliseconds, so a wait is never shorter than asked); the number of ready descriptors.
/// A signal interrupting the wait counts as a timeout (0).
pub(crate) fn poll(fds: &mut [PollFd], timeout: Duration) -> io::Result<usize> {
    let ms = timeout.as_nanos().div_ceil(1_000_000);
    let ms = libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX);
    let n = libc::nfds_t::try_from(fds.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many descriptors"))?;
    // SAFETY: `PollFd` is `repr(transparent)` over `libc::pollfd`, so `fds` is a valid,
    // writable array of `n` pollfd structs for the duration of the call; poll only writes
    // their `revents` fields.
    let ret = unsafe { libc::poll(fds.as_mut_ptr().cast::<libc::pollfd>(), n, ms) };
    match ret {
        -1 => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(e)
            }
        }
        n => Ok(usize::try_from(n).unwrap_or(0)),
    }
}

/// Sets the accept queue of the listening socket `listener` to `backlog` connections (the
/// kernel caps it at `net.core.somaxconn`): `listen(2)` again, which on Linux only resizes
/// the queue of a socket that is already listening.
pub(crate) fn set_listen_backlog(listener: &TcpListener, backlog: u32) -> io::Result<()> {
    let backlog = libc::c_int::try_from(backlog).unwrap_or(libc::c_int::MAX);
    // SAFETY: listen takes a descriptor, owned by `listener` and open for the call, and an
    // integer; it reads no memory of ours.
    cvt(unsafe { libc::listen(listener.as_raw_fd(), backlog) }).map(drop)
}

/// Asks the kernel to hand over connections of `listener` only once they have sent data, or
/// after about `wait` (`TCP_DEFER_ACCEPT`, whole seconds): a client that connects and says
/// nothing stays in the kernel's queue meanwhile, not among our open connections.
pub(crate) fn set_defer_accept(listener: &TcpListener, wait: Duration) -> io::Result<()> {
    let secs = libc::c_int::try_from(wait.as_secs().max(1)).unwrap_or(libc::c_int::MAX);
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "socklen"))?;
    // SAFETY: the descriptor is owned by `listener` and open for the call; the option value
    // points to `secs`, a live c_int, and `len` is its size; setsockopt only reads it.
    cvt(unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            std::ptr::from_ref(&secs).cast::<libc::c_void>(),
            len,
        )
    })
    .map(drop)
}

/// True for an error saying the process or the system is out of descriptors or buffer
/// memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`): waiting, or closing something, helps.
pub(crate) fn is_out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// The soft `RLIMIT_NOFILE` of this process: how many descriptors it may have open. `None`
/// when unlimited or unknown.
pub(crate) fn nofile_soft_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit that outlives the call; getrlimit only writes
    // into it.
    let ret = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if ret != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    Some(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::TcpStream;

    use super::*;

    #[test]
    fn poll_reports_readiness_and_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        set_listen_backlog(&listener, 1024).expect("listen");
        let mut fds = [PollFd::new(listener.as_raw_fd(), true, false)];
        assert_eq!(poll(&mut fds, Duration::from_millis(10)).expect("poll"), 0);
        assert!(!fds[0].ready());
        let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("c");
        let (server, _) = listener.accept().expect("accept");
        client.write_all(b"x").expect("write");
        let mut fds = [
            PollFd::new(server.as_raw_fd(), true, false),
            PollFd::new(client.as_raw_fd(), false, true),
        ];
        assert_eq!(poll(&mut fds, Duration::from_secs(5)).expect("poll"), 2);
        assert!(fds[0].ready() && fds[1].ready());
        assert!(nofile_soft_limit().is_none_or(|n| n > 3));
        assert!(is_out_of_resources(&io::Error::from_raw_os_error(
            libc::EMFILE
        )));
        assert!(!is_out_of_resources(&io::Error::from_raw_os_error(
            libc::EPROTO
        )));
    }
}
