#!/usr/bin/env bash
# Memory, snapshot and restart benchmark: rzk and Apache ZooKeeper 3.8 in one run.
#
#   usage: scripts/bench-memory.sh
#
# Builds rzk --release, then for rzk and for Debian's Apache ZooKeeper
# (scripts/start-apache-zk.sh, with -Xmx1000m: the heap ZooKeeper's own zkEnv.sh
# gives a server; the start script alone passes -Xmx512m), one after the other, each
# on a fresh data directory on the same disk, both with forceSync=yes and the
# default snapCount:
#   * RSS of the server process empty, and after `rzk bench --op create --count N`
#     (32 sessions x 8 in flight, 100-byte values) for each N of COUNTS (cumulative),
#     and bytes per znode = (RSS - empty RSS) / (znodes - empty znodes);
#   * restart to serving, REPEAT times after SIGTERM and REPEAT times after SIGKILL
#     (median): from just before the start command is spawned to the first getData
#     answered with error code 0 on a new session (probed every 20 ms; the exact
#     definition is in tests/bench/bench_memory.py);
#   * snapshot size and write time: the snapshot each server writes when it restarts
#     after SIGKILL (mntr max_snapshottime; the newest snapshot file's size).
# Prints a table with rzk/zk ratios and a RESULT line. Takes ~15 min for 1 M znodes and
# ~3 GB under BENCH_DIR while it runs (KEEP=1 leaves that much per run behind).
# Only the servers this script started are stopped (by PID).
#
# Environment (defaults):
#   COUNTS=100000,1000000  SESSIONS=32  INFLIGHT=8  VALUE_SIZE=100  REPEAT=3
#   TARGETS=rzk,zk  RZK_PORT=24701  ZK_PORT=24702  SETTLE=5 (s before reading RSS)
#   ZK_HEAP=-Xmx1000m
#   BENCH_DIR=/tmp  (parent of the data directories)   KEEP=1  keep them
#   CARGO_TARGET_DIR  where the release build goes (default: <repo>/target)
#   RZK_BIN=/path/to/rzk   the rzk under test (default: build this checkout --release)
#   PY  python3 to use (default: the test venv, else python3)
#   FROM_DATA=DIR  no populating: only the restarts (and snapshot), on a copy of DIR, a
#                data directory kept by an earlier run (KEEP=1: <kept>/rzk/data);
#                with TARGETS=rzk this compares rzk builds quickly
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${RZK_BIN:-$TARGET/release/rzk}"
PY="${PY:-$ROOT/.venv-tests/bin/python}"
[ -x "$PY" ] || PY=python3
WORK="$(mktemp -d "${BENCH_DIR:-/tmp}/rzk-bench-memory.XXXXXX")"
cleanup() {
    if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

if [ -z "${RZK_BIN:-}" ]; then
    echo "building rzk --release ..." >&2
    (cd "$ROOT" && cargo build --release -p rzk >&2)
fi

"$PY" "$ROOT/tests/bench/bench_memory.py" \
    --rzk "$BIN" --start-zk "$ROOT/scripts/start-apache-zk.sh" --work "$WORK" \
    --counts "${COUNTS:-100000,1000000}" --targets "${TARGETS:-rzk,zk}" \
    --sessions "${SESSIONS:-32}" --inflight "${INFLIGHT:-8}" --value-size "${VALUE_SIZE:-100}" \
    --repeat "${REPEAT:-3}" --settle "${SETTLE:-5}" \
    ${FROM_DATA:+--from-data "$FROM_DATA"} \
    --rzk-port "${RZK_PORT:-24701}" --zk-port "${ZK_PORT:-24702}" --zk-heap="${ZK_HEAP:--Xmx1000m}"
