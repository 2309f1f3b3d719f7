//! The object store: every Lease/Endpoints/EndpointSlice keyed by (kind, namespace, name),
//! ONE global resourceVersion counter shared by all kinds (like an etcd revision), a bounded
//! event history for watches that start from an old resourceVersion, and fan-out of new
//! events to the open watch streams.
//!
//! The store does no validation; `api.rs` decides what may be written.

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::status::Kind;
use crate::timefmt;

/// How many events the history keeps before older resourceVersions become "too old" (410).
pub const HISTORY_CAP: usize = 10_000;

/// The first resourceVersion of a fresh server (real clusters start far from zero too).
const INITIAL_RV: u64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change. For DELETED, `object` is the last state stamped with the deletion's rv.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub kind: Kind,
    pub namespace: String,
    pub etype: EventType,
    pub object: Value,
    /// The state before this change (for MODIFIED/DELETED), to compute selector transitions.
    pub prev: Option<Value>,
}

/// What a watch stream receives.
#[derive(Debug, Clone)]
pub enum WatchMsg {
    Event(Arc<Event>),
    /// Close the stream: `abrupt` drops the connection (like an apiserver restart), otherwise
    /// the chunked body is terminated cleanly (like a watch timeout).
    End {
        abrupt: bool,
    },
    /// Go quiet for good: send nothing more, not even the end of the stream, but keep the
    /// connection open until the server is dropped or `end_watches` (a half-open connection).
    Silence,
    /// Lose every event from now on, but keep sending bookmarks (see
    /// `ApiServer::drop_watch_events`).
    DropEvents,
}

pub struct Store {
    objects: BTreeMap<(Kind, String, String), Value>,
    rv: u64,
    history: VecDeque<Arc<Event>>,
    /// Every event with rv > floor is still in `history`.
    floor: u64,
    watchers: Vec<Sender<WatchMsg>>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            objects: BTreeMap::new(),
            rv: INITIAL_RV,
            history: VecDeque::new(),
            floor: INITIAL_RV,
            watchers: Vec::new(),
        }
    }
}

fn key(kind: Kind, ns: &str, name: &str) -> (Kind, String, String) {
    (kind, ns.to_string(), name.to_string())
}

/// The object with `kind` and `apiVersion` set (as stored and as sent in watch events).
pub fn with_type_meta(kind: Kind, mut obj: Value) -> Value {
    if let Some(m) = obj.as_object_mut() {
        m.insert("kind".into(), json!(kind.kind()));
        m.insert("apiVersion".into(), json!(kind.api_version()));
    }
    obj
}

pub fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn rv_of(obj: &Value) -> &str {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn set_meta(obj: &mut Value, field: &str, v: Value) {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"][field] = v;
}

impl Store {
    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    pub fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&key(kind, ns, name))
    }

    /// Objects of `kind` in `ns`, in name order.
    pub fn list(&self, kind: Kind, ns: &str) -> Vec<&Value> {
        self.objects
            .range(key(kind, ns, "")..)
            .take_while(|((k, n, _), _)| *k == kind && n == ns)
            .map(|(_, v)| v)
            .collect()
    }

    /// Stores `obj` under its metadata.name with a fresh resourceVersion, fills
    /// kind/apiVersion/namespace, records ADDED or MODIFIED, and returns the stored object.
    /// On create a missing uid/creationTimestamp is assigned.
    pub fn write(&mut self, kind: Kind, ns: &str, mut obj: Value) -> Value {
        let name = name_of(&obj).to_string();
        let prev = self.objects.get(&key(kind, ns, &name)).cloned();
        self.rv += 1;
        obj = with_type_meta(kind, obj);
        set_meta(&mut obj, "namespace", json!(ns));
        set_meta(&mut obj, "resourceVersion", json!(self.rv.to_string()));
        if prev.is_none() {
            if obj
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                set_meta(&mut obj, "uid", json!(timefmt::new_uid()));
            }
            if obj
                .pointer("/metadata/creationTimestamp")
                .is_none_or(Value::is_null)
            {
                set_meta(
                    &mut obj,
                    "creationTimestamp",
                    json!(timefmt::format_time(timefmt::now())),
                );
            }
        }
        self.objects.insert(key(kind, ns, &name), obj.clone());
        let etype = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(Event {
            rv: self.rv,
            kind,
            namespace: ns.to_string(),
            etype,
            object: obj.clone(),
            prev,
        });
        obj
    }

    /// Removes an object; returns its last state stamped with the deletion's resourceVersion.
    pub fn delete(&mut self, kind: Kind, ns: &str, name: &str) -> Option<Value> {
        let prev = self.objects.remove(&key(kind, ns, name))?;
        self.rv += 1;
        let mut last = prev.clone();
        set_meta(&mut last, "resourceVersion", json!(self.rv.to_string()));
        self.record(Event {
            rv: self.rv,
            kind,
            namespace: ns.to_string(),
            etype: EventType::Deleted,
            object: last.clone(),
            prev: Some(prev),
        });
        Some(last)
    }

    fn record(&mut self, ev: Event) {
        let ev = Arc::new(ev);
        self.history.push_back(ev.clone());
        while self.history.len() > HISTORY_CAP {
            if let Some(old) = self.history.pop_front() {
                self.floor = old.rv;
            }
        }
        self.watchers
            .retain(|w| w.send(WatchMsg::Event(ev.clone())).is_ok());
    }

    /// Events after `rv`, or Err(floor) when some of them were compacted away.
    pub fn events_since(&self, rv: u64) -> Result<Vec<Arc<Event>>, u64> {
        if rv < self.floor {
            return Err(self.floor);
        }
        let start = self.history.partition_point(|e| e.rv <= rv);
        Ok(self.history.iter().skip(start).cloned().collect())
    }

    /// Forgets the watch history: watches from any older resourceVersion get 410.
    pub fn compact(&mut self) {
        self.history.clear();
        self.floor = self.rv;
    }

    pub fn add_watcher(&mut self, tx: Sender<WatchMsg>) {
        self.watchers.push(tx);
    }

    /// Silences every open watch stream (see [`WatchMsg::Silence`]). They stay registered,
    /// so `end_watches` still drops their connections.
    pub fn silence_watches(&mut self) {
        self.watchers.retain(|w| w.send(WatchMsg::Silence).is_ok());
    }

    /// Makes every open watch stream lose its events (see [`WatchMsg::DropEvents`]).
    pub fn drop_watch_events(&mut self) {
        self.watchers
            .retain(|w| w.send(WatchMsg::DropEvents).is_ok());
    }

    /// Ends every open watch stream.
    pub fn end_watches(&mut self, abrupt: bool) {
        for w in self.watchers.drain(..) {
            let _ = w.send(WatchMsg::End { abrupt });
        }
    }
}
