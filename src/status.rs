//! Status endpoint (placeholder until the status module lands).
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A bound but not yet serving status listener.
pub struct StatusServer(SocketAddr);

impl StatusServer {
    pub fn start(
        endpoint: crate::config::StatusEndpoint,
        _snapshot: Arc<crate::election::Snapshot>,
        _lease_duration: Duration,
    ) -> std::io::Result<StatusServer> {
        let ip = endpoint.ip.unwrap_or([0, 0, 0, 0].into());
        let l = std::net::TcpListener::bind((ip, endpoint.port))?;
        Ok(StatusServer(l.local_addr()?))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.0
    }
}
