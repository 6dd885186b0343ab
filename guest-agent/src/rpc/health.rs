//! `grpc.Health`: is the agent up, and which version is it.

use protocol::health::{health_check_response::ServingStatus, *};
use protocol::health_ttrpc::Health;
use protocol::ttrpc::{self, TtrpcContext};

/// The health service. Stateless: answering at all means serving.
pub struct HealthRpc;

impl Health for HealthRpc {
    fn check(&self, _: &TtrpcContext, _: CheckRequest) -> ttrpc::Result<HealthCheckResponse> {
        let mut r = HealthCheckResponse::new();
        r.status = ServingStatus::SERVING.into();
        Ok(r)
    }

    fn version(&self, _: &TtrpcContext, _: CheckRequest) -> ttrpc::Result<VersionCheckResponse> {
        let mut r = VersionCheckResponse::new();
        r.agent_version = crate::VERSION.to_string();
        r.grpc_version = protocol::VERSION.to_string();
        Ok(r)
    }
}
