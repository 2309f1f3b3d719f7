//! Watch streams: chunked `application/json` responses with one event per line. A stream
//! starts with synthetic ADDED events (resourceVersion absent or "0") or the history after the
//! given resourceVersion (410 ERROR event if compacted, 504 if it is in the future), then
//! follows live changes filtered by label/field selectors (with ADDED/DELETED on selector
//! transitions), sends BOOKMARKs if asked (scheduled by `bookmarks.rs`), and ends at `timeoutSeconds`, on
//! `finish_watches` (cleanly) or on `end_watches`/drop (connection dropped). After
//! `silence_watches` a stream says nothing more and never ends by itself (a half-open
//! connection).

use std::cell::Cell;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::api::Outcome;
use crate::bookmarks::next_bookmark;
use crate::http;
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::{Shared, Tls};
use crate::status::{ApiError, Kind};
use crate::store::{with_type_meta, Event, EventType, WatchMsg};
use crate::table::TableRequest;
use crate::LoggedRequest;

/// How long a watch from a future resourceVersion waits for the store to catch up.
const TOO_LARGE_WAIT: Duration = Duration::from_secs(3);

pub struct WatchPlan {
    pub kind: Kind,
    pub namespace: String,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// None: resourceVersion absent or "0" (start with the current state).
    pub rv: Option<u64>,
    pub timeout: Duration,
    pub bookmarks: bool,
    pub headers: Vec<(String, String)>,
    /// Send each event's object as a one-row Table (the client's Accept asked for Tables).
    pub table: Option<TableRequest>,
    /// The first Table has been sent: later ones carry no column definitions.
    pub table_headers_sent: Cell<bool>,
}

impl WatchPlan {
    /// The object as this watcher gets it: itself, or a one-row Table (with the column
    /// definitions only in the first one, as the apiserver's watch encoder does).
    fn present(&self, obj: Value) -> Value {
        match self.table {
            Some(t) => {
                let mut table = crate::table::single(self.kind, t, &obj);
                if self.table_headers_sent.replace(true) {
                    table["columnDefinitions"] = Value::Null;
                }
                table
            }
            None => obj,
        }
    }

    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    /// The event this watcher sees for a store event, if any (selector transitions become
    /// ADDED/DELETED like the watch cache does).
    fn translate(&self, ev: &Event) -> Option<(EventType, Value)> {
        if ev.kind != self.kind || ev.namespace != self.namespace {
            return None;
        }
        let cur = self.matches(&ev.object);
        let prev = ev.prev.as_ref().is_some_and(|p| self.matches(p));
        match ev.etype {
            EventType::Added if cur => Some((EventType::Added, ev.object.clone())),
            EventType::Deleted if cur => Some((EventType::Deleted, ev.object.clone())),
            EventType::Modified => match (prev, cur) {
                (true, true) => Some((EventType::Modified, ev.object.clone())),
                (false, true) => Some((EventType::Added, ev.object.clone())),
                (true, false) => {
                    let mut old = ev.prev.clone().unwrap_or(Value::Null);
                    if let Some(m) = old.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.insert("resourceVersion".into(), json!(ev.rv.to_string()));
                    }
                    Some((EventType::Deleted, old))
                }
                (false, false) => None,
            },
            _ => None,
        }
    }
}

fn line(etype: &str, obj: Value) -> Vec<u8> {
    let mut v = serde_json::to_vec(&json!({"type": etype, "object": obj})).unwrap_or_default();
    v.push(b'\n');
    v
}

fn bookmark(kind: Kind, rv: u64) -> Vec<u8> {
    let mut obj = json!({
        "kind": kind.kind(),
        "apiVersion": kind.api_version(),
        "metadata": {"resourceVersion": rv.to_string(), "creationTimestamp": null},
    });
    match kind {
        Kind::Lease => obj["spec"] = json!({}),
        Kind::EndpointSlice => {
            obj["addressType"] = json!("");
            obj["endpoints"] = Value::Null;
        }
        Kind::Endpoints | Kind::Event => {}
    }
    line("BOOKMARK", obj)
}

enum Start {
    Expired(String),
    Stream(Vec<Vec<u8>>),
}

pub fn serve(
    shared: &Shared,
    tls: &mut Tls,
    plan: WatchPlan,
    mut entry: LoggedRequest,
    keep_alive: bool,
) -> Outcome {
    let (tx, rx) = mpsc::channel();
    let mut g = shared.lock();
    if let Some(rv) = plan.rv {
        if rv > g.store.current_rv() {
            let (g2, caught_up) =
                shared.wait_until(g, Some(Instant::now() + TOO_LARGE_WAIT), |s| {
                    s.store.current_rv() >= rv
                });
            g = g2;
            if !caught_up {
                let current = g.store.current_rv();
                drop(g);
                let mut e = ApiError::new(
                    504,
                    "Timeout",
                    &format!("Too large resource version: {rv}, current: {current}"),
                    Some(json!({
                        "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                        "retryAfterSeconds": 1
                    })),
                );
                e.headers.extend(plan.headers.iter().cloned());
                entry.code = 504;
                shared.record(entry);
                let body = serde_json::to_vec(&e.body).unwrap_or_default();
                return match http::write_response(tls, 504, &e.headers, &body, keep_alive) {
                    Ok(()) if keep_alive => Outcome::KeepAlive,
                    Ok(()) => Outcome::Close,
                    Err(_) => Outcome::Abort,
                };
            }
        }
    }
    let start = match plan.rv {
        None => Start::Stream(
            g.store
                .list(plan.kind, &plan.namespace)
                .into_iter()
                .filter(|o| plan.matches(o))
                .map(|o| line("ADDED", plan.present(with_type_meta(plan.kind, o.clone()))))
                .collect(),
        ),
        Some(rv) => match g.store.events_since(rv) {
            Ok(evs) => Start::Stream(
                evs.iter()
                    .filter_map(|e| plan.translate(e))
                    .map(|(t, o)| line(t.as_str(), plan.present(o)))
                    .collect(),
            ),
            Err(floor) => Start::Expired(format!("too old resource version: {rv} ({floor})")),
        },
    };
    if matches!(start, Start::Stream(_)) {
        g.store.add_watcher(tx);
    }
    let bookmark_interval = g.bookmark_interval;
    drop(g);

    entry.code = 200;
    shared.record(entry);
    if http::write_chunked_head(tls, &plan.headers).is_err() {
        return Outcome::Abort;
    }
    let initial = match start {
        Start::Expired(msg) => {
            let status = ApiError::new(410, "Expired", &msg, None).body;
            let ok = http::write_chunk(tls, &line("ERROR", status)).is_ok()
                && http::finish_chunked(tls).is_ok();
            return end(ok, keep_alive);
        }
        Start::Stream(lines) => lines,
    };
    for l in initial {
        if http::write_chunk(tls, &l).is_err() {
            return Outcome::Abort;
        }
    }
    let deadline = Instant::now() + plan.timeout;
    let schedule = |now| {
        if plan.bookmarks {
            next_bookmark(now, bookmark_interval, deadline)
        } else {
            None
        }
    };
    let mut bookmark_at = schedule(Instant::now());
    let mut dropping = false;
    loop {
        if shared.is_shutdown() {
            return Outcome::Abort;
        }
        let now = Instant::now();
        if now >= deadline {
            return end(http::finish_chunked(tls).is_ok(), keep_alive);
        }
        let wake = bookmark_at.map_or(deadline, |b| b.min(deadline));
        match rx.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(WatchMsg::DropEvents) => dropping = true,
            Ok(WatchMsg::Event(ev)) => {
                if !dropping && !write_event(tls, &plan, &ev) {
                    return Outcome::Abort;
                }
            }
            Ok(WatchMsg::End { abrupt: true }) | Err(RecvTimeoutError::Disconnected) => {
                return Outcome::Abort
            }
            Ok(WatchMsg::End { abrupt: false }) => {
                return end(http::finish_chunked(tls).is_ok(), keep_alive)
            }
            Ok(WatchMsg::Silence) => return hold_silently(shared, &rx),
            Err(RecvTimeoutError::Timeout) => {
                if bookmark_at.is_some_and(|b| Instant::now() >= b) {
                    // Drain under the lock so the bookmark rv covers everything sent.
                    let (pending, rv) = {
                        let g = shared.lock();
                        let pending: Vec<WatchMsg> = rx.try_iter().collect();
                        (pending, g.store.current_rv())
                    };
                    for m in pending {
                        match m {
                            WatchMsg::DropEvents => dropping = true,
                            WatchMsg::Event(ev) => {
                                if !dropping && !write_event(tls, &plan, &ev) {
                                    return Outcome::Abort;
                                }
                            }
                            WatchMsg::End { abrupt: true } => return Outcome::Abort,
                            WatchMsg::End { abrupt: false } => {
                                return end(http::finish_chunked(tls).is_ok(), keep_alive)
                            }
                            WatchMsg::Silence => return hold_silently(shared, &rx),
                        }
                    }
                    if http::write_chunk(tls, &bookmark(plan.kind, rv)).is_err() {
                        return Outcome::Abort;
                    }
                    bookmark_at = schedule(Instant::now());
                }
            }
        }
    }
}

/// A silenced stream: write nothing more, ever, and keep the connection until the stream is
/// ended (then dropped, never finished) or the server shuts down.
fn hold_silently(shared: &Shared, rx: &mpsc::Receiver<WatchMsg>) -> Outcome {
    while !shared.is_shutdown() {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(WatchMsg::End { .. }) | Err(RecvTimeoutError::Disconnected) => break,
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
        }
    }
    Outcome::Abort
}

fn write_event(tls: &mut Tls, plan: &WatchPlan, ev: &Arc<Event>) -> bool {
    match plan.translate(ev) {
        Some((t, o)) => http::write_chunk(tls, &line(t.as_str(), plan.present(o))).is_ok(),
        None => true,
    }
}

fn end(ok: bool, keep_alive: bool) -> Outcome {
    match (ok, keep_alive) {
        (false, _) => Outcome::Abort,
        (true, true) => Outcome::KeepAlive,
        (true, false) => Outcome::Close,
    }
}
