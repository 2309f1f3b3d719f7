//! Request bodies in Kubernetes protobuf (`application/vnd.kubernetes.protobuf`), which
//! client-go (v0.35 and later) sends for built-in types unless told otherwise: the `k8s\0`
//! envelope (`runtime.Unknown`) around a `coordination.k8s.io/v1` Lease, turned into the JSON
//! object a JSON client would have sent, so the rest of the server handles both alike.
//!
//! Only what a Lease carries is decoded: the ObjectMeta fields a client sets (name,
//! generateName, namespace, uid, resourceVersion, generation, creationTimestamp, labels,
//! annotations, finalizers) and the whole LeaseSpec. Other kinds, and owner references or
//! managed fields, get a 415 naming the limitation. Responses stay JSON, which client-go
//! accepts (it sends `Accept: application/vnd.kubernetes.protobuf,application/json`).

use serde_json::{json, Map, Value};

use crate::status::Kind;
use crate::timefmt::{self, Instant};

/// The media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The Unix seconds of Go's zero `time.Time`, which a zero `metav1.Time` is encoded as.
const GO_ZERO_TIME: i64 = -62_135_596_800;

/// One field of a protobuf message.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// The fields of one message, in order: (field number, value).
fn fields(mut b: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, String> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b)?;
        let value = match key & 7 {
            0 => Wire::Varint(varint(&mut b)?),
            1 | 5 => {
                let n = if key & 7 == 1 { 8 } else { 4 };
                b = b.get(n..).ok_or("truncated fixed-width field")?;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(varint(&mut b)?).map_err(|_| "length overflow")?;
                let (v, rest) = (b.get(..len), b.get(len..));
                b = rest.ok_or("truncated length-delimited field")?;
                Wire::Bytes(v.ok_or("truncated length-delimited field")?)
            }
            t => return Err(format!("unsupported wire type {t}")),
        };
        out.push((key >> 3, value));
    }
    Ok(out)
}

fn varint(b: &mut &[u8]) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first().ok_or("truncated varint")?;
        *b = rest;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint too long".into())
}

fn string(w: &Wire) -> Result<String, String> {
    match w {
        Wire::Bytes(b) => String::from_utf8(b.to_vec()).map_err(|_| "invalid UTF-8".into()),
        _ => Err("expected a string".into()),
    }
}

fn bytes<'a>(w: &Wire<'a>) -> Result<&'a [u8], String> {
    match w {
        Wire::Bytes(b) => Ok(b),
        _ => Err("expected a message".into()),
    }
}

fn int(w: &Wire) -> Result<i64, String> {
    match w {
        Wire::Varint(v) => Ok(*v as i64),
        _ => Err("expected a varint".into()),
    }
}

/// A `Timestamp` (seconds, nanos) as `metav1.Time` (micro: false) or `MicroTime` JSON;
/// `None` for Go's zero time.
fn time(b: &[u8], micro: bool) -> Result<Option<Value>, String> {
    let (mut secs, mut nanos) = (0i64, 0i64);
    for (n, w) in fields(b)? {
        match n {
            1 => secs = int(&w)?,
            2 => nanos = int(&w)? as i32 as i64,
            _ => {}
        }
    }
    if secs == GO_ZERO_TIME || (b.is_empty() && !micro) {
        return Ok(None);
    }
    let t = Instant {
        secs,
        micros: (nanos / 1000).clamp(0, 999_999) as u32,
    };
    Ok(Some(json!(if micro {
        timefmt::format_micro(t)
    } else {
        timefmt::format_time(t)
    })))
}

/// A `map<string, string>` entry.
fn entry(b: &[u8]) -> Result<(String, String), String> {
    let (mut k, mut v) = (String::new(), String::new());
    for (n, w) in fields(b)? {
        match n {
            1 => k = string(&w)?,
            2 => v = string(&w)?,
            _ => {}
        }
    }
    Ok((k, v))
}

fn object_meta(b: &[u8]) -> Result<Value, String> {
    let mut m = Map::new();
    let (mut labels, mut annotations, mut finalizers) = (Map::new(), Map::new(), Vec::new());
    for (n, w) in fields(b)? {
        let key = match n {
            1 => "name",
            2 => "generateName",
            3 => "namespace",
            5 => "uid",
            6 => "resourceVersion",
            7 => {
                let g = int(&w)?;
                if g != 0 {
                    m.insert("generation".into(), json!(g));
                }
                continue;
            }
            8 => {
                if let Some(t) = time(bytes(&w)?, false)? {
                    m.insert("creationTimestamp".into(), t);
                }
                continue;
            }
            11 | 12 => {
                let (k, v) = entry(bytes(&w)?)?;
                if n == 11 {
                    &mut labels
                } else {
                    &mut annotations
                }
                .insert(k, json!(v));
                continue;
            }
            14 => {
                finalizers.push(json!(string(&w)?));
                continue;
            }
            4 | 9 | 10 => continue, // selfLink, deletion*: read-only, ignored by the server
            13 | 17 => {
                return Err(
                    "ownerReferences and managedFields are not decoded from protobuf".into(),
                )
            }
            _ => continue,
        };
        let s = string(&w)?;
        if !s.is_empty() {
            m.insert(key.into(), json!(s));
        }
    }
    for (key, map) in [("labels", labels), ("annotations", annotations)] {
        if !map.is_empty() {
            m.insert(key.into(), Value::Object(map));
        }
    }
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), json!(finalizers));
    }
    Ok(Value::Object(m))
}

/// LeaseSpec: every field is optional (a pointer in Go), so present means set.
fn lease_spec(b: &[u8]) -> Result<Value, String> {
    let mut m = Map::new();
    for (n, w) in fields(b)? {
        let (key, value) = match n {
            1 => ("holderIdentity", json!(string(&w)?)),
            2 => ("leaseDurationSeconds", json!(int(&w)? as i32)),
            3 | 4 => {
                let key = if n == 3 { "acquireTime" } else { "renewTime" };
                match time(bytes(&w)?, true)? {
                    Some(t) => (key, t),
                    None => continue,
                }
            }
            5 => ("leaseTransitions", json!(int(&w)? as i32)),
            6 => ("strategy", json!(string(&w)?)),
            7 => ("preferredHolder", json!(string(&w)?)),
            _ => continue,
        };
        m.insert(key.into(), value);
    }
    Ok(Value::Object(m))
}

/// The JSON object equivalent to a protobuf request `body` for `kind`, or the reason it
/// cannot be decoded (the caller answers 415 or 400).
pub fn decode(kind: Kind, body: &[u8]) -> Result<Value, String> {
    let unknown = body
        .strip_prefix(b"k8s\0")
        .ok_or("the body does not start with the protobuf envelope prefix k8s\\0")?;
    let (mut api_version, mut kind_name, mut raw) = (String::new(), String::new(), None);
    for (n, w) in fields(unknown)? {
        match n {
            1 => {
                for (m, t) in fields(bytes(&w)?)? {
                    match m {
                        1 => api_version = string(&t)?,
                        2 => kind_name = string(&t)?,
                        _ => {}
                    }
                }
            }
            2 => raw = Some(bytes(&w)?),
            _ => {}
        }
    }
    if kind != Kind::Lease || kind_name != "Lease" {
        return Err(format!(
            "the test server decodes only Lease from protobuf, not {kind_name:?}"
        ));
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind_name));
    for (n, w) in fields(raw.unwrap_or_default())? {
        match n {
            1 => obj.insert("metadata".into(), object_meta(bytes(&w)?)?),
            2 => obj.insert("spec".into(), lease_spec(bytes(&w)?)?),
            _ => None,
        };
    }
    Ok(Value::Object(obj))
}
