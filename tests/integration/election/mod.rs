//! Lease election with real replicas of the binary against the test API server, short timings
//! (lease 4 s, renew deadline 3 s, retry period 1 s).

mod bad_duration;
mod bookmarks;
mod lifecycle;
mod retry_after;
mod takeover;
mod twin;
mod watching;
