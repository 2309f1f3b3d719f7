//! One connection of the status server, non-blocking: read the request head, write the
//! answer, drain what is left of a request body, close. Each step has a deadline; time is an
//! argument. The server's poll loop calls [`Conn::advance`] when the socket is ready and
//! closes the connection (drops it) when [`Conn::deadline`] passes.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use super::http::{parse_head, reason, Parse, Request, Response, MAX_HEAD};

/// Time a client has to send its whole request head, from the connection's acceptance.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(3);
/// Time a client has to take our response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(3);
/// Request body bytes we read and discard after answering (so the close is clean).
const MAX_DRAIN: usize = 64 * 1024;
/// Time we wait for those bytes at most.
const DRAIN_TIMEOUT: Duration = Duration::from_millis(250);
/// Bytes read from the socket at a time.
const CHUNK: usize = 1024;

/// A client connection and how far its exchange got.
pub(super) struct Conn {
    stream: TcpStream,
    deadline: Instant,
    step: Step,
}

enum Step {
    /// Reading the request head (what arrived so far, at most `MAX_HEAD + 4` bytes).
    Head(Vec<u8>),
    /// Writing the response: its bytes, how many went out, and whether a request body may
    /// still be arriving (then drain it before closing).
    Write {
        out: Vec<u8>,
        sent: usize,
        drain: bool,
    },
    /// Answered; reading and discarding the rest of the request (bytes so far).
    Drain(usize),
}

/// Whether a connection is still open after [`Conn::advance`].
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Progress {
    /// Waiting for the socket (see [`Conn::wants_write`]).
    Open,
    /// Finished or failed: drop the connection to close it.
    Done,
}

impl Conn {
    /// A connection accepted at `now`: non-blocking, its head due within [`HEAD_TIMEOUT`].
    pub(super) fn new(stream: TcpStream, now: Instant) -> io::Result<Conn> {
        stream.set_nonblocking(true)?;
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            deadline: now + HEAD_TIMEOUT,
            step: Step::Head(Vec::new()),
        })
    }

    /// The socket, to poll.
    pub(super) fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// True while writing the response (poll for room to write), false while reading.
    pub(super) fn wants_write(&self) -> bool {
        matches!(self.step, Step::Write { .. })
    }

    /// When the current step must be over; past it the connection is closed.
    pub(super) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Does everything the socket allows now without blocking; `answer` turns a complete
    /// request head into its response.
    pub(super) fn advance(
        &mut self,
        now: Instant,
        answer: &impl Fn(&Request) -> Response,
    ) -> Progress {
        let mut chunk = [0u8; CHUNK];
        loop {
            let next = match &mut self.step {
                Step::Head(buf) => match self.stream.read(&mut chunk) {
                    Ok(0) => return Progress::Done,
                    Ok(n) => {
                        let room = (MAX_HEAD + 4).saturating_sub(buf.len());
                        buf.extend_from_slice(&chunk[..n.min(room)]);
                        match parse_head(buf) {
                            Parse::Incomplete if buf.len() >= MAX_HEAD => refused(431),
                            Parse::Incomplete => continue,
                            Parse::Done(req) => Step::Write {
                                out: answer(&req).to_bytes(req.method == "HEAD"),
                                sent: 0,
                                drain: req.has_body,
                            },
                            // The rest of a refused request may still be arriving: drain it.
                            Parse::Bad(code) => refused(code),
                        }
                    }
                    Err(e) => return on_error(&e),
                },
                Step::Write { out, sent, drain } => match self.stream.write(&out[*sent..]) {
                    Ok(0) => return Progress::Done,
                    Ok(n) => {
                        *sent += n;
                        if *sent < out.len() {
                            continue;
                        }
                        if !*drain {
                            return Progress::Done;
                        }
                        // Unread request bytes would turn our close into a reset that can
                        // destroy the response in flight; take (a bounded amount of) them first.
                        let _ = self.stream.shutdown(Shutdown::Write);
                        Step::Drain(0)
                    }
                    Err(e) => return on_error(&e),
                },
                Step::Drain(total) => match self.stream.read(&mut chunk) {
                    Ok(0) => return Progress::Done,
                    Ok(n) => {
                        *total += n;
                        if *total >= MAX_DRAIN {
                            return Progress::Done;
                        }
                        continue;
                    }
                    Err(e) => return on_error(&e),
                },
            };
            self.deadline = now
                + match next {
                    Step::Drain(_) => DRAIN_TIMEOUT,
                    _ => WRITE_TIMEOUT,
                };
            self.step = next;
        }
    }
}

/// The answer to a head we refuse with `code`, draining whatever follows it.
fn refused(code: u16) -> Step {
    Step::Write {
        out: Response::text(code, reason(code)).to_bytes(false),
        sent: 0,
        drain: true,
    }
}

/// A read or write error: wait for the socket on `WouldBlock`, retry on `Interrupted` (the
/// poll loop comes back at once), give up on anything else.
fn on_error(e: &io::Error) -> Progress {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Progress::Open,
        _ => Progress::Done,
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, TcpListener};

    use super::*;

    fn pair() -> (TcpStream, Conn, Instant) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        let now = Instant::now();
        (client, Conn::new(server, now).expect("conn"), now)
    }

    fn ok(_: &Request) -> Response {
        Response::text(200, "hi")
    }

    /// Advances until the connection is done (or `tries` rounds passed).
    fn run(conn: &mut Conn, now: Instant, tries: usize) -> Progress {
        for _ in 0..tries {
            if conn.advance(now, &ok) == Progress::Done {
                return Progress::Done;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Progress::Open
    }

    #[test]
    fn a_head_in_pieces_is_answered_and_closed() {
        let (mut client, mut conn, now) = pair();
        assert_eq!(conn.advance(now, &ok), Progress::Open);
        assert_eq!(conn.deadline(), now + HEAD_TIMEOUT);
        client.write_all(b"GET / HTTP/1.1\r\n").expect("write");
        assert_eq!(run(&mut conn, now, 5), Progress::Open);
        client.write_all(b"Host: x\r\n\r\n").expect("write");
        assert_eq!(run(&mut conn, now, 200), Progress::Done);
        drop(conn);
        let mut out = Vec::new();
        client.read_to_end(&mut out).expect("read");
        assert_eq!(out, Response::text(200, "hi").to_bytes(false));
    }

    #[test]
    fn a_body_is_drained_within_a_short_deadline() {
        let (mut client, mut conn, now) = pair();
        client
            .write_all(b"POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\n")
            .expect("write");
        assert_eq!(run(&mut conn, now, 200), Progress::Open);
        assert!(!conn.wants_write());
        assert_eq!(conn.deadline(), now + DRAIN_TIMEOUT);
        let mut out = vec![0u8; 256];
        let n = client.read(&mut out).expect("read");
        assert!(out[..n].starts_with(b"HTTP/1.1 200 OK\r\n"));
        client.write_all(b"x").expect("body");
        drop(client);
        assert_eq!(run(&mut conn, now, 200), Progress::Done);
    }

    #[test]
    fn garbage_and_oversized_heads_are_refused() {
        let (mut client, mut conn, now) = pair();
        client.write_all(&[b'a'; MAX_HEAD + 100]).expect("write");
        assert_eq!(run(&mut conn, now, 200), Progress::Open);
        let mut out = vec![0u8; 256];
        let n = client.read(&mut out).expect("read");
        assert!(out[..n].starts_with(b"HTTP/1.1 431 "), "{:?}", &out[..n]);
    }
}
