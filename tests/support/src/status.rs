//! The served resource types (group, kind, URL prefix, update policy) and the `Status`
//! error bodies the real apiserver returns, with its exact message formats.

use serde_json::{json, Value};

/// One of the three resource types this server serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Lease,
    Endpoints,
    EndpointSlice,
    /// core/v1 Event (see `events.rs`).
    Event,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Lease,
        Kind::Endpoints,
        Kind::EndpointSlice,
        Kind::Event,
    ];

    /// Plural resource name as used in URLs and RBAC.
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Lease => "leases",
            Kind::Endpoints => "endpoints",
            Kind::EndpointSlice => "endpointslices",
            Kind::Event => "events",
        }
    }

    pub fn from_resource(r: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.resource() == r)
    }

    /// API group ("" for the core group).
    pub fn group(self) -> &'static str {
        match self {
            Kind::Lease => "coordination.k8s.io",
            Kind::Endpoints => "",
            Kind::EndpointSlice => "discovery.k8s.io",
            Kind::Event => "",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Kind::Lease => "Lease",
            Kind::Endpoints => "Endpoints",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::Event => "Event",
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Lease => "coordination.k8s.io/v1",
            Kind::Endpoints => "v1",
            Kind::EndpointSlice => "discovery.k8s.io/v1",
            Kind::Event => "v1",
        }
    }

    /// URL prefix up to (not including) `/namespaces/`.
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Lease => "/apis/coordination.k8s.io/v1",
            Kind::Endpoints => "/api/v1",
            Kind::EndpointSlice => "/apis/discovery.k8s.io/v1",
            Kind::Event => "/api/v1",
        }
    }

    /// `leases.coordination.k8s.io`, `endpoints`: schema.GroupResource.String().
    pub fn qualified_resource(self) -> String {
        qualify(self.resource(), self.group())
    }

    /// `Lease.coordination.k8s.io`, `Endpoints`: schema.GroupKind.String().
    pub fn qualified_kind(self) -> String {
        qualify(self.kind(), self.group())
    }

    /// Upstream `AllowCreateOnUpdate()` of the registry strategy.
    pub fn allow_create_on_update(self) -> bool {
        match self {
            Kind::Lease | Kind::Endpoints => true,
            Kind::EndpointSlice | Kind::Event => false,
        }
    }

    /// Upstream `AllowUnconditionalUpdate()` of the registry strategy.
    pub fn allow_unconditional_update(self) -> bool {
        match self {
            Kind::Lease => false,
            Kind::Endpoints | Kind::EndpointSlice | Kind::Event => true,
        }
    }
}

fn qualify(a: &str, group: &str) -> String {
    if group.is_empty() {
        a.to_string()
    } else {
        format!("{a}.{group}")
    }
}

/// An error response: HTTP code plus a `Status` body (and optional extra headers).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: &str, details: Option<Value>) -> ApiError {
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        });
        if let Some(d) = details {
            body["details"] = d;
        }
        ApiError {
            code,
            body,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: String) -> ApiError {
        self.headers.push((name.to_string(), value));
        self
    }
}

/// `details` of a Status naming an object: `{"name","group","kind"}` (kind is the resource).
pub fn details(kind: Kind, name: &str) -> Value {
    let mut d = json!({ "kind": kind.resource() });
    if !name.is_empty() {
        d["name"] = json!(name);
    }
    if !kind.group().is_empty() {
        d["group"] = json!(kind.group());
    }
    d
}

pub fn unauthorized() -> ApiError {
    ApiError::new(401, "Unauthorized", "Unauthorized", None)
}

pub fn forbidden(kind: Kind, name: &str, user: &str, verb: &str, namespace: &str) -> ApiError {
    let what = if name.is_empty() {
        kind.qualified_resource()
    } else {
        format!("{} {name:?}", kind.qualified_resource())
    };
    let msg = format!(
        "{what} is forbidden: User {user:?} cannot {verb} resource {:?} in API group {:?} in the namespace {namespace:?}",
        kind.resource(),
        kind.group()
    );
    ApiError::new(403, "Forbidden", &msg, Some(details(kind, name)))
}

pub fn not_found(kind: Kind, name: &str) -> ApiError {
    let msg = format!("{} {name:?} not found", kind.qualified_resource());
    ApiError::new(404, "NotFound", &msg, Some(details(kind, name)))
}

pub fn no_such_path() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
        Some(json!({})),
    )
}

pub fn already_exists(kind: Kind, name: &str) -> ApiError {
    let msg = format!("{} {name:?} already exists", kind.qualified_resource());
    ApiError::new(409, "AlreadyExists", &msg, Some(details(kind, name)))
}

/// registry.OptimisticLockErrorMsg
pub const OPTIMISTIC_LOCK: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

pub fn conflict(kind: Kind, name: &str, why: &str) -> ApiError {
    let msg = format!(
        "Operation cannot be fulfilled on {} {name:?}: {why}",
        kind.qualified_resource()
    );
    ApiError::new(409, "Conflict", &msg, Some(details(kind, name)))
}

/// etcd key prefix of a kind (shows up in storage error messages).
fn storage_key(kind: Kind, ns: &str, name: &str) -> String {
    let prefix = match kind {
        Kind::Lease => "leases",
        Kind::Endpoints => "services/endpoints",
        Kind::EndpointSlice => "endpointslices",
        Kind::Event => "events",
    };
    format!("/registry/{prefix}/{ns}/{name}")
}

/// A failed storage precondition (uid / resourceVersion), which upstream's
/// InterpretUpdateError/InterpretDeleteError turn into a 409 Conflict wrapping the
/// storage.InvalidObjError text.
pub fn precondition_failed(kind: Kind, ns: &str, name: &str, what: &str) -> ApiError {
    conflict(
        kind,
        name,
        &format!(
            "StorageError: invalid object, Code: 4, Key: {}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: {what}",
            storage_key(kind, ns, name)
        ),
    )
}

/// One field error of a 422: path, message (already including "Invalid value: ..."), reason.
#[derive(Debug, Clone)]
pub struct FieldError {
    pub field: String,
    pub reason: &'static str,
    pub message: String,
}

impl FieldError {
    fn new(field: &str, reason: &'static str, message: String) -> FieldError {
        FieldError {
            field: field.to_string(),
            reason,
            message,
        }
    }
    /// field.Invalid: `Invalid value: <value>: <detail>`; `value` is preformatted Go-style.
    pub fn invalid(field: &str, value: &str, detail: &str) -> FieldError {
        FieldError::new(
            field,
            "FieldValueInvalid",
            format!("Invalid value: {value}: {detail}"),
        )
    }
    pub fn required(field: &str, detail: &str) -> FieldError {
        let m = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        FieldError::new(field, "FieldValueRequired", m)
    }
    pub fn not_supported(field: &str, value: &str, supported: &[&str]) -> FieldError {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        FieldError::new(
            field,
            "FieldValueNotSupported",
            format!(
                "Unsupported value: {value:?}: supported values: {}",
                list.join(", ")
            ),
        )
    }
    pub fn forbidden(field: &str, detail: &str) -> FieldError {
        FieldError::new(field, "FieldValueForbidden", format!("Forbidden: {detail}"))
    }
    pub fn duplicate(field: &str, value: &str) -> FieldError {
        FieldError::new(
            field,
            "FieldValueDuplicate",
            format!("Duplicate value: {value:?}"),
        )
    }
    pub fn too_many(field: &str, actual: usize, max: usize) -> FieldError {
        FieldError::new(
            field,
            "FieldValueTooMany",
            format!("Too many: {actual}: must have at most {max} items"),
        )
    }
}

/// errors.NewInvalid(qualifiedKind, name, errs): `<qk> "<name>" is invalid: <aggregate>`.
/// `qualified` is a GroupKind string (`Lease.coordination.k8s.io`), or, for the
/// resourceVersion-required error, the GroupResource string upstream passes instead.
pub fn invalid(
    qualified: &str,
    group: &str,
    kind: &str,
    name: &str,
    errs: &[FieldError],
) -> ApiError {
    let parts: Vec<String> = errs
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect();
    let agg = if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("[{}]", parts.join(", "))
    };
    let msg = format!("{qualified} {name:?} is invalid: {agg}");
    let causes: Vec<Value> = errs
        .iter()
        .map(|e| json!({"reason": e.reason, "message": e.message, "field": e.field}))
        .collect();
    let mut d = json!({ "name": name, "kind": kind, "causes": causes });
    if !group.is_empty() {
        d["group"] = json!(group);
    }
    ApiError::new(422, "Invalid", &msg, Some(d))
}

/// A 422 whose kind is the Kind (validation failures from the strategy).
pub fn invalid_object(kind: Kind, name: &str, errs: &[FieldError]) -> ApiError {
    invalid(
        &kind.qualified_kind(),
        kind.group(),
        kind.kind(),
        name,
        errs,
    )
}

pub fn bad_request(message: &str) -> ApiError {
    ApiError::new(400, "BadRequest", message, None)
}

pub fn unsupported_media_type() -> ApiError {
    ApiError::new(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
        None,
    )
}

pub fn method_not_allowed(method: &str) -> ApiError {
    ApiError::new(
        405,
        "MethodNotAllowed",
        &format!("the server does not allow this method on the requested resource ({method})"),
        Some(json!({})),
    )
}

pub fn internal(message: &str) -> ApiError {
    ApiError::new(
        500,
        "InternalError",
        &format!("Internal error occurred: {message}"),
        Some(json!({"causes": [{"message": message}]})),
    )
}

/// The Status a fault of this HTTP code answers with (reason as the real server sets it).
pub fn for_code(code: u16, retry_after: Option<u64>) -> ApiError {
    let (reason, message) = match code {
        400 => ("BadRequest", "the server rejected our request for an unknown reason"),
        401 => ("Unauthorized", "Unauthorized"),
        403 => ("Forbidden", "forbidden"),
        404 => ("NotFound", "the server could not find the requested resource"),
        409 => ("Conflict", "the server reported a conflict"),
        410 => ("Expired", "the resource has expired"),
        429 => (
            "TooManyRequests",
            "Too many requests, please try again later.",
        ),
        500 => ("InternalError", "Internal error occurred: injected fault"),
        503 => (
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        ),
        504 => (
            "Timeout",
            "the server was unable to return a response in the time allotted, but may still be processing the request",
        ),
        _ => ("", "injected fault"),
    };
    let mut e = ApiError::new(code, reason, message, None);
    if let Some(s) = retry_after {
        e.body["details"] = json!({ "retryAfterSeconds": s });
        e = e.with_header("Retry-After", s.to_string());
    }
    e
}
