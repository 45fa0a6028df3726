#!/usr/bin/env bash
# setData latency (p50/p99/p99.9) with and without snapshots during the run: rzk and
# Apache ZooKeeper 3.8 (-Xmx1000m) on ~1 M znodes, one after the other.
#
#   usage: FROM_KEPT=<dir kept by KEEP=1 scripts/bench-memory.sh> scripts/bench-snapshot-latency.sh
#
# Copies <kept>/rzk/data and <kept>/zk/data (populated by bench-memory.sh), starts each
# server on the copy with snapCount=SNAP_COUNT (snapshots during the run) and with
# snapCount=100000000 (none), runs `rzk bench --op set` and prints the latency table
# (details in tests/bench/snapshot_latency.py). ~2 min per server and mode and repeat.
#
# Environment (defaults):
#   FROM_KEPT (required)  TARGETS=rzk,zk  SNAP_COUNT=100000  DURATION=30  WARMUP=2
#   REPEAT=2  SESSIONS=32  INFLIGHT=8  VALUE_SIZE=100  RZK_PORT=24711  ZK_PORT=24712
#   RATE=0 (offered setData/s, `rzk bench --rate`; 0: as fast as each server answers)
#   ZK_HEAP=-Xmx1000m  BENCH_DIR=/tmp  KEEP=1 (keep the copies)
#   RZK_BIN=/path/to/rzk  (default: build this checkout --release)   PY (the test venv)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${RZK_BIN:-$TARGET/release/rzk}"
PY="${PY:-$ROOT/.venv-tests/bin/python}"
[ -x "$PY" ] || PY=python3
: "${FROM_KEPT:?set FROM_KEPT to a directory kept by KEEP=1 scripts/bench-memory.sh}"
WORK="$(mktemp -d "${BENCH_DIR:-/tmp}/rzk-bench-snaplat.XXXXXX")"
cleanup() {
    if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

if [ -z "${RZK_BIN:-}" ]; then
    echo "building rzk --release ..." >&2
    (cd "$ROOT" && cargo build --release -p rzk >&2)
fi

"$PY" "$ROOT/tests/bench/snapshot_latency.py" \
    --rzk "$BIN" --start-zk "$ROOT/scripts/start-apache-zk.sh" --work "$WORK" \
    --rzk-data "$FROM_KEPT/rzk/data" --zk-data "$FROM_KEPT/zk/data" \
    --targets "${TARGETS:-rzk,zk}" --snap-count "${SNAP_COUNT:-100000}" \
    --duration "${DURATION:-30}" --warmup "${WARMUP:-2}" --repeat "${REPEAT:-2}" \
    --sessions "${SESSIONS:-32}" --inflight "${INFLIGHT:-8}" --value-size "${VALUE_SIZE:-100}" \
    --rate "${RATE:-0}" \
    --rzk-port "${RZK_PORT:-24711}" --zk-port "${ZK_PORT:-24712}" --zk-heap="${ZK_HEAP:--Xmx1000m}" \
    ${KEEP:+--keep}
