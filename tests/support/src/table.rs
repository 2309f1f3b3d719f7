//! Server-side printing: a `meta.k8s.io` Table instead of the object or list, when the
//! client's Accept asks for one first (`application/json;as=Table;v=v1;g=meta.k8s.io`, as
//! kubectl does). The columns and cells are those of kube-apiserver's printers for Leases
//! (Name, Holder, Age), Endpoints (Name, Endpoints, Age) and EndpointSlices (Name,
//! AddressType, Ports, Endpoints, Age); each row carries the object as `includeObject` says
//! (`Metadata`, the default: a PartialObjectMetadata; `Object`; `None`).

use serde_json::{json, Value};

use crate::status::Kind;
use crate::timefmt::{self, Frac};

/// What a Table row carries besides its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    None,
    Metadata,
    Object,
}

/// A Table request: the Table's apiVersion and what rows include.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableRequest {
    pub api_version: &'static str,
    pub include: Include,
}

/// The Table version the client prefers, if the first media type in `accept` that this
/// server can produce is a Table (`application/json;as=Table;v=v1|v1beta1;g=meta.k8s.io`).
pub fn negotiate(accept: &str) -> Option<&'static str> {
    for part in accept.split(',') {
        let mut params = part.split(';');
        let mt = params.next().unwrap_or("").trim().to_ascii_lowercase();
        let (mut r#as, mut v, mut g) = (None, None, None);
        for p in params {
            if let Some((k, val)) = p.split_once('=') {
                let val = val.trim().to_string();
                match k.trim() {
                    "as" => r#as = Some(val),
                    "v" => v = Some(val),
                    "g" => g = Some(val),
                    _ => {}
                }
            }
        }
        if !matches!(
            mt.as_str(),
            "application/json" | "application/*" | "*/*" | ""
        ) {
            continue; // protobuf, yaml...: not produced here, try the next one
        }
        match (r#as.as_deref(), g.as_deref(), v.as_deref()) {
            (None, _, _) => return None,
            (Some("Table"), Some("meta.k8s.io"), Some("v1")) => return Some("meta.k8s.io/v1"),
            (Some("Table"), Some("meta.k8s.io"), Some("v1beta1")) => {
                return Some("meta.k8s.io/v1beta1")
            }
            _ => continue, // another `as=` (PartialObjectMetadata...): not served here
        }
    }
    None
}

/// The Table a request asks for (from its Accept header and `includeObject`), if any.
pub fn request(
    accept: Option<&str>,
    include: Option<&str>,
) -> Result<Option<TableRequest>, String> {
    let Some(api_version) = accept.and_then(negotiate) else {
        return Ok(None);
    };
    Ok(Some(TableRequest {
        api_version,
        include: parse_include(include)?,
    }))
}

/// A get's object or a list's body (answered 200) as the Table the client asked for.
pub fn present(kind: Kind, req: TableRequest, body: &Value) -> Value {
    match body.get("items").and_then(Value::as_array) {
        Some(items) => {
            let rv = body
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            let full: Vec<Value> = items
                .iter()
                .map(|i| crate::store::with_type_meta(kind, i.clone()))
                .collect();
            table(kind, req, &full, rv)
        }
        None => single(kind, req, body),
    }
}

/// `includeObject`: None, Metadata (default) or Object.
pub fn parse_include(v: Option<&str>) -> Result<Include, String> {
    match v.unwrap_or("") {
        "" | "Metadata" => Ok(Include::Metadata),
        "None" => Ok(Include::None),
        "Object" => Ok(Include::Object),
        other => Err(format!("unsupported includeObject value {other:?}")),
    }
}

/// A Table of `objects` (a list or a single object's answer), at resourceVersion `rv`.
pub fn table(kind: Kind, req: TableRequest, objects: &[Value], rv: &str) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": req.api_version,
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": columns(kind),
        "rows": objects.iter().map(|o| row(kind, req, o)).collect::<Vec<_>>(),
    })
}

/// A Table of one object (a get, or one watch event).
pub fn single(kind: Kind, req: TableRequest, obj: &Value) -> Value {
    let rv = obj
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    table(kind, req, std::slice::from_ref(obj), rv)
}

fn column(name: &str, format: &str, description: &str) -> Value {
    json!({"name": name, "type": "string", "format": format, "description": description, "priority": 0})
}

fn columns(kind: Kind) -> Vec<Value> {
    let name = column(
        "Name",
        "name",
        "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically.",
    );
    let age = column(
        "Age",
        "",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    );
    match kind {
        Kind::Lease => vec![
            name,
            column(
                "Holder",
                "",
                "holderIdentity contains the identity of the holder of a current lease.",
            ),
            age,
        ],
        Kind::Endpoints => vec![
            name,
            column(
                "Endpoints",
                "",
                "Endpoints is the list of endpoints in this object.",
            ),
            age,
        ],
        Kind::EndpointSlice => vec![
            name,
            column(
                "AddressType",
                "",
                "addressType specifies the type of address carried by this EndpointSlice.",
            ),
            column(
                "Ports",
                "",
                "ports specifies the list of network ports exposed by each endpoint in this slice.",
            ),
            column(
                "Endpoints",
                "",
                "endpoints is a list of unique endpoints in this slice.",
            ),
            age,
        ],
        // kube-apiserver's printer for core/v1 Events (what `kubectl get events` shows).
        Kind::Event => vec![
            column("Last Seen", "", "Time of the last occurrence of this event."),
            column("Type", "", "Type of this event (Normal, Warning)."),
            column("Reason", "", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
            column("Object", "", "The object that this event is about."),
            column("Message", "", "A human-readable description of the status of this operation."),
        ],
    }
}

fn row(kind: Kind, req: TableRequest, obj: &Value) -> Value {
    let s = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let name = s("/metadata/name");
    let age = age(obj
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str));
    let cells = match kind {
        Kind::Lease => json!([name, s("/spec/holderIdentity"), age]),
        Kind::Endpoints => json!([name, endpoints_cell(obj), age]),
        Kind::EndpointSlice => json!([
            name,
            s("/addressType"),
            slice_ports_cell(obj),
            slice_endpoints_cell(obj),
            age
        ]),
        Kind::Event => {
            let seen = [
                "/lastTimestamp",
                "/eventTime",
                "/metadata/creationTimestamp",
            ]
            .iter()
            .find_map(|p| obj.pointer(p).and_then(Value::as_str));
            let object = format!(
                "{}/{}",
                s("/involvedObject/kind").to_ascii_lowercase(),
                s("/involvedObject/name")
            );
            json!([
                self::age(seen),
                s("/type"),
                s("/reason"),
                object,
                s("/message")
            ])
        }
    };
    let mut r = json!({"cells": cells});
    match req.include {
        Include::None => {}
        Include::Object => r["object"] = obj.clone(),
        Include::Metadata => {
            r["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
            })
        }
    }
    r
}

fn items(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// At most three entries, then ` + N more...`; `empty` when there are none.
fn with_more(list: Vec<String>, count: usize, empty: &str) -> String {
    let shown = list.len().min(3);
    let ret = list[..shown].join(",");
    if count > 3 {
        format!("{ret} + {} more...", count - 3)
    } else if ret.is_empty() {
        empty.to_string()
    } else {
        ret
    }
}

/// The printer's `formatEndpoints`: `ip:port` per address and port (just `ip` without ports).
fn endpoints_cell(obj: &Value) -> String {
    let subsets = items(obj.get("subsets"));
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut list = Vec::new();
    for ss in subsets {
        let addrs: Vec<&str> = items(ss.get("addresses"))
            .iter()
            .filter_map(|a| a.get("ip").and_then(Value::as_str))
            .collect();
        let ports = items(ss.get("ports"));
        if ports.is_empty() {
            list.extend(addrs.iter().map(|ip| ip.to_string()));
            continue;
        }
        for p in ports {
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            for ip in &addrs {
                list.push(if ip.contains(':') {
                    format!("[{ip}]:{port}")
                } else {
                    format!("{ip}:{port}")
                });
            }
        }
    }
    let count = list.len();
    if count > 3 {
        with_more(list, count, "")
    } else {
        list.join(",")
    }
}

fn slice_ports_cell(obj: &Value) -> String {
    let list: Vec<String> = items(obj.get("ports"))
        .iter()
        .map(|p| {
            match (
                p.get("port").and_then(Value::as_i64),
                p.get("name").and_then(Value::as_str),
            ) {
                (Some(n), _) => n.to_string(),
                (None, Some(name)) => name.to_string(),
                (None, None) => "*".to_string(),
            }
        })
        .collect();
    let count = list.len();
    with_more(list, count, "<unset>")
}

fn slice_endpoints_cell(obj: &Value) -> String {
    let list: Vec<String> = items(obj.get("endpoints"))
        .iter()
        .flat_map(|e| items(e.get("addresses")).iter())
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    let count = list.len();
    with_more(list, count, "<unset>")
}

/// The Age cell: time since `creationTimestamp` in kubectl's short form, `<unknown>` without.
fn age(created: Option<&str>) -> String {
    let Some(t) = created.and_then(|c| timefmt::parse_rfc3339(c, Frac::Optional).ok()) else {
        return "<unknown>".to_string();
    };
    human_duration(timefmt::now().secs - t.secs)
}

/// `duration.HumanDuration` for whole seconds.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".to_string();
    }
    if secs < 0 {
        return "0s".to_string();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        return match secs % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    let years = hours / 24 / 365;
    if hours < 24 * 365 * 8 {
        return match (hours / 24) % 365 {
            0 => format!("{years}y"),
            d => format!("{years}y{d}d"),
        };
    }
    format!("{years}y")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(kubectl), Some("meta.k8s.io/v1"));
        assert_eq!(negotiate("application/json"), None);
        assert_eq!(
            negotiate("application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io"),
            Some("meta.k8s.io/v1beta1")
        );
        assert_eq!(
            negotiate(
                "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io,application/json"
            ),
            None
        );
    }

    #[test]
    fn durations() {
        for (s, want) in [
            (5, "5s"),
            (119, "119s"),
            (150, "2m30s"),
            (600, "10m"),
            (3 * 3600 + 60, "3h1m"),
            (30 * 3600, "30h"),
            (3 * 86400 + 3600, "3d1h"),
            (100 * 86400, "100d"),
            (3 * 365 * 86400, "3y"),
        ] {
            assert_eq!(human_duration(s), want, "{s}");
        }
    }

    #[test]
    fn cells() {
        let ep =
            json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 8080}]}]});
        assert_eq!(endpoints_cell(&ep), "10.0.0.1:8080");
        assert_eq!(endpoints_cell(&json!({})), "<none>");
        let sl = json!({"ports": [{"port": 80}, {"name": "x"}], "endpoints": [{"addresses": ["a", "b"]}, {"addresses": ["c", "d", "e"]}]});
        assert_eq!(slice_ports_cell(&sl), "80,x");
        assert_eq!(slice_endpoints_cell(&sl), "a,b,c + 2 more...");
        assert_eq!(slice_ports_cell(&json!({})), "<unset>");
    }
}
