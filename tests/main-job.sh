# The main job, as `make run` runs it (directly, or inside the test host when this
# machine's /dev/kvm cannot run a guest): with the repository's configuration.toml, boot
# a sandbox VM and run a container in it (`host-vmm run -- CMD`): busybox from the
# default image prints where it runs, and host-vmm exits with the container's status
# after tearing the VM down.
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"
cfg="$REPO/configuration.toml"
echo "== host-vmm config show --config $cfg"
host-vmm config show --config "$cfg"
# A fresh private directory (mktemp -d: 0700, ours), not a fixed name another user could
# create first; removed at the end (host-vmm leaves it empty).
HOST_VMM_RUNTIME_DIR=$(mktemp -d "${TMPDIR:-/tmp}/host-vmm-main-job.XXXXXX")
export HOST_VMM_RUNTIME_DIR
trap 'rmdir "$HOST_VMM_RUNTIME_DIR" 2>/dev/null || true' EXIT
# shellcheck disable=SC2016 # expanded by the container's shell
cmd='echo "hello from a container: $(uname -n), kernel $(uname -r), pid $$"; cat /proc/self/cgroup'
echo "== host-vmm run --config $cfg -- sh -c '$cmd'"
start=$(now_ms)
status=0
host-vmm run --config "$cfg" -- sh -c "$cmd" || status=$?
echo "== host-vmm exited $status after $(($(now_ms) - start)) ms (boot, container, teardown)"
exit "$status"
