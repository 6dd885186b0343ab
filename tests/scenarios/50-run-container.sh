# `host-vmm run`: one container in a fresh sandbox VM, attached like `docker run`. Each run
# boots a VM, creates the container from the default image (busybox) over the agent's
# RPCs, streams its stdio, and exits with its status; the VM and the runtime directory are
# gone afterwards. Covered: stdout, exit codes (42; 137 for SIGKILL), stdin round trip
# with -i, a terminal with -t (and on a real pseudo-terminal: raw mode, window size,
# restored after), a large stdout byte for byte (sha256 against the same data made on
# the host), an OOM kill under -m reported on stderr, --pids-limit, --cpus, -m
# above the boot RAM grows the VM by memory hotplug, -e/-w, --rootfs and --bundle (the
# tree as a cached read-only erofs virtio-blk disk, mkfs.erofs from the host), SIGTERM to
# host-vmm while booting and while attached (forwarded to the container), and no VM
# process or runtime directory left behind.
# scenario-cost: 300 (seconds on an idle 2-core machine: tests/run-all deals by it)
# shellcheck shell=sh
# shellcheck disable=SC2016 # single-quoted commands are expanded by the container's shell
# scenario-timeout: 900 (a dozen sandboxes and 32 MiB of stdout take over 600 s nested on a loaded 2-core machine)
set -eu
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
command -v host-vmm >/dev/null || fail "host-vmm is not on PATH (cargo build -p host-vmm)"
# On tmpfs: Unix sockets cannot be bound on the 9p results share.
export HOST_VMM_RUNTIME_DIR="/tmp/host-vmm-runtime-$$"
config="$RESULTS/configuration.toml"
write_config "$config" "" "default_memory = 512" "memory_slots = 2" "default_maxmemory = 2048"
# Big output over emulated nested KVM: MiB.
# 32 MiB crosses every buffer on the way (the guest pipe, the agent's 64 KiB reads, ttrpc,
# the vsock credit) hundreds of times; throughput is `make bench`'s business, and on a loaded
# 2-core machine 100 MiB took over 180 s nested.
BIG_MIB=${BIG_MIB:-32}

# ctr NAME ARGS...: `host-vmm run ARGS` (stdin from /dev/null unless CTR_STDIN names a
# file), stdout and stderr in $RESULTS/NAME.{out,err}; sets RC and MS (wall time).
ctr() {
    ctr_name=$1
    shift
    ctr_start=$(now_ms)
    RC=0
    timeout -k 10 "${RUN_TIMEOUT:-180}" host-vmm run --config "$config" \
        --console "$RESULTS/$ctr_name.console" "$@" \
        <"${CTR_STDIN:-/dev/null}" >"$RESULTS/$ctr_name.out" 2>"$RESULTS/$ctr_name.err" || RC=$?
    MS=$(($(now_ms) - ctr_start))
    [ "$RC" -ne 124 ] || { tail -n 20 "$RESULTS/$ctr_name.err" >&2; fail "$ctr_name: timed out"; }
}

# no_leftover WHAT: no runtime directory entry and no host-vmm process remain.
no_leftover() {
    left=$(ls -A "$HOST_VMM_RUNTIME_DIR" 2>/dev/null || true)
    [ -z "$left" ] || fail "$1: runtime directory left: $left"
    assert_no_leftover host-vmm
}

step "run -- echo hello"
ctr hello --id hello -- echo hello
[ "$RC" -eq 0 ] || { cat "$RESULTS/hello.err" >&2; fail "echo hello: exit status $RC"; }
assert_eq "echo hello: stdout" "hello" "$(cat "$RESULTS/hello.out")"
no_leftover "echo hello"
step "hello in $MS ms (boot, container, teardown)"

step "run -- sh -c 'exit 42'"
ctr exit42 -- sh -c 'exit 42'
assert_eq "exit 42: status" 42 "$RC"
no_leftover "exit 42"

step "stdout and stderr are kept apart; -e and -w"
ctr streams -e GREETING=hi -w /tmp -- sh -c 'echo "$GREETING from $(pwd)"; echo oops >&2'
assert_eq "streams: status" 0 "$RC"
assert_eq "streams: stdout" "hi from /tmp" "$(cat "$RESULTS/streams.out")"
assert_grep '^oops$' "$RESULTS/streams.err" "streams: stderr"

step "killed by SIGKILL: 137"
# The container's init is pid 1 of its own pid namespace, which ignores signals it has no
# handler for, even SIGKILL from inside; a child of it is killed as usual.
ctr kill9 -- sh -c 'sh -c "kill -9 \$\$"; exit $?'
assert_eq "kill -9: status" 137 "$RC"
# With the pod's pid namespace the init is an ordinary process: a real SIGKILL death.
ctr kill9pod --pid pod -- sh -c 'kill -9 $$'
assert_eq "kill -9 (--pid pod): status" 137 "$RC"

step "stdin round trip with -i"
printf abc >"$RESULTS/abc.in"
CTR_STDIN="$RESULTS/abc.in" ctr stdin -i -- cat
assert_eq "stdin: status" 0 "$RC"
assert_eq "stdin: echoed" "abc" "$(cat "$RESULTS/stdin.out")"
# Without -i the container's stdin is closed: cat ends at once.
ctr nostdin -- cat
assert_eq "no -i: status" 0 "$RC"

step "a terminal with -t"
ctr tty -t -- sh -c 'test -t 1 && echo is-a-tty'
assert_eq "tty: status" 0 "$RC"
assert_grep 'is-a-tty' "$RESULTS/tty.out" "tty: the process has a terminal"

step "-t -i on a real terminal: raw mode, window size, restored after"
command -v script >/dev/null || fail "script (util-linux) is not on PATH: needed for a pseudo-terminal"
cat >"/tmp/tty-$$.sh" <<INNER
stty rows 40 cols 100
before=\$(stty -g)
host-vmm run --config "$config" --console "$RESULTS/ptty.console" -t -i -- sh -c 'stty size; exit 3'
echo "status=\$?"
[ "\$before" = "\$(stty -g)" ] && echo terminal-restored
INNER
timeout 120 script -qc "sh /tmp/tty-$$.sh" /dev/null </dev/null >"$RESULTS/ptty.out" 2>&1 ||
    { cat "$RESULTS/ptty.out" >&2; fail "-t -i under script failed"; }
# Also script(1)'s end-of-input character: with its stdin at EOF it sends one as the run ends,
# and the restored terminal echoes it (`^@`, or a raw NUL).
tr -d '\r\000' <"$RESULTS/ptty.out" | sed 's/\^@//g' >"$RESULTS/ptty.txt"
assert_grep '40 100$' "$RESULTS/ptty.txt" "the container's terminal has the host's window size"
assert_grep '^status=3$' "$RESULTS/ptty.txt" "-t -i: exit status"
assert_grep '^terminal-restored$' "$RESULTS/ptty.txt" "the host terminal is restored"
# Raw mode: the host terminal adds no CR of its own (one CR per line, from the guest's pty).
if grep -q "$(printf '\r\r')" "$RESULTS/ptty.out"; then fail "-t -i: host terminal not in raw mode (CR CR)"; fi
rm -f "/tmp/tty-$$.sh"

step "$BIG_MIB MiB of stdout, byte for byte"
gen="yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c $((BIG_MIB * 1048576))"
want=$(sh -c "$gen" | sha256sum | cut -d' ' -f1)
RUN_TIMEOUT=300 ctr big -- sh -c "$gen"
assert_eq "big: status" 0 "$RC"
size=$(wc -c <"$RESULTS/big.out")
assert_eq "big: bytes" "$((BIG_MIB * 1048576))" "$size"
assert_eq "big: sha256" "$want" "$(sha256sum <"$RESULTS/big.out" | cut -d' ' -f1)"
step "$BIG_MIB MiB in $MS ms"
rm -f "$RESULTS/big.out"

step "-m 64: allocating 128 MiB is OOM-killed"
ctr oom -m 64 -- sh -c 'x=$(head -c 134217728 /dev/zero | tr "\0" a); echo survived ${#x}'
cat "$RESULTS/oom.err"
assert_eq "oom: status" 137 "$RC"
assert_grep '^host-vmm: container [^ ]+ was OOM-killed \(memory limit 64 MiB\)$' "$RESULTS/oom.err" "oom: reported"
if grep -q survived "$RESULTS/oom.out"; then fail "oom: the allocation survived"; fi

step "-m 1024 with 512 MiB at boot: the sandbox grows by hotplug"
ctr grow -v -m 1024 -- sh -c 'grep MemTotal /proc/meminfo'
assert_eq "grow: status" 0 "$RC"
kib=$(sed -n 's/^MemTotal: *\([0-9]*\) kB$/\1/p' "$RESULTS/grow.out")
[ "${kib:-0}" -ge 900000 ] || fail "grow: MemTotal ${kib:-?} kB in the container, want about 1 GiB"
assert_grep 'memory hot-added' "$RESULTS/grow.err" "grow: hot-add logged"
step "grow: MemTotal $kib kB"

step "--pids-limit 5: the sixth process cannot fork"
ctr pids --pids-limit 5 -- sh -c 'i=0; while [ $i -lt 10 ]; do sleep 30 & i=$((i+1)); done; echo spawned'
[ "$RC" -ne 0 ] || fail "--pids-limit 5: ten background processes started"
assert_grep "can't fork" "$RESULTS/pids.err" "--pids-limit: fork refused"

step "--cpus 0.5: a busy loop gets about half a CPU"
# Judged by the CPU time the container's shell used (utime + stime from /proc/<pid>/stat, in
# USER_HZ ticks), not by loop counts: the quota holds on the guest's clock however busy the
# machine running the test host is. The loop forks nothing (builtins only, the clock read
# from /proc/uptime): children's times, rounded up per child, overstate a fork loop's use.
busy='read -r s _ </proc/uptime; s=${s%.*}; while read -r u _ </proc/uptime && [ "${u%.*}" -lt $((s + 5)) ]; do :; done; read -r st </proc/$$/stat; echo "$st"'
ctr cpu-free -- sh -c "$busy"
ctr cpu-half --cpus 0.5 -- sh -c "$busy"
# utime + stime (fields 14 and 15; 12 and 13 after the command name), in ms.
cpu_ms() { sed 's/.*) //' "$RESULTS/$1.out" | awk '{ print ($12 + $13) * 10 }'; }
free_ms=$(cpu_ms cpu-free) half_ms=$(cpu_ms cpu-half)
step "cpu in a 4-5 s busy loop: ${free_ms:-?} ms unlimited, ${half_ms:-?} ms with --cpus 0.5"
case "$free_ms$half_ms" in '' | *[!0-9]*) fail "--cpus 0.5: no CPU times (stat: $(cat "$RESULTS/cpu-free.out" "$RESULTS/cpu-half.out"))" ;; esac
# At most half of the at most 5 s loop, plus a tenth of it: the times are sampled at each
# tick, and the shell's start counts too.
[ "$half_ms" -le 3000 ] || fail "--cpus 0.5: used $half_ms ms of CPU in at most 5 s, want at most 3000"
# Unlimited, the loop gets what the vCPU gets: on a loaded machine that can be little, so the
# comparison holds only when the unlimited run had more than the cap to give.
if [ "$free_ms" -gt 3500 ]; then
    [ "$free_ms" -gt "$half_ms" ] || fail "--cpus 0.5: $half_ms ms is not less than $free_ms ms unlimited"
else
    step "unlimited got only $free_ms ms of at most 5000 (a loaded machine): the cap is the check"
fi

step "--rootfs DIR: the tree as a read-only erofs disk, writable through the overlay"
command -v mkfs.erofs >/dev/null || fail "mkfs.erofs is not on PATH (Debian erofs-utils): --rootfs needs it"
root="/tmp/ctr-rootfs-$$"
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/etc"
cp /bin/busybox "$root/bin/busybox"
for applet in sh echo cat ls hostname; do ln -s busybox "$root/bin/$applet"; done
echo disk-marker >"$root/etc/marker"
ctr rootfs --rootfs "$root" -- sh -c 'cat /etc/marker; echo written >/etc/new; cat /etc/new'
[ "$RC" -eq 0 ] || { cat "$RESULTS/rootfs.err" >&2; fail "--rootfs: exit status $RC"; }
assert_eq "--rootfs: output" "disk-marker
written" "$(cat "$RESULTS/rootfs.out")"
step "--rootfs in $MS ms (image built, then cached)"

step "--bundle DIR: config.json's process, hostname and root.path"
bundle="/tmp/bundle-$$"
mkdir -p "$bundle"
mv "$root" "$bundle/rootfs"
cat >"$bundle/config.json" <<'JSON'
{"ociVersion": "1.0.2",
 "process": {"args": ["sh", "-c", "echo bundle-ok; cat /etc/marker; hostname"], "cwd": "/",
             "env": ["PATH=/bin"]},
 "root": {"path": "rootfs"},
 "hostname": "bundled",
 "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
 "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                          {"type": "uts"}, {"type": "mount"}]}}
JSON
ctr bundle --bundle "$bundle"
[ "$RC" -eq 0 ] || { cat "$RESULTS/bundle.err" >&2; fail "--bundle: exit status $RC"; }
assert_eq "--bundle: output" "bundle-ok
disk-marker
bundled" "$(cat "$RESULTS/bundle.out")"
# The command line overrides the bundle's args.
ctr bundle-args --bundle "$bundle" -- echo overridden
assert_eq "--bundle with a command" "overridden" "$(cat "$RESULTS/bundle-args.out")"
rm -rf "$bundle"

# bg NAME ARGS...: `host-vmm run ARGS` in the background (sets BG_PID).
bg() {
    bg_name=$1
    shift
    host-vmm run --config "$config" --console "$RESULTS/$bg_name.console" "$@" \
        </dev/null >"$RESULTS/$bg_name.out" 2>"$RESULTS/$bg_name.err" &
    BG_PID=$!
}
# bg_wait WHAT WANT: host-vmm BG_PID exits with WANT within 60 s.
bg_wait() {
    deadline=$(($(now_ms) + 60000))
    while kill -0 "$BG_PID" 2>/dev/null; do
        [ "$(now_ms)" -lt "$deadline" ] || { kill -9 "$BG_PID"; fail "$1: host-vmm still running 60 s after SIGTERM"; }
        sleep 0.1
    done
    status=0
    wait "$BG_PID" || status=$?
    assert_eq "$1: exit status" "$2" "$status"
}

step "SIGTERM to host-vmm while the sandbox boots: 143, nothing left"
bg sigboot -- sleep 1000
until [ -d "$HOST_VMM_RUNTIME_DIR" ] && [ -n "$(ls -A "$HOST_VMM_RUNTIME_DIR" 2>/dev/null)" ]; do
    kill -0 "$BG_PID" 2>/dev/null || fail "sigboot: host-vmm exited early: $(cat "$RESULTS/sigboot.err")"
    sleep 0.05
done
kill -TERM "$BG_PID"
bg_wait "SIGTERM while booting" 143
no_leftover "SIGTERM while booting"

step "SIGTERM to host-vmm while attached: forwarded to the container"
bg sigrun -- sh -c 'trap "echo got-TERM; exit 143" TERM; echo started; sleep 1000 & wait'
deadline=$(($(now_ms) + 120000))
until grep -q started "$RESULTS/sigrun.out" 2>/dev/null; do
    kill -0 "$BG_PID" 2>/dev/null || fail "sigrun: host-vmm exited early: $(cat "$RESULTS/sigrun.err")"
    [ "$(now_ms)" -lt "$deadline" ] || { kill -9 "$BG_PID"; fail "sigrun: the container never started"; }
    sleep 0.1
done
kill -TERM "$BG_PID"
bg_wait "SIGTERM while attached" 143
assert_grep '^got-TERM$' "$RESULTS/sigrun.out" "the container's TERM trap ran"
no_leftover "SIGTERM while attached"

no_leftover "all runs"
rmdir "$HOST_VMM_RUNTIME_DIR" 2>/dev/null || true
step "PASS"
