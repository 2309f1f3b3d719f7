//! Request handling: routing, faults, authentication (bearer tokens), authorization (the
//! `forbid` list, with RBAC's message format), and the get/list/create/update/delete verbs with
//! the upstream registry's update policy. Watches are handed to `watch.rs`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::faults::Fault;
use crate::hostile;
use crate::http::{self, Request};
use crate::protobuf;
use crate::schema;
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::{Shared, Tls};
use crate::status::{self, ApiError, FieldError, Kind};
use crate::store::{name_of, rv_of};
use crate::table;
use crate::validate;
use crate::watch::{self, WatchPlan};
use crate::LoggedRequest;

/// What the connection loop should do after a request.
pub enum Outcome {
    KeepAlive,
    Close,
    /// Drop the TCP connection without a TLS close_notify (reset / hang / restart).
    Abort,
}

pub const ENDPOINTS_WARNING: &str =
    "299 - \"v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice\"";

/// A finished (non-streaming) response.
pub struct Reply {
    pub code: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        Reply {
            code: e.code,
            body: e.body,
            headers: e.headers,
        }
    }
}

impl Reply {
    fn ok(code: u16, body: Value) -> Reply {
        Reply {
            code,
            body,
            headers: Vec::new(),
        }
    }
}

enum Plan {
    Done(Reply),
    Watch(WatchPlan),
}

/// Kind, namespace and optional name addressed by a request path.
#[derive(Debug, Clone)]
pub struct Route {
    pub kind: Kind,
    pub namespace: String,
    pub name: Option<String>,
}

pub fn route(path: &str) -> Option<Route> {
    Kind::ALL.into_iter().find_map(|kind| {
        let rest = path
            .strip_prefix(kind.prefix())?
            .strip_prefix("/namespaces/")?;
        let segs: Vec<&str> = rest.split('/').collect();
        let (ns, res, name) = match segs.as_slice() {
            [ns, res] => (*ns, *res, None),
            [ns, res, name] => (*ns, *res, Some(*name)),
            _ => return None,
        };
        if ns.is_empty() || res != kind.resource() || name == Some("") {
            return None;
        }
        Some(Route {
            kind,
            namespace: ns.to_string(),
            name: name.map(str::to_string),
        })
    })
}

/// strconv.ParseBool
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The Kubernetes verb of a request ("" when the method is not served on this path).
fn verb_for(method: &str, has_name: Option<bool>, watch: bool) -> &'static str {
    match (method, has_name) {
        ("GET", Some(_)) if watch => "watch",
        ("GET", Some(true)) => "get",
        ("GET", Some(false)) => "list",
        ("POST", Some(false)) => "create",
        ("PUT", Some(true)) => "update",
        ("DELETE", Some(true)) => "delete",
        ("DELETE", Some(false)) => "deletecollection",
        ("PATCH", Some(true)) => "patch",
        ("GET", None) => "get",
        ("POST", None) => "create",
        ("PUT", None) => "update",
        ("DELETE", None) => "delete",
        ("PATCH", None) => "patch",
        _ => "",
    }
}

fn send(tls: &mut Tls, reply: Reply, keep_alive: bool) -> Outcome {
    let body = serde_json::to_vec(&reply.body).unwrap_or_default();
    match http::write_response(tls, reply.code, &reply.headers, &body, keep_alive) {
        Ok(()) if keep_alive => Outcome::KeepAlive,
        Ok(()) => Outcome::Close,
        Err(_) => Outcome::Abort,
    }
}

pub fn handle(shared: &Shared, tls: &mut Tls, req: Request) -> Outcome {
    let at = Instant::now();
    let token = req.bearer_token();
    let route = route(&req.path);
    let watch_param = req.query_param("watch");
    let watch_flag = watch_param.as_deref().map(parse_bool);
    let verb = verb_for(
        &req.method,
        route.as_ref().map(|r| r.name.is_some()),
        watch_flag.flatten().unwrap_or(false),
    );
    let mut entry = LoggedRequest {
        at,
        token: token.clone(),
        method: req.method.clone(),
        verb: verb.to_string(),
        path: req.path.clone(),
        query: req.query.clone(),
        code: 0,
        resource: route
            .as_ref()
            .map(|r| r.kind.resource().to_string())
            .unwrap_or_default(),
    };
    let keep = req.keep_alive;

    let resource = entry.resource.clone();
    let fault = shared
        .lock()
        .faults
        .for_resource_request(&resource, token.as_deref());
    match fault {
        Fault::None => {}
        Fault::Latency(d) => shared.sleep(d),
        Fault::Hang => {
            shared.record(entry);
            let g = shared.lock();
            let tok = token.clone();
            let _ = shared.wait_until(g, None, |s| {
                s.faults.for_resource_request(&resource, tok.as_deref()) != Fault::Hang
            });
            return Outcome::Abort;
        }
        Fault::Status { code, retry_after } => {
            entry.code = code;
            shared.record(entry);
            return send(tls, status::for_code(code, retry_after).into(), keep);
        }
        Fault::Reset | Fault::RefuseConnections => {
            shared.record(entry);
            return Outcome::Abort;
        }
        Fault::Answer {
            code,
            headers,
            body,
        } => {
            entry.code = code;
            shared.record(entry);
            let token = token.as_deref().unwrap_or("");
            return hostile::answer(shared, tls, code, &headers, &body, token);
        }
    }
    if shared.is_shutdown() {
        return Outcome::Abort;
    }

    match process(shared, &req, route, token.as_deref(), verb, watch_flag) {
        Plan::Done(reply) => {
            entry.code = reply.code;
            shared.record(entry);
            send(tls, reply, keep)
        }
        Plan::Watch(plan) => watch::serve(shared, tls, plan, entry, keep),
    }
}

fn process(
    shared: &Shared,
    req: &Request,
    route: Option<Route>,
    token: Option<&str>,
    verb: &'static str,
    watch_flag: Option<Option<bool>>,
) -> Plan {
    let user = {
        let g = shared.lock();
        token.and_then(|t| g.tokens.get(t).cloned())
    };
    let Some(user) = user else {
        return Plan::Done(status::unauthorized().into());
    };
    let Some(route) = route else {
        if req.method == "GET" {
            if let Some(doc) = crate::discovery::document(&req.path, req.header("host")) {
                return Plan::Done(Reply::ok(200, doc));
            }
        }
        return Plan::Done(status::no_such_path().into());
    };
    if watch_flag == Some(None) {
        return Plan::Done(
            status::bad_request("invalid value for watch parameter, expected a boolean").into(),
        );
    }
    let Route {
        kind,
        namespace: ns,
        name,
    } = route;
    let name_str = name.clone().unwrap_or_default();
    let tok = token.unwrap_or("");
    let denied = {
        let g = shared.lock();
        [verb, "*"].iter().any(|v| {
            [kind.resource(), "*"].iter().any(|r| {
                g.forbidden
                    .contains(&(tok.to_string(), v.to_string(), r.to_string()))
            })
        })
    };
    if denied && !verb.is_empty() {
        return Plan::Done(status::forbidden(kind, &name_str, &user, verb, &ns).into());
    }
    let mut extra = Vec::new();
    if kind == Kind::Endpoints {
        extra.push(("Warning".to_string(), ENDPOINTS_WARNING.to_string()));
    }
    if let Some(accept) = req.header("accept") {
        if !accept_json(accept) {
            let mut r: Reply = ApiError::new(
                406,
                "NotAcceptable",
                "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf",
                None,
            )
            .into();
            r.headers.extend(extra);
            return Plan::Done(r);
        }
    }
    let table = match table::request(
        req.header("accept"),
        req.query_param("includeObject").as_deref(),
    ) {
        Ok(t) => t,
        Err(m) => return Plan::Done(status::bad_request(&m).into()),
    };
    let result = match verb {
        "get" => get(shared, kind, &ns, &name_str).map(|r| as_table(kind, table, r)),
        "list" => list(shared, kind, &ns, req).map(|r| as_table(kind, table, r)),
        "watch" => match watch_plan(kind, &ns, name.as_deref(), req, extra.clone()) {
            Ok(mut p) => {
                p.table = table;
                return Plan::Watch(p);
            }
            Err(e) => Err(e),
        },
        "create" => create(shared, kind, &ns, req),
        "update" => update(shared, kind, &ns, &name_str, req),
        "delete" => delete(shared, kind, &ns, &name_str, req),
        _ => Err(status::method_not_allowed(&req.method)),
    };
    let mut reply = result.unwrap_or_else(Reply::from);
    reply.headers.extend(extra);
    Plan::Done(reply)
}

/// A 200 answer to a get or list as a Table, when the client asked for one.
fn as_table(kind: Kind, table: Option<table::TableRequest>, mut reply: Reply) -> Reply {
    if let Some(t) = table {
        if reply.code == 200 {
            reply.body = table::present(kind, t, &reply.body);
        }
    }
    reply
}

fn accept_json(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let mt = part
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        matches!(
            mt.as_str(),
            "" | "*/*" | "application/*" | "application/json" | "application/yaml"
        )
    })
}

fn get(shared: &Shared, kind: Kind, ns: &str, name: &str) -> Result<Reply, ApiError> {
    let g = shared.lock();
    match g.store.get(kind, ns, name) {
        Some(o) => Ok(Reply::ok(200, o.clone())),
        None => Err(status::not_found(kind, name)),
    }
}

fn selectors(req: &Request) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let ls = LabelSelector::parse(&req.query_param("labelSelector").unwrap_or_default())
        .map_err(|e| status::bad_request(&e))?;
    let fs = FieldSelector::parse(&req.query_param("fieldSelector").unwrap_or_default())
        .map_err(|e| status::bad_request(&e))?;
    Ok((ls, fs))
}

fn list(shared: &Shared, kind: Kind, ns: &str, req: &Request) -> Result<Reply, ApiError> {
    let (ls, fs) = selectors(req)?;
    let g = shared.lock();
    let items: Vec<Value> = g
        .store
        .list(kind, ns)
        .into_iter()
        .filter(|o| ls.matches(o) && fs.matches(o))
        .map(|o| {
            // Typed lists do not repeat kind/apiVersion on their items.
            let mut o = o.clone();
            if let Some(m) = o.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            o
        })
        .collect();
    Ok(Reply::ok(
        200,
        json!({
            "kind": format!("{}List", kind.kind()),
            "apiVersion": kind.api_version(),
            "metadata": { "resourceVersion": g.store.current_rv().to_string() },
            "items": items,
        }),
    ))
}

fn watch_plan(
    kind: Kind,
    ns: &str,
    name: Option<&str>,
    req: &Request,
    headers: Vec<(String, String)>,
) -> Result<WatchPlan, ApiError> {
    let (ls, mut fs) = selectors(req)?;
    if let Some(n) = name {
        fs = fs.with_name(n);
    }
    let rv = match req.query_param("resourceVersion").as_deref() {
        None | Some("") | Some("0") => None,
        Some(s) => Some(
            s.parse::<u64>()
                .map_err(|_| status::bad_request(&format!("invalid resource version: {s:?}")))?,
        ),
    };
    let timeout = match req.query_param("timeoutSeconds").as_deref() {
        None | Some("") | Some("0") => Duration::from_secs(1800),
        Some(s) => Duration::from_secs(
            s.parse::<u64>()
                .map_err(|_| status::bad_request(&format!("invalid timeoutSeconds {s:?}")))?,
        ),
    };
    let bookmarks = req
        .query_param("allowWatchBookmarks")
        .as_deref()
        .and_then(parse_bool)
        .unwrap_or(false);
    Ok(WatchPlan {
        kind,
        namespace: ns.to_string(),
        labels: ls,
        fields: fs,
        rv,
        timeout,
        bookmarks,
        headers,
        table: None,
        table_headers_sent: Default::default(),
    })
}

/// Escapes a warning text the way Go's warning header writer does.
fn warning(text: &str) -> (String, String) {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
    ("Warning".to_string(), format!("299 - \"{escaped}\""))
}

/// Content negotiation, JSON parsing, type/kind checks, wire decoding and defaulting.
fn decode_body(kind: Kind, req: &Request) -> Result<(Value, Vec<(String, String)>), ApiError> {
    // A missing Content-Type defaults to the first supported type (application/json),
    // as upstream NegotiateInputSerializerForMediaType does; anything else must be JSON
    // (YAML is a superset, so a JSON body labelled YAML is fine too).
    // Protobuf (what client-go sends for built-in types) is turned into the equivalent JSON.
    let mut is_protobuf = false;
    if let Some(ct) = req.header("content-type") {
        let mt = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        is_protobuf = mt == protobuf::MEDIA_TYPE;
        if mt != "application/json" && mt != "application/yaml" && !is_protobuf {
            return Err(status::unsupported_media_type());
        }
    }
    let raw: Value = if is_protobuf {
        protobuf::decode(kind, &req.body).map_err(|e| {
            ApiError::new(
                415,
                "UnsupportedMediaType",
                &format!("test-apiserver: {e}"),
                None,
            )
        })?
    } else {
        serde_json::from_slice(&req.body).map_err(|e| {
            status::bad_request(&format!("couldn't get version/kind; json parse error: {e}"))
        })?
    };
    let cannot = |m: &str| {
        status::bad_request(&format!(
            "{k} in version {v:?} cannot be handled as a {k}: {m}",
            k = kind.kind(),
            v = kind.api_version().rsplit('/').next().unwrap_or("v1"),
        ))
    };
    if !raw.is_object() {
        return Err(cannot("json: cannot unmarshal non-object into Go value"));
    }
    if let Some(av) = raw.get("apiVersion").and_then(Value::as_str) {
        if !av.is_empty() && av != kind.api_version() {
            return Err(status::bad_request(&format!(
                "the API version in the data ({av}) does not match the expected API version ({})",
                kind.api_version()
            )));
        }
    }
    if let Some(k) = raw.get("kind").and_then(Value::as_str) {
        if !k.is_empty() && k != kind.kind() {
            return Err(status::bad_request(&format!(
                "no kind {k:?} is registered for version {:?} in scheme \"pkg/api/legacyscheme/scheme.go:30\"",
                kind.api_version()
            )));
        }
    }
    let decoded = schema::decode(kind, raw).map_err(|m| cannot(&m))?;
    let mut headers = Vec::new();
    if !decoded.unknown_fields.is_empty() {
        let msgs: Vec<String> = decoded
            .unknown_fields
            .iter()
            .map(|f| format!("unknown field {f:?}"))
            .collect();
        match req.query_param("fieldValidation").as_deref() {
            Some("Strict") => {
                return Err(status::bad_request(&format!(
                    "strict decoding error: {}",
                    msgs.join(", ")
                )))
            }
            Some("Ignore") => {}
            None | Some("") | Some("Warn") => headers.extend(msgs.iter().map(|m| warning(m))),
            Some(other) => {
                return Err(status::bad_request(&format!(
                    "fieldValidation parameter unsupported: {other:?}"
                )))
            }
        }
    }
    let mut obj = decoded.object;
    validate::apply_defaults(kind, &mut obj);
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    Ok((obj, headers))
}

fn check_namespace(obj: &Value, ns: &str) -> Result<(), ApiError> {
    let body_ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !body_ns.is_empty() && body_ns != ns {
        return Err(status::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

fn meta_mut(obj: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable!("metadata was just made an object"),
    }
}

/// rest.BeforeCreate + FillObjectMetaSystemFields: the server owns these fields.
fn prepare_for_create(obj: &mut Value) {
    let m = meta_mut(obj);
    for f in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        m.remove(f);
    }
    let name = m.get("name").and_then(Value::as_str).unwrap_or("");
    let gen = m.get("generateName").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() && !gen.is_empty() {
        let n = format!("{gen}{}", crate::timefmt::name_suffix());
        m.insert("name".into(), json!(n));
    }
}

fn create(shared: &Shared, kind: Kind, ns: &str, req: &Request) -> Result<Reply, ApiError> {
    let (mut obj, headers) = decode_body(kind, req)?;
    check_namespace(&obj, ns)?;
    shared.lock().namespaces.admit_write(ns)?;
    let client_rv = rv_of(&obj).to_string();
    prepare_for_create(&mut obj);
    let errs = validate::validate(kind, &obj, None);
    let name = name_of(&obj).to_string();
    if !errs.is_empty() {
        return Err(status::invalid_object(kind, &name, &errs));
    }
    if !client_rv.is_empty() {
        return Err(status::internal(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let mut g = shared.lock();
    if g.store.get(kind, ns, &name).is_some() {
        return Err(status::already_exists(kind, &name));
    }
    let stored = g.store.write(kind, ns, obj);
    drop(g);
    shared.cond.notify_all();
    Ok(Reply {
        code: 201,
        body: stored,
        headers,
    })
}

/// Upstream `Store.Update` (k8s.io/apiserver/pkg/registry/generic/registry/store.go) and
/// the etcd3 GuaranteedUpdate it runs in:
/// * object missing: NotFound unless AllowCreateOnUpdate;
/// * body carries metadata.uid: a storage precondition, so it must equal the stored uid
///   (a missing object has uid "") or the PUT is a 409 Conflict `... StorageError: invalid
///   object ... Precondition failed: UID in precondition: ...`. So re-PUTting a cached Lease
///   after someone deleted it is a 409, not a re-create;
/// * object missing, no uid, AllowCreateOnUpdate: it is CREATED (201), whatever
///   resourceVersion the body carries (the create path never looks at it);
/// * object present, body rv empty/"0": unconditional update if AllowUnconditionalUpdate,
///   else 422 `metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`
///   (a GroupResource-qualified Invalid, as upstream builds it);
/// * body rv unparsable: 422 on field `resourceVersion` (storage InvalidError);
/// * body rv different from the stored one: 409 Conflict.
fn update(
    shared: &Shared,
    kind: Kind,
    ns: &str,
    name: &str,
    req: &Request,
) -> Result<Reply, ApiError> {
    let (mut obj, headers) = decode_body(kind, req)?;
    let body_name = name_of(&obj).to_string();
    if body_name != name {
        return Err(status::bad_request(&format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    check_namespace(&obj, ns)?;
    let body_rv = rv_of(&obj).to_string();
    let body_uid = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut g = shared.lock();
    let existing = g.store.get(kind, ns, name).cloned();
    if existing.is_none() && !kind.allow_create_on_update() {
        return Err(status::not_found(kind, name));
    }
    // defaultUpdatedObjectInfo.Preconditions(): a uid in the body is a storage precondition,
    // checked against the stored object (or an empty one when it is missing).
    if !body_uid.is_empty() {
        let actual = existing
            .as_ref()
            .and_then(|o| o.pointer("/metadata/uid"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if actual != body_uid {
            return Err(status::precondition_failed(
                kind,
                ns,
                name,
                &format!("UID in precondition: {body_uid}, UID in object meta: {actual}"),
            ));
        }
    }
    // NamespaceLifecycle admission runs in the update's transform, after the preconditions.
    g.namespaces.admit_write(ns)?;
    let Some(old) = existing else {
        prepare_for_create(&mut obj);
        meta_mut(&mut obj).remove("resourceVersion");
        let errs = validate::validate(kind, &obj, None);
        if !errs.is_empty() {
            return Err(status::invalid_object(kind, name, &errs));
        }
        let stored = g.store.write(kind, ns, obj);
        drop(g);
        shared.cond.notify_all();
        return Ok(Reply {
            code: 201,
            body: stored,
            headers,
        });
    };
    let new_rv: u64 = if body_rv.is_empty() {
        0
    } else {
        body_rv.parse().map_err(|_| {
            status::invalid(
                &kind.qualified_resource(),
                kind.group(),
                kind.resource(),
                name,
                &[FieldError::invalid(
                    "resourceVersion",
                    &format!("{body_rv:?}"),
                    &format!("strconv.ParseUint: parsing {body_rv:?}: invalid syntax"),
                )],
            )
        })?
    };
    let old_rv: u64 = rv_of(&old).parse().unwrap_or(0);
    if new_rv == 0 {
        if !kind.allow_unconditional_update() {
            return Err(status::invalid(
                &kind.qualified_resource(),
                kind.group(),
                kind.resource(),
                name,
                &[FieldError::invalid(
                    "metadata.resourceVersion",
                    "0x0",
                    "must be specified for an update",
                )],
            ));
        }
    } else if new_rv != old_rv {
        return Err(status::conflict(kind, name, status::OPTIMISTIC_LOCK));
    }
    // rest.BeforeUpdate: system fields come from the stored object.
    {
        let om = old.get("metadata").cloned().unwrap_or(json!({}));
        let m = meta_mut(&mut obj);
        for f in [
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match om.get(f) {
                Some(v) => m.insert(f.into(), v.clone()),
                None => m.remove(f),
            };
        }
        m.remove("selfLink");
        if m.get("uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            if let Some(u) = om.get("uid") {
                m.insert("uid".into(), u.clone());
            }
        }
        m.insert("namespace".into(), json!(ns));
        m.insert("resourceVersion".into(), json!(old_rv.to_string()));
    }
    let errs = validate::validate(kind, &obj, Some(&old));
    if !errs.is_empty() {
        return Err(status::invalid_object(kind, name, &errs));
    }
    let obj = crate::store::with_type_meta(kind, obj);
    if obj == old {
        // etcd3 GuaranteedUpdate skips a write whose bytes are unchanged: no new rv, no event.
        return Ok(Reply {
            code: 200,
            body: old,
            headers,
        });
    }
    let stored = g.store.write(kind, ns, obj);
    drop(g);
    shared.cond.notify_all();
    Ok(Reply {
        code: 200,
        body: stored,
        headers,
    })
}

fn delete(
    shared: &Shared,
    kind: Kind,
    ns: &str,
    name: &str,
    req: &Request,
) -> Result<Reply, ApiError> {
    let opts: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&req.body).map_err(|e| {
            status::bad_request(&format!("couldn't get version/kind; json parse error: {e}"))
        })?
    };
    let mut g = shared.lock();
    let Some(old) = g.store.get(kind, ns, name) else {
        return Err(status::not_found(kind, name));
    };
    let uid = old
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(p_uid) = opts.pointer("/preconditions/uid").and_then(Value::as_str) {
        if p_uid != uid {
            return Err(status::precondition_failed(
                kind,
                ns,
                name,
                &format!("UID in precondition: {p_uid}, UID in object meta: {uid}"),
            ));
        }
    }
    if let Some(p_rv) = opts
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
    {
        let rv = rv_of(old);
        if p_rv != rv {
            return Err(status::precondition_failed(
                kind,
                ns,
                name,
                &format!(
                    "ResourceVersion in precondition: {p_rv}, ResourceVersion in object meta: {rv}"
                ),
            ));
        }
    }
    g.store.delete(kind, ns, name);
    drop(g);
    shared.cond.notify_all();
    let mut details = status::details(kind, name);
    details["uid"] = json!(uid);
    Ok(Reply::ok(
        200,
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }),
    ))
}
