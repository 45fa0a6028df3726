#!/usr/bin/env bash
# Soak, the long version: tests/soak/soak_test.py for many rounds, rzk and Apache
# ZooKeeper 3.8 side by side (two runs at once, ports 26000 and 26001): after every
# round of session churn each server must hold no ephemeral, watch or session and its
# start's znode count; threads and open files must not grow; RSS per round is printed
# (rzk's may grow by at most 10 % + 16 MiB after the third round).
#
#   bash scripts/soak.sh [extra soak_test.py arguments, e.g. --sessions 200]
#
# Environment:
#   RZK      the rzk binary (default: target/release/rzk, built here)
#   ROUNDS   rounds per server (default 500: ~40 min on 2 cores)
#   KINDS    rzk,apache (default) or one of them
# Output: target/soak-<kind>.log per server.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${RZK:-}" ]; then
    cargo build --release -p rzk
    RZK=target/release/rzk
fi
mkdir -p target
pids=()
port=26000
IFS=, read -r -a kinds <<< "${KINDS:-rzk,apache}"
for kind in "${kinds[@]}"; do
    .venv-tests/bin/python tests/soak/soak_test.py --rzk "$RZK" --apache scripts/start-apache-zk.sh \
        --kinds "$kind" --port "$port" --rounds "${ROUNDS:-500}" "$@" > "target/soak-$kind.log" 2>&1 &
    pids+=($!)
    port=$((port + 1))
done
rc=0
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || rc=1
    echo "== ${kinds[$i]}: $(tail -1 "target/soak-${kinds[$i]}.log")"
done
exit $rc
