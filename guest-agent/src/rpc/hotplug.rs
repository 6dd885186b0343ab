//! CPU and memory hotplug in the guest. A stub until the hotplug issue lands.

use protocol::agent::*;
use protocol::Empty;

use super::{Agent, RpcError};

pub fn online_cpu_mem(_: &Agent, _: OnlineCPUMemRequest) -> Result<Empty, RpcError> {
    Err(RpcError::Unimplemented("OnlineCPUMem"))
}
