# The leftover sweep: after sandboxes ran (or were killed with -9), nothing of theirs may
# remain. `. "$REPO/tests/lib/sweep.sh"` after assert.sh.
# shellcheck shell=sh

# sweep_list: every leftover of host-vmm on this machine, one per line (empty: clean):
#   process  a host-vmm process (any session)
#   dir      an entry under the runtime root ($HOST_VMM_RUNTIME_DIR, else /run/host-vmm)
#   socket   a bound Unix socket of host-vmm (vsock.sock, api.sock, vsock.sock_PORT) that a
#            process still holds (/proc/net/unix)
#   tap      a tap/tun network device
#   loop     a loop device with a backing file
#   cgroup   a cgroup named after host-vmm or a sandbox (host-vmm*, hv-*) in any hierarchy
#   temp     an interrupted image build in the image cache (*.tmp*)
sweep_list() {
    for dir in /proc/[0-9]*; do
        [ "$(cat "$dir/comm" 2>/dev/null)" = host-vmm ] && echo "process ${dir#/proc/}"
    done
    root=${HOST_VMM_RUNTIME_DIR:-/run/host-vmm}
    if [ -d "$root" ]; then
        for entry in "$root"/* "$root"/.[!.]*; do
            [ -e "$entry" ] || [ -L "$entry" ] || continue
            echo "dir $entry"
        done
    fi
    if [ -r /proc/net/unix ]; then
        awk 'NR > 1 && $8 ~ /(vsock\.sock|api\.sock)/ { print "socket " $8 }' /proc/net/unix
    fi
    for dev in /sys/class/net/*; do
        [ -e "$dev/tun_flags" ] && echo "tap ${dev##*/}"
    done
    for loop in /sys/block/loop*; do
        [ -s "$loop/loop/backing_file" ] && echo "loop ${loop##*/} $(cat "$loop/loop/backing_file")"
    done
    for hier in /sys/fs/cgroup /sys/fs/cgroup/*; do
        [ -d "$hier" ] || continue
        find "$hier" -maxdepth 3 -type d \( -name 'host-vmm*' -o -name 'hv-*' \) 2>/dev/null |
            sed 's/^/cgroup /'
    done
    cache=${XDG_CACHE_HOME:-$HOME/.cache}/host-vmm/images
    if [ -d "$cache" ]; then
        find "$cache" -name '*.tmp*' 2>/dev/null | sed 's/^/temp /'
    fi
    return 0
}

# sweep WHAT: fails naming every leftover (see sweep_list).
sweep() {
    sweep_left=$(sweep_list)
    [ -z "$sweep_left" ] || fail "$1: leftovers:
$sweep_left"
}

# rss_kib PID: the resident set of PID in KiB (0 when it is gone).
rss_kib() {
    awk '/^VmRSS:/ { print $2; found = 1 } END { if (!found) print 0 }' "/proc/$1/status" 2>/dev/null || echo 0
}
