//! Exit codes besides CMD's own (which we pass through, or 128+N when signal N killed it).

/// `--help`, `--version`.
pub const OK: i32 = 0;
/// No CMD given (EX_USAGE).
pub const USAGE: i32 = 64;
/// The Kubernetes API cannot be used: in-cluster configuration missing or unreadable, bad
/// CA bundle, or RBAC forbids the Lease/Service requests (EX_UNAVAILABLE).
pub const API: i32 = 69;
/// Internal error, e.g. a thread could not be started (EX_SOFTWARE).
pub const INTERNAL: i32 = 70;
/// Operating-system error: cannot set up signal handling or bind the status endpoint
/// (EX_OSERR).
pub const OS: i32 = 71;
/// We lost leadership while CMD ran; CMD was stopped. Also: our lease was no longer valid
/// when CMD was to start; it was not started (EX_TEMPFAIL: restart to rejoin).
pub const LOST_LEADERSHIP: i32 = 75;
/// A configuration variable has a bad value (EX_CONFIG).
pub const CONFIG: i32 = 78;
/// CMD exists but cannot be executed.
pub const NOT_EXECUTABLE: i32 = 126;
/// CMD was not found.
pub const NOT_FOUND: i32 = 127;
