#!/usr/bin/env bash
# The fault suite (tests/faults/faults.py, docs/TESTING.md "Fault suite"): real ensembles
# under kill -9, SIGSTOP, partitions and disk faults, histories checked for
# linearizability, final states compared across members. Ports 25000-25284, member
# addresses 127.0.0.11-15, uids 25011-25015, iptables chains S6FAULTS-* (removed at exit).
# Needs root (or sudo), iptables and setpriv (scripts/install-test-deps.sh).
#
#   scripts/faults.sh --ci RZK        the CI stage (~45 s): checker unit tests, then a 3-node
#                                     rzk ensemble under kill-leader and partition-leader
#   scripts/faults.sh [options]       the long run: every nemesis, 3 and 5 voters, rzk and
#                                     Apache ZooKeeper 3.8, then rzk's disk faults
#     --duration S   seconds of workload + nemesis per run (default 60)
#     --servers L    rzk,apache (default both)     --nodes L   3,5 (default both)
#     --nemeses L    default: all non-disk nemeses  --no-disk   skip the disk faults
#     --seed N       base seed (run k uses N+k)     --out DIR   histories (default: temp)
# Builds target/release/rzk and, for the disk faults, target-faults/release/rzk
# (cargo feature rzk-server/failpoints). Exit status 1 when any run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY="$ROOT/.venv-tests/bin/python"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

cleanup() { # our chains only, in case faults.py was killed before its own cleanup
  for c in S6FAULTS-MARK S6FAULTS-DROP; do
    while $SUDO iptables -w -D OUTPUT -j "$c" 2>/dev/null; do :; done
    $SUDO iptables -w -F "$c" 2>/dev/null || true
    $SUDO iptables -w -X "$c" 2>/dev/null || true
  done
}
trap cleanup EXIT

if [ "${1:-}" = "--ci" ]; then
  RZK=${2:?usage: scripts/faults.sh --ci RZK}
  "$PY" -m pytest -q -p no:cacheprovider "$ROOT/tests/faults/test_linearizability.py"
  OUT=$(mktemp -d /tmp/faults-ci-XXXXXX)
  status=0
  $SUDO "$PY" tests/faults/faults.py --rzk "$RZK" --servers rzk --nodes 3 \
    --nemeses kill-leader,partition-leader --duration "${FAULTS_DURATION:-15}" \
    --seed "${FAULTS_SEED:-1}" --check-budget "${FAULTS_CHECK_BUDGET:-20}" --out "$OUT" \
    || status=$?
  # histories are kept only when a run failed
  if [ "$status" = 0 ]; then rm -rf "$OUT"; fi
  exit $status
fi

DURATION=60 SERVERS=rzk,apache NODES=3,5 DISK=1 SEED=$RANDOM OUT=""
NEMESES=none,kill-random,kill-leader,stop-leader,partition-leader,partition-halves,partition-bridge,partition-random
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --servers) SERVERS=$2; shift 2 ;;
    --nodes) NODES=$2; shift 2 ;;
    --nemeses) NEMESES=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-disk) DISK=0; shift ;;
    *) echo "faults.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-$(mktemp -d /tmp/faults-out-XXXXXX)}

cargo build --release -p rzk
"$PY" -m pytest -q -p no:cacheprovider "$ROOT/tests/faults/test_linearizability.py"
status=0
$SUDO "$PY" tests/faults/faults.py --rzk target/release/rzk --apache scripts/start-apache-zk.sh \
  --servers "$SERVERS" --nodes "$NODES" --nemeses "$NEMESES" --duration "$DURATION" \
  --seed "$SEED" --out "$OUT" || status=1
if [ "$DISK" = 1 ] && [[ "$SERVERS" == *rzk* ]]; then
  CARGO_TARGET_DIR="$ROOT/target-faults" cargo build --release -p rzk --features rzk-server/failpoints
  $SUDO "$PY" tests/faults/faults.py --rzk target/release/rzk \
    --rzk-failpoints target-faults/release/rzk --servers rzk --nodes "$NODES" \
    --nemeses disk-fsync-fail,disk-full,disk-torn-write,disk-lose-unsynced \
    --duration "$DURATION" --seed "$((SEED + 1000))" --out "$OUT" || status=1
fi
echo "histories: $OUT"
exit $status
