#!/usr/bin/env python3
"""Mixed ensembles of rzk and Apache ZooKeeper 3.8 as real processes (ports 22900-22999):

  zk2rzk1   ZooKeeper 1, 2 + rzk 3. rzk leads first (started first, highest myid); writes
            through every member, equal trees everywhere. TRUNC: both ZooKeeper followers
            killed -9, a write sent to the rzk leader (logged, never acknowledged), the
            leader killed -9, the followers restarted: a ZooKeeper member leads; the restarted
            rzk member must log "TRUNC to". DIFF: rzk killed, writes, restarted: "DIFF
            after". SNAP: rzk's data directory emptied (myid kept; the ZooKeeper members run
            with txn-log sync off, zookeeper.snapshotSizeFactor=-1): "SNAP at".
  zk1rzk2   rzk 1, 2 + ZooKeeper 3. ZooKeeper leads first (highest myid); writes through
            every member. TRUNC the other way: rzk followers killed, a write logged only by
            the ZooKeeper leader, it is killed, the rzk members elect; the restarted
            ZooKeeper member must log "Truncating log to". Then, under a kazoo writer, the
            leader is killed -9 twice (each restarted); ZooKeeper restarted empty syncs from
            the rzk leader; every acknowledged write is on every member, equal trees.
  rolling   3 ZooKeeper members under a light write load are replaced one by one by rzk on
            the SAME data directories, then rolled back to ZooKeeper one by one; every
            acknowledged write is on all members with equal data, equal trees everywhere.

  tests/mixed/mixed_test.py --rzk target/debug/rzk --apache scripts/start-apache-zk.sh \
      [--variants zk2rzk1,zk1rzk2,rolling] [--keep]

Prints one line per variant and "N passed, M failed"; exits 1 on a failure. Only processes
started here are signalled (by PID); everything listens on 127.0.0.1.
"""
import argparse
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

from kazoo.client import KazooClient
from kazoo.retry import KazooRetry

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import zkproc  # noqa: E402

TICK = "500"
# ZooKeeper-only JVM properties: no txn-log based sync (a learner behind the committed log
# gets a SNAP), a small committed log.
APACHE_PROPS = ["zookeeper.snapshotSizeFactor=-1", "zookeeper.commitLogCount=20"]


class Ensemble:
    """Three voters: client base+i, quorum base+10+i, election base+20+i; `kinds` maps a
    myid to "rzk" or "apache" and may change between restarts (same data directory)."""

    def __init__(self, args, tmp, name, base, kinds):
        self.args, self.base, self.kinds = args, base, dict(kinds)
        self.dir = os.path.join(tmp, name)
        self.procs = {}
        self.servers = zkproc.server_lines(sorted(kinds), base + 10, base + 20)

    def port(self, i):
        return self.base + i

    def sdir(self, i):
        return os.path.join(self.dir, f"s{i}")

    def log(self, i):
        name = "server.log" if self.kinds[i] == "rzk" else "zookeeper.log"
        return os.path.join(self.sdir(i), name)

    def log_mark(self, i):
        """Where member `i`'s next start writes its log (start-apache-zk.sh empties it)."""
        if self.kinds[i] == "apache":
            return 0
        try:
            return os.path.getsize(self.log(i))
        except OSError:
            return 0

    def log_since(self, i, mark):
        with open(self.log(i), "rb") as f:
            f.seek(mark)
            return f.read().decode(errors="replace")

    def start(self, i, kind=None, extra=()):
        if kind:
            self.kinds[i] = kind
        d = self.sdir(i)
        settings = [f"tickTime={TICK}", "initLimit=20", "syncLimit=20", *extra]
        self.procs[i] = zkproc.start_member(self.kinds[i], self.args, d, self.port(i), i,
                                            settings, self.servers, apache_extra=APACHE_PROPS)

    def stop(self, i, kill=False):
        p = self.procs.pop(i)
        p.kill9() if kill else p.stop(20)
        zkproc.wait_until(lambda: zkproc.mode(self.port(i)) is None, 20, f"member {i} down")

    def stop_all(self):
        for i in list(self.procs):
            self.procs.pop(i).kill9()

    def settled(self, timeout=60):
        ports = [self.port(i) for i in sorted(self.procs)]
        return zkproc.wait_settled(ports, timeout=timeout, where=f" ({self.dir})") - self.base

    def hosts(self, ids=None):
        return ",".join(f"127.0.0.1:{self.port(i)}" for i in (ids or sorted(self.procs)))

    def client(self, ids=None, retry=True):
        r = KazooRetry(max_tries=-1, delay=0.02, max_delay=0.2)
        c = KazooClient(hosts=self.hosts(ids), timeout=6.0, connection_retry=r,
                        command_retry=r if retry else None)
        c.start(timeout=30)
        return c

    def write_through_all(self, tag):
        """One create and one set through every running member (each acknowledged)."""
        for i in sorted(self.procs):
            c = self.client([i])
            try:
                c.ensure_path("/mixed")
                c.create(f"/mixed/{tag}-{i}", f"{tag} via {self.kinds[i]} {i}".encode())
                c.set("/mixed", f"{tag} last via {i}".encode())
            finally:
                close(c)

    def assert_equal_trees(self, must=None, live=False):
        """Every running member (after `sync`) holds the same tree (not compared while a
        writer runs: `live`); `must` (path -> data) entries are present with equal data
        on all of them; no member's log reports a tree digest mismatch (rzk: "tree digest
        mismatch"; ZooKeeper: "First digest mismatch on txn", "Digests are not matching")."""
        for i in sorted(self.procs):
            text = self.log_since(i, 0).lower()
            assert "digest mismatch" not in text and "digests are not matching" not in text, \
                f"member {i} ({self.kinds[i]}) logged a digest mismatch ({self.log(i)})"
        trees = {}
        for i in sorted(self.procs):
            c = self.client([i])
            try:
                c.sync("/")
                trees[i] = walk(c, "/")
            finally:
                close(c)
        first = trees[min(trees)]
        for i, t in trees.items():
            for path, data in (must or {}).items():
                assert t.get(path) == data, \
                    f"acknowledged write {path}={data!r} on member {i}: {t.get(path)!r} ({self.dir})"
            if t != first and not live:
                diff = sorted(set(t.items()) ^ set(first.items()))[:6]
                raise AssertionError(f"member {i} ({self.kinds[i]}) differs: {diff} ({self.dir})")
        return len(first)


def close(c):
    try:
        c.stop()
        c.close()
    except Exception:  # noqa: BLE001 - best-effort teardown
        pass


def walk(c, path):
    """path -> data of every znode under `path` except /zookeeper."""
    out = {}
    for child in c.get_children(path):
        p = (path.rstrip("/") + "/" + child)
        if p == "/zookeeper":
            continue
        out[p] = c.get(p)[0]
        out.update(walk(c, p))
    return out


class Writer(threading.Thread):
    """Creates /load/w<n> in a loop through the given members; records each acknowledged
    write (a failed one is not retried under the same name)."""

    def __init__(self, ens, pause=0.02):
        super().__init__(daemon=True)
        self.ens, self.pause = ens, pause
        self.acked = {}
        self.failed = 0
        self.halt = threading.Event()
        self.c = ens.client(retry=False)
        self.c.ensure_path("/load")

    def run(self):
        n = 0
        while not self.halt.is_set():
            n += 1
            path, data = f"/load/w{n:06d}", f"v{n}".encode()
            try:
                self.c.create(path, data)
                self.acked[path] = data
            except Exception:  # noqa: BLE001 - not acknowledged
                self.failed += 1
                time.sleep(0.05)
            time.sleep(self.pause)

    def finish(self):
        self.halt.set()
        self.join(30)
        close(self.c)
        return self.acked

    def wait_more(self, n, timeout=30):
        start = len(self.acked)
        zkproc.wait_until(lambda: len(self.acked) >= start + n, timeout, f"{n} more acknowledged writes")


def unacked_proposal(e, c, leader, followers):
    """Leaves a proposal that only `leader` has logged: the followers are frozen (SIGSTOP:
    their sockets stay open, so the leader keeps leading and proposes) while `c`, a session
    on the leader, creates /mixed/never-acked; then the leader and the followers are killed.
    Killing the followers first raced with the leader giving up its quorum (within a tick)
    before the create arrived, and then nothing was left to truncate (CI saw that)."""
    for i in followers:
        e.procs[i].signal(signal.SIGSTOP)
    for i in followers:  # kill() only queues the signal: wait until every thread stopped
        zkproc.wait_until(lambda: stopped(e.procs[i].pid), 10, f"member {i} stopped ({e.dir})")
    c.create_async("/mixed/never-acked", b"x")
    deadline = time.time() + 8  # syncLimit (20 ticks of 500 ms) must not pass first
    while not logged(e, leader, "/mixed/never-acked"):
        assert time.time() < deadline, f"leader {leader} did not log the proposal ({e.dir})"
        time.sleep(0.05)
    e.stop(leader, kill=True)
    for i in followers:
        e.stop(i, kill=True)
    for i in followers:
        assert not logged(e, i, "/mixed/never-acked"), f"frozen follower {i} logged it ({e.dir})"


def stopped(pid):
    """True when every thread of process `pid` is in state T (stopped by a signal)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        states = []
        for t in tasks:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
    except OSError:
        return False
    return bool(states) and all(st in ("T", "t") for st in states)


def logged(e, i, path):
    """True when a txn log of member `i` holds a create of `path` (read with `rzk log dump`)."""
    d = os.path.join(e.sdir(i), "data", "version-2")
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if name.startswith("log."):
            out = subprocess.run([e.args.rzk, "log", "dump", os.path.join(d, name)],
                                 capture_output=True, text=True).stdout
            if f" create {path} " in out:
                return True
    return False


def expect_sync(ens, i, mark, word):
    text = ens.log_since(i, mark)
    lines = [ln for ln in text.splitlines() if "syncing with leader" in ln]
    # One sync: a second one means the member left the leader while syncing.
    assert len(lines) == 1 and word in lines[0], f"member {i}: not one {word} sync: {lines}"
    return "; then ".join(ln.split("syncing with leader", 1)[1].strip() for ln in lines)


def apache_sync_kind(ens, i, mark):
    text = ens.log_since(i, mark)
    for needle, kind in (("Getting a diff from the leader", "DIFF"),
                         ("Getting a snapshot from leader", "SNAP"),
                         ("Truncating log to", "TRUNC")):  # Learner.syncWithLeader's lines
        if needle in text:
            return kind
    return "unknown"


# ---------------------------------------------------------------------------- variants

def read_frame(s):
    def exact(n):
        b = b""
        while len(b) < n:
            x = s.recv(n - len(b))
            assert x, "connection closed"
            b += x
        return b
    (n,) = struct.unpack(">i", exact(4))
    return exact(n)


def raw_call(s, xid, op, body):
    """Sends one request; returns (reply zxid, err) of its reply."""
    payload = struct.pack(">ii", xid, op) + body
    s.sendall(struct.pack(">i", len(payload)) + payload)
    _, zxid, err = struct.unpack(">iqi", read_frame(s)[:16])
    return zxid, err


def jute_str(v):
    b = v.encode()
    return struct.pack(">i", len(b)) + b


def create_body(path):
    return (jute_str(path) + struct.pack(">i", -1) + struct.pack(">ii", 1, 31)
            + jute_str("world") + jute_str("anyone") + struct.pack(">i", 0))


def malformed_through_all(e, tag):
    """Through every member, a create, a create whose body ends inside its path, and a
    create: the malformed one is answered MARSHALLINGERROR and takes the zxid between the
    two others (the leader's prep logs it as an error txn, whichever member got it)."""
    for i in sorted(e.procs):
        s = socket.create_connection(("127.0.0.1", e.base + i), timeout=10)
        try:
            req = struct.pack(">iqiqi", 0, 0, 10000, 0, 16) + b"\0" * 16 + b"\0"
            s.sendall(struct.pack(">i", len(req)) + req)
            read_frame(s)
            z0, err0 = raw_call(s, 1, 1, create_body(f"/mixed/{tag}-m{i}a"))
            z1, err1 = raw_call(s, 2, 1, struct.pack(">i", 9) + b"/x")
            z2, err2 = raw_call(s, 3, 1, create_body(f"/mixed/{tag}-m{i}b"))
            assert (err0, err1, err2) == (0, -5, 0), (i, e.kinds[i], err0, err1, err2)
            assert (z1 - z0, z2 - z1) == (1, 1), \
                f"member {i} ({e.kinds[i]}): zxids {z0:#x} {z1:#x} {z2:#x}"
            raw_call(s, 4, -11, b"")
        finally:
            s.close()


def v_zk2rzk1(args, tmp):
    e = Ensemble(args, tmp, "zk2rzk1", args.base_port, {1: "apache", 2: "apache", 3: "rzk"})
    try:
        e.start(3)
        e.start(1)
        e.start(2)
        leader = e.settled()
        assert e.kinds[leader] == "rzk", f"expected rzk 3 to lead, {leader} leads"
        e.write_through_all("a")
        malformed_through_all(e, "a")
        n = e.assert_equal_trees()
        print(f"  rzk 3 leads ZooKeeper 1, 2: {n} znodes equal on all; a malformed write "
              "through each is one error txn", flush=True)

        # TRUNC: a proposal only the rzk leader has logged (its followers killed first).
        c = e.client([3], retry=False)  # the session needs the quorum
        unacked_proposal(e, c, 3, (1, 2))
        close(c)
        for i in (1, 2):
            e.start(i)
        leader = e.settled()
        assert e.kinds[leader] == "apache"
        mark = e.log_mark(3)
        e.start(3)
        e.settled()
        how = expect_sync(e, 3, mark, "TRUNC")
        print(f"  ZooKeeper {leader} leads; restarted rzk 3: {how}", flush=True)
        e.write_through_all("b")
        e.assert_equal_trees()
        c = e.client()
        st = c.exists("/mixed/never-acked")
        assert st is None, f"the unacknowledged write survived: czxid {st.czxid:#x} owner session {c.get('/mixed/never-acked')}"
        close(c)

        # DIFF: rzk misses a few writes.
        e.stop(3, kill=True)
        c = e.client()
        for k in range(5):
            c.create(f"/mixed/d{k}", b"diff")
        close(c)
        mark = e.log_mark(3)
        e.start(3)
        e.settled()
        print(f"  rzk 3 restarted after 5 writes: {expect_sync(e, 3, mark, 'DIFF')}", flush=True)
        e.write_through_all("c")
        e.assert_equal_trees()

        # SNAP: rzk's data directory emptied (myid kept), more writes than the committed log.
        e.stop(3)
        data = os.path.join(e.sdir(3), "data")
        shutil.rmtree(os.path.join(data, "version-2"), ignore_errors=True)
        c = e.client()
        for k in range(30):
            c.create(f"/mixed/s{k}", b"snap")
        close(c)
        mark = e.log_mark(3)
        # With snappy snapshots: the snapshot written on the SNAP takes the setting too
        # (it was written uncompressed; a break-it review, session 57).
        e.start(3, extra=["snapshot.compression.method=snappy"])
        e.settled()
        print(f"  rzk 3 restarted empty: {expect_sync(e, 3, mark, 'SNAP')}", flush=True)
        snaps = [f for f in os.listdir(os.path.join(data, "version-2"))
                 if f.startswith("snapshot.")]
        assert snaps and all(f.endswith(".snappy") for f in snaps), \
            f"rzk 3 with snappy snapshots wrote {snaps} on the SNAP"
        e.write_through_all("d")
        n = e.assert_equal_trees()
        print(f"  {n} znodes equal on all", flush=True)
    finally:
        e.stop_all()


def v_zk1rzk2(args, tmp):
    e = Ensemble(args, tmp, "zk1rzk2", args.base_port + 30, {1: "rzk", 2: "rzk", 3: "apache"})
    w = None
    try:
        e.start(3)
        e.start(1)
        leader = e.settled()  # ZooKeeper 3 and rzk 1 first: 3 leads (higher myid)
        e.start(2)
        assert e.settled() == leader
        assert e.kinds[leader] == "apache", f"expected ZooKeeper 3 to lead, {leader} leads"
        e.write_through_all("a")
        malformed_through_all(e, "a")
        n = e.assert_equal_trees()
        print(f"  ZooKeeper 3 leads rzk 1, 2: {n} znodes equal on all; a malformed write "
              "through each is one error txn", flush=True)

        # TRUNC of ZooKeeper from an rzk leader: a proposal only the ZooKeeper leader logged.
        c = e.client([3], retry=False)  # the session needs the quorum
        unacked_proposal(e, c, 3, (1, 2))
        close(c)
        for i in (1, 2):
            e.start(i)
        leader = e.settled()
        assert e.kinds[leader] == "rzk"
        e.start(3)
        e.settled()
        kind = apache_sync_kind(e, 3, 0)
        print(f"  rzk {leader} leads; restarted ZooKeeper 3 synced by {kind}", flush=True)
        assert kind == "TRUNC", f"ZooKeeper 3 was not truncated by rzk leader {leader} ({e.dir})"
        e.write_through_all("b")
        e.assert_equal_trees()
        c = e.client()
        assert c.exists("/mixed/never-acked") is None, "the unacknowledged write survived"
        close(c)

        # Leader kills under write load: the rzk leader, then whoever leads next.
        w = Writer(e)
        w.start()
        w.wait_more(10)
        for _ in range(2):
            t0 = time.time()
            old = leader
            e.stop(old, kill=True)
            leader = e.settled()
            w.wait_more(10)
            print(f"  {e.kinds[old]} leader {old} killed -9 under load: {e.kinds[leader]} "
                  f"{leader} leads after {time.time() - t0:.1f} s", flush=True)
            e.start(old)
            e.settled()
            w.wait_more(10)
            e.assert_equal_trees(dict(w.acked), live=True)

        # ZooKeeper 3 restarted empty under load syncs from an rzk leader. After the
        # kills above either kind may lead (the election prefers the higher zxid, then
        # the higher id: ZooKeeper 3 wins a tie); with 3 stopped only rzk members are left.
        e.stop(3)
        leader = e.settled()
        assert e.kinds[leader] == "rzk", f"{leader} leads rzk 1 and 2"
        shutil.rmtree(os.path.join(e.sdir(3), "data", "version-2"), ignore_errors=True)
        w.wait_more(15)
        e.start(3)
        e.settled()
        w.wait_more(10)
        kind = apache_sync_kind(e, 3, 0)
        print(f"  ZooKeeper 3 restarted empty: rzk leader {leader} synced it by {kind}", flush=True)
        assert kind in ("SNAP", "DIFF"), f"no sync line in ZooKeeper 3's log ({e.dir})"
        acked = w.finish()
        w = None
        e.write_through_all("c")
        n = e.assert_equal_trees(acked)
        print(f"  {len(acked)} acknowledged writes on all members; {n} znodes equal", flush=True)
    finally:
        if w is not None:
            w.finish()
        e.stop_all()


def v_rolling(args, tmp):
    e = Ensemble(args, tmp, "rolling", args.base_port + 60, {1: "apache", 2: "apache", 3: "apache"})
    w = None
    try:
        for i in (1, 2, 3):
            e.start(i)
        e.settled()
        w = Writer(e, pause=0.05)
        w.start()
        w.wait_more(10)
        for target in ("rzk", "apache"):
            for i in (1, 2, 3):
                e.stop(i)
                e.start(i, target)
                e.settled()
                w.wait_more(5)
            kinds = ",".join(e.kinds[i] for i in (1, 2, 3))
            print(f"  rolled to {kinds}: {len(w.acked)} acknowledged, {w.failed} failed", flush=True)
            if target == "rzk":
                e.write_through_all("rzk")
                e.assert_equal_trees(dict(w.acked), live=True)
        acked = w.finish()
        w = None
        e.write_through_all("back")
        n = e.assert_equal_trees(acked)
        print(f"  {len(acked)} acknowledged writes on all members; {n} znodes equal", flush=True)
    finally:
        if w is not None:
            w.finish()
        e.stop_all()


VARIANTS = {"zk2rzk1": v_zk2rzk1, "zk1rzk2": v_zk1rzk2, "rolling": v_rolling}


def main():
    logging.basicConfig(level=logging.CRITICAL)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rzk", default=os.path.join(ROOT, "target", "debug", "rzk"))
    ap.add_argument("--apache", default=os.path.join(ROOT, "scripts", "start-apache-zk.sh"))
    ap.add_argument("--variants", default="zk2rzk1,zk1rzk2,rolling")
    ap.add_argument("--base-port", type=int, default=22900)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    args.rzk = os.path.abspath(args.rzk)
    # `timeout` in scripts/test.sh sends SIGTERM: unwind so every variant stops its servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))
    tmp = tempfile.mkdtemp(prefix="rzk-mixed-")
    results = []
    for v in args.variants.split(","):
        t0 = time.time()
        print(f"{v}:", flush=True)
        try:
            VARIANTS[v](args, tmp)
            results.append(True)
            print(f"PASS {v} ({time.time() - t0:.1f} s)", flush=True)
        except Exception as ex:  # noqa: BLE001
            results.append(False)
            print(f"FAIL {v}: {ex!r}", flush=True)
            traceback.print_exc()
    failed = not all(results)
    if failed or args.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
