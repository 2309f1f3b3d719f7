//! Service routing (placeholder until the service module lands).
use std::sync::Arc;
use std::time::Instant;

/// Does nothing yet.
pub struct Router;

impl Router {
    pub fn new(_client: Arc<crate::kube::Client>, _settings: crate::config::Service) -> Router {
        Router
    }

    pub fn point_here(&mut self, _deadline: Instant) -> Result<(), crate::kube::Error> {
        Ok(())
    }

    pub fn withdraw(&mut self, _deadline: Instant) {}
}
