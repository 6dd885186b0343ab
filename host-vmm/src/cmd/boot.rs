//! `host-vmm boot`: set up the sandbox, build the VM, run it, tear it down.

use anyhow::Context;
use host_vmm::vmm::{stop_signals, GuestExit};

use super::sandbox_vm::{SandboxVm, VmRequest};

pub fn boot(req: VmRequest) -> anyhow::Result<GuestExit> {
    let cfg = req.load_config()?;
    let vm = SandboxVm::start(req, cfg)?;
    stop_signals::spawn_stop_waiter(vm.exit_signal())
        .context("cannot start the stop-signal thread")?;
    vm.run()
}
