//! Lease election with real replicas of the binary against the test API server, short timings
//! (lease 4 s, renew deadline 3 s, retry period 1 s).

mod bookmarks;
mod lifecycle;
mod takeover;
mod twin;
mod watching;
