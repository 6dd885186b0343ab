# host-vmm: the two commands a fresh machine needs are `make run` and `make test`.
# Run `make help` for the rest.

SHELL := /bin/bash
CARGO ?= cargo
TARGET := target
KERNEL_DIR := $(TARGET)/kernel
HOST_VMM := $(TARGET)/debug/host-vmm

.PHONY: help deps kernel testhost-kernel agent rootfs build run test test-unit lint \
        check-lock check-aarch64 fuzz test-rootfs test-e2e test-vm test-harness testhost bench clean-cache \
        rootfs-test soak kernel-aarch64 rootfs-aarch64 build-aarch64 testhost-kernel-aarch64 \
        test-aarch64 testhost-aarch64 test-rootfs-aarch64

help:
	@echo "make run             set up everything, boot a VM and run a container in it"
	@echo "make test            every test: lint, unit tests (x86_64 and aarch64), rootfs, end-to-end"
	@echo "make deps            install the Debian packages a fresh machine lacks (root)"
	@echo "make kernel          build (or fetch from cache) the guest kernel -> $(KERNEL_DIR)/guest/"
	@echo "make testhost-kernel fetch (or find cached) Debian's kernel for the test host (no build)"
	@echo "make rootfs          build the static guest-agent and the guest initramfs -> $(TARGET)/rootfs/"
	@echo "make testhost SCRIPT=path/to/script.sh   run a script inside the nested-KVM test host"
	@echo "make bench           benchmarks, as ratios against a baseline run in the same command"
	@echo "make fuzz            fuzz the guest-facing parsers for FUZZ_SECS (30) per target"
	@echo "make test-vm         the end-to-end scenarios and the soak in one pool of test hosts"
	@echo "make soak            load and fault figures: 100 + 8 sandboxes, kill -9, agent death, hang hunt"
	@echo "make kernel ARCH=aarch64 (kernel-aarch64)  the arm64 guest kernel (EFI-stub Image) -> $(KERNEL_DIR)/guest-aarch64/"
	@echo "make rootfs ARCH=aarch64 (rootfs-aarch64)  the static aarch64 agent and its initramfs -> $(TARGET)/rootfs-aarch64/"
	@echo "make build-aarch64   host-vmm for aarch64 (Debian's Rust) -> $(TARGET)/aarch64-unknown-linux-gnu/debug/host-vmm"
	@echo "make test-rootfs-aarch64  boot the arm64 kernel + initramfs through the UEFI ROM under QEMU TCG"
	@echo "make test-aarch64    the ARM64 scenarios (tests/scenarios-aarch64/) in the ARM64 test host"
	@echo "make testhost-aarch64 SCRIPT=path/to/script.sh   run a script inside the ARM64 test host"

deps:
	.ci/install-deps

# The build script caches by the hash of the fragments and the source version;
# the symlink gives the rest of the tree one stable path.
# ARCH=aarch64 makes `kernel` and `rootfs` the arm64 ones (kernel-aarch64, rootfs-aarch64).
ifeq ($(ARCH),aarch64)
kernel: kernel-aarch64
rootfs: rootfs-aarch64
else
kernel:
	@dir=$$(guest-kernel-config/build.sh guest | tail -n1) && mkdir -p $(KERNEL_DIR) && ln -sfn "$$dir" $(KERNEL_DIR)/guest && echo "guest kernel: $(KERNEL_DIR)/guest -> $$dir"

rootfs:
	rootfs/build.sh
endif

# The arm64 guest kernel (flavor guest-arm64: fragments/*.conf + fragments/arm64/, cross-built
# with gcc-aarch64-linux-gnu): Image is what the UEFI ROM starts (EFI stub).
kernel-aarch64:
	@dir=$$(guest-kernel-config/build.sh guest-arm64 | tail -n1) && mkdir -p $(KERNEL_DIR) && ln -sfn "$$dir" $(KERNEL_DIR)/guest-aarch64 && echo "arm64 guest kernel: $(KERNEL_DIR)/guest-aarch64 -> $$dir"

# The static aarch64 agent (Debian's Rust, as .ci/check-aarch64) and its initramfs, whose
# default container image is Debian's busybox-static:arm64.
rootfs-aarch64:
	rootfs/build.sh --arch aarch64

# The arm64 initramfs booted through Debian's UEFI ROM under qemu-system-aarch64 TCG (QEMU's
# ACPI tables): AGENT_READY with 2 CPUs, PSCI power-off. The guest artifacts without host-vmm.
test-rootfs-aarch64: rootfs-aarch64 kernel-aarch64
	rootfs/smoke-qemu.sh --arch aarch64

# host-vmm for aarch64, where tests/testhost --arch aarch64 looks for it (HOST_VMM overrides).
build-aarch64:
	PATH=/usr/bin:$$PATH RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc \
	    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
	    /usr/bin/cargo build --locked -p host-vmm --target aarch64-unknown-linux-gnu

# The ARM64 test host's kernel (Debian's linux-image-arm64) and userland (busybox-static:arm64).
testhost-kernel-aarch64:
	@python3 -B -m tests.harness.aarch64 testhost-kernel >/dev/null
	@python3 -B -m tests.harness.aarch64 busybox >/dev/null

# The ARM64 scenarios (tests/scenarios-aarch64/*.sh) in the ARM64 test host (qemu-system-aarch64
# -M virt,virtualization=on, TCG; directly on an arm64 machine with /dev/kvm). Not in `make
# test` yet: a cold arm64 kernel build alone takes 15-25 minutes on 2 shared cores.
test-aarch64: build-aarch64 rootfs-aarch64 kernel-aarch64 testhost-kernel-aarch64
	tests/testhost --arch aarch64 run-all

# make testhost-aarch64 SCRIPT=path/to/script.sh [ARGS="..."] [TIMEOUT=secs]
testhost-aarch64: build-aarch64 rootfs-aarch64 kernel-aarch64 testhost-kernel-aarch64
	@test -n "$(SCRIPT)" || { echo "usage: make testhost-aarch64 SCRIPT=path/to/script.sh"; exit 2; }
	tests/testhost --arch aarch64 run $(SCRIPT) $(ARGS) $(if $(TIMEOUT),--timeout $(TIMEOUT))

# The test host runs Debian's packaged kernel (tests/harness/debian_kernel.py: downloaded,
# not installed; its KVM, 9p and virtio modules go into the test host's initramfs).
# TESTHOST_KERNEL_SOURCE=build tests/testhost ... uses a kernel built from
# guest-kernel-config (flavor testhost) instead.
testhost-kernel:
	@python3 -m tests.harness.debian_kernel >/dev/null

agent:
	rootfs/build-agent.sh

# TEST ONLY: the initramfs whose agent has the crash hook (target/rootfs-test/), for the
# soak's agent-death scenario. Never shipped; the production build checks it has no hook.
rootfs-test:
	rootfs/build.sh --test-hooks

# The initramfs read back (static /init), and a boot of it under plain QEMU TCG.
test-rootfs: rootfs kernel
	$(CARGO) test --locked -p guest-agent --test initramfs
	rootfs/smoke-qemu.sh

build:
	$(CARGO) build --locked -p host-vmm

check-lock:
	@n=$$(grep -c '^name = "vm-memory"' Cargo.lock); \
	 if [ "$$n" != 1 ]; then echo "error: Cargo.lock holds $$n versions of vm-memory (want exactly 1)"; exit 1; fi; \
	 echo "Cargo.lock: one vm-memory"

lint: check-lock
	tests/lint/module-arrows.py host-vmm/src guest-agent/src protocol/src
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	$(CARGO) clippy --locked -p guest-agent --features test-crash-hook --all-targets -- -D warnings
	shellcheck -s sh tests/harness/*.sh tests/lib/*.sh tests/scenarios/*.sh tests/scenarios-aarch64/*.sh tests/soak/*.sh tests/main-job.sh \
	    tests/selftest/*.sh tests/selftest/scenarios/*.sh tests/run-all tests/bench/*.sh tests/tools/*.sh
	shellcheck tests/phases host-vmm/fuzz/run.sh host-vmm/fuzz/run-all.sh tests/selftest/run tests/bench/run .ci/run .ci/install-deps .ci/check-aarch64 guest-kernel-config/build.sh \
	    rootfs/build.sh rootfs/build-agent.sh

# Includes the initramfs read-back test, hence the rootfs prerequisite.
test-unit: rootfs
	$(CARGO) test --locked --workspace

check-aarch64:
	.ci/check-aarch64

clean-cache:
	rm -rf $${XDG_CACHE_HOME:-$$HOME/.cache}/host-vmm

# Fuzz the guest-facing parsers (virtio-mmio registers, vsock and block queues, ACPI
# hot-plug registers, fw_cfg and CFI flash registers, agent log lines, API requests) for a bounded
# time each (as many at once as there are cores), with libFuzzer on nightly when this machine has it; otherwise the same
# harnesses run on stable over the seed corpus plus seeded random inputs (--workspace: the
# feature set of test-unit, whose build it reuses; -p host-vmm rebuilt every dependency).
FUZZ_SECS ?= 30
FUZZ_TARGETS ?= mmio_registers vsock_queues block_queues hotplug_registers cpu_hotplug_registers log_lines api_requests fw_cfg_registers flash_commands
fuzz:
	@if cargo +nightly --version >/dev/null 2>&1; then \
	    host-vmm/fuzz/run-all.sh $(FUZZ_SECS) $(FUZZ_TARGETS); \
	else \
	    echo "fuzz: no nightly toolchain here: running the stable fuzz smoke for $(FUZZ_SECS) s per target"; \
	    FUZZ_SMOKE_SECS=$(FUZZ_SECS) $(CARGO) test --locked --workspace fuzz_smoke; \
	fi

# Every end-to-end scenario (tests/scenarios/*.sh) in the test host (or directly
# on a machine with hardware KVM).
# E2E_JOBS test hosts side by side (scenarios dealt by scenario-cost): one per core.
E2E_JOBS ?= $(shell nproc)
test-e2e: build rootfs kernel testhost-kernel
	JOBS=$(E2E_JOBS) tests/run-all

# Load and fault figures (tests/soak/*.sh, dealt to E2E_JOBS test hosts): the run hang hunt and
# SIGQUIT dump, 100 sandboxes in sequence (RSS first vs last), 8 at once, kill -9 at random
# points of run, the agent dying in the guest (test initramfs); a leftover sweep after each.
# SOAK_TIMEOUT: seconds per scenario, SOAK_TOTAL for the whole run (the 100 sandboxes take
# 100 x 4-11 s nested, depending on how loaded the machine is).
SOAK_TIMEOUT ?= 1800
SOAK_TOTAL ?= 3600
soak: build rootfs rootfs-test kernel testhost-kernel
	SCENARIOS_DIR=$(CURDIR)/tests/soak SCENARIO_TIMEOUT=$(SOAK_TIMEOUT) JOBS=$(E2E_JOBS) tests/run-all --timeout $(SOAK_TOTAL)

# `make test`'s virtual machines: the end-to-end scenarios and the soak as one pool, dealt
# to E2E_JOBS test hosts by each scenario's `# scenario-cost:` (longest first), so neither
# test host idles while the other still has a long scenario to go. VM_TOTAL bounds the run.
VM_TOTAL ?= 3000
test-vm: build rootfs rootfs-test kernel testhost-kernel
	SCENARIOS_DIR=$(CURDIR)/tests/scenarios:$(CURDIR)/tests/soak JOBS=$(E2E_JOBS) tests/run-all --timeout $(VM_TOTAL)

# The harness tests itself: exit status, timeout, a dying test host, Ctrl-C cleanup.
test-harness: build rootfs kernel testhost-kernel
	tests/selftest/run

# The boot benchmark (tests/bench/run): ratios against baselines run in the same command
# (the bare KVM floor natively, QEMU microvm in the test host); table in target/bench/boot.md.
# BENCH_RUNS=11 native runs, BENCH_TESTHOST_RUNS=5 test host runs per subject.
bench: rootfs kernel testhost-kernel
	tests/bench/run

# make testhost SCRIPT=path/to/script.sh [ARGS="..."] [TIMEOUT=secs]
testhost: build rootfs kernel testhost-kernel
	@test -n "$(SCRIPT)" || { echo "usage: make testhost SCRIPT=path/to/script.sh"; exit 2; }
	tests/testhost run $(SCRIPT) $(ARGS) $(if $(TIMEOUT),--timeout $(TIMEOUT))

# The main job on a fresh machine: packages, kernel, image, VMM, then boot a VM.
run: deps build rootfs kernel testhost-kernel
	tests/testhost run tests/main-job.sh

# Each phase's time is printed at the end (tests/phases), pass or fail.
TEST_PHASES := lint test-unit check-aarch64 fuzz test-rootfs test-vm test-harness
test: deps
	@tests/phases $(TEST_PHASES)
	@echo "make test: all passed"
