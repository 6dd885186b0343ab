# Run every $SCENARIOS_DIR/*.sh (default tests/scenarios/, relative to $REPO), or those
# whose name contains one of the arguments. Each runs under busybox sh as its own
# process in its own session, with its own $RESULTS/<name>/ and a timeout
# ($SCENARIO_TIMEOUT seconds, default 600; a `# scenario-timeout: N` line in the file
# overrides it). Processes a scenario leaves behind are
# killed before the next one starts and fail it. Prints PASS/FAIL per scenario and a
# summary; exits 1 if any failed, 2 if none matched. Runs under `tests/testhost run-all`.
# SCENARIOS_DIR may name several directories, separated by colons. SCENARIO_LIST (paths,
# separated by spaces) runs exactly those, in that order (tests/run-all deals them to its
# test hosts by their `# scenario-cost:` lines). SCENARIO_SHARD=K/N runs only the K-th of
# every N matching scenarios.
# shellcheck shell=sh

per_timeout=${SCENARIO_TIMEOUT:-600}
all_results=$RESULTS
passed=""
failed=""
count=0
shard=${SCENARIO_SHARD:-1/1}
shard_k=${shard%/*}
shard_n=${shard#*/}
case "$shard_k/$shard_n" in
*[!0-9/]* | /* | */ | 0/*) echo "SCENARIO_SHARD=$shard: want K/N with 1 <= K <= N"; exit 2 ;;
esac
[ "$shard_k" -le "$shard_n" ] || { echo "SCENARIO_SHARD=$shard: want K/N with 1 <= K <= N"; exit 2; }
index=0

matches() {
    [ $# -eq 1 ] && return 0
    name=$1
    shift
    for pattern in "$@"; do
        case "$name" in *"$pattern"*) return 0 ;; esac
    done
    return 1
}

now() { cut -d' ' -f1 /proc/uptime; }

# Live processes in process group $1, except its leader: "pid command" per line.
group_members() {
    for stat in /proc/[0-9]*/stat; do
        line=$(cat "$stat" 2>/dev/null) || continue
        pid=${line%% *}
        # shellcheck disable=SC2086
        set -- "$1" ${line##*) }
        [ "$4" = "$1" ] && [ "$pid" != "$1" ] && [ "$2" != Z ] &&
            echo "$pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
    done
}

# The scenario files, one per line: SCENARIO_LIST, or every *.sh of each SCENARIOS_DIR.
scenario_files() {
    if [ -n "${SCENARIO_LIST:-}" ]; then
        # shellcheck disable=SC2086 # the list is split on spaces on purpose
        printf '%s\n' $SCENARIO_LIST
        return
    fi
    echo "${SCENARIOS_DIR:-$REPO/tests/scenarios}" | tr ':' '\n' | while IFS= read -r dir; do
        for f in "$dir"/*.sh; do [ -f "$f" ] && echo "$f"; done
    done
}

for scenario in $(scenario_files); do
    [ -f "$scenario" ] || continue
    name=$(basename "$scenario" .sh)
    matches "$name" "$@" || continue
    index=$((index + 1))
    [ $(((index - 1) % shard_n + 1)) -eq "$shard_k" ] || continue
    count=$((count + 1))
    export RESULTS="$all_results/$name"
    mkdir -p "$RESULTS"
    echo "=== RUN   $name"
    # A scenario may ask for longer (or shorter) with a `# scenario-timeout: SECONDS` line.
    timeout=$(sed -n 's/^# scenario-timeout: *\([0-9][0-9]*\).*/\1/p' "$scenario" | head -n 1)
    timeout=${timeout:-$per_timeout}
    start=$(now)
    # setsid: the scenario leads its own process group, so a timeout kills all of it and
    # stragglers can be found. The watchdog is a group of its own, killed as a whole.
    busybox setsid busybox sh "$scenario" &
    pid=$!
    # shellcheck disable=SC2016 # $1.. are the watchdog's own arguments
    busybox setsid busybox sh -c 'sleep "$1"; touch "$3"; kill -TERM "-$2"; sleep 5; kill -KILL "-$2"' \
        watchdog "$timeout" "$pid" "$RESULTS/.timed-out" 2>/dev/null &
    watchdog=$!
    wait "$pid"
    status=$?
    kill -KILL "-$watchdog" 2>/dev/null
    wait "$watchdog" 2>/dev/null
    leftovers=$(group_members "$pid")
    if [ -n "$leftovers" ]; then
        echo "$name left processes behind; killing them:"
        echo "$leftovers" | sed 's/^/    /'
        kill -KILL "-$pid" 2>/dev/null
        [ "$status" -ne 0 ] || status="left processes behind"
    fi
    secs=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    if [ "$status" = 0 ]; then
        echo "--- PASS  $name (${secs}s)"
        passed="$passed $name"
    elif [ -e "$RESULTS/.timed-out" ]; then
        echo "--- FAIL  $name (${secs}s): timeout after ${timeout}s"
        failed="$failed $name"
    else
        case "$status" in [0-9]*) status="exit status $status" ;; esac
        echo "--- FAIL  $name (${secs}s): $status"
        failed="$failed $name"
    fi
done

export RESULTS="$all_results"
if [ "$count" -eq 0 ] && [ "$index" -gt 0 ]; then
    echo "shard $shard: none of the $index matching scenarios falls to this shard"
    exit 0
fi
if [ "$count" -eq 0 ]; then
    echo "no scenario matches: $*"
    exit 2
fi
echo
echo "summary: $(echo "$passed" | wc -w) passed, $(echo "$failed" | wc -w) failed of $count"
for name in $failed; do
    echo "  FAIL $name (results: $all_results/$name)"
done
[ -z "$failed" ]
