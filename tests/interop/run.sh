#!/usr/bin/env bash
# Curator <-> rzk-client lock interoperability against $ZK_HOSTS (default 127.0.0.1:2181).
#
# Java processes using Apache Curator's InterProcessMutex / InterProcessReadWriteLock
# (tests/interop/InteropLock.java) and Rust processes using rzk_client::recipes::Mutex /
# ReadWriteLock (crates/client/examples/interop_lock.rs) contend on the same lock path at
# the same time. Each checks mutual exclusion inside its critical section (an ephemeral
# marker node that must not exist yet, no readers inside a write section, no writer inside
# a read section, an unversioned counter that must not lose updates) and counts hand-overs
# from other processes. A case passes when every process exits 0, acquired the lock
# ROUNDS times, and both Java and Rust took the lock over from another process.
#
#   usage: ZK_HOSTS=127.0.0.1:2181 tests/interop/run.sh
#   env:   ROUNDS (default 20), HOLD_MS (default 15), CARGO_TARGET_DIR (cargo's)
# Prints one line per case and "N passed, M failed"; exits non-zero on any failure.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ZK_HOSTS="${ZK_HOSTS:-127.0.0.1:2181}"
ROUNDS="${ROUNDS:-20}"
HOLD_MS="${HOLD_MS:-15}"

J=/usr/share/java
JARS=(
    "$J/curator-recipes.jar" "$J/curator-framework.jar" "$J/curator-client.jar"
    "$J/zookeeper.jar" "$J/zookeeper-jute.jar" "$J/guava.jar"
    "$J/slf4j-api.jar" "$J/slf4j-simple.jar"
)
for j in "${JARS[@]}"; do
    if [ ! -e "$j" ]; then
        echo "FAIL interop: missing $j (run scripts/install-test-deps.sh)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done
CP="$(IFS=:; echo "${JARS[*]}")"

BUILD="$(mktemp -d "${TMPDIR:-/tmp}/rzk-interop.XXXXXX")"
trap 'rm -rf "$BUILD"' EXIT

if ! javac -nowarn -d "$BUILD" -cp "$CP" "$HERE/InteropLock.java" 2>"$BUILD/javac.log"; then
    cat "$BUILD/javac.log"
    echo "FAIL interop: javac failed"
    echo "0 passed, 1 failed"
    exit 1
fi
if ! (cd "$ROOT" && cargo build -q --workspace --example interop_lock); then
    echo "FAIL interop: cargo build failed"
    echo "0 passed, 1 failed"
    exit 1
fi
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
RUST_BIN="$TARGET/debug/examples/interop_lock"

java_party() { # base mode name parties
    java -Xmx128m -Dorg.slf4j.simpleLogger.defaultLogLevel="${CURATOR_LOG_LEVEL:-error}" \
        -Dorg.slf4j.simpleLogger.logFile=System.err -Dzookeeper.sasl.client=false \
        -cp "$BUILD:$CP" InteropLock "$ZK_HOSTS" "$2" "$1" "$ROUNDS" "$3" "$4" "$HOLD_MS"
}
rust_party() { # base mode name parties
    RUST_LOG=warn "$RUST_BIN" "$ZK_HOSTS" "$2" "$1" "$ROUNDS" "$3" "$4" "$HOLD_MS"
}

passed=0
failed=0
# run_case DESC MODE JAVA_COUNT RUST_COUNT
run_case() {
    local desc=$1 mode=$2 nj=$3 nr=$4
    local base="/interop-$$-$RANDOM-$mode-${nj}j${nr}r"
    local parties=$((nj + nr)) pids=() names=() i
    for i in $(seq 1 "$nj"); do
        java_party "$base" "$mode" "java$i" "$parties" >"$BUILD/java$i.out" 2>"$BUILD/java$i.err" &
        pids+=($!); names+=("java$i")
    done
    for i in $(seq 1 "$nr"); do
        rust_party "$base" "$mode" "rust$i" "$parties" >"$BUILD/rust$i.out" 2>"$BUILD/rust$i.err" &
        pids+=($!); names+=("rust$i")
    done
    local ok=1 why="" java_handoffs=0 rust_handoffs=0 summary=""
    for i in "${!pids[@]}"; do
        local n=${names[$i]} rc=0
        wait "${pids[$i]}" || rc=$?
        local res
        res="$(grep '^RESULT' "$BUILD/$n.out" | tail -n 1)"
        summary+=" [$n:${res#RESULT name=$n }]"
        if [ "$rc" -ne 0 ]; then ok=0; why+=" $n exited $rc;"; fi
        if grep -q '^VIOLATION' "$BUILD/$n.out"; then
            ok=0; why+=" $n: $(grep '^VIOLATION' "$BUILD/$n.out" | head -n 3 | tr '\n' ' ');"
        fi
        local acq ho
        acq="$(sed -n 's/.* acquired=\([0-9]*\).*/\1/p' <<<"$res")"
        ho="$(sed -n 's/.* handoffs=\([0-9]*\).*/\1/p' <<<"$res")"
        if [ "${acq:-0}" != "$ROUNDS" ]; then ok=0; why+=" $n acquired ${acq:-?}/$ROUNDS;"; fi
        case $n in
            java*) java_handoffs=$((java_handoffs + ${ho:-0})) ;;
            rust*) rust_handoffs=$((rust_handoffs + ${ho:-0})) ;;
        esac
    done
    # In rw mode hand-overs are counted on write sections only (half the rounds).
    if [ "$java_handoffs" -lt 2 ] || [ "$rust_handoffs" -lt 2 ]; then
        ok=0; why+=" no alternation (hand-overs java=$java_handoffs rust=$rust_handoffs);"
    fi
    if [ "$ok" = 1 ]; then
        passed=$((passed + 1)); echo "ok   - $desc:$summary"
    else
        failed=$((failed + 1)); echo "FAIL - $desc:$why"
        for n in "${names[@]}"; do
            sed "s/^/       $n| /" "$BUILD/$n.out" "$BUILD/$n.err" | tail -n 15
        done
    fi
}

echo "interop: Curator vs rzk-client locks on $ZK_HOSTS, $ROUNDS rounds each, hold ${HOLD_MS} ms"
run_case "InterProcessMutex vs Mutex (1 java, 1 rust)" mutex 1 1
run_case "InterProcessMutex vs Mutex (2 java, 2 rust)" mutex 2 2
run_case "InterProcessReadWriteLock vs ReadWriteLock (1 java, 1 rust)" rw 1 1
run_case "InterProcessReadWriteLock vs ReadWriteLock (2 java, 2 rust)" rw 2 2

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
