//! Per-vCPU CPUID: KVM's supported set with this vCPU's APIC id, the
//! topology (one socket, `max_vcpus` cores, one thread each) and the
//! hypervisor bit.

use kvm_bindings::kvm_cpuid_entry2;

const LEAF_FEATURES: u32 = 0x1;
const LEAF_CACHE_PARAMS: u32 = 0x4;
const LEAF_TOPOLOGY: u32 = 0xb;
const LEAF_TOPOLOGY_V2: u32 = 0x1f;
const LEAF_AMD_SIZE: u32 = 0x8000_0008;
const LEAF_AMD_EXT_APIC_ID: u32 = 0x8000_001e;

/// CPUID.1:ECX bit 31: running under a hypervisor.
const ECX_HYPERVISOR: u32 = 1 << 31;
/// CPUID.1:EDX bit 28: more than one logical processor per package.
const EDX_HTT: u32 = 1 << 28;
/// Topology level types (CPUID.0xB:ECX[15:8]).
const LEVEL_TYPE_SMT: u32 = 1;
const LEVEL_TYPE_CORE: u32 = 2;

/// Where this vCPU sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VcpuTopology {
    /// This vCPU's index, which is also its APIC id (as in the MADT).
    pub index: u32,
    /// vCPUs the machine can ever have (cores in the one package).
    pub max_vcpus: u32,
}

impl VcpuTopology {
    /// Bits of the APIC id that number the cores: ceil(log2(max_vcpus)).
    pub fn core_bits(&self) -> u32 {
        self.max_vcpus.max(1).next_power_of_two().trailing_zeros()
    }
}

/// Adjust KVM's supported CPUID entries for one vCPU.
pub fn adjust_cpuid(entries: &mut [kvm_cpuid_entry2], topo: VcpuTopology) {
    let apic_id = topo.index;
    let core_bits = topo.core_bits();
    let cores = topo.max_vcpus.max(1);
    for e in entries.iter_mut() {
        match e.function {
            LEAF_FEATURES => {
                e.ecx |= ECX_HYPERVISOR;
                // EBX[31:24] initial APIC id; EBX[23:16] addressable ids.
                let ids = (1u32 << core_bits).min(255);
                e.ebx = (e.ebx & 0x0000_ffff) | ((apic_id & 0xff) << 24) | (ids << 16);
                if cores > 1 {
                    e.edx |= EDX_HTT;
                } else {
                    e.edx &= !EDX_HTT;
                }
            }
            LEAF_CACHE_PARAMS => {
                // EAX[31:26]: addressable core ids in the package - 1.
                let cores_m1 = ((1u32 << core_bits) - 1).min(63);
                e.eax = (e.eax & 0x03ff_ffff) | (cores_m1 << 26);
            }
            LEAF_TOPOLOGY | LEAF_TOPOLOGY_V2 => {
                e.edx = apic_id;
                match e.index {
                    0 => {
                        e.eax = 0;
                        e.ebx = 1;
                        e.ecx = (LEVEL_TYPE_SMT << 8) | e.index;
                    }
                    1 => {
                        e.eax = core_bits;
                        e.ebx = cores;
                        e.ecx = (LEVEL_TYPE_CORE << 8) | e.index;
                    }
                    _ => {
                        e.eax = 0;
                        e.ebx = 0;
                        e.ecx = e.index;
                    }
                }
            }
            LEAF_AMD_SIZE => {
                // ECX[15:12] APIC id bits for cores, ECX[7:0] cores - 1.
                let nc = (cores - 1).min(255);
                e.ecx = (e.ecx & !0xf0ff) | ((core_bits & 0xf) << 12) | nc;
            }
            LEAF_AMD_EXT_APIC_ID => {
                e.eax = apic_id;
                // One thread per core; core id = APIC id; node 0.
                e.ebx = apic_id & 0xff;
                e.ecx = 0;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: u32, index: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            ebx: 0x0000_0800,
            ..Default::default()
        }
    }

    fn table() -> Vec<kvm_cpuid_entry2> {
        vec![
            entry(1, 0),
            entry(4, 0),
            entry(0xb, 0),
            entry(0xb, 1),
            entry(0xb, 2),
            entry(0x8000_0008, 0),
            entry(0x8000_001e, 0),
        ]
    }

    #[test]
    fn test_core_bits() {
        let t = |max_vcpus| {
            VcpuTopology {
                index: 0,
                max_vcpus,
            }
            .core_bits()
        };
        assert_eq!((t(1), t(2), t(3), t(4), t(5), t(255)), (0, 1, 2, 2, 3, 8));
    }

    #[test]
    fn test_adjust_cpuid_apic_id_topology_hypervisor() {
        let mut e = table();
        adjust_cpuid(
            &mut e,
            VcpuTopology {
                index: 3,
                max_vcpus: 6,
            },
        );
        assert_ne!(e[0].ecx & ECX_HYPERVISOR, 0);
        assert_eq!(e[0].ebx >> 24, 3);
        assert_eq!((e[0].ebx >> 16) & 0xff, 8);
        assert_eq!(e[0].ebx & 0xffff, 0x0800, "CLFLUSH size kept");
        assert_ne!(e[0].edx & EDX_HTT, 0);
        assert_eq!(e[1].eax >> 26, 7);
        assert_eq!((e[2].edx, e[2].ebx, e[2].ecx), (3, 1, 0x100));
        assert_eq!((e[3].eax, e[3].ebx, e[3].ecx, e[3].edx), (3, 6, 0x201, 3));
        assert_eq!((e[4].ebx, e[4].ecx), (0, 2));
        assert_eq!(e[5].ecx & 0xff, 5);
        assert_eq!(e[6].eax, 3);
    }

    #[test]
    fn test_adjust_cpuid_single_vcpu_clears_htt() {
        let mut e = table();
        e[0].edx = EDX_HTT;
        adjust_cpuid(
            &mut e,
            VcpuTopology {
                index: 0,
                max_vcpus: 1,
            },
        );
        assert_eq!(e[0].edx & EDX_HTT, 0);
        assert_eq!(e[0].ebx >> 16, 1);
    }
}
