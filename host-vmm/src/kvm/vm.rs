//! The KVM VM: memory slots, the in-kernel interrupt controllers, irqfds
//! and vCPU creation.

use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use vm_memory::{GuestMemoryBackend, GuestMemoryRegion};
use vmm_sys_util::eventfd::EventFd;

use crate::memory::{GuestMemoryMmap, GuestRegionMmap};

/// A failed KVM operation, named as in the KVM API.
#[derive(Debug, thiserror::Error)]
pub enum KvmError {
    #[error("cannot open /dev/kvm")]
    Open(#[source] kvm_ioctls::Error),
    #[error("KVM API version {0} is not the supported version 12")]
    ApiVersion(i32),
    #[error("{op} failed")]
    Ioctl {
        op: &'static str,
        #[source]
        source: kvm_ioctls::Error,
    },
    #[error("guest memory region at {addr:#x} cannot be registered: {reason}")]
    Region { addr: u64, reason: &'static str },
}

fn ioctl(op: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> KvmError {
    move |source| KvmError::Ioctl { op, source }
}

/// The stable KVM API version.
const KVM_API_VERSION: i32 = 12;

/// An open KVM VM.
pub struct Vm {
    kvm: Kvm,
    fd: VmFd,
    /// The memory of read-only slots (firmware ROMs, the flash's read-array
    /// mapping), kept while the VM exists: dropped after `fd`.
    roms: std::sync::Mutex<Vec<std::sync::Arc<GuestRegionMmap>>>,
}

impl Vm {
    /// Open /dev/kvm and create a VM.
    pub fn new() -> Result<Self, KvmError> {
        let kvm = Kvm::new().map_err(KvmError::Open)?;
        let version = kvm.get_api_version();
        if version != KVM_API_VERSION {
            return Err(KvmError::ApiVersion(version));
        }
        let fd = kvm.create_vm().map_err(ioctl("KVM_CREATE_VM"))?;
        Ok(Vm {
            kvm,
            fd,
            roms: std::sync::Mutex::new(Vec::new()),
        })
    }

    pub fn kvm(&self) -> &Kvm {
        &self.kvm
    }

    pub fn fd(&self) -> &VmFd {
        &self.fd
    }

    /// Register every region of `mem` as a KVM memory slot (slot i for region i).
    /// `mem` must stay mapped while the VM runs: the caller keeps it alongside.
    pub fn register_memory(&self, mem: &GuestMemoryMmap) -> Result<(), KvmError> {
        for (slot, region) in mem.iter().enumerate() {
            let slot = u32::try_from(slot).map_err(|_| KvmError::Region {
                addr: region.start_addr().0,
                reason: "too many memory slots",
            })?;
            self.add_memory_slot(slot, region)?;
        }
        Ok(())
    }

    /// Register `region` as KVM memory slot `slot`; also while vCPUs run
    /// (memory hot-plug: KVM updates its slots under SRCU). The region must
    /// stay mapped as long as the slot exists: the caller keeps it alongside
    /// the VM. The slot number and the guest range must not be in use.
    pub fn add_memory_slot(&self, slot: u32, region: &GuestRegionMmap) -> Result<(), KvmError> {
        let r = slot_for(slot, region, 0)?;
        let addr = r.guest_phys_addr;
        // SAFETY: `r.userspace_addr` is the start of a live mapping of `region.len()`
        // bytes owned by `region`, which the VMM keeps for as long as this
        // VM exists; KVM refuses a slot overlapping another one.
        unsafe { self.fd.set_user_memory_region(r) }
            .map_err(ioctl("KVM_SET_USER_MEMORY_REGION"))?;
        tracing::debug!(
            slot,
            addr = format_args!("{addr:#x}"),
            size = region.len(),
            "memory slot"
        );
        Ok(())
    }

    /// Register `region` as read-only KVM memory slot `slot` (a firmware ROM:
    /// the guest reads and executes it, its writes exit as MMIO). The VM keeps
    /// the region mapped for its life. Use a slot number no RAM slot takes
    /// (e.g. the last one, `kvm().get_nr_memslots() - 1`).
    pub fn add_rom_slot(&self, slot: u32, region: GuestRegionMmap) -> Result<(), KvmError> {
        let region = std::sync::Arc::new(region);
        self.keep_mapped(region.clone());
        // SAFETY: the region is kept in `self.roms` for as long as this VM
        // exists, so it outlives the slot.
        unsafe { self.map_readonly(slot, &region) }
    }

    /// Keep `region` mapped for as long as this VM exists (after its fd is
    /// closed): a read-only slot of it may then come and go from any thread
    /// without its removal having to come first.
    pub fn keep_mapped(&self, region: std::sync::Arc<GuestRegionMmap>) {
        self.roms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(region);
    }

    /// Map `region` as read-only KVM memory slot `slot` (guest writes exit
    /// as MMIO); undo with [`Vm::remove_memory_slot`].
    ///
    /// # Safety
    ///
    /// `region` must stay mapped until the slot is removed or the VM is
    /// dropped: KVM keeps using its host address.
    pub unsafe fn map_readonly(&self, slot: u32, region: &GuestRegionMmap) -> Result<(), KvmError> {
        let r = slot_for(slot, region, kvm_bindings::KVM_MEM_READONLY)?;
        let addr = r.guest_phys_addr;
        // SAFETY: `r.userspace_addr` is the start of a live mapping of `region.len()`
        // bytes, kept mapped while the slot exists (this function's contract);
        // KVM refuses a slot overlapping another.
        unsafe { self.fd.set_user_memory_region(r) }
            .map_err(ioctl("KVM_SET_USER_MEMORY_REGION (read-only)"))?;
        tracing::trace!(
            slot,
            addr = format_args!("{addr:#x}"),
            "read-only memory slot"
        );
        Ok(())
    }

    /// Delete KVM memory slot `slot` (at guest address `addr`): undoes
    /// [`Vm::add_memory_slot`] when a hot-add fails half-way.
    pub fn remove_memory_slot(&self, slot: u32, addr: u64) -> Result<(), KvmError> {
        let r = kvm_bindings::kvm_userspace_memory_region {
            slot,
            flags: 0,
            guest_phys_addr: addr,
            memory_size: 0,
            userspace_addr: 0,
        };
        // SAFETY: a zero-sized region deletes the slot; no host memory is
        // handed to KVM.
        unsafe { self.fd.set_user_memory_region(r) }
            .map_err(ioctl("KVM_SET_USER_MEMORY_REGION (delete)"))
    }

    /// TSS and identity-map pages, the in-kernel PIC/IOAPIC/LAPICs and the PIT.
    #[cfg(target_arch = "x86_64")]
    pub fn setup_irqchip(&self) -> Result<(), KvmError> {
        use crate::arch::x86_64::layout::{KVM_IDENTITY_MAP_ADDRESS, KVM_TSS_ADDRESS};
        self.fd
            .set_identity_map_address(KVM_IDENTITY_MAP_ADDRESS)
            .map_err(ioctl("KVM_SET_IDENTITY_MAP_ADDR"))?;
        // The TSS address is below 4 GiB, so it fits usize everywhere.
        self.fd
            .set_tss_address(KVM_TSS_ADDRESS as usize)
            .map_err(ioctl("KVM_SET_TSS_ADDR"))?;
        self.fd
            .create_irq_chip()
            .map_err(ioctl("KVM_CREATE_IRQCHIP"))?;
        let pit = kvm_bindings::kvm_pit_config {
            flags: kvm_bindings::KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        self.fd.create_pit2(pit).map_err(ioctl("KVM_CREATE_PIT2"))?;
        Ok(())
    }

    /// Make a write to `evt` raise interrupt line `gsi`.
    /// Have KVM signal `evt` itself when the guest writes `datamatch` (4 bytes)
    /// at MMIO address `addr`: a virtio queue notification then never leaves
    /// the kernel for a userspace exit handler.
    pub fn register_ioevent_mmio(
        &self,
        evt: &EventFd,
        addr: u64,
        datamatch: u32,
    ) -> Result<(), KvmError> {
        self.fd
            .register_ioevent(evt, &kvm_ioctls::IoEventAddress::Mmio(addr), datamatch)
            .map_err(ioctl("KVM_IOEVENTFD"))
    }

    pub fn register_irqfd(&self, evt: &EventFd, gsi: u32) -> Result<(), KvmError> {
        self.fd.register_irqfd(evt, gsi).map_err(ioctl("KVM_IRQFD"))
    }

    /// Undo [`Self::register_ioevent_mmio`] (a device leaving its window).
    pub fn unregister_ioevent_mmio(
        &self,
        evt: &EventFd,
        addr: u64,
        datamatch: u32,
    ) -> Result<(), KvmError> {
        self.fd
            .unregister_ioevent(evt, &kvm_ioctls::IoEventAddress::Mmio(addr), datamatch)
            .map_err(ioctl("KVM_IOEVENTFD (deassign)"))
    }

    /// Undo [`Self::register_irqfd`].
    pub fn unregister_irqfd(&self, evt: &EventFd, gsi: u32) -> Result<(), KvmError> {
        self.fd
            .unregister_irqfd(evt, gsi)
            .map_err(ioctl("KVM_IRQFD (deassign)"))
    }

    pub fn create_vcpu(&self, id: u32) -> Result<VcpuFd, KvmError> {
        self.fd
            .create_vcpu(u64::from(id))
            .map_err(ioctl("KVM_CREATE_VCPU"))
    }
}

/// KVM's description of `region` as memory slot `slot` with `flags`.
fn slot_for(
    slot: u32,
    region: &GuestRegionMmap,
    flags: u32,
) -> Result<kvm_bindings::kvm_userspace_memory_region, KvmError> {
    let addr = region.start_addr().0;
    let host = region
        .get_host_address(vm_memory::MemoryRegionAddress(0))
        .map_err(|_| KvmError::Region {
            addr,
            reason: "no host mapping",
        })?;
    Ok(kvm_bindings::kvm_userspace_memory_region {
        slot,
        flags,
        guest_phys_addr: addr,
        memory_size: region.len(),
        userspace_addr: host as u64,
    })
}
