//! Kubernetes Events about this replica's leadership (`kubectl get events`), posted best
//! effort from a thread of their own.
//!
//! Owns the [`Recorder`]: the elector thread hands it a [`Transition`] and goes on at once
//! (`try_send` into a small bounded queue; a full queue drops the event). One events thread
//! POSTs them as core/v1 Events regarding the Lease, each with a short deadline; an event that
//! fails is dropped, never retried, so a slow or broken events endpoint costs the election
//! nothing. A 403 is logged once, naming the missing permission, and no event is tried again.
//!
//! Why core/v1 and not events.k8s.io/v1: see DESIGN.md ("Why core/v1 Events?").
//!
//! Knows Kubernetes (through [`crate::kube`]) but nothing of processes or of the election's
//! state machine.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use log::{debug, warn};
use serde_json::{json, Value};

use crate::kube::{self, Client};
use crate::timefmt;

/// Events that may wait for the events thread; more are dropped (a term has at most three).
pub const QUEUE: usize = 8;
/// The deadline of one POST: an event is worth little once it is late.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// `source.component` and `reportingComponent` of every event.
pub const COMPONENT: &str = "k8s-await-election";
/// The reason of every event (client-go's leader election uses the same).
pub const REASON: &str = "LeaderElection";
/// Longest `message` we send (events.k8s.io/v1 caps `note` at 1 KiB; we keep to that).
const MAX_MESSAGE: usize = 1024;

/// A change of leadership worth an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Our write made us the holder (Normal, `<identity> became leader`).
    BecameLeader,
    /// The term is over: released, or stepped down (Normal, `<identity> stopped leading`).
    StoppedLeading,
    /// Leadership was lost while CMD ran, for this reason (Warning).
    Lost(String),
}

impl Transition {
    /// A short name for log lines (not the event's message).
    fn label(&self) -> &'static str {
        match self {
            Transition::BecameLeader => "\"elected\"",
            Transition::StoppedLeading => "\"term over\"",
            Transition::Lost(_) => "\"leadership gone\"",
        }
    }
}

/// The Lease the events are about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regarding {
    /// The Lease's namespace (the events go there too).
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This replica's identity (the subject of every message, and `reportingInstance`).
    pub identity: String,
}

enum Message {
    Post {
        transition: Transition,
        uid: Option<String>,
        at: SystemTime,
    },
    Flush(mpsc::Sender<()>),
}

/// The elector's handle: [`Recorder::record`] never blocks. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    queue: Option<SyncSender<Message>>,
    dropped: Arc<AtomicU64>,
}

impl Recorder {
    /// A recorder that records nothing (`K8S_AWAIT_ELECTION_EVENTS=off`).
    pub fn off() -> Recorder {
        Recorder {
            queue: None,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Starts the events thread. It inherits the caller's signal mask: start it once signals
    /// are blocked.
    pub fn start(client: Arc<Client>, regarding: Regarding) -> io::Result<Recorder> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        thread::Builder::new()
            .name("events".into())
            .stack_size(256 * 1024)
            .spawn(move || post_events(&client, &regarding, &rx))?;
        Ok(Recorder {
            queue: Some(tx),
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Queues an event about `transition`, regarding the Lease with `uid` (as last seen);
    /// returns at once. A full queue drops it.
    pub fn record(&self, transition: Transition, uid: Option<String>) {
        let Some(queue) = &self.queue else { return };
        let message = Message::Post {
            transition,
            uid,
            at: SystemTime::now(),
        };
        if queue.try_send(message).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until the events queued so far were posted (or given up), at most until
    /// `deadline`. Returns whether it got there.
    pub fn flush(&self, deadline: Instant) -> bool {
        let Some(queue) = &self.queue else {
            return true;
        };
        let (ack, acked) = mpsc::channel();
        if queue.try_send(Message::Flush(ack)).is_err() {
            return false;
        }
        acked
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }
}

/// The events thread: post each event once; after a 403, drop everything.
fn post_events(client: &Client, regarding: &Regarding, queue: &Receiver<Message>) {
    let path = kube::events_path(&regarding.namespace);
    let mut forbidden = false;
    let mut failed_before = false;
    while let Ok(message) = queue.recv() {
        let (transition, uid, at) = match message {
            Message::Flush(ack) => {
                let _ = ack.send(());
                continue;
            }
            Message::Post {
                transition,
                uid,
                at,
            } => (transition, uid, at),
        };
        if forbidden {
            continue;
        }
        let body = event_body(regarding, &transition, uid.as_deref(), at);
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        match client.create::<_, Value>(&path, &body, deadline) {
            Ok(_) => debug!("posted the {} event", transition.label()),
            Err(e @ kube::Error::Forbidden(_)) => {
                warn!(
                    "cannot post Kubernetes Events: {e} (grant create on events, API group \"\", in namespace {:?} to this pod's service account, or set K8S_AWAIT_ELECTION_EVENTS=off); no more events will be sent",
                    regarding.namespace
                );
                forbidden = true;
            }
            Err(e) if !failed_before => {
                warn!("cannot post a Kubernetes Event (dropped; events are best effort, later failures are logged at debug level): {e}");
                failed_before = true;
            }
            Err(e) => debug!("cannot post a Kubernetes Event (dropped): {e}"),
        }
    }
}

/// The message of the event for `transition`.
fn message_of(regarding: &Regarding, transition: &Transition) -> String {
    let id = &regarding.identity;
    let mut text = match transition {
        Transition::BecameLeader => format!("{id} became leader"),
        Transition::StoppedLeading => format!("{id} stopped leading"),
        Transition::Lost(cause) => format!("{id} lost leadership: {cause}"),
    };
    if text.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// The core/v1 Event for `transition` at `at`, as client-go's recorder builds one: named
/// `<lease>.<unix nanoseconds in hex>`, regarding the Lease, count 1.
pub fn event_body(
    regarding: &Regarding,
    transition: &Transition,
    uid: Option<&str>,
    at: SystemTime,
) -> Value {
    let nanos = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // A name is at most 253 characters; the suffix takes up to 17.
    let prefix: String = regarding.name.chars().take(236).collect();
    let stamp = timefmt::rfc3339_seconds(at);
    let kind = match transition {
        Transition::Lost(_) => "Warning",
        _ => "Normal",
    };
    let mut involved = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "name": regarding.name,
        "namespace": regarding.namespace,
    });
    if let Some(uid) = uid {
        involved["uid"] = Value::from(uid);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": format!("{prefix}.{nanos:x}"),
            "namespace": regarding.namespace,
        },
        "involvedObject": involved,
        "reason": REASON,
        "message": message_of(regarding, transition),
        "type": kind,
        "source": { "component": COMPONENT },
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "reportingComponent": COMPONENT,
        "reportingInstance": regarding.identity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regarding() -> Regarding {
        Regarding {
            namespace: "ns".into(),
            name: "lock".into(),
            identity: "pod-0".into(),
        }
    }

    #[test]
    fn bodies_name_the_lease_and_the_transition() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_255);
        let b = event_body(&regarding(), &Transition::BecameLeader, Some("u-1"), at);
        assert_eq!(b["metadata"]["name"], "lock.17979cfe362a00ff");
        assert_eq!(b["metadata"]["namespace"], "ns");
        assert_eq!(b["involvedObject"]["kind"], "Lease");
        assert_eq!(b["involvedObject"]["uid"], "u-1");
        assert_eq!(b["message"], "pod-0 became leader");
        assert_eq!(b["type"], "Normal");
        assert_eq!(b["reason"], "LeaderElection");
        assert_eq!(b["firstTimestamp"], "2023-11-14T22:13:20Z");
        let s = event_body(&regarding(), &Transition::StoppedLeading, None, at);
        assert_eq!(s["message"], "pod-0 stopped leading");
        assert!(s["involvedObject"].get("uid").is_none());
        let l = event_body(&regarding(), &Transition::Lost("x".repeat(5000)), None, at);
        assert_eq!(l["type"], "Warning");
        assert_eq!(l["message"].as_str().map(str::len), Some(MAX_MESSAGE));
    }

    #[test]
    fn an_off_recorder_records_nothing_and_flushes_at_once() {
        let r = Recorder::off();
        r.record(Transition::BecameLeader, None);
        assert!(r.flush(Instant::now()));
        assert_eq!(r.dropped(), 0);
    }
}
