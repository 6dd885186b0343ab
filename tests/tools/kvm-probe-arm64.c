/*
 * kvm-probe-arm64: what /dev/kvm offers on an ARM64 host, and proof that it runs guest code.
 *
 * Built static for aarch64 by the harness (tests/testhost --arch aarch64 compiles it with
 * aarch64-linux-gnu-gcc into target/testhost/aarch64/tools/) and run by
 * tests/scenarios-aarch64/00-testhost-sanity.sh. It prints one "key=value" line per fact:
 *
 *   api            KVM_GET_API_VERSION (12)
 *   max_vcpus      KVM_CAP_MAX_VCPUS
 *   ipa_bits       KVM_CAP_ARM_VM_IPA_SIZE (guest physical address bits; 0: 40)
 *   target         KVM_ARM_PREFERRED_TARGET
 *   psci_0_2       KVM_CAP_ARM_PSCI_0_2
 *   gicv3, gicv2   KVM_CREATE_DEVICE with KVM_CREATE_DEVICE_TEST (an in-kernel GIC of each kind)
 *   user_mem       KVM_CAP_USER_MEMORY, readonly_mem KVM_CAP_READONLY_MEM (flash0 needs it)
 *   guest_mmio     a vCPU ran four instructions at 0x10000 (a store of 'K' to 0x09000000,
 *                  where QEMU's virt board has its PL011) and KVM returned the MMIO exit
 *
 * Exits 0 when the guest ran and the exit was the expected one, 1 otherwise (with a reason).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CODE_GPA 0x10000ULL
#define MMIO_GPA 0x09000000ULL

static int fail(const char *what)
{
	fprintf(stderr, "kvm-probe: %s: %s\n", what, strerror(errno));
	return 1;
}

static const char *yes(int ok) { return ok ? "yes" : "no"; }

static int gic_test(int vm, uint32_t type)
{
	struct kvm_create_device cd = { .type = type, .flags = KVM_CREATE_DEVICE_TEST };
	return ioctl(vm, KVM_CREATE_DEVICE, &cd) == 0;
}

int main(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return fail("open /dev/kvm");
	int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
	printf("api=%d\n", api);
	printf("max_vcpus=%d\n", ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS));
	int ipa = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_ARM_VM_IPA_SIZE);
	printf("ipa_bits=%d\n", ipa);
	printf("psci_0_2=%s\n", yes(ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_ARM_PSCI_0_2) > 0));
	printf("user_mem=%s\n", yes(ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) > 0));
	printf("readonly_mem=%s\n", yes(ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) > 0));
	if (api != KVM_API_VERSION) {
		fprintf(stderr, "kvm-probe: API version %d, want %d\n", api, KVM_API_VERSION);
		return 1;
	}

	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return fail("KVM_CREATE_VM");
	printf("gicv3=%s\n", yes(gic_test(vm, KVM_DEV_TYPE_ARM_VGIC_V3)));
	printf("gicv2=%s\n", yes(gic_test(vm, KVM_DEV_TYPE_ARM_VGIC_V2)));

	/* movz x1, #0x0900, lsl #16; movz w2, #'K'; str w2, [x1]; b . */
	static const uint32_t code[] = { 0xd2a12001, 0x52800962, 0xb9000022, 0x14000000 };
	size_t size = 0x10000;
	void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return fail("mmap guest memory");
	memcpy(mem, code, sizeof(code));
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = CODE_GPA, .memory_size = size,
		.userspace_addr = (uintptr_t)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return fail("KVM_SET_USER_MEMORY_REGION");

	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		return fail("KVM_CREATE_VCPU");
	struct kvm_vcpu_init init;
	memset(&init, 0, sizeof(init));
	if (ioctl(vm, KVM_ARM_PREFERRED_TARGET, &init) < 0)
		return fail("KVM_ARM_PREFERRED_TARGET");
	printf("target=%u\n", init.target);
	init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
	if (ioctl(vcpu, KVM_ARM_VCPU_INIT, &init) < 0)
		return fail("KVM_ARM_VCPU_INIT");
	uint64_t pc = CODE_GPA;
	struct kvm_one_reg reg = {
		.id = KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |
		      KVM_REG_ARM_CORE_REG(regs.pc),
		.addr = (uintptr_t)&pc,
	};
	if (ioctl(vcpu, KVM_SET_ONE_REG, &reg) < 0)
		return fail("KVM_SET_ONE_REG pc");

	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size <= 0)
		return fail("KVM_GET_VCPU_MMAP_SIZE");
	struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		return fail("mmap kvm_run");
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (ioctl(vcpu, KVM_RUN, 0) < 0)
		return fail("KVM_RUN");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
	if (run->exit_reason != KVM_EXIT_MMIO) {
		printf("guest_mmio=no\n");
		fprintf(stderr, "kvm-probe: exit reason %u, want KVM_EXIT_MMIO (%u)\n",
			run->exit_reason, KVM_EXIT_MMIO);
		return 1;
	}
	if (run->mmio.phys_addr != MMIO_GPA || !run->mmio.is_write || run->mmio.len != 4 ||
	    run->mmio.data[0] != 'K') {
		printf("guest_mmio=no\n");
		fprintf(stderr, "kvm-probe: MMIO exit at 0x%llx len %u write %u data 0x%02x, want a "
			"4-byte write of 'K' at 0x%llx\n", (unsigned long long)run->mmio.phys_addr,
			run->mmio.len, run->mmio.is_write, run->mmio.data[0],
			(unsigned long long)MMIO_GPA);
		return 1;
	}
	printf("guest_mmio=yes (a 4-byte write of 'K' at 0x%llx, %ld us)\n",
	       (unsigned long long)MMIO_GPA, us);
	return 0;
}
