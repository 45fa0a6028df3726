#!/usr/bin/env bash
# kazoo's own test suite (tests/compat/kazoo_suite_test.py) against a 3-voter rzk ensemble
# and a 3-voter Apache ZooKeeper 3.8 ensemble at once (different ports), each run's output
# in its own log; prints both summaries, and a failed run's whole log.
#
#   usage: tests/compat/kazoo_suite.sh RZK_BINARY [PYTHON]
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
RZK="$1"
PY="${2:-$ROOT/.venv-tests/bin/python}"
LOGS="$(mktemp -d "${TMPDIR:-/tmp}/rzk-kazoo-suite-logs.XXXXXX")"
cd "$ROOT"
"$PY" tests/compat/kazoo_suite_test.py --impl rzk --rzk "$RZK" > "$LOGS/rzk.log" 2>&1 &
RZK_PID=$!
"$PY" tests/compat/kazoo_suite_test.py --impl zk --apache scripts/start-apache-zk.sh \
    > "$LOGS/zk.log" 2>&1
ZK_STATUS=$?
wait "$RZK_PID"
RZK_STATUS=$?
status=0
for impl in rzk zk; do
    if [ "$impl" = rzk ]; then s=$RZK_STATUS; else s=$ZK_STATUS; fi
    if [ "$s" -ne 0 ]; then
        echo "--- kazoo suite against $impl: exit $s, its whole log:"
        cat "$LOGS/$impl.log"
        status=1
    fi
    grep -E "^\[$impl\] " "$LOGS/$impl.log" || echo "[$impl] no summary (exit $s)"
done
rm -rf "$LOGS"
exit "$status"
