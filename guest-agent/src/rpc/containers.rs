//! Sandbox and container lifecycle. Stubs until the containers issue lands: each answers
//! UNIMPLEMENTED with its name.

use protocol::agent::*;
use protocol::Empty;

use super::{Agent, RpcError};

pub fn create_sandbox(_: &Agent, _: CreateSandboxRequest) -> Result<Empty, RpcError> {
    Err(RpcError::Unimplemented("CreateSandbox"))
}

pub fn destroy_sandbox(_: &Agent, _: DestroySandboxRequest) -> Result<Empty, RpcError> {
    Err(RpcError::Unimplemented("DestroySandbox"))
}

pub fn create_container(_: &Agent, _: CreateContainerRequest) -> Result<Empty, RpcError> {
    Err(RpcError::Unimplemented("CreateContainer"))
}

pub fn start_container(_: &Agent, _: StartContainerRequest) -> Result<Empty, RpcError> {
    Err(RpcError::Unimplemented("StartContainer"))
}

pub fn remove_container(_: &Agent, _: RemoveContainerRequest) -> Result<Empty, RpcError> {
    Err(RpcError::Unimplemented("RemoveContainer"))
}

pub fn update_container(_: &Agent, _: UpdateContainerRequest) -> Result<Empty, RpcError> {
    Err(RpcError::Unimplemented("UpdateContainer"))
}

pub fn stats_container(
    _: &Agent,
    _: StatsContainerRequest,
) -> Result<StatsContainerResponse, RpcError> {
    Err(RpcError::Unimplemented("StatsContainer"))
}

pub fn list_containers(
    _: &Agent,
    _: ListContainersRequest,
) -> Result<ListContainersResponse, RpcError> {
    Err(RpcError::Unimplemented("ListContainers"))
}
