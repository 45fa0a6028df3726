#!/usr/bin/env bash
# Run every client-compatibility suite against the server at $ZK_HOSTS
# (default 127.0.0.1:2181). Does not start or stop any server.
#
#   suites: kazoo (pytest), curator (Java), zkcli (Java CLI), cli_mt (C CLI),
#           zookeeper_client (Rust's zookeeper-client crate)
#   usage:  ZK_HOSTS=127.0.0.1:2181 tests/compat/run-all.sh [suite ...]
#
# Prints one summary line per suite and, last, "N passed, M failed" (counting
# suites). Exit status is non-zero if any suite failed.
# Prerequisites: scripts/install-test-deps.sh (creates .venv-tests/).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export ZK_HOSTS="${ZK_HOSTS:-127.0.0.1:2181}"
PYTEST="${PYTEST:-$ROOT/.venv-tests/bin/pytest}"

ALL=(kazoo curator zkcli cli_mt zookeeper_client)
if [ $# -gt 0 ]; then SUITES=("$@"); else SUITES=("${ALL[@]}"); fi

run_suite() {
    case "$1" in
        kazoo)
            if [ ! -x "$PYTEST" ]; then
                echo "pytest not found at $PYTEST (run scripts/install-test-deps.sh)"
                return 1
            fi
            # KAZOO_PYTEST_ARGS: e.g. "-q" to see every failure instead of
            # stopping at the first one, or "-q -k watches" to select tests.
            # shellcheck disable=SC2086
            (cd "$HERE/kazoo" && timeout -k 10 600 "$PYTEST" ${KAZOO_PYTEST_ARGS:--x -q} \
                -p no:cacheprovider -rs .) ;;
        curator) timeout -k 10 400 bash "$HERE/curator/run.sh" ;;
        zkcli)   timeout -k 10 300 bash "$HERE/zkcli/run.sh" ;;
        cli_mt)  timeout -k 10 300 bash "$HERE/cli_mt/run.sh" ;;
        zookeeper_client) timeout -k 10 600 bash "$HERE/zookeeper_client/run.sh" ;;
        *) echo "unknown suite '$1' (known: ${ALL[*]})"; return 2 ;;
    esac
}

echo "compat: server under test: $ZK_HOSTS"
passed=0
failed=0
summary=()
for s in "${SUITES[@]}"; do
    echo
    echo "=== compat suite: $s"
    t0=$SECONDS
    # Run the suite with stdin detached; keep its own exit status.
    run_suite "$s" < /dev/null
    rc=$?
    dt=$((SECONDS - t0))
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        summary+=("compat $s: PASS (${dt}s)")
    else
        failed=$((failed + 1))
        summary+=("compat $s: FAIL (exit $rc, ${dt}s)")
    fi
    echo "=== compat suite $s: $([ "$rc" -eq 0 ] && echo PASS || echo FAIL) (${dt}s)"
done

echo
for l in "${summary[@]}"; do echo "$l"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
