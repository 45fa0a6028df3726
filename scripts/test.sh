#!/usr/bin/env bash
# Installs what the tests need (Debian + PyPI packages) and runs every test layer:
#   1. cargo fmt / clippy / unit, property, integration and simulator tests
#   2. rzk server + the real clients (kazoo, zkCli, Curator, cli_mt)
#   3. rzk-client recipe tests against rzk and against Apache ZooKeeper
# Prints one closing line "N passed, M failed" (N/M = test stages).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export CARGO_TERM_COLOR=never

passed=0
failed=0
failures=()
# CPU_NOW: CPU seconds (user + system) of this shell's reaped children so far, from `times`
# (which runs in this shell: in a pipeline or $(...) it would count a subshell's). Servers
# a stage starts in the background count only once reaped.
CPU_FILE=$(mktemp)
cpu_now() {
  times > "$CPU_FILE"
  CPU_NOW=$(sed -n 2p "$CPU_FILE" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); t += a[1] * 60 + a[2] }; printf "%d", t }')
}
# MACHINE_BUSY: jiffies (all CPUs) not idle nor waiting for IO so far, and MACHINE_ALL: all
# jiffies, from /proc/stat: a stage's share of the machine's CPU that was busy, whoever
# used it (servers a stage leaves to init included).
machine_now() {
  read -r _ u n s idle iow irq sirq steal _ < /proc/stat
  MACHINE_BUSY=$((u + n + s + irq + sirq + steal))
  MACHINE_ALL=$((MACHINE_BUSY + idle + iow))
}
busy_since() { # busy0 all0 -> "N %"
  machine_now
  local all=$((MACHINE_ALL - $2))
  [ "$all" -gt 0 ] && echo "$(((MACHINE_BUSY - $1) * 100 / all)) %" || echo "- %"
}
stage() { # name, command...
  local name=$1; shift
  echo "=== stage: $name"
  local t0=$SECONDS c0 result=PASS b0 a0
  cpu_now; c0=$CPU_NOW
  machine_now; b0=$MACHINE_BUSY; a0=$MACHINE_ALL
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); failures+=("$name"); result=FAIL
  fi
  cpu_now
  echo "=== stage $name: $result ($((SECONDS - t0)) s, cpu $((CPU_NOW - c0)) s, machine busy $(busy_since "$b0" "$a0"))"
}

# together NAME FUNCTION [NAME FUNCTION ...]: stages that mostly wait (sleeps, timeouts,
# other processes), run at once to save CI time. Each one's output goes to a file and
# is printed whole, in the order given, once it has finished; each counts as a stage.
# Its line gives the group's time and CPU (both shared), not the stage's own.
together() {
  local t0=$SECONDS c0 names=() pids=() i result b0 a0
  cpu_now; c0=$CPU_NOW
  machine_now; b0=$MACHINE_BUSY; a0=$MACHINE_ALL
  while [ $# -gt 1 ]; do
    names+=("$1")
    "$2" >"$TMP/stage-$1.log" 2>&1 &
    pids+=($!)
    shift 2
  done
  for i in "${!names[@]}"; do
    result=PASS
    wait "${pids[$i]}" || result=FAIL
    echo "=== stage: ${names[$i]} (at once with: ${names[*]})"
    cat "$TMP/stage-${names[$i]}.log"
    if [ $result = PASS ]; then
      passed=$((passed + 1))
    else
      failed=$((failed + 1)); failures+=("${names[$i]}")
    fi
    cpu_now
    echo "=== stage ${names[$i]}: $result ($((SECONDS - t0)) s, cpu $((CPU_NOW - c0)) s, machine busy $(busy_since "$b0" "$a0"); group)"
  done
}

# Lanes: sequences of stages run at once, each in a subshell of its own (its own
# counters and CPU file), its output to a file printed whole once it has finished (in
# the order started); its stage counts are added here. Test stages mostly wait (sleeps,
# timeouts, other processes: 12-65 % of the machine busy each), so two lanes of them
# take about half the time of one; their port ranges and addresses are disjoint (the
# comments at each stage). Clippy, which needs no test to run, runs in a lane of its
# own under SCHED_IDLE from the start: it gets only the CPU nothing else wants.
start_lane() { # FUNCTION
  ( passed=0; failed=0; failures=(); CPU_FILE=$(mktemp)
    "$1"
    echo "$passed $failed ${failures[*]}" > "$TMP/lane-$1.count"; rm -f "$CPU_FILE"
  ) > "$TMP/lane-$1.log" 2>&1 &
  LANE_PIDS[$1]=$!
}
finish_lane() { # FUNCTION
  local p=0 f=1 rest="lane-$1"
  wait "${LANE_PIDS[$1]}"
  echo "=== lane $1 (run at once with the other lanes)"
  cat "$TMP/lane-$1.log"
  [ -s "$TMP/lane-$1.count" ] && read -r p f rest < "$TMP/lane-$1.count"
  passed=$((passed + p)); failed=$((failed + f))
  # shellcheck disable=SC2206  # the names have no spaces
  [ -n "$rest" ] && failures+=($rest)
}
declare -A LANE_PIDS=()
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}" "${LANE_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null; rm -rf "$TMP" "$CPU_FILE"
}
trap cleanup EXIT

bash scripts/install-test-deps.sh || { echo "dependency install failed"; echo "0 passed, 1 failed"; exit 1; }
command -v cargo >/dev/null || { echo "cargo not found"; exit 1; }

stage fmt cargo fmt --all -- --check
# Its own target directory: cargo would otherwise hold the build directory's lock while
# the other lanes run built tests.
# Made here, before the lanes start: on a fresh clone the build lane's cargo creates
# target/ (atomically, by renaming a temporary directory) while clippy's cargo creates
# target/clippy inside it, and clippy's lost that race once ("No such file or directory
# ... target/clippyXXXXXX", CI of 01c993d on a clean clone).
mkdir -p "$ROOT/target/clippy"
lane_clippy() {
  stage clippy chrt --idle 0 env CARGO_TARGET_DIR="$ROOT/target/clippy" \
      cargo clippy --workspace --all-targets -- -D warnings
}
start_lane lane_clippy
# Every package's tests but rzk-client's, whose suite the client-rzk and client-apache
# stages run against the rzk binary and against Apache ZooKeeper (run here too, against
# the in-process server, it repeated client-rzk: ~50 s). Doc tests compile as usual.
cargo_test() {
  cargo test --workspace --no-run && cargo test --workspace --doc &&
    bash scripts/built-tests.sh '!rzk-client'
}
stage cargo-test cargo_test
# The dump tools and bench against ZooKeeper's own tools / server (~25 s): SnapshotFormatter
# -json, TxnLogToolkit -c/-r on the same files; rzk bench against Apache ZooKeeper. The
# gzip-bomb test has no oracle part and already ran in cargo-test.
stage tools-oracle env RZK_TEST_ORACLE=1 bash scripts/built-tests.sh rzk dump bench -- --skip a_gzip_bomb

if ! cargo build --workspace --bins --examples; then
  echo "build failed"; finish_lane lane_clippy; echo "$passed passed, $((failed + 1)) failed"; exit 1
fi
RZK="$ROOT/target/debug/rzk"
# The pipelined per-session order checker (crates/testkit/src/fifo.rs): the same seed
# against rzk and against Apache ZooKeeper, so both must produce the same streams.
FIFO="$ROOT/target/debug/examples/fifo_check"
FIFO_ARGS=(--sessions 16 --rounds "${FIFO_ROUNDS:-200}" --batch 12 --seed 11)


start_rzk() { # port
  local port=$1 dir="$TMP/rzk-$1"
  mkdir -p "$dir"
  cat > "$dir/zoo.cfg" <<CFG
tickTime=2000
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
4lw.commands.whitelist=*
extendedTypesEnabled=true
znode.container.checkIntervalMs=1000
maxClientCnxns=0
admin.enableServer=false
CFG
  "$RZK" server --config "$dir/zoo.cfg" >"$dir/server.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    if [ "$(printf ruok | timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; cat >&3; cat <&3" 2>/dev/null)" = imok ]; then return 0; fi
    sleep 0.1
  done
  echo "rzk did not start on $port"; cat "$dir/server.log"; return 1
}

PY="$ROOT/.venv-tests/bin/python"
# Python prints as it goes: a stage stopped by its timeout still shows how far it came.
export PYTHONUNBUFFERED=1

start_apache() { # port
  local dir="$TMP/apache-$1"
  local pid
  pid=$(scripts/start-apache-zk.sh "$1" "$dir" extendedTypesEnabled=true znode.container.checkIntervalMs=1000) || return 1
  PIDS+=("$pid")
}

rzk_up=false
apache_up=false
if start_rzk 21810; then rzk_up=true; else failed=$((failed + 1)); failures+=("start-rzk"); fi
if start_apache 21811; then apache_up=true; else failed=$((failed + 1)); failures+=("start-apache"); fi

# Lane A: the stages on the shared servers (21810 rzk, 21811 ZooKeeper), then client-port
# features on servers of their own (ports 22200-22699, 23000-23099, 23400-23699, 24950-24996,
# 26000-26001, 27001-27002).
lane_a() {
  if $rzk_up; then
    stage compat-rzk env ZK_HOSTS=127.0.0.1:21810 bash tests/compat/run-all.sh
  fi
  # rzk-client's client and recipe tests against rzk and against Apache ZooKeeper 3.8
  # (Debian's), the oracle, both at once: they mostly wait (session expiries, faults).
  client_rzk() { env RZK_TEST_HOSTS=127.0.0.1:21810 bash scripts/built-tests.sh rzk-client -- --test-threads=2; }
  client_apache() { env RZK_TEST_HOSTS=127.0.0.1:21811 bash scripts/built-tests.sh rzk-client -- --test-threads=2; }
  clients=()
  $rzk_up && clients+=(client-rzk client_rzk)
  $apache_up && clients+=(client-apache client_apache)
  [ ${#clients[@]} -gt 0 ] && together "${clients[@]}"
  if $rzk_up; then
    stage interop-curator-rzk env ZK_HOSTS=127.0.0.1:21810 bash tests/interop/run.sh
    stage fifo-rzk "$FIFO" --hosts 127.0.0.1:21810 "${FIFO_ARGS[@]}"
    # The same seeded random ops through the raw protocol against a fresh rzk and a fresh
    # ZooKeeper 3.8, every reply, notification and 4lw table compared (ports 27001-27002).
    stage differential timeout -k 10 300 "$PY" tests/compat/differential/diff_test.py \
        --seeds 0-39 --ops 150 --rzk "$RZK" --workdir "$TMP/differential"
  fi
  if $apache_up; then
    stage fifo-apache "$FIFO" --hosts 127.0.0.1:21811 "${FIFO_ARGS[@]}"
    # Rust's zookeeper-client crate: the compat-rzk stage runs it against rzk.
    stage zookeeper-client-apache env ZK_HOSTS=127.0.0.1:21811 bash tests/compat/zookeeper_client/run.sh
  fi

  # Security (tests/security): SASL DIGEST-MD5, sasl ACLs, enforce.auth and super users
  # against rzk and Apache ZooKeeper (servers of its own, ports 22400+); start-up fails
  # closed on keys rzk cannot honour; no test password in any rzk log or conf/envi output.
  stage security env RZK="$RZK" timeout -k 10 600 "$ROOT/.venv-tests/bin/pytest" -q \
      -p no:cacheprovider "$ROOT/tests/security"

  # Kerberos (tests/kerberos, ports 23000-23099, ~40 s): SASL GSSAPI on the client port
  # against rzk and Apache ZooKeeper 3.8 with a throwaway MIT KDC: Java's zkCli and kazoo
  # log in with keytabs; sasl ids, removeHost/RealmFromPrincipal, superUser, stale keys on
  # either side, required SASL.
  stage kerberos timeout -k 10 300 "$PY" tests/kerberos/kerberos_test.py --rzk "$RZK" \
      --apache scripts/start-apache-zk.sh --impl both --no-skips

  # TLS (tests/tls): client-port TLS with kazoo, zkCli, Curator and rzk shell against rzk
  # and Apache ZooKeeper (mutual TLS, x509 ACLs, port unification, key store formats;
  # ports 23400+), then quorum TLS: 3 rzk voters, the rolling move to TLS, and a mixed
  # rzk + ZooKeeper ensemble (ports 23600+).
  stage tls timeout -k 10 600 "$PY" tests/tls/tls_test.py --rzk "$RZK" --apache scripts/start-apache-zk.sh
  stage quorum-tls timeout -k 10 600 "$PY" tests/tls/quorum_tls_test.py --rzk "$RZK" --apache scripts/start-apache-zk.sh

  # Logs that help (tests/logs, ports 22500+): RUST_LOG/RZK_LOG, unreachable peers warned
  # about without flooding, start-up progress lines, configuration errors printed once,
  # four-letter-word numbers formatted as ZooKeeper 3.8 (checked against it too).
  stage logs timeout -k 10 300 "$PY" tests/logs/logs_test.py --rzk "$RZK" --apache scripts/start-apache-zk.sh

  # The AdminServer over HTTP (tests/admin, ports 22200-22299): every command's JSON keys and
  # types, aliases, listing and errors against ZooKeeper 3.8 standalone, as leader and as
  # follower; values that move; secrets redacted; idle timeout; busy admin port; HTTPS
  # (admin.forceHttps, admin.portUnification) on both.
  stage admin timeout -k 10 300 "$PY" tests/admin/admin_test.py --rzk "$RZK" --apache scripts/start-apache-zk.sh

  # rzk shell vs zkCli 3.8 (tests/shell_compat, ports 22610-22619): the same interactive
  # input through both (quoting cases first), each against its own server, output compared
  # case by case; prints "cases run: N, cases identical: M".
  stage shell-compat timeout -k 10 300 "$PY" tests/shell_compat/shell_compat_test.py --rzk "$RZK" --apache scripts/start-apache-zk.sh
  # config/reconfig in rzk shell vs zkCli 3.8 (ports 24950-24996, ~20 s): one session of
  # each tool against a 3-node ZooKeeper ensemble (reconfigEnabled), then against rzk servers.
  stage reconfig-compat timeout -k 10 120 "$PY" tests/shell_compat/reconfig_test.py --rzk "$RZK" --apache scripts/start-apache-zk.sh

  # Quotas and the audit log (tests/quota, tests/audit; ports 22460-22499): zookeeper_stats
  # kept as ZooKeeper keeps it, enforceQuota, rzk shell setquota/listquota/delquota, on
  # standalone servers and 3-node ensembles (rzk, ZooKeeper, mixed) and across restarts;
  # audit lines equal to ZooKeeper 3.8's.
  stage quota timeout -k 10 300 "$PY" tests/quota/quota_test.py --rzk "$RZK" --apache scripts/start-apache-zk.sh
  stage audit timeout -k 10 120 "$PY" tests/audit/audit_test.py --rzk "$RZK" --apache scripts/start-apache-zk.sh

  # Metrics (tests/metrics, ports 22300+): mntr key sets against ZooKeeper 3.8 standalone
  # and as leader, follower and observer (missing keys 0), mntr and Prometheus /metrics
  # scraped under load (values move, summaries with quantile labels), metricsProvider.*
  # settings (an unknown provider class stops start-up).
  stage metrics timeout -k 10 300 "$PY" tests/metrics/metrics_test.py --rzk "$RZK" --apache scripts/start-apache-zk.sh

  # Soak (tests/soak, ports 26000-26001, ~40 s): 16 rounds of 48 sessions churning
  # (ephemerals, containers, TTL nodes, every kind of watch; closed, expired, re-attached)
  # against rzk and ZooKeeper 3.8; after each round nothing of them may be left (ephemerals,
  # watches, sessions, znodes, connections), threads and open files must not grow, nor
  # rzk's RSS. The long run: scripts/soak.sh.
  stage soak timeout -k 10 300 "$PY" tests/soak/soak_test.py --rzk "$RZK" --apache scripts/start-apache-zk.sh

}
# Lane B: ensembles and whole-server behaviour (ports 21820, 21900, 22740-22999,
# 24000-24899, 25000-25773, 26100-29105; addresses 127.0.0.1-13, 127.0.0.81-91).
lane_b() {
  # Load held by one server (tests/load, ports 24500-24699, 36-51 s): 2,000 sessions and 20,000
  # watches fired by one multi, pipelined reads never read and a slow client flooded with
  # watch events (queue limits), against rzk; jute.maxbuffer and maxClientCnxns outcomes
  # against rzk and ZooKeeper 3.8. The long version (10,000 sessions, both servers): scripts/load.sh.
  stage load timeout -k 10 120 "$PY" tests/load/load_test.py --rzk "$RZK" --apache scripts/start-apache-zk.sh --apache-cases limits

  # Read-only mode and local sessions of 3-member ensembles (tests/readonly, ports 24200-24299,
  # ~35 s; tests/local_sessions, ports 24300-24399, ~15 s), each against rzk and ZooKeeper 3.8.
  stage readonly timeout -k 10 120 "$PY" tests/readonly/readonly_test.py --rzk "$RZK" --apache scripts/start-apache-zk.sh --kinds rzk,apache
  stage local-sessions timeout -k 10 60 "$PY" tests/local_sessions/local_sessions_test.py --rzk "$RZK" --apache scripts/start-apache-zk.sh --kinds rzk,apache

  # observerMasterPort (tests/observer_master, ports 24650-24899, members on 127.0.0.1-4,
  # ~45 s): 3 voters + an observer syncing from a follower, its kill -9, a SNAP restart: rzk
  # only, a ZooKeeper observer through rzk followers, an rzk observer through ZooKeeper
  # followers. The all-ZooKeeper oracle case (~45 s): --cases apache (docs/TESTING.md).
  stage observer-master timeout -k 10 120 "$PY" tests/observer_master/observer_master_test.py --rzk "$RZK" --apache scripts/start-apache-zk.sh --cases rzk,zkobs,rzkobs

  # Durability: kill -9 at random moments (data directories interchanged with ZooKeeper: below,
  # beside stalled-member).
  stage crash-kill9 "$PY" tests/crash/crash_test.py --rzk "$RZK" --kills "${CRASH_KILLS:-25}" --port 21820

  # Replication as real processes: 3 nodes (election, kill -9, SIGSTOP, session failover,
  # rejoin without election), 3 + an observer, 5 nodes, and the pipelined-order checker on
  # leader, followers, observer and sessions moving between members.
  stage ensemble "$PY" tests/ensemble/ensemble_test.py --rzk "$RZK"
  # A member named by host name moves to a new address (each member in a mount namespace of
  # its own with the test's hosts file: needs root; ports 22741-22760, 127.0.0.81-91, ~10 s).
  stage rehost timeout -k 10 180 "$PY" tests/ensemble/rehost_test.py --rzk "$RZK"
  # SESSIONMOVED: writes sent on a connection the session has left are refused and that
  # connection closed, rzk and Apache ZooKeeper ensembles (ports 22801-22833, ~15 s).
  stage session-moved timeout -k 10 300 "$PY" tests/ensemble/session_moved_test.py --rzk "$RZK" --apache scripts/start-apache-zk.sh
  # A follower stopped past its clients' session timeouts closes their connections instead of
  # answering the requests queued meanwhile from its old tree (ports 22841-22873, ~70 s).
  interchange() { "$PY" tests/interchange/interchange.py --rzk "$RZK" --apache scripts/start-apache-zk.sh; }
  stalled_member() { timeout -k 10 300 "$PY" tests/ensemble/stalled_member_test.py --rzk "$RZK" --apache scripts/start-apache-zk.sh; }
  # Both mostly wait (session expiries, a member stopped past its clients' timeouts; their
  # own ports), so they run at once.
  together interchange interchange stalled-member stalled_member

  # Fault suite (tests/faults, ports 25000-25029, member addresses 127.0.0.11-13, ~45 s): the
  # checker's unit tests, then a 3-node rzk ensemble under kill -9 of the leader and an
  # isolated leader (iptables), history checked for linearizability, members compared. All
  # nemeses, 5 nodes, ZooKeeper 3.8 and the disk faults: scripts/faults.sh (docs/TESTING.md).
  stage fault-suite timeout -k 10 120 bash scripts/faults.sh --ci "$RZK"

  # Mixed rzk + ZooKeeper 3.8 ensembles (tests/mixed, ports 22900-22999, ~50-90 s): each side
  # leading, TRUNC/DIFF/SNAP syncs across the implementations (both ways), leader kills under
  # write load, a rolling migration ZooKeeper -> rzk -> ZooKeeper on the same data directories.
  stage mixed timeout -k 10 300 "$PY" tests/mixed/mixed_test.py --rzk "$RZK" --apache scripts/start-apache-zk.sh

  # Failover under write load (tests/failover, ports 24400-24449, ~20 s): 3 kill -9s of an rzk
  # leader; each must end in a serving ensemble with every acknowledged write present. No
  # timing threshold; the rzk vs ZooKeeper table is `failover.py --kind both` (docs/TESTING.md).
  stage failover timeout -k 10 60 "$PY" tests/failover/failover.py --kind rzk --runs 3 --check --rzk "$RZK"

  # /zookeeper/config and conf's membership against ZooKeeper 3.8 (tests/reconfig, ports
  # 24000-24199, ~25 s): voters + observer with and without client addresses,
  # dynamicConfigFile (and a follower re-syncing), a quorum of one, standalone.
  stage reconfig timeout -k 10 120 "$PY" tests/reconfig/config_node_test.py --rzk "$RZK" --apache scripts/start-apache-zk.sh
  # The reconfig request through kazoo (tests/reconfig/reconfig_request_test.py, ports 24200-24299,
  # ~50 s): every case against a ZooKeeper 3.8 ensemble and against rzk (disabled, errors,
  # promoting an observer with a follower down, remove/add a follower, 3 -> 5 -> 3 under
  # write load, ...).
  stage reconfig-request timeout -k 10 180 "$PY" tests/reconfig/reconfig_request_test.py --rzk "$RZK" --apache scripts/start-apache-zk.sh
  # Hierarchical quorums (group.G / weight.S) put in force by a reconfig, then each
  # weighted member killed: nobody may serve without it, the weight-0 member never leads.
  # Mixed with ZooKeeper leading (members 1, 2 rzk) and mixed with rzk leading (member 1
  # ZooKeeper); same ports, ~10 s each (rzk alone: `--impl rzk`, and the simulator's
  # --groups seeds in cargo-test).
  stage reconfig-hierarchical bash -c 'for a in "--impl mixed" "--impl mixed --mixed-zk 1"; do timeout -k 10 90 "$0" tests/reconfig/reconfig_request_test.py $a --cases hierarchical --rzk "$1" --apache scripts/start-apache-zk.sh || exit 1; done' "$PY" "$RZK"
  # kazoo's own test suite (the kazoo.tests modules, unchanged, under pytest: client API,
  # recipes, watchers, connection handling, read-only mode, reconfig, ACLs; 306 tests)
  # against a 3-voter rzk ensemble and a 3-voter ZooKeeper 3.8 ensemble at once
  # (tests/compat/kazoo_suite_test.py, ports 25701-25773, ~100 s).
  stage kazoo-suite timeout -k 10 600 bash tests/compat/kazoo_suite.sh "$RZK" "$PY"
}
start_lane lane_a
start_lane lane_b
finish_lane lane_a
finish_lane lane_b
finish_lane lane_clippy
echo
# Each failed stage's last lines again, at the very end (where a reader of only the tail
# of this output looks).
for f in "${failures[@]}"; do
  echo "=== the end of failed stage $f"
  awk -v s="=== stage: $f" -v e="=== stage $f:" '$0 == s || index($0, s " (") == 1 { on = 1 } on { print } index($0, e) == 1 { on = 0 }' \
      "$TMP"/lane-*.log "$TMP"/stage-*.log 2>/dev/null | tail -n 60
done
for f in "${failures[@]}"; do echo "failed stage: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
