#!/usr/bin/env python3
"""mntr and Prometheus metrics of rzk, against Apache ZooKeeper 3.8 as the oracle.

  .venv-tests/bin/python tests/metrics/metrics_test.py --rzk target/debug/rzk \
      --apache scripts/start-apache-zk.sh

Checks, in order (each prints PASS or raises):
  1. keyset-standalone: ZooKeeper 3.8 and rzk, both standalone, get the same workload;
     every key ZooKeeper's `mntr` prints, rzk's prints too (missing keys: 0), and the
     same counters are 0 on both (a few documented exceptions: ZERO_PATTERN_KNOWN).
  2. values-move: while a client writes and reads, rzk's `mntr` and its Prometheus
     `/metrics` are scraped three times; request, latency, fsync, propagation, byte and
     per-namespace numbers grow between scrapes (snapshots taken: snapCount=40);
     summaries carry `quantile` labels,
     every numeric mntr key is a Prometheus metric (name without `zk_`), the process
     metrics of exportJvmInfo are there.
  3. provider-settings: an unknown metricsProvider.className stops start-up naming the
     key, so does a taken metrics port; exportJvmInfo=false drops the process metrics; with NullMetricsProvider rzk
     records nothing and its mntr has the keys ZooKeeper's has then (version, state).
  2b. byte-counts: fresh standalone servers, the same short session (connect, writes,
     reads, a watch notification, close) and a four-letter word: the change of
     zk_connection_request_count, zk_bytes_received_count, zk_response_bytes,
     zk_watch_bytes and the last client response size is the same on both (sizes
     without the length prefix; the connect response, pings and 4lw not counted as
     responses; the ConnectRequest and a 4lw's 4 bytes counted as received).
  4. keyset-ensemble: a ZooKeeper ensemble and an rzk ensemble (3 voters + 1 observer
     each) get the same workload through every member; for the leader, a follower and
     the observer, every key ZooKeeper prints, rzk prints (learner ids normalised);
     leader and learner numbers (commits, quorum-ack and propagation latency, learner
     queues) are non-zero, and each role counts what ZooKeeper's counts in that role
     (the same counters 0 on both, ZERO_PATTERN_KNOWN aside).
ZooKeeper's Prometheus provider is not in Debian's ZooKeeper package, so /metrics is
checked on rzk only. No key is excluded: a quorum member writes its membership into
/zookeeper/config at start-up (the `zookeeper` namespace of write_per_namespace) in rzk
as in ZooKeeper.
Ports 127.0.0.1:22300-22399. Only processes this script started are signalled.
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from kazoo.client import KazooClient

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import zkproc  # noqa: E402
from zkproc import four  # noqa: E402

PROMETHEUS = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"
ZK_SA, RZK_SA, RZK_BAD, ZK_NULL = 22300, 22301, 22302, 22303
ZK_BYTES, RZK_BYTES = 22304, 22305
PROM_PORT, PROM_PORT2 = 22398, 22397
ADMIN_PORT = 22396
ZK_ENS, RZK_ENS = 22310, 22320          # client ports base + 1..4
ZK_QUORUM, RZK_QUORUM = 22330, 22350    # quorum ports base + 1..4, election base + 10
OBSERVER = 4
# Keys rzk does not print, with the reason (docs/COMPATIBILITY.md, "mntr and metrics").
# (None since rzk writes the membership into /zookeeper/config as ZooKeeper does, which
# gives both the zk_*_zookeeper_write_per_namespace keys.)
EXCLUDED = []
# Counters and sample counts that are 0 on one server and not on the other after the same
# workload, for a known reason (docs/COMPATIBILITY.md, "mntr and metrics"). Every other
# key must be zero on both or on neither: a metric rzk records where ZooKeeper's
# pipeline has no such stage (a standalone server's commits, say), or the reverse.
ZERO_PATTERN_KNOWN = [(re.compile(rx), why) for rx, why in [
    (r"^zk_cnt_request_throttle_queue_time_ms$", "no request throttler"),
    (r"^zk_response_packet_.*cache_misses$", "no response cache"),
    (r"^zk_cnt_connection_token_deficit$", "no connection token bucket"),
    (r"^zk_cnt_sync_processor_queue_time_ms$", "no per-request wait before the log writer is recorded"),
    (r"^zk_outstanding_changes_(queued|removed)$", "prep keeps no list of change records"),
    (r"^zk_cnt_snapshottime$", "start-up snapshots: rzk writes one for a new database only, "
     "ZooKeeper's standalone server and leader at every start"),
    (r"^zk_cnt_fsynctime$", "the oracle runs with forceSync=no, rzk with the default"),
    (r"^zk_cnt_jvm_pause_time_ms$",
     "timing: one sample per sleep period (500 ms) of the pause monitor, from when each "
     "server started it; on a slow machine mntr can come before ZooKeeper's first one "
     "(session 36's CI: ZooKeeper 0, rzk 1); rzk's is checked to move under load below"),
    (r"^zk_connection_drop_count$",
     "timing: which side of a closing connection (a four-letter word's) closes first"),
    (r"^zk_cnt_(commit_commit|read_commit|write_commit)_proc_(req_queued|issued)$",
     "no commit-processor worker pool"),
    (r"^zk_cnt_(read_commitproc|read_final_proc)_time_ms$", "reads are answered outside the commit path"),
    (r"^zk_cnt_concurrent_request_processing_in_commit_processor$",
     "no commit-processor worker pool (ZooKeeper counts it only when a commit finds its "
     "workers busy: timing; session 36 saw 1 on its observer once)"),
    (r"^zk_cnt_(time_waiting_empty_pool_in_commit_processor_read_ms|write_batch_time_in_commit_processor)$",
     "no commit-processor worker pool"),
    (r"^zk_cnt_(pending_session_queue_size|reads_after_write_in_session_queue|"
     r"reads_issued_from_session_queue|requests_in_session_queue|session_queues_drained)$",
     "no per-session queues in a commit processor"),
    (r"^zk_cnt_learner_request_processor_queue_size$", "learners forward without a queue stage"),
    (r"^zk_cnt_inflight_(diff|snap)_count$", "concurrent learner syncs are not counted"),
    (r"^zk_(snap|diff)_count$", "a new learner may get a DIFF from rzk where ZooKeeper sends a SNAP"),
]]


def mntr(port):
    text = four(port, "mntr", timeout=5.0)
    rows = dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)
    if not rows:
        raise AssertionError(f"no mntr answer on {port}: {text!r}")
    return rows


def zero_pattern(oracle, ours, where):
    """Keys counting events (plain counters and the `cnt_` of a summary) that are 0 on
    one server and not on the other."""
    differ = []
    for k in sorted(set(oracle) & set(ours)):
        if re.match(r"^zk_(avg|min|max|sum|p50|p95|p99|p999)_", k):
            continue
        if any(rx.match(k) for rx, _ in ZERO_PATTERN_KNOWN):
            continue
        if not (k.startswith("zk_cnt_") or k.endswith(("_count", "_queued", "_received"))):
            continue
        try:
            a, b = float(oracle[k]), float(ours[k])
        except ValueError:
            continue
        if (a == 0) != (b == 0):
            differ.append(f"{k} ZooKeeper {oracle[k]} rzk {ours[k]}")
    if differ:
        raise AssertionError(f"{where}: counted on one server only: {differ}")


def normalise(key):
    """Learner ids differ between the two ensembles' leaders' views: compare shapes."""
    return re.sub(r"^zk_(avg|min|max|cnt|sum|p50|p95|p99|p999)_\d+_learner_handler",
                  r"zk_\1_N_learner_handler", key)


def missing_keys(oracle, ours, where):
    want = {normalise(k) for k in oracle}
    have = {normalise(k) for k in ours}
    missing = sorted(k for k in want - have
                     if not any(rx.match(k) for rx, _ in EXCLUDED))
    if missing:
        raise AssertionError(f"{where}: rzk's mntr lacks {len(missing)} of ZooKeeper's keys: {missing}")
    return len(want), len(have)


def workload(port, rounds=20, ns="app"):
    """Creates, sets, reads (with watches), lists, multi, deletes: every kind of
    request ZooKeeper's metrics count, through the server on `port`."""
    zk = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10)
    zk.start(timeout=30)
    try:
        zk.ensure_path(f"/{ns}")
        tag = f"{port}-{time.monotonic_ns()}"
        for i in range(rounds):
            p = f"/{ns}/n{tag}-{i}"
            zk.create(p, b"x" * 10)
            zk.set(p, b"y")
            zk.get(p, watch=lambda e: None)
            zk.exists(p, watch=lambda e: None)
        zk.get_children(f"/{ns}", watch=lambda e: None)
        zk.ensure_path("/eph")
        zk.create(f"/eph/{tag}", b"", ephemeral=True)
        t = zk.transaction()
        t.create(f"/{ns}/m{tag}")
        t.delete(f"/{ns}/m{tag}")
        t.commit()
        for i in range(rounds):
            zk.delete(f"/{ns}/n{tag}-{i}")
        zk.sync(f"/{ns}")
    finally:
        zk.stop()
        zk.close()


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        ctype = r.headers.get("Content-Type", "")
        body = r.read().decode()
    if not ctype.startswith("text/plain; version=0.0.4"):
        raise AssertionError(f"/metrics content type {ctype!r}")
    samples, types = {}, {}
    for line in body.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, ty = line.split(" ", 3)
            types[name] = ty
        elif line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples, types


class Servers:
    def __init__(self, rzk, apache):
        self.rzk = rzk
        self.apache = apache
        self.base = tempfile.mkdtemp(prefix="rzk-metrics-")
        self.procs = []

    def rzk_server(self, name, port, *settings, servers=(), myid=None):
        cfg = zkproc.write_config(os.path.join(self.base, name, "zoo.cfg"), port, *settings,
                                  servers=servers, myid=myid)
        p = zkproc.start_rzk(self.rzk, cfg, port)
        self.procs.append(p)
        return p, cfg

    def apache_server(self, name, port, *settings, myid=None):
        d = os.path.join(self.base, name)
        if myid is not None:
            zkproc.write_myid(os.path.join(d, "data"), myid)
        p = zkproc.start_apache(self.apache, port, d, *settings)
        self.procs.append(p)
        return p

    def stop(self, ok):
        for p in self.procs:
            p.stop(timeout=10)
        if ok:
            shutil.rmtree(self.base, ignore_errors=True)
        else:
            print(f"data dirs kept in {self.base}")


def check_keyset_standalone(s):
    # The pause monitor on both (off by default on both; the ensemble leaves it off).
    zk = s.apache_server("zk-standalone", ZK_SA, "jvm.pause.monitor=true")
    rzk, _ = s.rzk_server("rzk-standalone", RZK_SA, "snapCount=40", "jvm.pause.monitor=true",
                          f"metricsProvider.className={PROMETHEUS}",
                          "metricsProvider.httpHost=127.0.0.1",
                          f"metricsProvider.httpPort={PROM_PORT}",
                          "admin.enableServer=true", "admin.serverAddress=127.0.0.1",
                          f"admin.serverPort={ADMIN_PORT}")
    zkproc.wait_serving(ZK_SA, zk, what="ZooKeeper")
    zkproc.wait_serving(RZK_SA, rzk, what="rzk")
    workload(ZK_SA)
    workload(RZK_SA)
    oracle, ours = mntr(ZK_SA), mntr(RZK_SA)
    n_want, n_have = missing_keys(oracle, ours, "standalone")
    zero_pattern(oracle, ours, "standalone")
    print(f"PASS keyset-standalone: ZooKeeper {n_want} keys, rzk {n_have}, missing 0; "
          f"the same counters 0 on both (known exceptions: {len(ZERO_PATTERN_KNOWN)})")
    check_connection_drops(s)
    zk.stop()


def numeric(rows, key):
    try:
        return float(rows[key])
    except (KeyError, ValueError):
        raise AssertionError(f"mntr has no numeric {key}: {rows.get(key)!r}") from None


def monitor(port):
    """The AdminServer's /commands/monitor answer (JSON)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/commands/monitor", timeout=5) as r:
        body = json.load(r)
    if body.get("command") != "monitor" or body.get("error") is not None:
        raise AssertionError(f"/commands/monitor answered {body!r}")
    return body


def check_values_move(s):
    stop = threading.Event()
    errors = []

    def load():
        try:
            while not stop.is_set():
                workload(RZK_SA, rounds=10, ns="load")
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    scrapes = [(mntr(RZK_SA), scrape(PROM_PORT))]
    monitors = [monitor(ADMIN_PORT)]
    t = threading.Thread(target=load, daemon=True)
    t.start()
    for _ in range(2):
        time.sleep(1.5)
        scrapes.append((mntr(RZK_SA), scrape(PROM_PORT)))
        monitors.append(monitor(ADMIN_PORT))
    stop.set()
    t.join(60)
    if errors:
        raise errors[0]
    growing_mntr = ["zk_packets_received", "zk_packets_sent", "zk_cnt_updatelatency",
                    "zk_cnt_readlatency",
                    "zk_cnt_propagation_latency", "zk_cnt_fsynctime",
                    "zk_sync_processor_request_queued", "zk_bytes_received_count",
                    "zk_response_bytes", "zk_cnt_load_write_per_namespace",
                    "zk_cnt_load_read_per_namespace", "zk_cnt_prep_process_time",
                    "zk_cnt_sync_processor_batch_size", "zk_create_rzk_requests",
                    "zk_getData_rzk_requests"]
    growing_prom = ["readlatency_count", "updatelatency_count", "fsynctime_count",
                    "propagation_latency_count", "packets_received", "response_bytes",
                    'write_per_namespace_count{key="load"}', 'rzk_requests{key="setData"}']
    for (m0, (p0, _)), (m1, (p1, _)) in zip(scrapes, scrapes[1:]):
        for k in growing_mntr:
            # (the load's namespace has no keys before its first request)
            if not numeric(m1, k) > float(m0.get(k, 0)):
                raise AssertionError(f"mntr {k} did not move under load: {m0.get(k)} -> {m1.get(k)}")
        for k in growing_prom:
            if not p1.get(k, 0) > p0.get(k, 0):
                raise AssertionError(f"/metrics {k} did not move under load: {p0.get(k)} -> {p1.get(k)}")
    growing_monitor = ["packets_received", "packets_sent", "cnt_updatelatency",
                       "cnt_readlatency", "cnt_propagation_latency", "cnt_fsynctime"]
    for j0, j1 in zip(monitors, monitors[1:]):
        for k in growing_monitor:
            if not float(j1.get(k, 0)) > float(j0.get(k, 0)):
                raise AssertionError(f"/commands/monitor {k} did not move under load: "
                                     f"{j0.get(k)} -> {j1.get(k)}")
    last, (samples, types) = scrapes[-1][0], scrapes[-1][1]
    for k in ["zk_max_latency", "zk_max_updatelatency", "zk_open_file_descriptor_count",
              "zk_max_client_response_size", "zk_znode_count", "zk_cnt_jvm_pause_time_ms",
              "zk_cnt_snapshottime", "zk_rzk_last_snapshot_size", "zk_rzk_datadir_size",
              "zk_rzk_logdir_size"]:
        if not numeric(last, k) > 0:
            raise AssertionError(f"mntr {k} is {last.get(k)} after load")
    if types.get("readlatency") != "summary" or types.get("commit_count") != "counter":
        raise AssertionError(f"metric types: readlatency {types.get('readlatency')}, commit_count {types.get('commit_count')}")
    for q in ("0.5", "0.9", "0.99"):
        if f'readlatency{{quantile="{q}"}}' not in samples:
            raise AssertionError(f"readlatency has no quantile {q}")
    if 'fsynctime{quantile="0.5"}' not in samples:
        raise AssertionError("fsynctime (a basic summary) has no 0.5 quantile")
    names = set(types)
    for k, v in last.items():
        bare = k[len("zk_"):]
        m = re.match(r"^(avg|min|max|cnt|sum|p50|p95|p99|p999)_(.+)$", bare)
        if m and (m.group(2) in names or m.group(2).endswith("_per_namespace")
                  or "_learner_handler_" in m.group(2)):
            continue
        if bare.endswith("_rzk_requests"):
            op = bare[:-len("_rzk_requests")]
            if f'rzk_requests{{key="{op}"}}' not in samples:
                raise AssertionError(f"mntr key {k} has no Prometheus rzk_requests{{key=\"{op}\"}}")
            continue
        try:
            float(v)
        except ValueError:
            continue  # version, server_state, peer_state
        if bare not in names:
            raise AssertionError(f"mntr key {k} is not a Prometheus metric {bare}")
    if "process_open_fds" not in samples:
        raise AssertionError("exportJvmInfo (default true) but no process_open_fds")
    print(f"PASS values-move: {len(growing_mntr)} mntr keys, {len(growing_prom)} Prometheus "
          f"samples and {len(growing_monitor)} /commands/monitor fields grew between each of "
          f"3 scrapes under load; {len(types)} metric families")


BYTE_KEYS = ["zk_connection_request_count", "zk_bytes_received_count", "zk_response_bytes",
             "zk_watch_bytes", "zk_last_client_response_size"]


def byte_workload(port):
    """One session whose every request and reply has the same bytes on both servers."""
    zk = KazooClient(hosts=f"127.0.0.1:{port}", timeout=30)
    zk.start(timeout=30)
    try:
        zk.create("/bytes", b"x" * 10)
        zk.set("/bytes", b"y" * 20)
        fired = threading.Event()
        zk.get("/bytes", watch=lambda e: fired.set())
        zk.exists("/bytes/missing")
        zk.set("/bytes", b"z")
        assert fired.wait(10), "no notification"
        zk.get_children("/bytes")
        zk.delete("/bytes")
    finally:
        zk.stop()
        zk.close()
    assert four(port, "ruok") == "imok"


def check_connection_drops(_s):
    """zk_connection_drop_count counts clients that close their side (ZooKeeper's
    handleFailedRead): three sessions whose sockets are closed without a closeSession
    add at least three on both servers (break-it review: rzk's stayed 0)."""
    for port in (ZK_SA, RZK_SA):
        before = numeric(mntr(port), "zk_connection_drop_count")
        for _ in range(3):
            body = bytes(4) + bytes(8) + (10000).to_bytes(4, "big") + bytes(8) \
                + (16).to_bytes(4, "big") + bytes(16)
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            c.sendall(len(body).to_bytes(4, "big") + body)
            c.recv(64)  # the ConnectResponse (a session was made)
            c.close()
        deadline = time.time() + 5
        while numeric(mntr(port), "zk_connection_drop_count") < before + 3:
            if time.time() > deadline:
                raise AssertionError(f"port {port}: zk_connection_drop_count {before} -> "
                                     f"{numeric(mntr(port), 'zk_connection_drop_count')} "
                                     f"after 3 client closes")
            time.sleep(0.1)
    print("PASS connection drops counted on both servers")


def check_byte_counts(s):
    zk = s.apache_server("zk-bytes", ZK_BYTES)
    rzk, _ = s.rzk_server("rzk-bytes", RZK_BYTES)
    zkproc.wait_serving(ZK_BYTES, zk, what="ZooKeeper")
    zkproc.wait_serving(RZK_BYTES, rzk, what="rzk")
    moved = {}
    for name, port in (("zk", ZK_BYTES), ("rzk", RZK_BYTES)):
        before = mntr(port)
        byte_workload(port)
        after = mntr(port)
        moved[name] = {k: numeric(after, k) - (0 if k.startswith("zk_last") else
                                                numeric(before, k)) for k in BYTE_KEYS}
    if moved["zk"] != moved["rzk"]:
        raise AssertionError(f"byte counts differ: ZooKeeper {moved['zk']}, rzk {moved['rzk']}")
    assert moved["rzk"]["zk_connection_request_count"] == 1, moved
    print(f"PASS byte-counts: {moved['rzk']} on both")
    zk.stop()
    rzk.stop()


def check_provider_settings(s):
    p, cfg = s.rzk_server("rzk-bad", RZK_BAD, "metricsProvider.className=com.example.NoSuchProvider")
    if not p.wait_exit(30):
        raise AssertionError("rzk started with an unknown metricsProvider.className")
    log = open(os.path.join(os.path.dirname(cfg), "server.log")).read()
    if p.popen.returncode == 0 or "metricsProvider.className" not in log:
        raise AssertionError(f"unknown provider class: exit {p.popen.returncode}, log: {log[-2000:]}")
    s.procs.remove(p)
    os.remove(os.path.join(os.path.dirname(cfg), "server.log"))
    # A taken metrics port stops start-up (ZooKeeper's provider fails to start then too).
    with socket.socket() as taken:
        # (a previous run's connections may still be in TIME_WAIT on the port)
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", PROM_PORT2))
        taken.listen(1)
        p, cfg = s.rzk_server("rzk-busy", RZK_BAD, f"metricsProvider.className={PROMETHEUS}",
                              "metricsProvider.httpHost=127.0.0.1",
                              f"metricsProvider.httpPort={PROM_PORT2}")
        if not p.wait_exit(30):
            raise AssertionError("rzk started although its metrics port was taken")
    log = open(os.path.join(os.path.dirname(cfg), "server.log")).read()
    if p.popen.returncode == 0 or f"127.0.0.1:{PROM_PORT2}" not in log:
        raise AssertionError(f"taken metrics port: exit {p.popen.returncode}, log: {log[-2000:]}")
    s.procs.remove(p)
    p, _ = s.rzk_server("rzk-bad", RZK_BAD, f"metricsProvider.className={PROMETHEUS}",
                        "metricsProvider.httpHost=127.0.0.1",
                        f"metricsProvider.httpPort={PROM_PORT2}",
                        "metricsProvider.exportJvmInfo=false")
    zkproc.wait_serving(RZK_BAD, p, what="rzk (exportJvmInfo=false)")
    samples, _ = scrape(PROM_PORT2)
    if any(k.startswith("process_") for k in samples) or "readlatency_count" not in samples:
        raise AssertionError("exportJvmInfo=false: process metrics still exported, or server metrics missing")
    p.stop()
    s.procs.remove(p)
    # ZooKeeper's NullMetricsProvider: nothing recorded; mntr keeps what ZooKeeper's does.
    null = "metricsProvider.className=org.apache.zookeeper.metrics.impl.NullMetricsProvider"
    p, _ = s.rzk_server("rzk-null", RZK_BAD, null)
    zk = s.apache_server("zk-null", ZK_NULL, null)
    zkproc.wait_serving(RZK_BAD, p, what="rzk (NullMetricsProvider)")
    zkproc.wait_serving(ZK_NULL, zk, what="ZooKeeper (NullMetricsProvider)")
    workload(RZK_BAD, rounds=3)
    rows, oracle = mntr(RZK_BAD), mntr(ZK_NULL)
    if set(rows) != set(oracle):
        raise AssertionError(f"NullMetricsProvider: rzk mntr {sorted(rows)}, ZooKeeper {sorted(oracle)}")
    for x in (p, zk):
        x.stop()
        s.procs.remove(x)
    print("PASS provider-settings: unknown className refused naming the key; a taken metrics port "
          "stops start-up; exportJvmInfo=false "
          f"honoured; NullMetricsProvider: mntr keys = ZooKeeper's ({len(rows)})")


def servers_lines(quorum_base):
    return zkproc.server_lines(range(1, 5), quorum_base, quorum_base + 10, observers=(OBSERVER,))


def check_keyset_ensemble(s):
    ids = range(1, 5)
    zk_lines = servers_lines(ZK_QUORUM)
    rzk_lines = servers_lines(RZK_QUORUM)
    for i in ids:
        extra = ["peerType=observer"] if i == OBSERVER else []
        s.rzk_server(f"rzk-{i}", RZK_ENS + i, *extra, servers=rzk_lines, myid=i)
    started = []

    def start_zk(i):
        extra = ["peerType=observer"] if i == OBSERVER else []
        started.append(s.apache_server(f"zk-{i}", ZK_ENS + i, *zk_lines, *extra, myid=i))

    threads = [threading.Thread(target=start_zk, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if len(started) != 4:
        raise AssertionError("a ZooKeeper ensemble member did not start")
    zk_ports = [ZK_ENS + i for i in ids]
    rzk_ports = [RZK_ENS + i for i in ids]
    zkproc.wait_settled(zk_ports, observers=[ZK_ENS + OBSERVER], timeout=90, where=" (ZooKeeper)")
    zkproc.wait_settled(rzk_ports, observers=[RZK_ENS + OBSERVER], timeout=90, where=" (rzk)")
    for port in zk_ports + rzk_ports:
        workload(port, rounds=5)
    time.sleep(1.5)  # a marker (once a second) reaches every learner queue
    checked = []
    for role in ("leader", "follower", "observer"):
        oracle = next(mntr(p) for p in zk_ports if zkproc.mode(p) == role)
        ours = next(mntr(p) for p in rzk_ports if zkproc.mode(p) == role)
        n_want, n_have = missing_keys(oracle, ours, role)
        zero_pattern(oracle, ours, role)
        checked.append(f"{role} {n_want}/{n_have}")
        if role == "leader":
            for k in ["zk_commit_count", "zk_cnt_quorum_ack_latency",
                      "zk_cnt_proposal_ack_creation_latency", "zk_cnt_propagation_latency",
                      "zk_leader_uptime", "zk_max_proposal_size"]:
                if not numeric(ours, k) > 0:
                    raise AssertionError(f"leader {k} is {ours.get(k)}")
            if ours.get("zk_learners") != "3" or ours.get("zk_synced_followers") != "2":
                raise AssertionError(f"leader learners {ours.get('zk_learners')}, synced {ours.get('zk_synced_followers')}")
            # srvr's line on a leader carries the same sizes as mntr (rzk printed
            # -1/-1/-1 for good; found by a break-it review), on both servers.
            for port in zk_ports + rzk_ports:
                if zkproc.mode(port) != "leader":
                    continue
                m = mntr(port)
                want = "/".join(m[f"zk_{k}_proposal_size"] for k in ("last", "min", "max"))
                have = [l.split(": ", 1)[1] for l in zkproc.four(port, "srvr").splitlines()
                        if l.startswith("Proposal sizes last/min/max")]
                if have != [want] or want.startswith("-1"):
                    raise AssertionError(f"leader {port} srvr proposal sizes {have}, mntr {want}")
            qp = [k for k in ours if re.match(r"^zk_cnt_\d+_learner_handler_qp_(size|time_ms)$", k)]
            if len(qp) != 6 or any(numeric(ours, k) <= 0 for k in qp):
                raise AssertionError(f"leader learner queue metrics: {[(k, ours[k]) for k in qp]}")
        else:
            follower_only = ["zk_learner_proposal_received_count", "zk_cnt_proposal_latency",
                             "zk_cnt_election_time"] if role == "follower" else []
            for k in ["zk_learner_commit_received_count", "zk_cnt_propagation_latency",
                      "zk_cnt_commit_propagation_latency", *follower_only]:
                if not numeric(ours, k) > 0:
                    raise AssertionError(f"{role} {k} is {ours.get(k)}")
    print(f"PASS keyset-ensemble: keys ZooKeeper/rzk {', '.join(checked)}, missing 0 "
          f"(excluded: {len(EXCLUDED)} documented pattern)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rzk", required=True)
    ap.add_argument("--apache", required=True)
    args = ap.parse_args()
    s = Servers(os.path.abspath(args.rzk), os.path.abspath(args.apache))
    ok = False
    t0 = time.time()
    try:
        check_keyset_standalone(s)
        check_values_move(s)
        check_byte_counts(s)
        check_provider_settings(s)
        check_keyset_ensemble(s)
        ok = True
    finally:
        s.stop(ok)
    print(f"metrics: all checks passed in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
