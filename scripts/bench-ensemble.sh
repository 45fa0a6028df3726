#!/usr/bin/env bash
# Compare a 3-node rzk ensemble with a 3-node Apache ZooKeeper ensemble under the same
# `rzk bench` load (the ensemble sibling of scripts/bench-compare.sh).
#
#   usage: scripts/bench-ensemble.sh
#
# Builds rzk --release, starts three `rzk server` processes and three Debian Apache
# ZooKeeper servers (scripts/start-apache-zk.sh) on loopback with distinct ports, all
# data directories on the same disk and the same forceSync setting, waits for each
# ensemble to have a leader and two followers, runs `rzk bench` for each op against
# each ensemble with a connect string listing all three members, and prints a table of
# ops/s and latency percentiles with rzk/zk ratios, and the CPU each ensemble used per
# operation: utime + stime of its three server processes (every thread), sampled from
# /proc/<pid>/stat when the measured window starts and ends (WARMUP and WARMUP +
# DURATION seconds into the bench), divided by the operations the bench counted. Only
# the processes this script started are stopped (by PID).
#
# Environment (defaults):
#   OPS="create set get"  SESSIONS=32  INFLIGHT=8  VALUE_SIZE=100
#   DURATION=10  WARMUP=2  FORCE_SYNC=yes  RZK_BASE=25000  ZK_BASE=25500 (ports below Linux's ephemeral range)
#   BENCH_DIR=/tmp  KEEP=1 (keep data dirs and logs)  CARGO_TARGET_DIR
#   RZK_BIN=/path/to/rzk   the rzk under test (default: build this checkout --release)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OPS="${OPS:-create set get}"
SESSIONS="${SESSIONS:-32}"
INFLIGHT="${INFLIGHT:-8}"
VALUE_SIZE="${VALUE_SIZE:-100}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
FORCE_SYNC="${FORCE_SYNC:-yes}"
RZK_BASE="${RZK_BASE:-25000}"
ZK_BASE="${ZK_BASE:-25500}"
WORK="$(mktemp -d "${BENCH_DIR:-/tmp}/rzk-bench-ensemble.XXXXXX")"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${RZK_BIN:-$TARGET/release/rzk}"

STARTED=()
cleanup() {
    for pid in "${STARTED[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${STARTED[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

if [ -z "${RZK_BIN:-}" ]; then
    echo "building rzk --release ..." >&2
    (cd "$ROOT" && cargo build --release -p rzk >&2)
fi

four() { timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "$2" >&3 && cat <&3' _ "$1" "$2" 2>/dev/null || true; }
mode() { four "$1" srvr | awk -F': ' '/^Mode:/ { print $2 }'; }
wait_ensemble() { # wait_ensemble PORT1 PORT2 PORT3
    for _ in $(seq 600); do
        local m; m="$(for p in "$@"; do mode "$p"; done | sort | tr '\n' ' ')"
        [ "$m" = "follower follower leader " ] && return 0
        sleep 0.1
    done
    echo "ensemble on ports $* did not settle" >&2
    return 1
}

servers() { # servers BASE -> server.N lines
    for i in 1 2 3; do echo "server.$i=127.0.0.1:$(($1 + 100 + i)):$(($1 + 200 + i))"; done
}

# --- rzk ensemble ------------------------------------------------------------
RZK_PORTS=()
RZK_PIDS=()
for i in 1 2 3; do
    d="$WORK/rzk$i"; mkdir -p "$d/data"; echo "$i" > "$d/data/myid"
    port=$((RZK_BASE + i)); RZK_PORTS+=("$port")
    {
        echo "tickTime=2000"; echo "initLimit=10"; echo "syncLimit=5"
        echo "dataDir=$d/data"; echo "clientPort=$port"; echo "clientPortAddress=127.0.0.1"
        echo "maxClientCnxns=0"; echo "forceSync=$FORCE_SYNC"; echo "4lw.commands.whitelist=*"
        echo "admin.enableServer=false"
        servers "$RZK_BASE"
    } > "$d/zoo.cfg"
    "$BIN" server -c "$d/zoo.cfg" >"$d/server.log" 2>&1 &
    STARTED+=("$!")
    RZK_PIDS+=("$!")
done
wait_ensemble "${RZK_PORTS[@]}"

# --- Apache ZooKeeper ensemble ------------------------------------------------
ZK_PORTS=()
ZK_PIDS=()
mapfile -t ZK_SERVERS < <(servers "$ZK_BASE")
for i in 1 2 3; do
    d="$WORK/zk$i"; mkdir -p "$d/data"; echo "$i" > "$d/data/myid"
    port=$((ZK_BASE + i)); ZK_PORTS+=("$port")
    pid="$("$ROOT/scripts/start-apache-zk.sh" "$port" "$d" "forceSync=$FORCE_SYNC" "${ZK_SERVERS[@]}" | tail -1)"
    STARTED+=("$pid")
    ZK_PIDS+=("$pid")
done
wait_ensemble "${ZK_PORTS[@]}"

hosts() { local IFS=,; local out=(); for p in "$@"; do out+=("127.0.0.1:$p"); done; echo "${out[*]}"; }
RZK_HOSTS="$(hosts "${RZK_PORTS[@]}")"
ZK_HOSTS="$(hosts "${ZK_PORTS[@]}")"

field() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'; }
# CPU ticks (utime + stime, every thread) of the given processes, summed.
cpu_ticks() { local sum=0 t; for pid in "$@"; do t="$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)"; sum=$((sum + ${t:-0})); done; echo "$sum"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
declare -A RES CPU
for op in $OPS; do
    for target in rzk zk; do
        h="$RZK_HOSTS"; [ "$target" = zk ] && h="$ZK_HOSTS"
        pids=("${RZK_PIDS[@]}"); [ "$target" = zk ] && pids=("${ZK_PIDS[@]}")
        echo "== $op against $target ensemble ($h)" >&2
        cpu_file="$WORK/cpu-$op-$target"
        (
            sleep "$WARMUP"; a="$(cpu_ticks "${pids[@]}")"
            sleep "$DURATION"; b="$(cpu_ticks "${pids[@]}")"
            echo "$a $b" >"$cpu_file"
        ) &
        sampler=$!
        "$BIN" bench --hosts "$h" --sessions "$SESSIONS" --inflight "$INFLIGHT" \
            --op "$op" --value-size "$VALUE_SIZE" --duration "$DURATION" --warmup "$WARMUP" \
            --path "/rzk-bench-ensemble" >"$WORK/bench-$op-$target.out" 2>"$WORK/bench-$op-$target.err" || true
        line="$(grep '^RESULT' "$WORK/bench-$op-$target.out" | tail -1 || true)"
        echo "$line" >&2
        if [ -z "$line" ]; then
            echo "bench $op against $target failed:" >&2
            tail -5 "$WORK/bench-$op-$target.err" >&2
        fi
        RES[$op,$target]="$line"
        wait "$sampler" || true
        # the ensemble's CPU microseconds per operation in the measured window
        CPU[$op,$target]="$(awk -v t="$TICK_US" -v ops="$(field ops "$line")" '
            NF == 2 && ops > 0 { printf "%.1f", ($2 - $1) * t / ops }' "$cpu_file" 2>/dev/null || true)"
    done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }
echo
printf "%-7s %12s %12s %7s | %9s %9s %7s | %9s %9s %7s\n" op rzk_ops/s zk_ops/s ratio rzk_p50us zk_p50us ratio rzk_p99us zk_p99us ratio
for op in $OPS; do
    r="${RES[$op,rzk]}"; z="${RES[$op,zk]}"
    ro="$(field ops_per_sec "$r")"; zo="$(field ops_per_sec "$z")"
    r50="$(field p50_us "$r")"; z50="$(field p50_us "$z")"
    r99="$(field p99_us "$r")"; z99="$(field p99_us "$z")"
    printf "%-7s %12s %12s %7s | %9s %9s %7s | %9s %9s %7s\n" "$op" "${ro:--}" "${zo:--}" "$(ratio "$ro" "$zo")" \
        "${r50:--}" "${z50:--}" "$(ratio "$r50" "$z50")" "${r99:--}" "${z99:--}" "$(ratio "$r99" "$z99")"
done
echo
bad=0
for op in $OPS; do
    for target in rzk zk; do
        l="${RES[$op,$target]}"
        echo "$target: ${l:-RESULT missing for $op}"
        e="$(field errors "$l")"
        if [ -z "$l" ] || [ "${e:-x}" != 0 ]; then bad=1; fi
    done
done
[ "$bad" -eq 0 ] && echo "errors=0 in every result line" || echo "WARNING: a result line is missing or has errors != 0"
echo "(3-node ensembles; sessions=$SESSIONS inflight=$INFLIGHT value=${VALUE_SIZE}B duration=${DURATION}s forceSync=$FORCE_SYNC; ratio = rzk/zk)"
echo
echo "ensemble CPU per operation (utime + stime of the three servers over the measured window / ops, microseconds):"
printf "%-7s %10s %10s %7s\n" op rzk_us/op zk_us/op ratio
for op in $OPS; do
    rc="${CPU[$op,rzk]:-}"; zc="${CPU[$op,zk]:-}"
    printf "%-7s %10s %10s %7s\n" "$op" "${rc:--}" "${zc:--}" "$(ratio "$rc" "$zc")"
done
exit "$bad"
