//! Log output that never blocks the thread that logs: lines go into a bounded queue, and one
//! writer thread copies them to stderr.
//!
//! Why: the main thread must stop CMD by the renew deadline, and the elector must renew in
//! time, whatever stderr does. stderr is usually a pipe to the container runtime; when the
//! reader stalls (a stuck log shipper) the 64 KiB pipe fills and the next `write(2)` blocks
//! for as long as the stall lasts. Writing from the logging thread would then hold up a
//! step-down past the lease expiry, and another replica could start CMD while ours still runs.
//!
//! While stderr is blocked, up to [`CAPACITY`] lines wait; later ones are dropped and counted,
//! and the writer says how many once stderr moves again. On the way out
//! [`LogQueue::flush`] waits for the queue to drain, but never past its deadline.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Lines that may wait for a blocked stderr (a few dozen KiB at most).
pub const CAPACITY: usize = 256;

enum Message {
    /// A line, and how many lines were dropped just before it.
    Line { dropped_before: u64, line: Vec<u8> },
    /// Answer once every line queued before this one is written (and report `dropped_before`).
    Flush {
        dropped_before: u64,
        ack: mpsc::Sender<()>,
    },
}

/// The logger's side: an [`io::Write`] whose writes never block. Each `write` call is one
/// line (the logger writes every record with one call, under its own lock).
pub struct QueueWriter {
    queue: SyncSender<Message>,
    /// Lines dropped since the last one queued (shared with [`LogQueue::flush`]).
    dropped: Arc<AtomicU64>,
}

impl Write for QueueWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let dropped_before = self.dropped.swap(0, Ordering::Relaxed);
        let line = buf.to_vec();
        // Full: stderr is blocked (or slow). Disconnected: the writer is gone. Either way the
        // line is lost, not waited for, and counted for the next line that gets through.
        if self
            .queue
            .try_send(Message::Line {
                dropped_before,
                line,
            })
            .is_err()
        {
            self.dropped
                .fetch_add(dropped_before + 1, Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What the writer puts where lines were dropped: the text for that many dropped lines.
pub type DropNote = fn(u64) -> String;

fn default_note(n: u64) -> String {
    format!("k8s-await-election: {n} log line(s) dropped here: stderr was not being read\n")
}

/// The queue's other end: owned by whoever starts the writer thread and flushes at exit.
pub struct LogQueue {
    /// The drop note, in the log's format.
    note: DropNote,
    queue: SyncSender<Message>,
    /// The receiving end and the output until [`LogQueue::start_writer`] hands them to the
    /// writer thread.
    idle: Option<(Receiver<Message>, Box<dyn Write + Send>)>,
    dropped: Arc<AtomicU64>,
}

/// A new queue of lines for `out`: give the [`QueueWriter`] to the logger, keep the
/// [`LogQueue`] to start the writer and to flush.
pub fn queue(out: impl Write + Send + 'static) -> (QueueWriter, LogQueue) {
    let (tx, rx) = mpsc::sync_channel(CAPACITY);
    let dropped = Arc::new(AtomicU64::new(0));
    (
        QueueWriter {
            queue: tx.clone(),
            dropped: Arc::clone(&dropped),
        },
        LogQueue {
            note: default_note,
            queue: tx,
            idle: Some((rx, Box::new(out))),
            dropped,
        },
    )
}

impl LogQueue {
    /// Writes drop notes with `note` (e.g. as JSON). Call before [`LogQueue::start_writer`].
    pub fn set_drop_note(&mut self, note: DropNote) {
        self.note = note;
    }

    /// Starts the thread that writes the queued lines (those queued so far, then the rest).
    /// The thread inherits the caller's signal mask: start it once signals are blocked.
    /// A second call does nothing.
    pub fn start_writer(&mut self) -> io::Result<()> {
        let Some((lines, out)) = self.idle.take() else {
            return Ok(());
        };
        thread::Builder::new()
            .name("log-writer".into())
            .stack_size(64 * 1024)
            .spawn({
                let note = self.note;
                move || write_lines(&lines, out, note)
            })
            .map(drop)
    }

    /// Waits until every line logged so far has been written, at most until `deadline`.
    /// Returns whether it got there. Before the writer thread is started, this writes the
    /// queued lines itself (start-up failed; nothing runs that a slow stderr could hold up).
    pub fn flush(&mut self, deadline: Instant) -> bool {
        if let Some((lines, out)) = &mut self.idle {
            while let Ok(message) = lines.try_recv() {
                write_message(out, message, self.note);
            }
            // The marker a writer thread would get: reports lines dropped after the last one.
            let (ack, _) = mpsc::channel();
            let dropped_before = self.dropped.swap(0, Ordering::Relaxed);
            write_message(
                out,
                Message::Flush {
                    dropped_before,
                    ack,
                },
                self.note,
            );
            return out.flush().is_ok();
        }
        let (ack, acked) = mpsc::channel();
        let mut marker = Message::Flush {
            dropped_before: self.dropped.swap(0, Ordering::Relaxed),
            ack,
        };
        loop {
            match self.queue.try_send(marker) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(m)) => {
                    if Instant::now() >= deadline {
                        if let Message::Flush { dropped_before, .. } = m {
                            self.dropped.fetch_add(dropped_before, Ordering::Relaxed);
                        }
                        return false;
                    }
                    marker = m;
                    thread::sleep(Duration::from_millis(5));
                }
            }
        }
        acked
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }
}

/// The writer thread: copy lines to `out`, blocking as long as `out` does.
fn write_lines(lines: &Receiver<Message>, mut out: Box<dyn Write + Send>, note: DropNote) {
    while let Ok(message) = lines.recv() {
        write_message(&mut out, message, note);
    }
}

/// Writes one message; a write error (a closed stderr) loses the line, nothing else.
fn write_message(out: &mut dyn Write, message: Message, note: DropNote) {
    let (dropped_before, line, ack) = match message {
        Message::Line {
            dropped_before,
            line,
        } => (dropped_before, Some(line), None),
        Message::Flush {
            dropped_before,
            ack,
        } => (dropped_before, None, Some(ack)),
    };
    if dropped_before > 0 {
        let _ = out.write_all(note(dropped_before).as_bytes());
    }
    if let Some(line) = line {
        let _ = out.write_all(&line);
    }
    if let Some(ack) = ack {
        let _ = out.flush();
        let _ = ack.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Condvar, Mutex};

    /// Whether the gate is open, and what got through.
    type Gate = (Mutex<(bool, Vec<u8>)>, Condvar);

    /// An output that accepts writes only while its gate is open.
    #[derive(Clone, Default)]
    struct Gated {
        state: Arc<Gate>,
    }

    impl Gated {
        fn open(&self) {
            let (m, cv) = &*self.state;
            m.lock().unwrap().0 = true;
            cv.notify_all();
        }
        fn text(&self) -> String {
            String::from_utf8(self.state.0.lock().unwrap().1.clone()).unwrap()
        }
    }

    impl Write for Gated {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (m, cv) = &*self.state;
            let mut g = cv.wait_while(m.lock().unwrap(), |s| !s.0).unwrap();
            g.1.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_blocked_output_never_blocks_the_logger_and_drops_are_reported() {
        let out = Gated::default();
        let (mut w, mut q) = queue(out.clone());
        q.start_writer().unwrap();
        // Far more lines than fit: every write returns at once although nothing is written.
        let started = Instant::now();
        for i in 0..CAPACITY * 4 {
            w.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        // The flush gives up at its deadline while the output is blocked.
        assert!(!q.flush(Instant::now() + Duration::from_millis(50)));
        assert_eq!(out.text(), "");

        // Once stderr moves, the queue drains; a line logged after that gets through.
        out.open();
        assert!(q.flush(Instant::now() + Duration::from_secs(30)));
        w.write_all(b"after\n").unwrap();
        assert!(q.flush(Instant::now() + Duration::from_secs(30)));
        let text = out.text();
        assert!(text.starts_with("line 0\n"), "{text}");
        assert!(text.contains("log line(s) dropped"), "{text}");
        assert!(text.ends_with("after\n"), "{text}");
        // Nothing got reordered, at most one queue's worth of lines (plus the one the writer
        // held) got through, and every other line is accounted for by a drop note.
        let kept: Vec<usize> = text
            .lines()
            .filter_map(|l| l.strip_prefix("line ")?.parse().ok())
            .collect();
        assert!(kept.windows(2).all(|p| p[0] < p[1]), "{text}");
        assert!(kept.len() <= CAPACITY + 1, "{} lines kept", kept.len());
        let dropped: usize = text
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("k8s-await-election: ")?;
                rest.split(' ').next()?.parse::<usize>().ok()
            })
            .sum();
        assert_eq!(kept.len() + dropped, CAPACITY * 4, "{text}");
    }

    #[test]
    fn without_a_writer_thread_flush_writes_the_queue_itself() {
        let out = Gated::default();
        out.open();
        let (mut w, mut q) = queue(out.clone());
        w.write_all(b"early\n").unwrap();
        assert!(q.flush(Instant::now()));
        w.write_all(b"later\n").unwrap();
        assert!(q.flush(Instant::now()));
        assert_eq!(out.text(), "early\nlater\n");
        // More than fit: the rest are counted, and the count is reported at the end.
        for _ in 0..CAPACITY + 5 {
            w.write_all(b"x\n").unwrap();
        }
        assert!(q.flush(Instant::now()));
        let text = out.text();
        assert_eq!(text.matches("x\n").count(), CAPACITY, "{text}");
        assert!(text.ends_with("5 log line(s) dropped here: stderr was not being read\n"));
    }
}
