#!/usr/bin/env bash
# Long whole-server simulation run (docs/TESTING.md §4): SEEDS seeds from START in
# chunks, each chunk printing its seeds/s; stops at the first failing chunk and prints the
# replay command of every failing seed. Not part of CI (CI runs 30 whole-server seeds and
# 200 core seeds inside `cargo test -p rzk-sim`).
#
#   scripts/sim-long.sh [SEEDS=1000000] [START=0] [CHUNK=10000] [-- extra rzk-sim flags]
#   e.g. scripts/sim-long.sh 1000000 0 10000          # the 1,000,000-seed target
#        scripts/sim-long.sh 2000 0 1000 -- --fault-overtake   # must fail (injected bug)
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-1000000}
START=${2:-0}
CHUNK=${3:-10000}
shift $(( $# < 3 ? $# : 3 ))
[ "${1:-}" = "--" ] && shift
cargo build -q -p rzk-sim --release
# Run a private copy: rebuilding the simulator while a long run is under way must not
# change the binary half way through (each run names its commit in its first line).
BIN=$(mktemp -t rzk-sim-long-XXXXXX)
cp target/release/rzk-sim "$BIN"
chmod +x "$BIN"
trap 'rm -f "$BIN"' EXIT
echo "rzk-sim of $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo '+dirty'), seeds $START..$((START + SEEDS)), chunk $CHUNK"
t0=$(date +%s)
s=$START
end=$((START + SEEDS))
while [ "$s" -lt "$end" ]; do
  n=$(( end - s < CHUNK ? end - s : CHUNK ))
  # (On a failure, print what the chunk said before anything that could fail: a panic
  # or a signal leaves no "FAILED" line to grep for.)
  rc=0
  out=$("$BIN" --server --seeds "$n" --start "$s" "$@" 2>&1) || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "$out" | grep -E "FAILED|replay|failing|panicked" | head -40 || true
    echo "$out" | tail -5
    echo "chunk $s..$((s + n)) FAILED (exit status $rc)"
    exit 1
  fi
  s=$((s + n))
  el=$(( $(date +%s) - t0 ))
  echo "$(date -u +%H:%M:%S) seeds $START..$s clean; $(echo "$out" | grep -E 'seeds/s' | tail -1); overall $(( (s - START) / (el > 0 ? el : 1) )) seeds/s"
done
echo "all $SEEDS seeds from $START clean"
