#!/usr/bin/env bash
# Instructions per operation of `rzk server`, counted by valgrind's callgrind: the
# user-space work the server does for each request, independent of timing noise.
#
#   usage: scripts/bench-instructions.sh
#
# On a small shared machine ops/s and CPU time per op move by 10-15 % from run to run
# (the batching of the pipeline's threads settles differently each time), which hides
# a 5-10 % change. The count of instructions executed per request moves by ~1 %, so it
# shows what a change to the request path saved. It does not count the kernel (socket
# and disk work), waiting, or cache misses: confirm a change with
# scripts/bench-compare.sh (RZK_BASELINE) too.
#
# For each binary: starts `rzk server` under `valgrind --tool=callgrind` on loopback,
# runs `rzk bench` against it (the bench itself runs natively), zeroes the counters when
# the warm-up ends (callgrind_control -z) and dumps them DURATION seconds later
# (callgrind_control -d). Requests in that window: the difference of the server's own
# `Received:` count (four-letter word srvr) read at both points. Prints instructions per
# request and, with RZK_BASELINE, the ratio. Only the servers it started are stopped (by
# PID). Needs valgrind (Debian: apt-get install valgrind). The callgrind output stays
# in the work directory (printed), for callgrind_annotate.
#
# Environment (defaults):
#   OPS="set"  SESSIONS=32  INFLIGHT=8  VALUE_SIZE=100  WARMUP=8  DURATION=12
#   PORT=24191  FORCE_SYNC=yes  BENCH_DIR=/tmp
#   RZK_BIN=/path/to/rzk          the rzk under test (default: build this checkout --release)
#   RZK_BASELINE=/path/to/rzk     also count that binary, same load, and print the ratio
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OPS="${OPS:-set}"
SESSIONS="${SESSIONS:-32}"
INFLIGHT="${INFLIGHT:-8}"
VALUE_SIZE="${VALUE_SIZE:-100}"
WARMUP="${WARMUP:-8}"
DURATION="${DURATION:-12}"
PORT="${PORT:-24191}"
FORCE_SYNC="${FORCE_SYNC:-yes}"
BASELINE="${RZK_BASELINE:-}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${RZK_BIN:-$TARGET/release/rzk}"

for tool in valgrind callgrind_control; do
    command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install valgrind" >&2; exit 2; }
done
if [ -z "${RZK_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release -q -p rzk)
fi
WORK="$(mktemp -d "${BENCH_DIR:-/tmp}/rzk-bench-instructions.XXXXXX")"
SERVER=""
cleanup() {
    if [ -n "$SERVER" ]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# srvr's "Received: N" (requests the server has read), or empty.
received() {
    local out
    out="$( (exec 3<>"/dev/tcp/127.0.0.1/$PORT" && printf srvr >&3 && cat <&3) 2>/dev/null)" || return 0
    awk -F': ' '$1 == "Received" { print $2 }' <<<"$out"
}

# count NAME BINARY OP: prints instructions per request
count() {
    local name=$1 bin=$2 op=$3 dir="$WORK/$1-$3" r0 r1 total
    mkdir -p "$dir/data"
    cat >"$dir/zoo.cfg" <<CFG
tickTime=2000
dataDir=$dir/data
clientPort=$PORT
clientPortAddress=127.0.0.1
maxClientCnxns=0
forceSync=$FORCE_SYNC
4lw.commands.whitelist=*
admin.enableServer=false
CFG
    valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
        "$bin" server -c "$dir/zoo.cfg" >"$dir/server.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 150); do
        [ -n "$(received)" ] && break
        kill -0 "$SERVER" 2>/dev/null || { echo "$name server exited:" >&2; tail -20 "$dir/server.log" >&2; exit 1; }
        sleep 0.2
    done
    "$bin" bench --hosts "127.0.0.1:$PORT" --sessions "$SESSIONS" --inflight "$INFLIGHT" --op "$op" \
        --value-size "$VALUE_SIZE" --duration "$((WARMUP + DURATION + 4))" --warmup 0 --quiet \
        --path /rzk-bench-instructions >"$dir/bench.out" 2>&1 &
    local bench=$!
    sleep "$WARMUP"
    callgrind_control -z "$SERVER" >/dev/null 2>&1
    r0="$(received)"
    sleep "$DURATION"
    callgrind_control -d "$SERVER" >/dev/null 2>&1
    r1="$(received)"
    wait "$bench" || { echo "bench against $name failed:" >&2; tail -5 "$dir/bench.out" >&2; exit 1; }
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    SERVER=""
    # The dump requested by -d is the second part (.1); its totals line is the count.
    total="$(awk '/^totals:/ { print $2 }' "$dir/callgrind.out.1" 2>/dev/null || true)"
    if [ -z "$total" ] || [ -z "$r0" ] || [ -z "$r1" ] || [ "$r1" -le "$r0" ]; then
        echo "no count for $name ($op): see $dir" >&2
        echo "-"
        return
    fi
    echo "$name $op: $total instructions over $((r1 - r0)) requests ($dir/callgrind.out.1)" >&2
    awk -v t="$total" -v n="$((r1 - r0))" 'BEGIN { printf "%.0f", t / n }'
}

declare -A RES
for op in $OPS; do
    RES[$op,rzk]="$(count rzk "$BIN" "$op")"
    if [ -n "$BASELINE" ]; then
        RES[$op,base]="$(count base "$BASELINE" "$op")"
    fi
done

echo
echo "rzk server: user-space instructions per request (callgrind; sessions=$SESSIONS inflight=$INFLIGHT value=${VALUE_SIZE}B forceSync=$FORCE_SYNC)"
if [ -n "$BASELINE" ]; then
    printf "%-7s %12s %12s %7s\n" op rzk base ratio
    for op in $OPS; do
        r="${RES[$op,rzk]}"; b="${RES[$op,base]}"
        printf "%-7s %12s %12s %7s\n" "$op" "$r" "$b" \
            "$(awk -v a="$r" -v b="$b" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.3f", a / b }')"
    done
    echo "(base: $BASELINE)"
else
    printf "%-7s %12s\n" op rzk
    for op in $OPS; do printf "%-7s %12s\n" "$op" "${RES[$op,rzk]}"; done
fi
echo "work directory: $WORK"
