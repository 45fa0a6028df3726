#!/usr/bin/env bash
# Compare rzk and Apache ZooKeeper over TLS with the same `rzk bench` load (a sibling of
# scripts/bench-compare.sh).
#
#   usage: scripts/bench-compare-tls.sh
#
# Makes test certificates (tests/tls/certs.py: openssl + keytool), starts `rzk server` and
# Debian's Apache ZooKeeper (scripts/start-apache-zk.sh, NettyServerCnxnFactory, which is
# what ZooKeeper needs for TLS) on loopback, each with a plaintext clientPort and a
# secureClientPort (PKCS12 key store, JKS trust store, ssl.clientAuth=$CLIENT_AUTH), runs
# `rzk bench` over TLS (with a client certificate) for each op against each server, and
# with PLAIN=1 also over the plaintext ports, then prints ops/s and latency percentiles
# with rzk/zk ratios. Only the servers this script started are stopped (by PID).
#
# Environment (defaults):
#   OPS="create get"  SESSIONS=32  INFLIGHT=8  VALUE_SIZE=100  DURATION=10  WARMUP=2
#   FORCE_SYNC=yes  CLIENT_AUTH=need  PLAIN=  (1: also the plaintext ports)
#   RZK_PORT=24281 (TLS: +1)  ZK_PORT=24291 (TLS: +1)  BENCH_DIR=/tmp  KEEP=
#   CARGO_TARGET_DIR, RZK_BIN as in bench-compare.sh
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OPS="${OPS:-create get}"
SESSIONS="${SESSIONS:-32}"
INFLIGHT="${INFLIGHT:-8}"
VALUE_SIZE="${VALUE_SIZE:-100}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
FORCE_SYNC="${FORCE_SYNC:-yes}"
CLIENT_AUTH="${CLIENT_AUTH:-need}"
RZK_PORT="${RZK_PORT:-24281}"
ZK_PORT="${ZK_PORT:-24291}"
WORK="$(mktemp -d "${BENCH_DIR:-/tmp}/rzk-bench-tls.XXXXXX")"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${RZK_BIN:-$TARGET/release/rzk}"

STARTED=()
cleanup() {
    for pid in "${STARTED[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${STARTED[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

if [ -z "${RZK_BIN:-}" ]; then
    echo "building rzk --release ..." >&2
    (cd "$ROOT" && cargo build --release -p rzk >&2)
fi

C="$WORK/certs"
python3 "$ROOT/tests/tls/certs.py" "$C" >/dev/null
PW="$(python3 -c "import sys; sys.path.insert(0, '$ROOT/tests/tls'); import certs; print(certs.PASSWORD)")"
TLS_KEYS=(
    "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory"
    "ssl.keyStore.location=$C/server.p12" "ssl.keyStore.password=$PW"
    "ssl.trustStore.location=$C/trust.jks" "ssl.trustStore.password=$PW"
    "ssl.clientAuth=$CLIENT_AUTH"
)
TLS_ARGS=(--tls-ca "$C/ca.pem" --tls-cert "$C/client.pem" --tls-key "$C/client.key")

# --- rzk --------------------------------------------------------------------
mkdir -p "$WORK/rzk"
{
    echo "tickTime=2000"
    echo "dataDir=$WORK/rzk/data"
    echo "clientPort=$RZK_PORT"
    echo "clientPortAddress=127.0.0.1"
    echo "secureClientPort=$((RZK_PORT + 1))"
    echo "secureClientPortAddress=127.0.0.1"
    echo "maxClientCnxns=0"
    echo "forceSync=$FORCE_SYNC"
    echo "admin.enableServer=false"
    printf '%s\n' "${TLS_KEYS[@]}"
} > "$WORK/rzk/zoo.cfg"
"$BIN" server -c "$WORK/rzk/zoo.cfg" >"$WORK/rzk/server.log" 2>&1 &
STARTED+=("$!")
RZK_PID="$!"
for _ in $(seq 100); do
    "$BIN" shell -server "127.0.0.1:$((RZK_PORT + 1))" -timeout 3000 "${TLS_ARGS[@]/#--/-}" ls / >/dev/null 2>&1 && break
    kill -0 "$RZK_PID" 2>/dev/null || { echo "rzk exited:" >&2; tail -20 "$WORK/rzk/server.log" >&2; exit 1; }
    sleep 0.2
done

# --- Apache ZooKeeper (Netty) ----------------------------------------------
ZK_PID="$("$ROOT/scripts/start-apache-zk.sh" "$ZK_PORT" "$WORK/zk" "forceSync=$FORCE_SYNC" \
    "secureClientPort=$((ZK_PORT + 1))" "secureClientPortAddress=127.0.0.1" "${TLS_KEYS[@]}" | tail -1)"
STARTED+=("$ZK_PID")

# --- runs -------------------------------------------------------------------
field() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'; }
declare -A RES
MODES="tls"; [ -n "${PLAIN:-}" ] && MODES="tls plain"
for op in $OPS; do
    for mode in $MODES; do
        for target in rzk zk; do
            port=$RZK_PORT; [ "$target" = zk ] && port=$ZK_PORT
            extra=()
            if [ "$mode" = tls ]; then port=$((port + 1)); extra=("${TLS_ARGS[@]}"); fi
            echo "== $op against $target over $mode (127.0.0.1:$port)" >&2
            line="$("$BIN" bench --hosts "127.0.0.1:$port" --sessions "$SESSIONS" --inflight "$INFLIGHT" \
                --op "$op" --value-size "$VALUE_SIZE" --duration "$DURATION" --warmup "$WARMUP" \
                --path "/rzk-bench-tls" "${extra[@]}" 2>"$WORK/bench-$op-$mode-$target.err" \
                | tee /dev/stderr | grep '^RESULT' | tail -1 || true)"
            if [ -z "$line" ]; then
                echo "bench $op against $target over $mode failed:" >&2
                tail -5 "$WORK/bench-$op-$mode-$target.err" >&2
            fi
            RES[$op,$mode,$target]="$line"
        done
    done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }
echo
printf "%-7s %-5s %12s %12s %7s | %9s %9s %7s | %9s %9s %7s\n" op mode rzk_ops/s zk_ops/s ratio rzk_p50us zk_p50us ratio rzk_p99us zk_p99us ratio
for op in $OPS; do
    for mode in $MODES; do
        r="${RES[$op,$mode,rzk]}"; z="${RES[$op,$mode,zk]}"
        ro="$(field ops_per_sec "$r")"; zo="$(field ops_per_sec "$z")"
        r50="$(field p50_us "$r")"; z50="$(field p50_us "$z")"
        r99="$(field p99_us "$r")"; z99="$(field p99_us "$z")"
        printf "%-7s %-5s %12s %12s %7s | %9s %9s %7s | %9s %9s %7s\n" "$op" "$mode" "${ro:--}" "${zo:--}" "$(ratio "$ro" "$zo")" \
            "${r50:--}" "${z50:--}" "$(ratio "$r50" "$z50")" "${r99:--}" "${z99:--}" "$(ratio "$r99" "$z99")"
    done
done
echo "(sessions=$SESSIONS inflight=$INFLIGHT value=${VALUE_SIZE}B duration=${DURATION}s forceSync=$FORCE_SYNC clientAuth=$CLIENT_AUTH; TLS 1.2 (ZooKeeper's default ssl.protocol), client certificate; ratio = rzk/zk)"
