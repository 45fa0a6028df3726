#!/usr/bin/env bash
# Compare rzk and Apache ZooKeeper with the same `rzk bench` load.
#
#   usage: scripts/bench-compare.sh
#
# Builds rzk --release, starts `rzk server` and Debian's Apache ZooKeeper
# (scripts/start-apache-zk.sh) on loopback, on different ports, with data
# directories on the same disk and the same forceSync setting, runs
# `rzk bench` for each op against each server (one after the other), and prints
# a table of ops/s and latency percentiles with rzk/zk ratios, and each server's CPU
# time per operation (utime + stime of the server process, all threads, from
# /proc/<pid>/stat, sampled when the measured window starts and ends: WARMUP and
# WARMUP + DURATION seconds after the bench starts; 10 ms ticks), and the bench
# client's own CPU per operation over the same window (unless CLIENT_CPUS pins them
# apart, the client and the server share the cores, so a cheaper server leaves more of
# them to the client).
# Only the servers this script started are stopped (by PID).
#
# Environment (defaults):
#   OPS="create set get"  SESSIONS=32  INFLIGHT=8  VALUE_SIZE=100
#   DURATION=10  WARMUP=2  FORCE_SYNC=yes  RZK_PORT=24181  ZK_PORT=24182
#   BENCH_DIR=/tmp  (parent of the data directories: both on this disk)
#   KEEP=1        keep the data directories and logs
#   CARGO_TARGET_DIR  where the release build goes (default: <repo>/target)
#   RZK_BIN=/path/to/rzk   the rzk under test (default: build this checkout --release)
#   RZK_BASELINE=/path/to/older/rzk   also run that rzk binary (a third server, started
#                 the same way) in the same run, and print rzk/baseline ratios: how a
#                 change moved rzk, next to Apache ZooKeeper measured in the same run
#   OPS may include "mixed" (READ_RATIO of gets, default 0.9, the rest sets)
#   SETTLE_MAX=30  before each run, wait up to this many seconds for every server to be
#                 idle (< 5 % of a CPU for a second): a JVM still compiling after it
#                 started, or collecting after a run, would otherwise take the CPU
#                 of the next server's measured window
#   SERVER_CPUS=0  CLIENT_CPUS=1   pin the servers and the bench client to these CPUs
#                 (taskset -c): on a small machine the load generator otherwise takes
#                 cores from the server under test (both servers get the same CPUs)
#   CEILING=1     also run the same load against crates/rzk/examples/null_server.rs (a
#                 server that answers every request at once and stores nothing; built
#                 here, or NULL_BIN=/path), on NULL_PORT (default 24184), and print the
#                 ceiling table: what the client and loopback TCP alone allow on this
#                 machine, each server's ops/s as a fraction of it, and ceiling/zk, the
#                 highest rzk/zk ratio any server could show in this run
#   FLOOR=1       also run the write ops (create, set) against
#                 crates/rzk/examples/fsync_floor.rs (the null server made durable: it
#                 appends each write to a zero-filled log and answers it after the
#                 fdatasync of its group, rzk's and ZooKeeper's commit policy, and keeps
#                 nothing else; built here, or FLOOR_BIN=/path), on FLOOR_PORT (default
#                 24185), and print the fsync floor table: its ops/s, each server's
#                 ops/s as a fraction of it, and floor/zk, the rzk/zk ratio a server as
#                 fast as this floor would show (a reference design, not a proven
#                 bound; forceSync=yes only)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OPS="${OPS:-create set get}"
SESSIONS="${SESSIONS:-32}"
INFLIGHT="${INFLIGHT:-8}"
VALUE_SIZE="${VALUE_SIZE:-100}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
FORCE_SYNC="${FORCE_SYNC:-yes}"
RZK_PORT="${RZK_PORT:-24181}"
ZK_PORT="${ZK_PORT:-24182}"
BASE_PORT="${BASE_PORT:-24183}"
NULL_PORT="${NULL_PORT:-24184}"
FLOOR_PORT="${FLOOR_PORT:-24185}"
if [ -n "${FLOOR:-}" ] && [ "$FORCE_SYNC" != yes ]; then echo "FLOOR=1 needs FORCE_SYNC=yes" >&2; exit 2; fi
READ_RATIO="${READ_RATIO:-0.9}"
BASELINE="${RZK_BASELINE:-}"
SERVER_PIN=(); CLIENT_PIN=()
if [ -n "${SERVER_CPUS:-}" ]; then SERVER_PIN=(taskset -c "$SERVER_CPUS"); fi
if [ -n "${CLIENT_CPUS:-}" ]; then CLIENT_PIN=(taskset -c "$CLIENT_CPUS"); fi
WORK="$(mktemp -d "${BENCH_DIR:-/tmp}/rzk-bench-compare.XXXXXX")"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${RZK_BIN:-$TARGET/release/rzk}"

STARTED=()
# The bench and its CPU sampler of the run in progress (background jobs of a script
# ignore SIGINT, so an interrupted run must end them here).
RUNNING=()
cleanup() {
    for pid in "${RUNNING[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
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
if [ -n "${CEILING:-}" ] && [ -z "${NULL_BIN:-}" ]; then
    echo "building the null server (examples/null_server.rs) --release ..." >&2
    (cd "$ROOT" && cargo build --release -p rzk --example null_server >&2)
fi
NULL_BIN="${NULL_BIN:-$TARGET/release/examples/null_server}"
if [ -n "${FLOOR:-}" ] && [ -z "${FLOOR_BIN:-}" ]; then
    echo "building the fsync floor (examples/fsync_floor.rs) --release ..." >&2
    (cd "$ROOT" && cargo build --release -p rzk --example fsync_floor >&2)
fi
FLOOR_BIN="${FLOOR_BIN:-$TARGET/release/examples/fsync_floor}"

# --- rzk server(s) ----------------------------------------------------------
ready() { "$BIN" shell -server "127.0.0.1:$1" ls / >/dev/null 2>&1; }
start_rzk() { # name binary port
    local name=$1 bin=$2 port=$3
    mkdir -p "$WORK/$name"
    cat > "$WORK/$name/zoo.cfg" <<CFG
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$WORK/$name/data
clientPort=$port
clientPortAddress=127.0.0.1
maxClientCnxns=0
forceSync=$FORCE_SYNC
4lw.commands.whitelist=*
admin.enableServer=false
CFG
    "${SERVER_PIN[@]}" "$bin" server -c "$WORK/$name/zoo.cfg" >"$WORK/$name/server.log" 2>&1 &
    STARTED+=("$!")
    local pid="$!"
    for _ in $(seq 100); do
        ready "$port" && return 0
        kill -0 "$pid" 2>/dev/null || { echo "$name server exited:" >&2; tail -20 "$WORK/$name/server.log" >&2; exit 1; }
        sleep 0.2
    done
    echo "$name server not answering on $port" >&2; tail -20 "$WORK/$name/server.log" >&2; exit 1
}
declare -A PID
start_rzk rzk "$BIN" "$RZK_PORT"
PID[rzk]="${STARTED[-1]}"
TARGETS="rzk zk"
if [ -n "$BASELINE" ]; then
    start_rzk base "$BASELINE" "$BASE_PORT"
    PID[base]="${STARTED[-1]}"
    TARGETS="rzk base zk"
fi

if [ -n "${CEILING:-}" ]; then
    "${SERVER_PIN[@]}" "$NULL_BIN" "$NULL_PORT" >"$WORK/null.log" 2>&1 &
    STARTED+=("$!")
    PID[null]="$!"
    for _ in $(seq 50); do ready "$NULL_PORT" && break; sleep 0.1; done
    ready "$NULL_PORT" || { echo "null server not answering on $NULL_PORT" >&2; cat "$WORK/null.log" >&2; exit 1; }
    TARGETS="$TARGETS null"
fi
if [ -n "${FLOOR:-}" ]; then
    mkdir -p "$WORK/floor"
    "${SERVER_PIN[@]}" "$FLOOR_BIN" "$FLOOR_PORT" "$WORK/floor" >"$WORK/floor.log" 2>&1 &
    STARTED+=("$!")
    PID[floor]="$!"
    # It zero-fills its log before it listens (a second or two).
    for _ in $(seq 100); do
        kill -0 "${PID[floor]}" 2>/dev/null || { echo "fsync floor exited:" >&2; cat "$WORK/floor.log" >&2; exit 1; }
        ready "$FLOOR_PORT" && break
        sleep 0.1
    done
    ready "$FLOOR_PORT" || { echo "fsync floor not answering on $FLOOR_PORT" >&2; cat "$WORK/floor.log" >&2; exit 1; }
    TARGETS="$TARGETS floor"
fi

# --- Apache ZooKeeper -------------------------------------------------------
ZK_PID="$("${SERVER_PIN[@]}" "$ROOT/scripts/start-apache-zk.sh" "$ZK_PORT" "$WORK/zk" "forceSync=$FORCE_SYNC" | tail -1)"
STARTED+=("$ZK_PID")
PID[zk]="$ZK_PID"

# --- runs -------------------------------------------------------------------
field() { # field NAME "RESULT k=v ..."
    tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'
}
# CPU ticks (utime + stime) of a process, every thread.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo ""; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
# CPU microseconds per op from a sampler's line "server_start server_end client_start
# client_end" (ticks, "-" for a process gone): the pair starting at field $2, over $3 ops.
us_per_op() {
    awk -v f="$2" -v t="$TICK_US" -v ops="$3" '
        NF == 4 && $f != "-" && $(f + 1) != "-" && ops > 0 { printf "%.1f", ($(f + 1) - $f) * t / ops }' "$1" 2>/dev/null || true
}
# Waits (up to SETTLE_MAX seconds) until every started server is idle: under 5 % of a
# CPU over one second. A JVM keeps compiling and collecting for seconds after it
# answers, and after a run; with pinned CPUs that work would land in the next
# server's measured window.
settle() {
    local tries=0 a b t used=0
    while [ "$tries" -lt "${SETTLE_MAX:-30}" ]; do
        a=0; for pid in "${PID[@]}"; do t="$(cpu_ticks "$pid")"; a=$((a + ${t:-0})); done
        sleep 1
        b=0; for pid in "${PID[@]}"; do t="$(cpu_ticks "$pid")"; b=$((b + ${t:-0})); done
        used=$(((b - a) * TICK_US / 10000))
        [ "$used" -lt 5 ] && return 0
        tries=$((tries + 1))
    done
    echo "servers still busy after ${SETTLE_MAX:-30} s (${used} % of a CPU); measuring anyway" >&2
}
declare -A RES CPU CLI
for op in $OPS; do
    for target in $TARGETS; do
        port=$RZK_PORT; [ "$target" = zk ] && port=$ZK_PORT; [ "$target" = base ] && port=$BASE_PORT
        [ "$target" = null ] && port=$NULL_PORT
        [ "$target" = floor ] && port=$FLOOR_PORT
        # The floor answers reads before earlier writes: writes only.
        [ "$target" = floor ] && [ "$op" != create ] && [ "$op" != set ] && continue
        settle
        echo "== $op against $target (127.0.0.1:$port)" >&2
        cpu_file="$WORK/cpu-$op-$target"
        out_file="$WORK/bench-$op-$target.out"
        "${CLIENT_PIN[@]}" "$BIN" bench --hosts "127.0.0.1:$port" --sessions "$SESSIONS" --inflight "$INFLIGHT" \
            --op "$op" --read-ratio "$READ_RATIO" --value-size "$VALUE_SIZE" --duration "$DURATION" --warmup "$WARMUP" \
            --path "/rzk-bench-compare" >"$out_file" 2>"$WORK/bench-$op-$target.err" &
        bench_pid=$!
        # The server's and the bench client's CPU over the same measured window.
        # A process gone before a sample gives "-" (that column then prints "-").
        (
            sleep "$WARMUP"; a="$(cpu_ticks "${PID[$target]}")"; c="$(cpu_ticks "$bench_pid")"
            sleep "$DURATION"; b="$(cpu_ticks "${PID[$target]}")"; d="$(cpu_ticks "$bench_pid")"
            echo "${a:--} ${b:--} ${c:--} ${d:--}" >"$cpu_file"
        ) &
        sampler=$!
        RUNNING=("$bench_pid" "$sampler")
        wait "$bench_pid" || true
        cat "$out_file" >&2
        line="$(grep '^RESULT' "$out_file" | tail -1 || true)"
        if [ -z "$line" ]; then
            echo "bench $op against $target failed:" >&2
            tail -5 "$WORK/bench-$op-$target.err" >&2
        fi
        RES[$op,$target]="$line"
        wait "$sampler" || true
        RUNNING=()
        # server and client CPU microseconds per operation in the measured window
        ops="$(field ops "$line")"
        CPU[$op,$target]="$(us_per_op "$cpu_file" 1 "$ops")"
        CLI[$op,$target]="$(us_per_op "$cpu_file" 3 "$ops")"
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
echo "(sessions=$SESSIONS inflight=$INFLIGHT value=${VALUE_SIZE}B duration=${DURATION}s forceSync=$FORCE_SYNC; ratio = rzk/zk${SERVER_CPUS:+; servers on CPUs $SERVER_CPUS}${CLIENT_CPUS:+, client on CPUs $CLIENT_CPUS})"
echo
echo "server CPU per operation (utime + stime over the measured window / ops, microseconds);"
echo "client: the bench process's CPU per operation in the same window (the same client against each server):"
printf "%-7s %10s %10s %7s%s | %10s %10s%s\n" op rzk_us/op zk_us/op ratio "$([ -n "$BASELINE" ] && echo "  base_us/op")" \
    client_rzk client_zk "$([ -n "$BASELINE" ] && printf " %11s" client_base)"
for op in $OPS; do
    rc="${CPU[$op,rzk]:-}"; zc="${CPU[$op,zk]:-}"; bc="${CPU[$op,base]:-}"
    printf "%-7s %10s %10s %7s%s | %10s %10s%s\n" "$op" "${rc:--}" "${zc:--}" "$(ratio "$rc" "$zc")" \
        "$([ -n "$BASELINE" ] && printf "  %10s" "${bc:--}")" "${CLI[$op,rzk]:--}" "${CLI[$op,zk]:--}" \
        "$([ -n "$BASELINE" ] && printf " %11s" "${CLI[$op,base]:--}")"
done
if [ -n "$BASELINE" ]; then
    echo
    echo "rzk (this build) vs baseline ($BASELINE), same run:"
    printf "%-7s %12s %12s %7s | %9s %9s %7s | %12s %7s\n" op rzk_ops/s base_ops/s ratio rzk_p99us base_p99us ratio zk_ops/s base/zk
    for op in $OPS; do
        r="${RES[$op,rzk]}"; b="${RES[$op,base]}"; z="${RES[$op,zk]}"
        ro="$(field ops_per_sec "$r")"; bo="$(field ops_per_sec "$b")"; zo="$(field ops_per_sec "$z")"
        r99="$(field p99_us "$r")"; b99="$(field p99_us "$b")"
        printf "%-7s %12s %12s %7s | %9s %9s %7s | %12s %7s\n" "$op" "${ro:--}" "${bo:--}" "$(ratio "$ro" "$bo")" \
            "${r99:--}" "${b99:--}" "$(ratio "$r99" "$b99")" "${zo:--}" "$(ratio "$bo" "$zo")"
    done
fi
if [ -n "${CEILING:-}" ]; then
    echo
    echo "ceiling: the same load against the null server (answers at once, stores nothing), same run;"
    echo "ceiling/zk is the highest rzk/zk ratio any server could show here:"
    printf "%-7s %12s %10s | %9s %9s | %10s\n" op null_ops/s null_us/op rzk/null zk/null ceiling/zk
    for op in $OPS; do
        r="${RES[$op,rzk]}"; n="${RES[$op,null]}"; z="${RES[$op,zk]}"
        ro="$(field ops_per_sec "$r")"; no="$(field ops_per_sec "$n")"; zo="$(field ops_per_sec "$z")"
        printf "%-7s %12s %10s | %9s %9s | %10s\n" "$op" "${no:--}" "${CPU[$op,null]:--}" "$(ratio "$ro" "$no")" \
            "$(ratio "$zo" "$no")" "$(ratio "$no" "$zo")"
    done
fi
if [ -n "${FLOOR:-}" ]; then
    echo
    echo "fsync floor: the same load against examples/fsync_floor.rs (appends each write, answers it"
    echo "after its group's fdatasync, keeps nothing else), same run; floor/zk is the rzk/zk ratio a"
    echo "server as fast as this floor would show here (a reference design, not a proven bound):"
    printf "%-7s %12s %10s | %9s %9s | %10s\n" op floor_ops/s floor_us/op rzk/floor zk/floor floor/zk
    for op in $OPS; do
        [ "$op" = create ] || [ "$op" = set ] || continue
        r="${RES[$op,rzk]}"; f="${RES[$op,floor]}"; z="${RES[$op,zk]}"
        ro="$(field ops_per_sec "$r")"; fo="$(field ops_per_sec "$f")"; zo="$(field ops_per_sec "$z")"
        printf "%-7s %12s %10s | %9s %9s | %10s\n" "$op" "${fo:--}" "${CPU[$op,floor]:--}" "$(ratio "$ro" "$fo")" \
            "$(ratio "$zo" "$fo")" "$(ratio "$fo" "$zo")"
    done
fi
