//! The API paths we use (Lease, Endpoints, EndpointSlice), with names percent-encoded so they
//! cannot smuggle path segments or queries, and the query strings of lists and watches.

use std::borrow::Cow;

/// Label and field selectors of a list or watch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ListParams {
    /// `labelSelector`, such as `app=a,tier in (x, y)`; `None` or empty: left out.
    pub label_selector: Option<String>,
    /// `fieldSelector`, such as `metadata.name=my-lock`; `None` or empty: left out.
    pub field_selector: Option<String>,
}

impl ListParams {
    /// Selects the one object named `name` (`fieldSelector=metadata.name=<name>`).
    pub fn named(name: &str) -> ListParams {
        ListParams {
            label_selector: None,
            field_selector: Some(format!("metadata.name={name}")),
        }
    }
}

/// `/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}`
pub fn lease_path(ns: &str, name: &str) -> String {
    format!("{}/{}", leases_path(ns), percent_encode(name))
}

/// `/apis/coordination.k8s.io/v1/namespaces/{ns}/leases`
pub fn leases_path(ns: &str) -> String {
    format!(
        "/apis/coordination.k8s.io/v1/namespaces/{}/leases",
        percent_encode(ns)
    )
}

/// `/api/v1/namespaces/{ns}/endpoints/{name}`
pub fn endpoints_path(ns: &str, name: &str) -> String {
    format!("{}/{}", endpoints_collection(ns), percent_encode(name))
}

/// `/api/v1/namespaces/{ns}/endpoints`
pub fn endpoints_collection(ns: &str) -> String {
    format!("/api/v1/namespaces/{}/endpoints", percent_encode(ns))
}

/// `/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices/{name}`
pub fn endpointslice_path(ns: &str, name: &str) -> String {
    format!("{}/{}", endpointslices_path(ns), percent_encode(name))
}

/// `/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices`
pub fn endpointslices_path(ns: &str) -> String {
    format!(
        "/apis/discovery.k8s.io/v1/namespaces/{}/endpointslices",
        percent_encode(ns)
    )
}

/// `/api/v1/namespaces/{ns}/events` (core/v1 Events, as client-go's recorder writes them)
pub fn events_path(ns: &str) -> String {
    format!("/api/v1/namespaces/{}/events", percent_encode(ns))
}

/// `path` with a leading `/`.
pub(super) fn normalize_path(path: &str) -> Cow<'_, str> {
    if path.starts_with('/') {
        path.into()
    } else {
        format!("/{path}").into()
    }
}

/// The query pairs of `params`: `fieldSelector`, `labelSelector`, each only when non-empty.
pub(super) fn list_query(params: &ListParams) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if let Some(f) = params.field_selector.as_deref().filter(|s| !s.is_empty()) {
        q.push(("fieldSelector", f.to_string()));
    }
    if let Some(l) = params.label_selector.as_deref().filter(|s| !s.is_empty()) {
        q.push(("labelSelector", l.to_string()));
    }
    q
}

/// `?k=v&k2=v2` with values percent-encoded, or `""` for no parameters.
pub(super) fn query_string(pairs: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(&percent_encode(k));
        out.push('=');
        out.push_str(&percent_encode(v));
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            lease_path("ns1", "my-lock"),
            "/apis/coordination.k8s.io/v1/namespaces/ns1/leases/my-lock"
        );
        assert_eq!(
            leases_path("ns1"),
            "/apis/coordination.k8s.io/v1/namespaces/ns1/leases"
        );
        assert_eq!(
            endpoints_path("ns1", "svc"),
            "/api/v1/namespaces/ns1/endpoints/svc"
        );
        assert_eq!(
            endpoints_collection("ns1"),
            "/api/v1/namespaces/ns1/endpoints"
        );
        assert_eq!(
            endpointslice_path("ns1", "svc-abc"),
            "/apis/discovery.k8s.io/v1/namespaces/ns1/endpointslices/svc-abc"
        );
        assert_eq!(
            endpointslices_path("ns1"),
            "/apis/discovery.k8s.io/v1/namespaces/ns1/endpointslices"
        );
        // Names cannot smuggle path segments or queries.
        assert_eq!(
            lease_path("a/b", "x?y"),
            "/apis/coordination.k8s.io/v1/namespaces/a%2Fb/leases/x%3Fy"
        );
        assert_eq!(normalize_path("api/v1"), "/api/v1");
    }
    #[test]
    fn queries() {
        assert_eq!(query_string(&list_query(&ListParams::default())), "");
        let p = ListParams {
            label_selector: Some("app=a,tier in (x, y)".into()),
            field_selector: Some("metadata.name=my-lock".into()),
        };
        assert_eq!(
            query_string(&list_query(&p)),
            "?fieldSelector=metadata.name%3Dmy-lock&labelSelector=app%3Da%2Ctier%20in%20%28x%2C%20y%29"
        );
        assert_eq!(
            ListParams::named("l").field_selector.as_deref(),
            Some("metadata.name=l")
        );
    }
}
