//! Wire decoding of request bodies the way the real apiserver's JSON decoder treats them:
//! typed fields (a string where an int32 belongs is a 400), MicroTime/Time parsing and
//! re-encoding in UTC, `null` meaning "absent", and unknown fields dropped (reported so the
//! caller can emit the `Warning: 299 - "unknown field \"spec.foo\""` header, or fail with
//! 400 under `fieldValidation=Strict`).
//!
//! The schemas are those of coordination.k8s.io/v1 Lease (including the 1.31+ `strategy` and
//! `preferredHolder` fields, i.e. a server with CoordinatedLeaderElection enabled), core/v1
//! Endpoints and discovery.k8s.io/v1 EndpointSlice.

use serde_json::{Map, Value};

use crate::status::Kind;
use crate::timefmt::{format_micro, format_time, parse_rfc3339, Frac};

/// The Go type a JSON field decodes into.
pub enum Ty {
    Str,
    Int32,
    Int64,
    Bool,
    MicroTime,
    Time,
    Obj(&'static str, &'static [(&'static str, Ty)]),
    StrMap,
    List(&'static Ty),
    /// Kept verbatim (e.g. managedFields[].fieldsV1).
    Any,
}

use Ty::*;

static OWNER_REF: &[(&str, Ty)] = &[
    ("apiVersion", Str),
    ("kind", Str),
    ("name", Str),
    ("uid", Str),
    ("controller", Bool),
    ("blockOwnerDeletion", Bool),
];

static MANAGED_FIELDS: &[(&str, Ty)] = &[
    ("manager", Str),
    ("operation", Str),
    ("apiVersion", Str),
    ("time", Time),
    ("fieldsType", Str),
    ("fieldsV1", Any),
    ("subresource", Str),
];

pub static OBJECT_META: &[(&str, Ty)] = &[
    ("name", Str),
    ("generateName", Str),
    ("namespace", Str),
    ("selfLink", Str),
    ("uid", Str),
    ("resourceVersion", Str),
    ("generation", Int64),
    ("creationTimestamp", Time),
    ("deletionTimestamp", Time),
    ("deletionGracePeriodSeconds", Int64),
    ("labels", StrMap),
    ("annotations", StrMap),
    ("ownerReferences", List(&Obj("OwnerReference", OWNER_REF))),
    ("finalizers", List(&Str)),
    (
        "managedFields",
        List(&Obj("ManagedFieldsEntry", MANAGED_FIELDS)),
    ),
];

static LEASE_SPEC: &[(&str, Ty)] = &[
    ("holderIdentity", Str),
    ("leaseDurationSeconds", Int32),
    ("acquireTime", MicroTime),
    ("renewTime", MicroTime),
    ("leaseTransitions", Int32),
    ("strategy", Str),
    ("preferredHolder", Str),
];

static LEASE: &[(&str, Ty)] = &[
    ("kind", Str),
    ("apiVersion", Str),
    ("metadata", Obj("ObjectMeta", OBJECT_META)),
    ("spec", Obj("LeaseSpec", LEASE_SPEC)),
];

/// core/v1 ObjectReference (Endpoints' and slices' `targetRef`, an Event's `involvedObject`).
pub(crate) static OBJECT_REF: &[(&str, Ty)] = &[
    ("kind", Str),
    ("namespace", Str),
    ("name", Str),
    ("uid", Str),
    ("apiVersion", Str),
    ("resourceVersion", Str),
    ("fieldPath", Str),
];

static ENDPOINT_ADDRESS: &[(&str, Ty)] = &[
    ("ip", Str),
    ("hostname", Str),
    ("nodeName", Str),
    ("targetRef", Obj("ObjectReference", OBJECT_REF)),
];

static ENDPOINT_PORT: &[(&str, Ty)] = &[
    ("name", Str),
    ("port", Int32),
    ("protocol", Str),
    ("appProtocol", Str),
];

static ENDPOINT_SUBSET: &[(&str, Ty)] = &[
    ("addresses", List(&Obj("EndpointAddress", ENDPOINT_ADDRESS))),
    (
        "notReadyAddresses",
        List(&Obj("EndpointAddress", ENDPOINT_ADDRESS)),
    ),
    ("ports", List(&Obj("EndpointPort", ENDPOINT_PORT))),
];

static ENDPOINTS: &[(&str, Ty)] = &[
    ("kind", Str),
    ("apiVersion", Str),
    ("metadata", Obj("ObjectMeta", OBJECT_META)),
    ("subsets", List(&Obj("EndpointSubset", ENDPOINT_SUBSET))),
];

static CONDITIONS: &[(&str, Ty)] = &[("ready", Bool), ("serving", Bool), ("terminating", Bool)];
static FOR_NAME: &[(&str, Ty)] = &[("name", Str)];
static HINTS: &[(&str, Ty)] = &[
    ("forZones", List(&Obj("ForZone", FOR_NAME))),
    ("forNodes", List(&Obj("ForNode", FOR_NAME))),
];

static SLICE_ENDPOINT: &[(&str, Ty)] = &[
    ("addresses", List(&Str)),
    ("conditions", Obj("EndpointConditions", CONDITIONS)),
    ("hostname", Str),
    ("targetRef", Obj("ObjectReference", OBJECT_REF)),
    ("deprecatedTopology", StrMap),
    ("nodeName", Str),
    ("zone", Str),
    ("hints", Obj("EndpointHints", HINTS)),
];

static SLICE_PORT: &[(&str, Ty)] = &[
    ("name", Str),
    ("protocol", Str),
    ("port", Int32),
    ("appProtocol", Str),
];

static ENDPOINT_SLICE: &[(&str, Ty)] = &[
    ("kind", Str),
    ("apiVersion", Str),
    ("metadata", Obj("ObjectMeta", OBJECT_META)),
    ("addressType", Str),
    ("endpoints", List(&Obj("Endpoint", SLICE_ENDPOINT))),
    ("ports", List(&Obj("EndpointPort", SLICE_PORT))),
];

fn schema(kind: Kind) -> &'static Ty {
    static L: Ty = Obj("Lease", LEASE);
    static E: Ty = Obj("Endpoints", ENDPOINTS);
    static S: Ty = Obj("EndpointSlice", ENDPOINT_SLICE);
    static V: Ty = Obj("Event", crate::events::EVENT);
    match kind {
        Kind::Lease => &L,
        Kind::Endpoints => &E,
        Kind::EndpointSlice => &S,
        Kind::Event => &V,
    }
}

/// A decoded body: the normalized object and the paths of unknown fields that were dropped.
pub struct Decoded {
    pub object: Value,
    pub unknown_fields: Vec<String>,
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn go_type(ty: &Ty) -> String {
    match ty {
        Str => "string".into(),
        Int32 => "int32".into(),
        Int64 => "int64".into(),
        Bool => "bool".into(),
        MicroTime => "v1.MicroTime".into(),
        Time => "v1.Time".into(),
        Obj(n, _) => format!("v1.{n}"),
        StrMap => "map[string]string".into(),
        List(t) => format!("[]{}", go_type(t)),
        Any => "interface {}".into(),
    }
}

struct Walker {
    unknown: Vec<String>,
}

impl Walker {
    fn mismatch(&self, v: &Value, ty: &Ty, owner: &str, path: &str) -> String {
        format!(
            "json: cannot unmarshal {} into Go struct field {owner}.{path} of type {}",
            json_type(v),
            go_type(ty)
        )
    }

    fn walk(&mut self, v: Value, ty: &Ty, owner: &str, path: &str) -> Result<Value, String> {
        match ty {
            Any => Ok(v),
            Str => match v {
                Value::String(_) => Ok(v),
                _ => Err(self.mismatch(&v, ty, owner, path)),
            },
            Bool => match v {
                Value::Bool(_) => Ok(v),
                _ => Err(self.mismatch(&v, ty, owner, path)),
            },
            Int32 | Int64 => {
                let fits = match (v.as_i64(), ty) {
                    (Some(_), Int64) => true,
                    (Some(n), _) => i32::try_from(n).is_ok(),
                    (None, _) => false,
                };
                if fits {
                    Ok(v)
                } else if v.is_number() {
                    Err(format!(
                        "json: cannot unmarshal number {v} into Go struct field {owner}.{path} of type {}",
                        go_type(ty)
                    ))
                } else {
                    Err(self.mismatch(&v, ty, owner, path))
                }
            }
            MicroTime | Time => {
                let Value::String(s) = &v else {
                    return Err(self.mismatch(&v, ty, owner, path));
                };
                if matches!(ty, MicroTime) {
                    parse_rfc3339(s, Frac::ExactlySix).map(|t| Value::String(format_micro(t)))
                } else {
                    parse_rfc3339(s, Frac::Optional).map(|t| Value::String(format_time(t)))
                }
            }
            StrMap => {
                let Value::Object(m) = v else {
                    return Err(self.mismatch(&v, ty, owner, path));
                };
                for (k, val) in &m {
                    if !val.is_string() {
                        return Err(self.mismatch(val, &Str, owner, &format!("{path}[{k}]")));
                    }
                }
                Ok(Value::Object(m))
            }
            List(inner) => {
                let Value::Array(items) = v else {
                    return Err(self.mismatch(&v, ty, owner, path));
                };
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    if item.is_null() {
                        out.push(match inner {
                            Obj(..) | StrMap => Value::Object(Map::new()),
                            _ => Value::Null,
                        });
                        continue;
                    }
                    out.push(self.walk(item, inner, owner, &p)?);
                }
                Ok(Value::Array(out))
            }
            Obj(name, fields) => {
                let Value::Object(m) = v else {
                    return Err(self.mismatch(&v, ty, owner, path));
                };
                let mut out = Map::new();
                for (k, val) in m {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    match fields.iter().find(|(f, _)| *f == k) {
                        None => self.unknown.push(p),
                        Some(_) if val.is_null() => {}
                        Some((_, fty)) => {
                            out.insert(k, self.walk(val, fty, name, &p)?);
                        }
                    }
                }
                Ok(Value::Object(out))
            }
        }
    }
}

/// Decodes a request body for `kind`. Err is the decoder's message (the caller wraps it in
/// a 400 `<Kind> in version "v1" cannot be handled as a <Kind>: ...`).
pub fn decode(kind: Kind, body: Value) -> Result<Decoded, String> {
    let mut w = Walker {
        unknown: Vec::new(),
    };
    let object = w.walk(body, schema(kind), "", "")?;
    Ok(Decoded {
        object,
        unknown_fields: w.unknown,
    })
}
