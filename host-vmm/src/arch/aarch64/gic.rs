//! The in-kernel GIC: v3 where KVM can create it, v2 otherwise, at the
//! board's addresses, with the board's interrupt lines. Created after the
//! vCPUs (KVM sizes the redistributors for the vCPUs that exist) and before
//! any irqfd (KVM refuses those without an in-kernel interrupt controller,
//! and its default routing, SPI n = GSI n, comes with the init).

use kvm_bindings::{
    kvm_create_device, kvm_device_attr, kvm_device_type_KVM_DEV_TYPE_ARM_VGIC_V2,
    kvm_device_type_KVM_DEV_TYPE_ARM_VGIC_V3, KVM_DEV_ARM_VGIC_CTRL_INIT,
    KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_GRP_NR_IRQS,
    KVM_VGIC_V2_ADDR_TYPE_CPU, KVM_VGIC_V2_ADDR_TYPE_DIST, KVM_VGIC_V3_ADDR_TYPE_DIST,
    KVM_VGIC_V3_ADDR_TYPE_REDIST,
};
use kvm_ioctls::{DeviceFd, VmFd};

use super::layout::{GicVersion, GICC_BASE, GICD_BASE, GICR_BASE, GIC_NR_IRQS};

/// Why the GIC could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum GicError {
    #[error("cannot create an in-kernel GIC (v3: {v3}; v2)")]
    Create {
        v3: kvm_ioctls::Error,
        #[source]
        v2: kvm_ioctls::Error,
    },
    #[error("GICv{version}: {what} failed")]
    Attr {
        version: u8,
        what: &'static str,
        #[source]
        source: kvm_ioctls::Error,
    },
}

fn create(vm: &VmFd, type_: u32) -> Result<DeviceFd, kvm_ioctls::Error> {
    let mut dev = kvm_create_device {
        type_,
        fd: 0,
        flags: 0,
    };
    vm.create_device(&mut dev)
}

fn set_u64(dev: &DeviceFd, group: u32, attr: u64, value: u64) -> Result<(), kvm_ioctls::Error> {
    let attr = kvm_device_attr {
        flags: 0,
        group,
        attr,
        addr: std::ptr::addr_of!(value) as u64,
    };
    // `value` outlives the ioctl, which reads 8 bytes from `addr`.
    dev.set_device_attr(&attr)
}

fn set_u32(dev: &DeviceFd, group: u32, attr: u64, value: u32) -> Result<(), kvm_ioctls::Error> {
    let attr = kvm_device_attr {
        flags: 0,
        group,
        attr,
        addr: std::ptr::addr_of!(value) as u64,
    };
    dev.set_device_attr(&attr)
}

/// Create, place and initialise the GIC. Returns the version created; the
/// device lives as long as the VM (closing its fd does not remove it).
pub fn create_gic(vm: &VmFd) -> Result<GicVersion, GicError> {
    let (dev, version) = match create(vm, kvm_device_type_KVM_DEV_TYPE_ARM_VGIC_V3) {
        Ok(d) => (d, GicVersion::V3),
        Err(v3) => match create(vm, kvm_device_type_KVM_DEV_TYPE_ARM_VGIC_V2) {
            Ok(d) => {
                tracing::info!("GICv3 unavailable ({v3}): using GICv2");
                (d, GicVersion::V2)
            }
            Err(v2) => return Err(GicError::Create { v3, v2 }),
        },
    };
    let v: u8 = match version {
        GicVersion::V2 => 2,
        GicVersion::V3 => 3,
    };
    let attr = |what| {
        move |source| GicError::Attr {
            version: v,
            what,
            source,
        }
    };
    let grp = KVM_DEV_ARM_VGIC_GRP_ADDR;
    match version {
        GicVersion::V3 => {
            set_u64(&dev, grp, KVM_VGIC_V3_ADDR_TYPE_DIST.into(), GICD_BASE)
                .map_err(attr("distributor address"))?;
            set_u64(&dev, grp, KVM_VGIC_V3_ADDR_TYPE_REDIST.into(), GICR_BASE)
                .map_err(attr("redistributor address"))?;
        }
        GicVersion::V2 => {
            set_u64(&dev, grp, KVM_VGIC_V2_ADDR_TYPE_DIST.into(), GICD_BASE)
                .map_err(attr("distributor address"))?;
            set_u64(&dev, grp, KVM_VGIC_V2_ADDR_TYPE_CPU.into(), GICC_BASE)
                .map_err(attr("CPU interface address"))?;
        }
    }
    set_u32(&dev, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, GIC_NR_IRQS)
        .map_err(attr("number of interrupts"))?;
    let init = kvm_device_attr {
        flags: 0,
        group: KVM_DEV_ARM_VGIC_GRP_CTRL,
        attr: KVM_DEV_ARM_VGIC_CTRL_INIT.into(),
        addr: 0,
    };
    dev.set_device_attr(&init).map_err(attr("init"))?;
    Ok(version)
}
