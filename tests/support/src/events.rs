//! core/v1 Events: the wire schema and the validation the real apiserver applies to an Event
//! created without `eventTime` (upstream `ValidateEventCreate`, the legacy branch): the event's
//! namespace must match its `involvedObject`'s, and `type` must be `Normal` or `Warning`.
//! Kept apart from the other kinds' rules so the Event resource can be read in one place.

use serde_json::Value;

use crate::schema::Ty::{self, *};
use crate::schema::OBJECT_REF;
use crate::status::FieldError;

static SOURCE: &[(&str, Ty)] = &[("component", Str), ("host", Str)];

/// The fields of a core/v1 Event (`series` and `related` kept verbatim).
pub static EVENT: &[(&str, Ty)] = &[
    ("kind", Str),
    ("apiVersion", Str),
    ("metadata", Obj("ObjectMeta", crate::schema::OBJECT_META)),
    ("involvedObject", Obj("ObjectReference", OBJECT_REF)),
    ("reason", Str),
    ("message", Str),
    ("source", Obj("EventSource", SOURCE)),
    ("firstTimestamp", Time),
    ("lastTimestamp", Time),
    ("count", Int32),
    ("type", Str),
    ("eventTime", MicroTime),
    ("series", Any),
    ("action", Str),
    ("related", Any),
    ("reportingComponent", Str),
    ("reportingInstance", Str),
];

/// The legacy-Event checks (no `eventTime`).
pub fn validate_event(obj: &Value, errs: &mut Vec<FieldError>) {
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let involved_ns = obj
        .pointer("/involvedObject/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !involved_ns.is_empty() && involved_ns != ns {
        errs.push(FieldError::invalid(
            "involvedObject.namespace",
            &format!("{involved_ns:?}"),
            "does not match event.namespace",
        ));
    }
    if let Some(t) = obj.get("type").and_then(Value::as_str) {
        if !t.is_empty() && t != "Normal" && t != "Warning" {
            errs.push(FieldError::not_supported("type", t, &["Normal", "Warning"]));
        }
    }
}
