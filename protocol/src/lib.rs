//! The agent protocol shared by host-vmm (client) and guest-agent (server):
//! messages and ttrpc bindings generated at build time from `protos/`.
//!
//! - [`health`], [`health_ttrpc`]: `grpc.Health` (Check, Version).
//! - [`agent`], [`agent_ttrpc`]: `grpc.AgentService` (sandbox, containers, processes, stdio,
//!   hotplug, guest facts), named after Kata's agent API.
//! - [`id`]: the one rule for sandbox, container and exec ids (host and guest).
//! - [`oci_defaults`]: what a container gets when its spec says nothing.
//! - [`seccomp_profile`]: Docker's default seccomp profile, the default `linux.seccomp`.
//!
//! Both ends use the `ttrpc` and `protobuf` re-exported here, so their versions always match
//! the generated code.

pub mod id;
pub mod oci_defaults;
pub mod seccomp_profile;

pub use protobuf;
pub use protobuf::well_known_types::empty::Empty;
pub use ttrpc;

/// The protocol crate's version: what `Health.Version` reports as `grpc_version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The vsock port the agent's ttrpc server listens on.
pub const AGENT_VSOCK_PORT: u32 = 1024;
/// The host vsock port the agent forwards its log lines to.
pub const LOG_VSOCK_PORT: u32 = 1025;

/// Generated code: not ours to lint or document.
macro_rules! generated {
    ($(#[$doc:meta])* $name:ident, $file:literal) => {
        $(#[$doc])*
        #[allow(
            clippy::all,
            clippy::undocumented_unsafe_blocks,
            dead_code,
            missing_docs,
            non_camel_case_types,
            non_snake_case,
            non_upper_case_globals,
            trivial_casts,
            unused_imports,
            unused_mut,
            unused_results,
            unknown_lints
        )]
        #[rustfmt::skip]
        pub mod $name {
            include!(concat!(env!("OUT_DIR"), "/", $file));
        }
    };
}

generated!(
    /// Messages of `health.proto`.
    health,
    "health.rs"
);
generated!(
    /// ttrpc client and server bindings of the `Health` service.
    health_ttrpc,
    "health_ttrpc.rs"
);

generated!(
    /// Messages of `agent.proto`.
    agent,
    "agent.rs"
);
generated!(
    /// ttrpc client and server bindings of the `AgentService` service.
    agent_ttrpc,
    "agent_ttrpc.rs"
);

#[cfg(test)]
mod agent_tests;

#[cfg(test)]
mod tests {
    use super::health::*;
    use protobuf::Message;

    #[test]
    fn test_version_response_roundtrips() {
        let mut v = VersionCheckResponse::new();
        v.agent_version = "0.1.0".into();
        v.grpc_version = "ttrpc".into();
        let bytes = v.write_to_bytes().unwrap();
        let back = VersionCheckResponse::parse_from_bytes(&bytes).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn test_health_status_default_is_unknown() {
        let r = HealthCheckResponse::new();
        assert_eq!(
            r.status.enum_value(),
            Ok(health_check_response::ServingStatus::UNKNOWN)
        );
    }
}
