//! k8s-await-election: run a command only while this replica holds a Kubernetes Lease.
//!
//! The binary (`src/main.rs`) is a thin shell around [`app::run`]. The modules form a
//! one-direction dependency graph; see `DESIGN.md` for the map.

pub mod app;
pub mod clock;
pub mod config;
pub mod election;
pub mod events;
pub mod kube;
pub mod leadership;
pub mod lease;
pub mod logsink;
pub mod service;
pub mod status;
pub mod supervisor;
// Every `libc` call and every `unsafe` block of the crate, behind small safe functions.
#[allow(unsafe_code)]
mod sys;
pub mod timefmt;
