//! The test API server's own suite, as one test crate: each module pins one part of its
//! behaviour against a raw TLS client ([`client`]), so the integration tests of
//! k8s-await-election can rely on it.

mod client;

mod auth;
mod binary;
mod bookmarks;
mod crud;
mod discovery;
mod events;
mod faults;
mod namespaces;
mod protobuf;
mod validation;
mod watch;
