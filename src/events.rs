//! Kubernetes Events about this replica's leadership (`kubectl get events`), posted best
//! effort from a thread of their own.
//!
//! Owns the [`Recorder`]: the elector thread hands it a [`Transition`] and goes on at once
//! (a push onto a small bounded queue under a lock held only for the push; a full queue
//! drops the event). One events thread
//! POSTs them as core/v1 Events regarding the Lease, each with a short deadline; an event that
//! fails is dropped, never retried, so a slow or broken events endpoint costs the election
//! nothing. A 403 is logged once, naming the missing permission, and no event is tried again.
//!
//! Why core/v1 and not events.k8s.io/v1: see DESIGN.md ("Why core/v1 Events?").
//!
//! Knows Kubernetes (through [`crate::kube`]) but nothing of processes or of the election's
//! state machine.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use log::{debug, warn};

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

/// One event waiting for the events thread.
struct Post {
    transition: Transition,
    uid: Option<String>,
    at: SystemTime,
}

/// The queue between the elector and the events thread. Its lock is only ever held to push or
/// pop, never across a request, so taking it does not wait on the API server.
#[derive(Default)]
struct Queue {
    posts: VecDeque<Post>,
    /// Events queued so far, and events the thread has finished with (posted or given up).
    queued: u64,
    done: u64,
    /// Dropped because the queue was full.
    dropped: u64,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Notified when an event is queued and when one is done.
    changed: Condvar,
}

/// The elector's handle: [`Recorder::record`] never waits for a request. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    shared: Option<Arc<Shared>>,
}

impl Recorder {
    /// A recorder that records nothing (`K8S_AWAIT_ELECTION_EVENTS=off`).
    pub fn off() -> Recorder {
        Recorder { shared: None }
    }

    /// Starts the events thread. It inherits the caller's signal mask: start it once signals
    /// are blocked.
    pub fn start(client: Arc<Client>, regarding: Regarding) -> io::Result<Recorder> {
        let shared = Arc::new(Shared::default());
        let theirs = Arc::clone(&shared);
        thread::Builder::new()
            .name("events".into())
            .stack_size(256 * 1024)
            .spawn(move || post_events(&client, &regarding, &theirs))?;
        Ok(Recorder {
            shared: Some(shared),
        })
    }

    /// Queues an event about `transition`, regarding the Lease with `uid` (as last seen);
    /// returns at once. A full queue drops it.
    pub fn record(&self, transition: Transition, uid: Option<String>) {
        let Some(shared) = &self.shared else { return };
        let Ok(mut q) = shared.queue.lock() else {
            return;
        };
        if q.posts.len() >= QUEUE {
            q.dropped += 1;
            return;
        }
        q.posts.push_back(Post {
            transition,
            uid,
            at: SystemTime::now(),
        });
        q.queued += 1;
        shared.changed.notify_all();
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared
            .as_ref()
            .and_then(|s| s.queue.lock().ok().map(|q| q.dropped))
            .unwrap_or(0)
    }

    /// Waits until the events queued so far were posted (or given up), at most until
    /// `deadline`. Returns whether it got there.
    pub fn flush(&self, deadline: Instant) -> bool {
        let Some(shared) = &self.shared else {
            return true;
        };
        let Ok(q) = shared.queue.lock() else {
            return false;
        };
        let target = q.queued;
        let left = deadline.saturating_duration_since(Instant::now());
        shared
            .changed
            .wait_timeout_while(q, left, |q| q.done < target)
            .is_ok_and(|(q, _)| q.done >= target)
    }
}

/// The events thread: post each event once; after a 403, drop everything.
fn post_events(client: &Client, regarding: &Regarding, shared: &Shared) {
    let path = kube::events_path(&regarding.namespace);
    let mut forbidden = false;
    let mut failed_before = false;
    loop {
        let post = {
            let Ok(q) = shared.queue.lock() else { return };
            let Ok(mut q) = shared.changed.wait_while(q, |q| q.posts.is_empty()) else {
                return;
            };
            q.posts.pop_front()
        };
        if let Some(post) = post.filter(|_| !forbidden) {
            forbidden = post_one(client, &path, regarding, post, &mut failed_before);
        }
        let Ok(mut q) = shared.queue.lock() else {
            return;
        };
        q.done += 1;
        shared.changed.notify_all();
    }
}

/// POSTs one event; returns true when RBAC forbids events (then no more are tried).
fn post_one(
    client: &Client,
    path: &str,
    regarding: &Regarding,
    post: Post,
    failed_before: &mut bool,
) -> bool {
    let body = event_body(regarding, &post.transition, post.uid.as_deref(), post.at);
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    match client.post(path, body.as_bytes(), deadline) {
        Ok(_) => debug!("posted the {} event", post.transition.label()),
        Err(e @ kube::Error::Forbidden(_)) => {
            warn!(
                "cannot post Kubernetes Events: {e} (grant create on events, API group \"\", in namespace {:?} to this pod's service account, or set K8S_AWAIT_ELECTION_EVENTS=off); no more events will be sent",
                regarding.namespace
            );
            return true;
        }
        Err(e) if !*failed_before => {
            warn!("cannot post a Kubernetes Event (dropped; events are best effort, later failures are logged at debug level): {e}");
            *failed_before = true;
        }
        Err(e) => debug!("cannot post a Kubernetes Event (dropped): {e}"),
    }
    false
}

/// The message of the event for `transition`.
fn message_of(regarding: &Regarding, transition: &Transition) -> String {
    let id = &regarding.identity;
    let mut text = match transition {
        Transition::BecameLeader => format!("{id} became leader"),
        Transition::StoppedLeading => format!("{id} stopped leading"),
        Transition::Lost(cause) => format!("{id} lost leadership: {cause}"),
    };
    let keep = cut(&text, MAX_MESSAGE).len();
    text.truncate(keep);
    text
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The core/v1 Event for `transition` at `at` as JSON, as client-go's recorder builds one:
/// named `<lease>.<unix nanoseconds in hex>`, regarding the Lease, count 1.
pub fn event_body(
    regarding: &Regarding,
    transition: &Transition,
    uid: Option<&str>,
    at: SystemTime,
) -> String {
    let nanos = at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| {
        d.as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(d.subsec_nanos()))
    });
    // A name is at most 253 characters; the suffix takes up to 17. A cut name must still end
    // in a letter or digit to stay a DNS subdomain.
    let prefix = cut(&regarding.name, 236).trim_end_matches(['-', '.']);
    let stamp = quote(&timefmt::micro_time(at));
    let kind = match transition {
        Transition::Lost(_) => "Warning",
        _ => "Normal",
    };
    let (ns, name, id) = (
        quote(&regarding.namespace),
        quote(&regarding.name),
        quote(&regarding.identity),
    );
    let uid = uid.map_or_else(String::new, |u| format!(",\"uid\":{}", quote(u)));
    format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"Event\",\
         \"metadata\":{{\"name\":{},\"namespace\":{ns}}},\
         \"involvedObject\":{{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\
         \"name\":{name},\"namespace\":{ns}{uid}}},\
         \"reason\":\"{REASON}\",\"message\":{},\"type\":\"{kind}\",\
         \"source\":{{\"component\":\"{COMPONENT}\"}},\
         \"firstTimestamp\":{stamp},\"lastTimestamp\":{stamp},\"count\":1,\
         \"reportingComponent\":\"{COMPONENT}\",\"reportingInstance\":{id}}}",
        quote(&format!("{prefix}.{nanos:x}")),
        quote(&message_of(regarding, transition)),
    )
}

/// `s` as a JSON string literal.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn body(t: &Transition, uid: Option<&str>, at: SystemTime) -> Value {
        serde_json::from_str(&event_body(&regarding(), t, uid, at)).unwrap()
    }

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
        let b = body(&Transition::BecameLeader, Some("u-1"), at);
        assert_eq!(b["metadata"]["name"], "lock.17979cfe362a00ff");
        assert_eq!(b["metadata"]["namespace"], "ns");
        assert_eq!(b["involvedObject"]["kind"], "Lease");
        assert_eq!(b["involvedObject"]["uid"], "u-1");
        assert_eq!(b["message"], "pod-0 became leader");
        assert_eq!(b["type"], "Normal");
        assert_eq!(b["reason"], "LeaderElection");
        assert_eq!(b["firstTimestamp"], "2023-11-14T22:13:20.000000Z");
        let s = body(&Transition::StoppedLeading, None, at);
        assert_eq!(s["message"], "pod-0 stopped leading");
        assert!(s["involvedObject"].get("uid").is_none());
        let l = body(&Transition::Lost("x".repeat(5000)), None, at);
        assert_eq!(l["type"], "Warning");
        assert_eq!(l["message"].as_str().map(str::len), Some(MAX_MESSAGE));
        let long = Regarding {
            name: format!("{}-b", "a".repeat(235)),
            ..regarding()
        };
        let cut_name: Value =
            serde_json::from_str(&event_body(&long, &Transition::BecameLeader, None, at)).unwrap();
        let name = cut_name["metadata"]["name"].as_str().unwrap();
        assert!(name.len() <= 253 && name.starts_with(&"a".repeat(235)) && name.contains("a."));
    }

    #[test]
    fn untrusted_names_are_quoted() {
        let odd = Regarding {
            namespace: "ns".into(),
            name: "lock".into(),
            identity: "pod\"0\\\n\u{1b}".into(),
        };
        let b: Value = serde_json::from_str(&event_body(
            &odd,
            &Transition::BecameLeader,
            None,
            SystemTime::now(),
        ))
        .unwrap();
        assert_eq!(b["reportingInstance"], "pod\"0\\\n\u{1b}");
        assert_eq!(b["message"], "pod\"0\\\n\u{1b} became leader");
    }

    #[test]
    fn an_off_recorder_records_nothing_and_flushes_at_once() {
        let r = Recorder::off();
        r.record(Transition::BecameLeader, None);
        assert!(r.flush(Instant::now()));
        assert_eq!(r.dropped(), 0);
    }
}
