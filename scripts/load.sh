#!/usr/bin/env bash
# Load held by one server (issue 14), the long version: 10,000 sessions on one server,
# 100,000 watches fired by one multi, 1 MB values at jute.maxbuffer, maxClientCnxns per
# IP, a slow client flooded with 200 MB of watch events; against rzk and Apache
# ZooKeeper 3.8, figures side by side (tests/load/load_test.py --full).
#
#   bash scripts/load.sh [extra load_test.py arguments, e.g. --only rzk --sessions 5000]
#
# Environment:
#   RZK    the rzk binary (default: target/release/rzk, built here with cargo build --release -p rzk;
#          RZK=target/debug/rzk to measure the debug build CI uses)
#   JSON   where to write the figures as JSON (default: target/load-results.json)
# Ports 24500-24699 on 127.0.0.1 (client sources 127.0.0.2-9). ~2-4 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${RZK:-}" ]; then
    cargo build --release -p rzk
    RZK=target/release/rzk
fi
# 10,000 sessions need ~10,000 descriptors in this client and in each server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec .venv-tests/bin/python tests/load/load_test.py --full --rzk "$RZK" \
    --apache scripts/start-apache-zk.sh --json "${JSON:-target/load-results.json}" "$@"
