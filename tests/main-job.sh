# The main job, as `make run` runs it (directly, or inside the test host when this
# machine's /dev/kvm cannot run a guest): boot a VM with the repository's
# configuration.toml and show its console until the guest powers off.
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"
cfg="$REPO/configuration.toml"
echo "== host-vmm config show --config $cfg"
host-vmm config show --config "$cfg"
echo "== host-vmm boot --config $cfg --kernel-params agent.poweroff=1"
start=$(now_ms)
status=0
host-vmm boot --config "$cfg" --kernel-params "agent.poweroff=1" || status=$?
echo "== host-vmm exited $status after $(($(now_ms) - start)) ms"
exit "$status"
