# Boot benchmark inside the test host (`tests/testhost run tests/bench/boot-in-testhost.sh
# [RUNS]`, part of `make bench`): host-vmm against QEMU `-M microvm`, both booting the
# same guest kernel and initramfs with 1 vCPU, at 1024 MiB (the default configuration)
# and 128 MiB.
#
# Each boot: launch -> the agent's AGENT_READY line on the console (the console is a
# FIFO read line by line, so no polling), then SETTLE seconds idle at the agent, then a
# copy of /proc/PID/smaps (for RSS beyond guest RAM), then SIGTERM. One unrecorded
# warm-up round, then RUNS (default 5) rounds; the two VMMs alternate which goes first.
# Writes $RESULTS/bench/testhost.tsv (one row per boot), smaps/ and console/;
# tests/bench/report.py turns them into the table. Fails on any boot that does not
# reach AGENT_READY. Times come from /proc/uptime (10 ms resolution).
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"

runs=${1:-5}
settle=${BENCH_SETTLE:-1}
boot_timeout=${BOOT_TIMEOUT:-120}
case "$runs" in '' | *[!0-9]* | 0) fail "RUNS must be a positive number, got '$runs'" ;; esac

need_file GUEST_KERNEL
need_file GUEST_INITRD
command -v host-vmm >/dev/null || fail "host-vmm is not on PATH (HOST_VMM=$HOST_VMM)"
command -v qemu-system-x86_64 >/dev/null ||
    fail "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86): it is the baseline"
[ -c /dev/kvm ] || fail "no /dev/kvm here"
config="$REPO/configuration.toml"
need_file config

out="$RESULTS/bench"
mkdir -p "$out/smaps" "$out/console"
tsv="$out/testhost.tsv"
printf 'subject\tmem_mib\tround\tready_ms\tsince_kernel_ms\tsmaps\n' >"$tsv"
fifo=/tmp/bench-console.fifo

# uptime_cs: /proc/uptime in centiseconds, without a fork.
uptime_cs() {
    read -r up _ </proc/uptime
    echo "${up%.*}${up#*.}"
}

# start SUBJECT MIB CONSOLE_FIFO ERR: start the VMM in the background, console to the FIFO.
start() {
    case "$1" in
    host-vmm)
        if [ "$2" = 1024 ]; then
            set -- --config "$config"
        else
            set -- --config "$config" --memory "$2" --cpus 1
        fi
        host-vmm boot "$@" --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
            </dev/null >"$fifo" 2>"$err" &
        ;;
    qemu-microvm)
        qemu-system-x86_64 -M microvm -accel kvm -cpu host -m "$2" -smp 1 \
            -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
            -kernel "$GUEST_KERNEL" -initrd "$GUEST_INITRD" \
            -append "console=ttyS0 quiet panic=-1" </dev/null >"$fifo" 2>"$err" &
        ;;
    *) fail "unknown subject $1" ;;
    esac
    pid=$!
}

# boot_once SUBJECT MIB ROUND: one measured boot (see the header). Round 0 is not recorded.
boot_once() {
    subject=$1 mib=$2 round=$3
    tag="$subject-$mib-$round"
    console="$out/console/$tag.log"
    err="$out/console/$tag.stderr"
    : >"$console"
    rm -f "$fifo"
    mkfifo "$fifo"
    t0=$(uptime_cs)
    start "$subject" "$mib"
    # Watchdog: a boot that never gets ready is killed, which ends the console.
    (
        trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
        sleep "$boot_timeout" &
        sleeper=$!
        wait "$sleeper"
        kill -KILL "$pid" 2>/dev/null
    ) &
    watchdog=$!
    ready=""
    exec 3<"$fifo"
    while IFS= read -r line <&3; do
        printf '%s\n' "$line" >>"$console"
        case "$line" in
        *AGENT_READY*)
            t1=$(uptime_cs)
            ready=$line
            break
            ;;
        esac
    done
    # Keep reading so the VMM never blocks on its console.
    cat <&3 >>"$console" &
    drain=$!
    exec 3<&-
    if [ -z "$ready" ]; then
        kill "$watchdog" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        wait "$drain" 2>/dev/null || true
        echo "--- $console (last 20 lines):" >&2
        tail -n 20 "$console" | tr -d '\r' >&2
        echo "--- $err:" >&2
        tail -n 20 "$err" >&2
        fail "$tag: no AGENT_READY within ${boot_timeout} s"
    fi
    sleep "$settle"
    smaps="smaps/$tag.smaps"
    cat "/proc/$pid/smaps" >"$out/$smaps" || fail "$tag: cannot read /proc/$pid/smaps"
    kill -TERM "$pid"
    wait "$pid" || true
    kill "$watchdog" 2>/dev/null || true
    wait "$watchdog" || true
    wait "$drain" || true
    rm -f "$fifo"
    since=$(printf '%s\n' "$ready" | tr -d '\r' | sed -n 's/.* since_kernel_ms=\([0-9]*\).*/\1/p')
    [ -n "$since" ] || fail "$tag: malformed ready line: $ready"
    ready_ms=$(((t1 - t0) * 10))
    [ "$ready_ms" -gt 0 ] || fail "$tag: launch -> AGENT_READY measured as $ready_ms ms"
    echo "$tag: AGENT_READY ${ready_ms} ms after launch (guest: ${since} ms after kernel start)"
    [ "$round" -eq 0 ] && return 0
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$subject" "$mib" "$round" "$ready_ms" "$since" "$smaps" >>"$tsv"
}

round=0
while [ "$round" -le "$runs" ]; do
    for mib in 1024 128; do
        if [ $((round % 2)) -eq 0 ]; then
            boot_once host-vmm "$mib" "$round"
            boot_once qemu-microvm "$mib" "$round"
        else
            boot_once qemu-microvm "$mib" "$round"
            boot_once host-vmm "$mib" "$round"
        fi
    done
    round=$((round + 1))
done
echo "bench results: $tsv"
