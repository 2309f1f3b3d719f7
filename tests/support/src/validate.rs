//! Defaulting and validation of decoded objects, following upstream
//! `pkg/apis/{coordination,core,discovery}/validation` and
//! `apimachinery/pkg/api/validation` (ObjectMeta, names, labels). A non-empty result
//! becomes a 422 Invalid.

use std::net::IpAddr;

use serde_json::{json, Value};

use crate::status::{FieldError, Kind};

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn q(s: &str) -> String {
    format!("{s:?}")
}

fn is_label_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_lowercase() | b[0].is_ascii_digit()
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// IsDNS1123Label: messages, empty when valid.
pub fn dns1123_label(s: &str) -> Vec<String> {
    let mut e = Vec::new();
    if s.len() > 63 {
        e.push("must be no more than 63 characters".to_string());
    }
    if !is_label_part(s) {
        e.push(DNS1123_LABEL_MSG.to_string());
    }
    e
}

/// IsDNS1123Subdomain: messages, empty when valid.
pub fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut e = Vec::new();
    if s.len() > 253 {
        e.push("must be no more than 253 characters".to_string());
    }
    if !s.split('.').all(is_label_part) {
        e.push(DNS1123_SUBDOMAIN_MSG.to_string());
    }
    e
}

fn is_qualified_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// IsQualifiedName (`prefix/name` or `name`).
pub fn qualified_name(s: &str) -> Vec<String> {
    let mut e = Vec::new();
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            e.push("prefix part must be non-empty".to_string());
        } else {
            e.extend(
                dns1123_subdomain(p)
                    .into_iter()
                    .map(|m| format!("prefix part {m}")),
            );
        }
    }
    if name.is_empty() {
        e.push("name part must be non-empty".to_string());
    } else {
        if name.len() > 63 {
            e.push("name part must be no more than 63 characters".to_string());
        }
        if !is_qualified_part(name) || name.contains('/') {
            e.push(QUALIFIED_NAME_MSG.to_string());
        }
    }
    e
}

fn label_value(s: &str) -> Vec<String> {
    let mut e = Vec::new();
    if s.len() > 63 {
        e.push("must be no more than 63 characters".to_string());
    }
    if !s.is_empty() && !is_qualified_part(s) {
        e.push(LABEL_VALUE_MSG.to_string());
    }
    e
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn push_all(errs: &mut Vec<FieldError>, field: &str, value: &str, msgs: Vec<String>) {
    for m in msgs {
        errs.push(FieldError::invalid(field, &q(value), &m));
    }
}

/// ValidateObjectMeta with NameIsDNSSubdomain (name, labels, annotation keys).
fn validate_object_meta(obj: &Value, errs: &mut Vec<FieldError>) {
    match str_at(obj, "/metadata/name") {
        None | Some("") => {
            if str_at(obj, "/metadata/generateName")
                .unwrap_or("")
                .is_empty()
            {
                errs.push(FieldError::required(
                    "metadata.name",
                    "name or generateName is required",
                ));
            }
        }
        Some(n) => push_all(errs, "metadata.name", n, dns1123_subdomain(n)),
    }
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            push_all(errs, "metadata.labels", k, qualified_name(k));
            let v = v.as_str().unwrap_or("");
            push_all(errs, "metadata.labels", v, label_value(v));
        }
    }
    if let Some(ann) = obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        let mut total = 0;
        for (k, v) in ann {
            push_all(
                errs,
                "metadata.annotations",
                k,
                qualified_name(&k.to_lowercase()),
            );
            total += k.len() + v.as_str().map_or(0, str::len);
        }
        if total > 256 * 1024 {
            errs.push(FieldError::too_many(
                "metadata.annotations",
                total,
                256 * 1024,
            ));
        }
    }
}

/// Defaults the real apiserver applies after decoding (SetDefaults_*).
pub fn apply_defaults(kind: Kind, obj: &mut Value) {
    match kind {
        Kind::Lease | Kind::Event => {}
        Kind::Endpoints => {
            if let Some(subsets) = obj.get_mut("subsets").and_then(Value::as_array_mut) {
                for ss in subsets {
                    if let Some(ports) = ss.get_mut("ports").and_then(Value::as_array_mut) {
                        for p in ports {
                            if p.get("protocol")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .is_empty()
                            {
                                p["protocol"] = json!("TCP");
                            }
                        }
                    }
                }
            }
        }
        Kind::EndpointSlice => {
            if let Some(ports) = obj.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports {
                    if p.get("protocol").is_none() {
                        p["protocol"] = json!("TCP");
                    }
                    if p.get("name").is_none() {
                        p["name"] = json!("");
                    }
                }
            }
        }
    }
}

/// Validates a (decoded, defaulted) object; `old` is the stored object on update.
pub fn validate(kind: Kind, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_object_meta(obj, &mut errs);
    if let Some(old) = old {
        let (new_uid, old_uid) = (
            str_at(obj, "/metadata/uid").unwrap_or(""),
            str_at(old, "/metadata/uid").unwrap_or(""),
        );
        if !new_uid.is_empty() && new_uid != old_uid {
            errs.push(FieldError::invalid(
                "metadata.uid",
                &q(new_uid),
                "field is immutable",
            ));
        }
    }
    match kind {
        Kind::Lease => validate_lease(obj, &mut errs),
        Kind::Endpoints => validate_endpoints(obj, &mut errs),
        Kind::EndpointSlice => validate_slice(obj, old, &mut errs),
        Kind::Event => crate::events::validate_event(obj, &mut errs),
    }
    errs
}

fn validate_lease(obj: &Value, errs: &mut Vec<FieldError>) {
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    if let Some(d) = spec.get("leaseDurationSeconds").and_then(Value::as_i64) {
        if d <= 0 {
            errs.push(FieldError::invalid(
                "spec.leaseDurationSeconds",
                &d.to_string(),
                "must be greater than 0",
            ));
        }
    }
    if let Some(t) = spec.get("leaseTransitions").and_then(Value::as_i64) {
        if t < 0 {
            errs.push(FieldError::invalid(
                "spec.leaseTransitions",
                &t.to_string(),
                "must be greater than or equal to 0",
            ));
        }
    }
    let strategy = spec.get("strategy").and_then(Value::as_str);
    if let Some(s) = strategy {
        if s.contains('/') {
            push_all(errs, "spec.strategy.strategy", s, qualified_name(s));
        } else if s != "OldestEmulationVersion" {
            errs.push(FieldError::not_supported(
                "spec.strategy.strategy",
                s,
                &["OldestEmulationVersion"],
            ));
        }
    }
    let preferred = spec.get("preferredHolder").and_then(Value::as_str);
    if preferred.is_some_and(|p| !p.is_empty()) && strategy.unwrap_or("").is_empty() {
        errs.push(FieldError::forbidden(
            "spec.preferredHolder",
            "may only be specified if `strategy` is defined",
        ));
    }
}

/// ValidateNonSpecialIP / ValidateEndpointIP.
fn non_special_ip(ip: IpAddr, raw: &str, field: &str, errs: &mut Vec<FieldError>) {
    let (unspec, loopback, link_local, ll_multicast) = match ip {
        IpAddr::V4(a) => (
            a.is_unspecified(),
            a.is_loopback(),
            a.is_link_local(),
            a.octets()[..3] == [224, 0, 0],
        ),
        IpAddr::V6(a) => (
            a.is_unspecified(),
            a.is_loopback(),
            a.segments()[0] & 0xffc0 == 0xfe80,
            a.octets()[0] == 0xff && a.octets()[1] & 0x0f == 0x02,
        ),
    };
    let v = q(raw);
    if unspec {
        errs.push(FieldError::invalid(
            field,
            &v,
            &format!("may not be unspecified ({raw})"),
        ));
    }
    if loopback {
        errs.push(FieldError::invalid(
            field,
            &v,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    if link_local {
        errs.push(FieldError::invalid(
            field,
            &v,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    if ll_multicast {
        errs.push(FieldError::invalid(
            field,
            &v,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
}

const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];

fn validate_port_common(p: &Value, path: &str, port_required: bool, errs: &mut Vec<FieldError>) {
    match p.get("port").and_then(Value::as_i64) {
        Some(n) if !(1..=65535).contains(&n) => errs.push(FieldError::invalid(
            &format!("{path}.port"),
            &n.to_string(),
            "must be between 1 and 65535, inclusive",
        )),
        None if port_required => errs.push(FieldError::invalid(
            &format!("{path}.port"),
            "0",
            "must be between 1 and 65535, inclusive",
        )),
        _ => {}
    }
    match p.get("protocol").and_then(Value::as_str) {
        Some("") => errs.push(FieldError::required(&format!("{path}.protocol"), "")),
        Some(pr) if !PROTOCOLS.contains(&pr) => errs.push(FieldError::not_supported(
            &format!("{path}.protocol"),
            pr,
            &PROTOCOLS,
        )),
        _ => {}
    }
    if let Some(ap) = p.get("appProtocol").and_then(Value::as_str) {
        push_all(errs, &format!("{path}.appProtocol"), ap, qualified_name(ap));
    }
}

fn validate_endpoints(obj: &Value, errs: &mut Vec<FieldError>) {
    let empty = Vec::new();
    let subsets = obj
        .get("subsets")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    for (i, ss) in subsets.iter().enumerate() {
        let sp = format!("subsets[{i}]");
        let addrs = ss
            .get("addresses")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        let not_ready = ss
            .get("notReadyAddresses")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        if addrs.is_empty() && not_ready.is_empty() {
            errs.push(FieldError::required(
                &sp,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (list, name) in [(addrs, "addresses"), (not_ready, "notReadyAddresses")] {
            for (j, a) in list.iter().enumerate() {
                let ap = format!("{sp}.{name}[{j}]");
                let ip = a.get("ip").and_then(Value::as_str).unwrap_or("");
                match ip.parse::<IpAddr>() {
                    Ok(parsed) => non_special_ip(parsed, ip, &format!("{ap}.ip"), errs),
                    Err(_) => errs.push(FieldError::invalid(
                        &format!("{ap}.ip"),
                        &q(ip),
                        "must be a valid IP address",
                    )),
                }
                if let Some(h) = a.get("hostname").and_then(Value::as_str) {
                    if !h.is_empty() {
                        push_all(errs, &format!("{ap}.hostname"), h, dns1123_label(h));
                    }
                }
                if let Some(n) = a.get("nodeName").and_then(Value::as_str) {
                    push_all(errs, &format!("{ap}.nodeName"), n, dns1123_subdomain(n));
                }
            }
        }
        let ports = ss.get("ports").and_then(Value::as_array).unwrap_or(&empty);
        for (j, p) in ports.iter().enumerate() {
            let pp = format!("{sp}.ports[{j}]");
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            if ports.len() > 1 && name.is_empty() {
                errs.push(FieldError::required(&format!("{pp}.name"), ""));
            } else if !name.is_empty() {
                push_all(errs, &format!("{pp}.name"), name, dns1123_label(name));
            }
            validate_port_common(p, &pp, true, errs);
        }
    }
}

const ADDRESS_TYPES: [&str; 3] = ["FQDN", "IPv4", "IPv6"];

fn validate_slice(obj: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let at = obj.get("addressType").and_then(Value::as_str).unwrap_or("");
    let old_at = old
        .and_then(|o| o.get("addressType"))
        .and_then(Value::as_str);
    match old_at {
        Some(o) if o != at => errs.push(FieldError::invalid(
            "addressType",
            &q(at),
            "field is immutable",
        )),
        Some(_) => {}
        None if at.is_empty() => errs.push(FieldError::required("addressType", "")),
        None if !ADDRESS_TYPES.contains(&at) => {
            errs.push(FieldError::not_supported("addressType", at, &ADDRESS_TYPES))
        }
        None => {}
    }
    let empty = Vec::new();
    let endpoints = obj
        .get("endpoints")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    if endpoints.len() > 1000 {
        errs.push(FieldError::too_many("endpoints", endpoints.len(), 1000));
    }
    for (i, ep) in endpoints.iter().enumerate() {
        let ep_path = format!("endpoints[{i}]");
        let addrs = ep
            .get("addresses")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        if addrs.is_empty() {
            errs.push(FieldError::required(
                &format!("{ep_path}.addresses"),
                "must contain at least 1 address",
            ));
        } else if addrs.len() > 100 {
            errs.push(FieldError::too_many(
                &format!("{ep_path}.addresses"),
                addrs.len(),
                100,
            ));
        }
        for (j, a) in addrs.iter().enumerate() {
            let ap = format!("{ep_path}.addresses[{j}]");
            let a = a.as_str().unwrap_or("");
            match at {
                "IPv4" | "IPv6" => {
                    let parsed = a.parse::<IpAddr>().ok().filter(|ip| {
                        matches!((ip, at), (IpAddr::V4(_), "IPv4") | (IpAddr::V6(_), "IPv6"))
                    });
                    match parsed {
                        Some(ip) => non_special_ip(ip, a, &ap, errs),
                        None => errs.push(FieldError::invalid(
                            &ap,
                            &q(a),
                            &format!("must be a valid {at} address"),
                        )),
                    }
                }
                "FQDN" => {
                    let t = a.strip_suffix('.').unwrap_or(a);
                    let mut m = dns1123_subdomain(t);
                    if m.is_empty() && !t.contains('.') {
                        m.push(
                            "should be a domain with at least two segments separated by dots"
                                .into(),
                        );
                    }
                    push_all(errs, &ap, a, m);
                }
                _ => {}
            }
        }
        if let Some(h) = ep.get("hostname").and_then(Value::as_str) {
            push_all(errs, &format!("{ep_path}.hostname"), h, dns1123_label(h));
        }
        if let Some(n) = ep.get("nodeName").and_then(Value::as_str) {
            push_all(
                errs,
                &format!("{ep_path}.nodeName"),
                n,
                dns1123_subdomain(n),
            );
        }
    }
    let ports = obj.get("ports").and_then(Value::as_array).unwrap_or(&empty);
    if ports.len() > 20000 {
        errs.push(FieldError::too_many("ports", ports.len(), 20000));
    }
    let mut seen = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = format!("ports[{i}]");
        let name = p.get("name").and_then(Value::as_str).unwrap_or("");
        if !name.is_empty() {
            push_all(errs, &format!("{pp}.name"), name, dns1123_label(name));
        }
        if seen.contains(&name) {
            errs.push(FieldError::duplicate(&format!("{pp}.name"), name));
        }
        seen.push(name);
        validate_port_common(p, &pp, false, errs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(dns1123_subdomain("my-lock.example").is_empty());
        assert!(!dns1123_subdomain("My_Lock").is_empty());
        assert!(!dns1123_subdomain("-a").is_empty());
        assert!(!dns1123_subdomain("a..b").is_empty());
        assert!(dns1123_label("http").is_empty());
        assert!(!dns1123_label("a.b").is_empty());
        assert!(qualified_name("kubernetes.io/service-name").is_empty());
        assert!(qualified_name("endpointslice.kubernetes.io/managed-by").is_empty());
        assert!(!qualified_name("a/b/c").is_empty());
        assert!(label_value("").is_empty());
        assert!(!label_value("-x").is_empty());
    }
}
