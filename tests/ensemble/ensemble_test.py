#!/usr/bin/env python3
"""rzk ensembles on 127.0.0.1, as real processes, through real clients (kazoo, and the
rzk-client example `session_failover` where one-shot watches must survive a move).

  .venv-tests/bin/python tests/ensemble/ensemble_test.py --rzk target/debug/rzk \
      [--variants basic,observer,five]

Variant `basic` (3 participants), in order (each prints PASS or raises):
  1. election: exactly one leader and two followers; the leader reports 2 synced followers;
  2. replication: a write through every node is visible on every node (after sync);
  3. rejoin: a follower killed -9 and restarted learns the settled leader without an
     election: the leader stays, the zxid epoch stays, a client of the other follower
     never loses its connection;
  4. session failover (twice: the client's server is a follower, then the leader): the
     server a client is connected to is killed -9; the client moves to another member
     with the same session, its ephemeral and its three one-shot watches (data, exists,
     children; re-registered by setWatches) which then fire for writes made elsewhere;
  5. session expiry: the client process dies; its ephemerals disappear from every member
     only after the session timeout (the leader expires the session);
  6. kill -9 of the leader, then of a follower, each restarted, while a client keeps
     writing: every acknowledged write is on every node, and all nodes converge to the
     same zxid and tree digest (4lw `hash`);
  7. SIGSTOP of the leader past syncLimit: the others elect a new leader and keep
     accepting writes; after SIGCONT the old leader rejoins as a follower with the data.
Variant `observer` (3 participants + 1 observer):
  srvr says `Mode: observer`, the leader's mntr counts it in zk_synced_observers; every
  committed write reaches it (INFORM) without a sync, it serves reads and watches and
  forwards writes; restarted, it rejoins without an election (epoch stays); with one
  participant down writes through it still commit; with two
  participants down it does not help form a quorum (no leader, writes stall); restarting
  one participant brings the ensemble back.
Variant `five` (5 participants): kill -9 the leader and a follower, the other three elect
  and serve; kill a third, no quorum (nobody leads, writes stall); restart all three, the
  ensemble converges (same digest everywhere, no acknowledged write lost).
Variant `fifo` (3 participants + 1 observer): the pipelined per-session order checker
  (rzk-testkit's `fifo_check`: many sessions pipelining random reads, writes and watch
  registrations, every reply and notification compared with the session's serial order)
  connected to the leader, to the followers, to the observer, and with sessions moving
  between all members between rounds; every run must have 0 wrong rounds.
Only processes this script started are signalled (by PID). Data dirs under a temp dir,
kept on failure.
"""
import argparse
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState
from kazoo.retry import KazooRetry

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import zkproc  # noqa: E402
from zkproc import field, four, wait_until  # noqa: E402

# Session timeout of the failover probe (ms); with tickTime=500 the server allows 1-10 s.
PROBE_SESSION_MS = 4000


class Ensemble:
    def __init__(self, rzk, port, tick, participants=3, observers=0):
        self.rzk = rzk
        self.tick = tick
        self.base = tempfile.mkdtemp(prefix="rzk-ensemble-")
        self.procs = {}
        self.ids = list(range(1, participants + observers + 1))
        self.observers = set(self.ids[participants:])
        self.participants = [i for i in self.ids if i not in self.observers]
        self.client_port = {i: port + i for i in self.ids}
        self.servers = zkproc.server_lines(self.ids, port + 100, port + 200, self.observers)

    def start(self, i):
        extra = ["peerType=observer"] if i in self.observers else []
        cfg = zkproc.write_config(os.path.join(self.base, f"n{i}", "zoo.cfg"), self.client_port[i],
                                  f"tickTime={self.tick}", *extra, servers=self.servers, myid=i)
        self.procs[i] = zkproc.start_rzk(self.rzk, cfg, self.client_port[i])

    def start_all(self):
        for i in self.ids:
            self.start(i)

    def signal(self, i, sig):
        self.procs[i].signal(sig)

    def kill9(self, i):
        self.procs.pop(i).kill9()

    def stop_all(self):
        for i in list(self.procs):
            self.kill9(i)

    def log_mark(self, i):
        return os.path.getsize(os.path.join(self.base, f"n{i}", "server.log"))

    def log_since(self, i, mark):
        with open(os.path.join(self.base, f"n{i}", "server.log"), "rb") as f:
            f.seek(mark)
            return f.read().decode(errors="replace")

    def assert_no_quorum(self, nodes, marks):
        """Nobody in `nodes` led, followed or served since `marks` (server.log offsets)."""
        for i in nodes:
            text = self.log_since(i, marks[i])
            for bad in ("role=Leading", "role=Following", "role=Observing", "serving clients sid"):
                assert bad not in text, f"node {i} logged {bad!r} without a quorum"
            assert self.mode(i) is None, f"node {i} reports Mode {self.mode(i)}"

    def running(self):
        return sorted(self.procs)

    def mode(self, i):
        return zkproc.mode(self.client_port[i])

    def zxid(self, i):
        z = field(four(self.client_port[i], "srvr"), "Zxid")
        return int(z, 16) if z else None

    def node_of(self, host):
        port = int(host.rsplit(":", 1)[1])
        return [i for i, p in self.client_port.items() if p == port][0]

    def hosts(self, nodes):
        return ",".join(f"127.0.0.1:{self.client_port[i]}" for i in nodes)

    def wait_settled(self, nodes=None, timeout=60):
        """Waits until `nodes` (default: all running) are one leader, followers and
        observers; returns the leader."""
        ports = [self.client_port[i] for i in nodes or self.running()]
        observers = [self.client_port[i] for i in self.observers]
        leader = zkproc.wait_settled(ports, observers, timeout, f"; logs in {self.base}")
        return next(i for i in self.ids if self.client_port[i] == leader)

    def client(self, nodes, timeout=10.0):
        c = KazooClient(hosts=self.hosts(nodes), timeout=timeout,
                        connection_retry=KazooRetry(max_tries=-1, delay=0.02, max_delay=0.2),
                        command_retry=KazooRetry(max_tries=-1, delay=0.02, max_delay=0.2))
        c.start(timeout=30)
        return c


def close(c):
    c.stop()
    c.close()


def converged(ens, nodes=None, timeout=30):
    nodes = nodes or ens.running()
    deadline = time.time() + timeout
    hashes = {}
    while time.time() < deadline:
        hashes = {i: four(ens.client_port[i], "hash").strip() for i in nodes}
        if len(set(hashes.values())) == 1 and all(hashes.values()):
            return hashes[nodes[0]]
        time.sleep(0.1)
    raise AssertionError(f"nodes did not converge: {hashes}")


def write_stalls(ens, nodes, path, seconds):
    """True when no write through `nodes` succeeds within `seconds` (no quorum)."""
    result = queue.Queue()

    def attempt():
        c = KazooClient(hosts=ens.hosts(nodes), timeout=2.0,
                        connection_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.2),
                        command_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.2))
        try:
            c.start(timeout=seconds)
            c.create(path, b"stalled")
            result.put("committed")
        except Exception as e:  # noqa: BLE001 - any failure means the write did not commit
            result.put(f"failed: {type(e).__name__}")
        finally:
            try:
                c.stop()
                c.close()
            except Exception:  # noqa: BLE001
                pass

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    try:
        r = result.get(timeout=seconds)
    except queue.Empty:
        r = "pending"
    return r != "committed", r


# ---------------------------------------------------------------------------- basic

def check_election(ens, followers=2, observers=0):
    leader = ens.wait_settled()
    want = {"zk_synced_followers": str(followers), "zk_synced_observers": str(observers)}
    got = {}

    def synced():
        nonlocal got
        m = four(ens.client_port[leader], "mntr")
        got = {k: field(m, k) for k in want}
        return got == want
    try:
        wait_until(synced, 10, "synced learners")
    except AssertionError:
        raise AssertionError(f"leader {leader} reports {got}, want {want}") from None
    print(f"PASS election: leader {leader}, {followers} synced followers, "
          f"{observers} synced observers")
    return leader


def check_replication(ens):
    for i in ens.ids:
        c = ens.client([i])
        c.ensure_path("/rep")
        c.create(f"/rep/from-{i}", f"v{i}".encode())
        close(c)
    for j in ens.ids:
        c = ens.client([j])
        c.sync("/")
        kids = sorted(c.get_children("/rep"))
        assert kids == [f"from-{i}" for i in ens.ids], f"node {j} sees {kids}"
        for i in ens.ids:
            assert c.get(f"/rep/from-{i}")[0] == f"v{i}".encode()
        close(c)
    print("PASS replication: writes through every node visible on every node")


def check_rejoin(ens):
    leader = ens.wait_settled()
    c = ens.client([leader])
    c.create("/rejoin-before", b"x")
    close(c)
    epoch = ens.zxid(leader) >> 32
    f1, f2 = [i for i in ens.participants if i != leader]
    watcher = ens.client([f2])
    states = []
    watcher.add_listener(lambda s: states.append(s))
    ens.kill9(f1)
    ens.start(f1)
    t0 = time.time()
    assert ens.wait_settled() == leader, "the leader changed"
    joined_ms = (time.time() - t0) * 1000
    c = ens.client([f1])
    c.create("/rejoin-after", b"y")
    c.sync("/")
    assert c.exists("/rejoin-before") and c.exists("/rejoin-after")
    close(c)
    watcher.sync("/")
    assert watcher.exists("/rejoin-after")
    lost = [s for s in states if s != KazooState.CONNECTED]
    close(watcher)
    assert not lost, f"the other follower's client saw {lost}"
    epochs = {i: ens.zxid(i) >> 32 for i in ens.ids}
    assert set(epochs.values()) == {epoch}, f"epoch changed from {epoch}: {epochs}"
    print(f"PASS rejoin: follower {f1} rejoined leader {leader} in {joined_ms:.0f} ms; "
          f"epoch stays {epoch}; the other follower's client stayed connected")


class Probe:
    """The rzk-client `session_failover` example, driven over stdin/stdout."""

    def __init__(self, binary, hosts, timeout_ms, base):
        self.p = subprocess.Popen([binary, hosts, str(timeout_ms), base], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                  bufsize=1)
        self.lines = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        line = self.wait(lambda l: l.startswith(("CONNECTED", "Error")), 30)
        assert line.startswith("CONNECTED"), line
        _, self.host, sid = line.split()
        self.session = int(sid, 16)

    def _read(self):
        for line in self.p.stdout:
            with self.lock:
                self.lines.append(line.strip())

    def wait(self, pred, timeout, start=0):
        def find():
            with self.lock:
                return next((l for l in self.lines[start:] if pred(l)), None)
        try:
            return wait_until(find, timeout, "probe output")
        except AssertionError:
            with self.lock:
                raise AssertionError(f"probe output so far: {self.lines}") from None

    def mark(self):
        with self.lock:
            return len(self.lines)

    def command(self, cmd, reply_prefixes, timeout=20):
        m = self.mark()
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        return self.wait(lambda l: l.startswith(reply_prefixes), timeout, m)

    def close(self):
        self.command("close", ("CLOSED", "ERR"))
        self.p.wait(timeout=10)

    def kill9(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()


def probe_binary(rzk, given):
    if given:
        return given
    target = os.path.dirname(os.path.dirname(rzk))
    path = os.path.join(target, "debug", "examples", "session_failover")
    if not os.path.exists(path):
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        subprocess.run(["cargo", "build", "-q", "-p", "rzk-client", "--example", "session_failover"],
                       cwd=root, check=True, env={**os.environ, "CARGO_TARGET_DIR": target})
    return path


def check_failover(ens, probe_bin, want):
    """The client's server (a `want`, leader or follower) is killed -9; the session moves."""
    base = f"/failover-{want}"
    for _ in range(40):
        probe = Probe(probe_bin, ens.hosts(ens.participants), PROBE_SESSION_MS, base)
        node = ens.node_of(probe.host)
        if ens.mode(node) == want:
            break
        probe.close()
    else:
        raise AssertionError(f"the probe never connected to a {want}")
    assert probe.command("setup", ("READY", "ERR")) == "READY"
    m = probe.mark()
    t0 = time.time()
    ens.kill9(node)
    print(f"  kill -9 {want} {node} (the client's server)")
    line = probe.wait(lambda l: l.startswith("STATE Connected") and not l.split()[2] == probe.host,
                      30, m)
    moved_ms = (time.time() - t0) * 1000
    new_host, sid = line.split()[2], int(line.split()[3], 16)
    assert sid == probe.session, f"session changed: {sid:x} != {probe.session:x}"
    assert probe.command("check", ("OK", "ERR")) == f"OK {probe.session:x}"
    others = [i for i in ens.participants if i != node]
    c = ens.client(others)
    c.set(f"{base}/data", b"changed")
    c.create(f"{base}/later", b"")
    c.create(f"{base}/kids/k1", b"")
    close(c)
    want_events = {f"EVENT NodeDataChanged {base}/data (data)",
                   f"EVENT NodeCreated {base}/later (exists)",
                   f"EVENT NodeChildrenChanged {base}/kids (child)"}

    def fired():
        with probe.lock:
            return want_events <= set(probe.lines)
    try:
        wait_until(fired, 15, "watch events")
    except AssertionError:
        raise AssertionError(f"watches lost after failover: {probe.lines}") from None
    ens.start(node)
    ens.wait_settled()
    for i in ens.participants:
        c = ens.client([i])
        c.sync("/")
        _, st = c.get(f"{base}/eph")
        assert st.ephemeralOwner == probe.session, f"node {i}: owner {st.ephemeralOwner:x}"
        close(c)
    print(f"PASS failover from a {want}: session 0x{probe.session:x} moved {probe.host} -> "
          f"{new_host} in {moved_ms:.0f} ms with its ephemeral and 3 one-shot watches (fired)")
    return probe, base


def check_expiry(ens, probes):
    """The clients die; the leader expires their sessions; ephemerals go everywhere."""
    clients = {i: ens.client([i]) for i in ens.running()}
    paths = [f"{base}/eph" for _, base in probes]
    for i, c in clients.items():
        for p in paths:
            assert c.exists(p), f"{p} missing on {i} before the client died"
    for probe, _ in probes:
        probe.kill9()
    t0 = time.time()
    gone_at = {}
    while len(gone_at) < len(clients) and time.time() - t0 < PROBE_SESSION_MS / 1000 * 3 + 10:
        for i, c in clients.items():
            if i not in gone_at and not any(c.exists(p) for p in paths):
                gone_at[i] = time.time() - t0
        time.sleep(0.05)
    for c in clients.values():
        close(c)
    assert len(gone_at) == len(clients), f"ephemerals still present: gone on {gone_at}"
    first = min(gone_at.values())
    assert first >= PROBE_SESSION_MS / 1000 * 0.5, f"ephemerals removed after {first:.2f}s"
    print(f"PASS expiry: ephemerals of {len(probes)} dead clients gone on every member after "
          f"{min(gone_at.values()):.1f}-{max(gone_at.values()):.1f} s "
          f"(session timeout {PROBE_SESSION_MS / 1000:.0f} s)")


class Writer(threading.Thread):
    """Creates sequential nodes as fast as it can; records the acknowledged ones."""

    def __init__(self, ens, nodes, path="/acked"):
        super().__init__(daemon=True)
        self.path = path
        self.c = ens.client(nodes)
        self.c.ensure_path(path)
        self.acked = []
        self.errors = 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                p = self.c.create(f"{self.path}/w-", b"x", sequence=True)
                self.acked.append(p.rsplit("/", 1)[1])
            except Exception:  # noqa: BLE001 - counted, retried
                self.errors += 1
                time.sleep(0.01)

    def stop(self):
        self.halt.set()
        self.join(timeout=30)
        close(self.c)


def check_acked_everywhere(ens, w):
    acked = set(w.acked)
    for i in ens.running():
        c = ens.client([i])
        c.sync("/")
        kids = set(c.get_children(w.path))
        missing = acked - kids
        assert not missing, f"node {i} lost {len(missing)} acknowledged writes, e.g. {sorted(missing)[:5]}"
        close(c)
    return len(acked)


def check_crashes(ens):
    w = Writer(ens, ens.participants)
    w.start()
    time.sleep(1.5)
    leader = ens.wait_settled()
    ens.kill9(leader)
    print(f"  kill -9 leader {leader}")
    rest = [i for i in ens.ids if i != leader]
    new_leader = ens.wait_settled(rest)
    time.sleep(1.5)
    ens.start(leader)
    ens.wait_settled()
    time.sleep(1.0)
    follower = [i for i in ens.participants if i != new_leader][0]
    ens.kill9(follower)
    print(f"  kill -9 follower {follower}")
    time.sleep(1.5)
    ens.start(follower)
    ens.wait_settled()
    time.sleep(1.0)
    w.stop()
    n = check_acked_everywhere(ens, w)
    assert n > 50, f"only {n} writes acknowledged"
    h = converged(ens)
    print(f"PASS crashes: {n} acknowledged writes ({w.errors} retried errors) on every node; "
          f"converged at {h}")


def check_sigstop(ens):
    leader = ens.wait_settled()
    ens.signal(leader, signal.SIGSTOP)
    print(f"  SIGSTOP leader {leader}")
    try:
        rest = [i for i in ens.ids if i != leader]
        new_leader = ens.wait_settled(rest, timeout=60)
        c = ens.client(rest)
        c.create("/while-stopped", b"s")
        close(c)
    finally:
        ens.signal(leader, signal.SIGCONT)
    print(f"  SIGCONT {leader}; new leader {new_leader}")
    final = ens.wait_settled(timeout=60)
    assert final == new_leader, f"leader changed again: {final}"
    assert ens.mode(leader) == "follower"
    c = ens.client([leader])
    c.sync("/")
    assert c.get("/while-stopped")[0] == b"s"
    close(c)
    converged(ens)
    print(f"PASS sigstop: old leader {leader} stepped down and rejoined as follower of {new_leader}")


def run_basic(args):
    ens = Ensemble(args.rzk, args.port, args.tick)
    probe_bin = probe_binary(args.rzk, args.probe)

    def body():
        ens.start_all()
        check_election(ens)
        check_replication(ens)
        check_rejoin(ens)
        probes = [check_failover(ens, probe_bin, "follower"),
                  check_failover(ens, probe_bin, "leader")]
        check_expiry(ens, probes)
        check_crashes(ens)
        check_sigstop(ens)
    run_variant("basic", ens, body)


# ---------------------------------------------------------------------------- observer

def check_observer(ens):
    obs = ens.observers.copy().pop()
    assert ens.mode(obs) == "observer", f"srvr of {obs}: {ens.mode(obs)}"
    leader = ens.wait_settled()
    oc = ens.client([obs])
    # INFORM: a write through the leader reaches the observer without a sync.
    lc = ens.client([leader])
    lc.ensure_path("/obs")
    seen = threading.Event()
    oc.exists("/obs/from-leader", watch=lambda e: seen.set())
    lc.create("/obs/from-leader", b"L")
    wait_until(lambda: oc.exists("/obs/from-leader"), 10, "INFORM on the observer")
    assert seen.wait(10), "the observer's exists watch did not fire"
    assert oc.get("/obs/from-leader")[0] == b"L"
    # A write through the observer is forwarded and commits on every member.
    oc.create("/obs/from-observer", b"O")
    for i in ens.ids:
        c = ens.client([i])
        c.sync("/")
        assert c.get("/obs/from-observer")[0] == b"O", f"node {i}"
        close(c)
    # Every committed write: a burst through the participants, all visible on the observer.
    w = Writer(ens, ens.participants, "/obs-burst")
    w.start()
    time.sleep(1.0)
    w.stop()
    oc.sync("/")
    kids = set(oc.get_children("/obs-burst"))
    missing = set(w.acked) - kids
    assert not missing and w.acked, f"observer misses {len(missing)} of {len(w.acked)} writes"
    converged(ens)
    print(f"PASS observer serves: Mode observer, INFORM of every committed write "
          f"({len(w.acked)} burst writes), reads, watches, forwarded writes")
    # The observer restarts and rejoins the settled ensemble: no election, epoch stays.
    close(oc)
    epoch = ens.zxid(leader) >> 32
    ens.kill9(obs)
    lc.create("/obs/while-observer-down", b"d")
    ens.start(obs)
    assert ens.wait_settled() == leader, "the leader changed when the observer restarted"
    oc = ens.client([obs])
    wait_until(lambda: oc.exists("/obs/while-observer-down"), 10, "catch-up on the observer")
    epochs = {i: ens.zxid(i) >> 32 for i in ens.ids}
    assert set(epochs.values()) == {epoch}, f"epoch changed from {epoch}: {epochs}"
    close(lc)
    print(f"PASS observer rejoin: restarted observer caught up with leader {leader}, "
          f"epoch stays {epoch}")
    # One participant down: writes through the observer still commit.
    f1 = [i for i in ens.participants if i != leader][0]
    ens.kill9(f1)
    print(f"  kill -9 follower {f1}")
    oc.create("/obs/one-down", b"1")
    close(oc)
    # Two participants down: the observer must not help form a quorum.
    ens.kill9(leader)
    print(f"  kill -9 leader {leader}")
    f2 = [i for i in ens.participants if i not in (leader, f1)][0]
    # f2 and the observer notice the leader's loss at once (its links close).
    time.sleep(1.0)
    marks = {i: ens.log_mark(i) for i in (f2, obs)}
    t0 = time.time()
    stalled, how = write_stalls(ens, [obs, f2], "/obs/two-down", 6)
    assert stalled, "a write committed with 2 of 3 participants down"
    time.sleep(max(0.0, 8 - (time.time() - t0)))
    ens.assert_no_quorum([f2, obs], marks)
    print(f"  2 of 3 participants down: for 8 s nobody led, followed or served; write {how}")
    ens.start(f1)
    new_leader = ens.wait_settled()
    oc = ens.client([obs])
    oc.create("/obs/recovered", b"r")
    close(oc)
    ens.start(leader)
    ens.wait_settled()
    converged(ens)
    print(f"PASS observer never votes: writes stall with 2 of 3 participants down, commit with 1 "
          f"down; restart -> leader {new_leader}, all converge")


def run_observer(args):
    ens = Ensemble(args.rzk, args.port + 2000, args.tick, participants=3, observers=1)

    def body():
        ens.start_all()
        check_election(ens, followers=2, observers=1)
        check_observer(ens)
    run_variant("observer", ens, body)


# ---------------------------------------------------------------------------- five

def check_five(ens):
    leader = check_election(ens, followers=4)
    w = Writer(ens, ens.ids, "/five")
    w.start()
    time.sleep(1.0)
    f = [i for i in ens.ids if i != leader][0]
    ens.kill9(leader)
    ens.kill9(f)
    print(f"  kill -9 leader {leader} and follower {f}")
    rest = ens.running()
    t0 = time.time()
    new_leader = ens.wait_settled(rest)
    print(f"  3 of 5 left: leader {new_leader} after {(time.time() - t0) * 1000:.0f} ms")
    n0 = len(w.acked)
    wait_until(lambda: len(w.acked) > n0 + 20, 20, "writes with 3 of 5")
    w.stop()
    third = [i for i in rest if i != new_leader][0]
    ens.kill9(third)
    print(f"  kill -9 follower {third}")
    rest = ens.running()
    time.sleep(1.0)
    marks = {i: ens.log_mark(i) for i in rest}
    stalled, how = write_stalls(ens, rest, "/five-stalled", 6)
    assert stalled, "a write committed with 2 of 5 members"
    ens.assert_no_quorum(rest, marks)
    print(f"  2 of 5 left: for 6 s nobody led, followed or served; write {how}")
    for i in (leader, f, third):
        ens.start(i)
    t0 = time.time()
    final = ens.wait_settled()
    n = check_acked_everywhere(ens, w)
    h = converged(ens)
    print(f"PASS five: served with 3 of 5, no quorum with 2, restart converged in "
          f"{(time.time() - t0) * 1000:.0f} ms (leader {final}); {n} acknowledged writes on "
          f"all 5; digest {h}")


def run_five(args):
    ens = Ensemble(args.rzk, args.port + 2400, args.tick, participants=5)

    def body():
        ens.start_all()
        check_five(ens)
    run_variant("five", ens, body)


def run_variant(name, ens, body):
    ok = False
    t0 = time.time()
    print(f"== variant {name}")
    try:
        body()
        ok = True
    finally:
        ens.stop_all()
        if ok:
            shutil.rmtree(ens.base, ignore_errors=True)
        else:
            print(f"FAILED variant {name}; logs kept in {ens.base}", file=sys.stderr)
    print(f"== variant {name} passed in {time.time() - t0:.1f} s")


# ---------------------------------------------------------------------------- fifo

def fifo_binary(rzk):
    target = os.path.dirname(os.path.dirname(rzk))
    profile = os.path.basename(os.path.dirname(rzk))
    path = os.path.join(target, profile, "examples", "fifo_check")
    if not os.path.exists(path):
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        cmd = ["cargo", "build", "-q", "-p", "rzk-testkit", "--example", "fifo_check"]
        if profile == "release":
            cmd.append("--release")
        subprocess.run(cmd, cwd=root, check=True, env={**os.environ, "CARGO_TARGET_DIR": target})
    return path


def check_fifo(ens, binary, rounds):
    leader = ens.wait_settled()
    followers = [i for i in ens.participants if i != leader]
    targets = [("leader", [leader], 0.0), ("followers", followers, 0.0),
               ("observer", sorted(ens.observers), 0.0), ("moving", ens.ids, 0.2)]
    total = 0
    for seed, (name, nodes, move) in enumerate(targets, start=1):
        cmd = [binary, "--hosts", ens.hosts(nodes), "--sessions", "8", "--rounds", str(rounds),
               "--seed", str(seed * 1000), "--move", str(move)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        out = (r.stdout + r.stderr).strip()
        assert r.returncode == 0, f"fifo_check on the {name} failed:\n{out}"
        last = out.splitlines()[-1]
        assert " wrong=0 " in f" {last} ", last
        print(f"  {name}: {last}")
        total += int(last.split("rounds=")[1].split()[0])
    print(f"PASS fifo: {total} pipelined rounds, 0 wrong, on leader, followers, observer "
          f"and moving sessions")


def run_fifo(args):
    ens = Ensemble(args.rzk, args.port + 2800, args.tick, participants=3, observers=1)
    binary = fifo_binary(args.rzk)

    def body():
        ens.start_all()
        check_election(ens, followers=2, observers=1)
        check_fifo(ens, binary, args.fifo_rounds)
    run_variant("fifo", ens, body)


VARIANTS = {"basic": run_basic, "observer": run_observer, "five": run_five, "fifo": run_fifo}


def main():
    logging.basicConfig(level=logging.CRITICAL)
    ap = argparse.ArgumentParser()
    ap.add_argument("--rzk", default="target/debug/rzk")
    ap.add_argument("--probe", help="session_failover example binary (built if missing)")
    ap.add_argument("--port", type=int, default=26100)
    ap.add_argument("--tick", type=int, default=500)
    ap.add_argument("--variants", default="basic,observer,five,fifo")
    ap.add_argument("--fifo-rounds", type=int, default=250,
                    help="rounds per session of each fifo_check run (8 sessions)")
    args = ap.parse_args()
    args.rzk = os.path.abspath(args.rzk)
    names = [v for v in args.variants.split(",") if v]
    for v in names:
        if v not in VARIANTS:
            ap.error(f"unknown variant {v}; known: {', '.join(VARIANTS)}")
    for v in names:
        VARIANTS[v](args)
    print("all ensemble checks passed")


if __name__ == "__main__":
    main()
