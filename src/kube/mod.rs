//! The blocking Kubernetes REST client this program needs, and nothing more: in-cluster
//! configuration ([`InClusterConfig`]), a [`Client`] with deadline-bounded JSON requests and
//! watches, the one error type of this boundary ([`Error`]), and the API paths we use.
//!
//! Submodules: `incluster` (addresses, service-account files), `tls` (the cluster CA as the
//! only trust anchor), `token` (rotation, redaction), `error` (Status objects → typed errors),
//! `small_file` (bounded reads of the service-account files), `client` (requests), `json`
//! (size, value-count and depth bounds of answers), `paths` (API paths and queries), `watch`
//! (watch streams), `warnings`
//! (server `Warning` headers), `meta` (object metadata, [`ObjectMeta`]).

mod client;
mod error;
mod incluster;
mod json;
mod meta;
mod paths;
mod small_file;
mod tls;
mod token;
mod warnings;
mod watch;

pub use client::Client;
pub use error::{from_response, parse_retry_after, Error};
pub use incluster::{
    InClusterConfig, DEFAULT_SERVICEACCOUNT_DIR, ENV_VARIABLES, SERVICEACCOUNT_DIR_ENV,
};
pub use meta::ObjectMeta;
pub use paths::{
    endpoints_collection, endpoints_path, endpointslice_path, endpointslices_path, events_path,
    lease_path, leases_path, ListParams,
};
#[doc(hidden)]
pub use watch::events_of as watch_events_of;
pub use watch::{WatchEvent, WatchStream};

/// Log targets the program's logger must keep below `Trace`: at trace level ureq-proto
/// hex-dumps raw HTTP requests, `Authorization: Bearer <token>` included. (ureq itself
/// redacts headers; rustls never logs application data.)
pub const TOKEN_LEAKING_LOG_TARGETS: &[&str] = &["ureq_proto"];
