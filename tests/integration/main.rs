//! The integration tests of k8s-await-election, as one test crate: the real binary (debug
//! build, and the static release build where a test says so) against the test Kubernetes API
//! server (`tests/support`), plus the library's REST client in this process.
//!
//! The first modules are shared helpers; the rest are the tests, one module per subject.
//! Some tests need root (PID namespaces, chroot) and scripts/build-static.sh; see [`prereqs`].

/// The debug build of the binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_k8s-await-election");

mod cluster;
mod logs;
mod prereqs;
mod procs;
mod routing;
mod tempdir;
mod wait;

mod chaos;
mod cli;
mod election;
mod examples;
mod hostile_answers;
mod interop;
mod kube_client;
mod kubectl;
mod namespaces;
mod observe;
mod safety;
mod scratch_image;
mod service_routing;
mod start_safety;
mod start_up;
mod status;
mod status_hostile;
mod supervisor;
