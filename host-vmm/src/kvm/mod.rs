//! KVM file descriptors: the VM ([`vm`]) and its vCPUs ([`vcpu`]).

pub mod first_entry;
pub mod vcpu;
pub mod vm;

pub use vcpu::{Vcpu, VcpuRunContext};
pub use vm::{KvmError, Vm};
