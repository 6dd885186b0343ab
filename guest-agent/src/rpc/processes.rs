//! Processes in containers: exec, wait, signal. Stubs until the containers issue lands; the
//! real handlers spawn through the agent's one reaper ([`Agent::reaper`]).

use protocol::agent::*;
use protocol::Empty;

use super::{Agent, RpcError};

pub fn exec_process(_: &Agent, _: ExecProcessRequest) -> Result<Empty, RpcError> {
    Err(RpcError::Unimplemented("ExecProcess"))
}

pub fn wait_process(_: &Agent, _: WaitProcessRequest) -> Result<WaitProcessResponse, RpcError> {
    Err(RpcError::Unimplemented("WaitProcess"))
}

pub fn signal_process(_: &Agent, _: SignalProcessRequest) -> Result<Empty, RpcError> {
    Err(RpcError::Unimplemented("SignalProcess"))
}
