#!/usr/bin/env python3
"""observerMasterPort: an observer syncs from a follower instead of the leader, as real
processes (ports 24650-24899; member i on 127.0.0.i, so every voter can listen on the
same observerMasterPort as ZooKeeper requires).

Each case runs 3 voters (1-3) and one observer (4), all with observerMasterPort set:

  * the observer's learner master (`mntr` observer_master_id) is a follower, and that
    follower's `mntr` counts it (synced_observers 1);
  * sequential creates through the observer and through every voter, in turn, are all
    on the observer, in order (their sequence numbers follow the order of the writes);
  * a session on the observer stays idle for longer than its timeout (its pings reach
    the leader only as touches relayed by the follower) and keeps its ephemeral node;
  * the follower serving the observer is killed -9; writes continue through the
    leader; the observer reconnects to another learner master and catches up: every
    acknowledged write is on it, in order; the observer's session resumes there
    (REVALIDATE through the new master) with its ephemeral, and writes through it work;
  * the observer is stopped, more writes than the committed window (500 txns) are made,
    and the restarted observer syncs from a follower by SNAP and has them all.

Cases (`--cases`, comma-separated):
  rzk        4 rzk members;
  apache     4 Apache ZooKeeper 3.8 members (the oracle);
  zkobs      rzk voters, a ZooKeeper observer (syncs from an rzk follower);
  rzkobs     ZooKeeper voters, an rzk observer (syncs from a ZooKeeper follower).

  tests/observer_master/observer_master_test.py --rzk target/debug/rzk \\
      --apache scripts/start-apache-zk.sh [--cases rzk,apache,zkobs,rzkobs] [--keep]

Prints one line per case and "N passed, M failed"; exits 1 on a failure. Only processes
started here are signalled (by PID).
"""
import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback

from kazoo.client import KazooClient
from kazoo.retry import KazooRetry

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import zkproc  # noqa: E402

TICK = "500"
CASES = {
    "rzk": {1: "rzk", 2: "rzk", 3: "rzk", 4: "rzk"},
    "apache": {1: "apache", 2: "apache", 3: "apache", 4: "apache"},
    "zkobs": {1: "rzk", 2: "rzk", 3: "rzk", 4: "apache"},
    "rzkobs": {1: "apache", 2: "apache", 3: "apache", 4: "rzk"},
}
BASES = {"rzk": 24650, "apache": 24710, "zkobs": 24770, "rzkobs": 24830}
OBSERVER = 4


class Ensemble:
    """Member i: client 127.0.0.1:base+i, quorum 127.0.0.i:base+10+i, election
    127.0.0.i:base+20+i; observerMasterPort base+50 on every member (own address)."""

    def __init__(self, args, tmp, name, kinds):
        self.args, self.kinds, self.base = args, kinds, BASES[name]
        self.dir = os.path.join(tmp, name)
        self.procs = {}
        self.om_port = self.base + 50
        self.servers = zkproc.server_lines(sorted(kinds), self.base + 10, self.base + 20,
                                           observers=(OBSERVER,), host=lambda i: f"127.0.0.{i}")

    def port(self, i):
        return self.base + i

    def start(self, i):
        d = os.path.join(self.dir, f"s{i}")
        settings = [f"tickTime={TICK}", "initLimit=10", "syncLimit=5",
                    f"observerMasterPort={self.om_port}"]
        if i == OBSERVER:
            settings.append("peerType=observer")
        # ZooKeeper: no txn-log based sync, so an observer behind the committed log gets
        # a SNAP.
        self.procs[i] = zkproc.start_member(self.kinds[i], self.args, d, self.port(i), i,
                                            settings, self.servers,
                                            apache_extra=["zookeeper.snapshotSizeFactor=-1"])

    def log(self, i):
        name = "server.log" if self.kinds[i] == "rzk" else "zookeeper.log"
        return os.path.join(self.dir, f"s{i}", name)

    def stop_all(self):
        for i in list(self.procs):
            self.procs.pop(i).kill9()

    def mntr(self, i):
        text = zkproc.four(self.port(i), "mntr") or ""
        rows = {}
        for line in text.splitlines():
            k, _, v = line.partition("\t")
            rows[k.removeprefix("zk_")] = v
        return rows

    def client(self, i):
        r = KazooRetry(max_tries=-1, delay=0.02, max_delay=0.2)
        c = KazooClient(hosts=f"127.0.0.1:{self.port(i)}", timeout=6.0, connection_retry=r,
                        command_retry=r)
        c.start(timeout=30)
        return c

    def master_of_observer(self):
        """The observer's learner master once it serves (observer_master_id)."""
        def master():
            if zkproc.mode(self.port(OBSERVER)) != "observer":
                return None
            m = self.mntr(OBSERVER).get("observer_master_id")
            return int(m) if m is not None and int(m) > 0 else None
        return zkproc.wait_until(master, 60, "observer to serve through a learner master")


def log_has(path, needles):
    """True when the log at `path` contains one of `needles`."""
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError:
        return False
    return any(n in text for n in needles)


def close(c):
    try:
        c.stop()
        c.close()
    except Exception:
        pass


def write_many(c, n, tag, writes):
    """`n` sequential creates through `c`, pipelined (async), in order."""
    ops = [(f"{tag} #{k}".encode(), c.create_async("/om/n-", f"{tag} #{k}".encode(), sequence=True))
           for k in range(n)]
    for data, op in ops:
        path = op.get(timeout=30)
        writes.append((int(path.rsplit("-", 1)[1]), data))


def write_round(e, clients, tag, writes):
    """One sequential create under /om through each member in `clients` in turn; records
    (sequence number, data) in `writes`."""
    for i, c in sorted(clients.items()):
        data = f"{tag} via {i} #{len(writes)}".encode()
        path = c.create("/om/n-", data, sequence=True)
        writes.append((int(path.rsplit("-", 1)[1]), data))


def check_on_observer(e, writes, what):
    """Every write in `writes` is on the observer, in the order the writes were made."""
    c = e.client(OBSERVER)
    try:
        c.sync("/om")
        have = {}
        for name in c.get_children("/om"):
            have[int(name.rsplit("-", 1)[1])] = c.get(f"/om/{name}")[0]
    finally:
        close(c)
    seqs = [s for s, _ in writes]
    assert seqs == sorted(seqs), f"{what}: sequence numbers out of write order: {seqs}"
    missing = [(s, d) for s, d in writes if have.get(s) != d]
    assert not missing, f"{what}: {len(missing)} acknowledged writes missing or different on the observer: {missing[:5]}"


def run_case(args, tmp, name):
    kinds = CASES[name]
    e = Ensemble(args, tmp, name, kinds)
    try:
        # The voters first: an observer that finds no follower's observer master port
        # open yet would (rzk) fall back to the leader's quorum port.
        for i in (1, 2, 3):
            e.start(i)
        zkproc.wait_settled([e.port(i) for i in (1, 2, 3)], timeout=90, where=f" ({e.dir})")
        e.start(OBSERVER)
        ports = [e.port(i) for i in sorted(kinds)]
        leader = zkproc.wait_settled(ports, observers=(e.port(OBSERVER),), timeout=90,
                                     where=f" ({e.dir})") - e.base
        master = e.master_of_observer()
        followers = [i for i in (1, 2, 3) if i != leader]
        assert master in followers, f"observer's learner master is {master}, not a follower {followers} (leader {leader})"
        zkproc.wait_until(lambda: e.mntr(master).get("synced_observers") == "1", 20,
                          f"follower {master} to report synced_observers 1")
        for f in followers:
            if f != master:
                assert e.mntr(f).get("synced_observers", "0") == "0", f"follower {f} claims an observer"

        writes = []
        clients = {i: e.client(i) for i in sorted(kinds)}
        try:
            clients[OBSERVER].ensure_path("/om")
            for r in range(5):
                write_round(e, clients, f"r{r}", writes)
        finally:
            for c in clients.values():
                close(c)
        check_on_observer(e, writes, "before the kill")

        # An idle session on the observer outlives its timeout only through touches the
        # follower relays to the leader.
        oc = KazooClient(hosts=f"127.0.0.1:{e.port(OBSERVER)}", timeout=2.0,
                         connection_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.3),
                         command_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.3))
        oc.start(timeout=30)
        oc.create("/om-eph", b"observer session", ephemeral=True)
        session = oc.client_id[0]
        time.sleep(3.5)
        vc = e.client(leader)
        try:
            owner = vc.exists("/om-eph")
            assert owner is not None and owner.ephemeralOwner == session, \
                "the observer's idle session expired (touches not relayed to the leader)"
        finally:
            close(vc)

        # Kill the follower serving the observer; write through the leader meanwhile.
        e.procs.pop(master).kill9()
        t0 = time.time()
        lc = e.client(leader)
        try:
            for r in range(10):
                write_round(e, {leader: lc}, f"k{r}", writes)
        finally:
            close(lc)

        def new_master():
            if zkproc.mode(e.port(OBSERVER)) != "observer":
                return None
            m = e.mntr(OBSERVER).get("observer_master_id")
            return int(m) if m is not None and int(m) > 0 and int(m) != master else None
        master2 = zkproc.wait_until(new_master, 60, "observer to reconnect to another learner master")
        took = time.time() - t0
        check_on_observer(e, writes, "after the reconnect")
        # The observer's session resumed on it (REVALIDATE through the new master).
        oc.set("/om-eph", b"still here")
        assert oc.client_id[0] == session and oc.get("/om-eph")[0] == b"still here"
        close(oc)
        clients = {i: e.client(i) for i in sorted(e.procs)}
        try:
            for r in range(3):
                write_round(e, clients, f"a{r}", writes)
        finally:
            for c in clients.values():
                close(c)
        check_on_observer(e, writes, "after writes through the new master")

        # Behind the committed window: the restarted observer needs a SNAP.
        e.procs.pop(OBSERVER).stop()
        lc = e.client(leader)
        try:
            write_many(lc, 600, "s", writes)
        finally:
            close(lc)
        e.start(OBSERVER)
        master3 = e.master_of_observer()
        assert master3 in [i for i in e.procs if i not in (leader, OBSERVER)], \
            f"restarted observer's learner master {master3} is not a follower"
        check_on_observer(e, writes, "after a restart behind the committed window")
        snap = log_has(e.log(master3), ["sending a snapshot to an observer", "Sending snapshot"])
        got = log_has(e.log(OBSERVER), ["SNAP at", "Getting a snapshot from leader"])
        assert got, f"the restarted observer did not sync by SNAP ({e.log(OBSERVER)})"
        return (f"leader {leader}, observer via follower {master}; idle session kept; "
                f"after kill -9 of {master} via {master2} in {took:.1f} s, session resumed; "
                f"restart behind the window: SNAP from {master3} (its log says so: {snap}); "
                f"{len(writes)} writes in order")
    finally:
        if not args.keep:
            e.stop_all()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rzk", required=True)
    ap.add_argument("--apache", required=True)
    ap.add_argument("--cases", default="rzk,apache,zkobs,rzkobs",
                    help="CI runs rzk,zkobs,rzkobs (the apache case is the oracle, ~45 s)")
    ap.add_argument("--keep", action="store_true", help="keep the directory and processes")
    args = ap.parse_args()
    args.rzk = os.path.abspath(args.rzk)
    args.apache = os.path.abspath(args.apache)
    logging.basicConfig(level=logging.CRITICAL)
    tmp = tempfile.mkdtemp(prefix="rzk-om-")
    passed = failed = 0
    for name in args.cases.split(","):
        t0 = time.time()
        try:
            what = run_case(args, tmp, name)
            passed += 1
            print(f"PASS {name} ({time.time() - t0:.1f} s): {what}", flush=True)
        except Exception as ex:
            failed += 1
            print(f"FAIL {name} ({time.time() - t0:.1f} s): {ex} (logs in {tmp}/{name})", flush=True)
            traceback.print_exc()
            args.keep = True
    print(f"{passed} passed, {failed} failed")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
