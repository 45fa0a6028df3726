#!/usr/bin/env python3
"""Failover of a 3-node ensemble under write load: kill -9 the leader, measure the write gap.

  failover.py --kind both --runs 10          # rzk and Apache ZooKeeper, kills interleaved
  failover.py --kind rzk --runs 3 --check    # CI: completes, no acknowledged write lost

One ensemble per kind (3 voters, tickTime 2000 unless --tick, initLimit 10, syncLimit 5,
forceSync=yes; the same settings for both kinds). For each kill, a kazoo client connected
to the two followers writes sequential znodes back to back (one outstanding create,
retried after a connection loss); after a warm-up the leader gets SIGKILL. One sample is
the longest gap between two consecutive acknowledged writes from the last write
acknowledged before the kill until 1 s after writes flow again once the survivors report
a leader and a follower (acknowledgements of writes the dead leader had committed can
arrive just after the kill) — the time clients could not write. (When the write ending
that gap came, counted from the kill, is printed too.)
After each kill the client re-reads the run's znodes (after a sync) and every
acknowledged write must be there; the killed node is restarted and must rejoin before
the next kill. With --kind both, rzk and ZooKeeper kills alternate, so both see the same
machine load. Prints every sample and a table: median / min / max per kind and the
rzk / ZooKeeper ratio of the medians.

Ports: rzk uses --port+1..3 for clients (quorum/election at --port+11.., +21..), ZooKeeper
the same layout at --port+50. Exits non-zero on a failed kill (no write within 60 s, a
lost acknowledged write, an ensemble that does not settle).
"""
import argparse
import logging
import os
import statistics
import sys
import tempfile
import threading
import time

from kazoo.client import KazooClient
from kazoo.retry import KazooRetry

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import zkproc  # noqa: E402

N = 3
WARMUP_S = 0.5
AFTER_S = 1.0
GIVE_UP_S = 60.0


class Ensemble:
    def __init__(self, args, kind, base_port):
        self.args = args
        self.kind = kind
        self.port = base_port
        self.base = tempfile.mkdtemp(prefix=f"rzk-failover-{kind}-")
        self.procs = {}
        self.client_port = {i: base_port + i for i in range(1, N + 1)}
        self.servers = zkproc.server_lines(range(1, N + 1), base_port + 10, base_port + 20)
        self.common = [f"tickTime={args.tick}", "initLimit=10", "syncLimit=5", "forceSync=yes"]
        self.runs = 0

    def start(self, i):
        d = os.path.join(self.base, f"n{i}")
        port = self.client_port[i]
        if self.kind == "apache":
            zkproc.write_myid(os.path.join(d, "data"), i)
            self.procs[i] = zkproc.start_apache(self.args.apache, port, d, *self.common, *self.servers)
        else:
            cfg = zkproc.write_config(os.path.join(d, "zoo.cfg"), port, *self.common,
                                      servers=self.servers, myid=i)
            env = {"RUST_LOG": self.args.rust_log} if self.args.rust_log else None
            self.procs[i] = zkproc.start_rzk(self.args.rzk, cfg, port, env=env)

    def kill9(self, i):
        self.procs.pop(i).kill9()

    def stop_all(self):
        for i in list(self.procs):
            self.kill9(i)

    def wait_settled(self, timeout=120):
        ports = [self.client_port[i] for i in range(1, N + 1)]
        leader = zkproc.wait_settled(ports, timeout=timeout, where=f"; see {self.base}")
        return leader - self.port


class Writer(threading.Thread):
    """Creates sequential znodes under `parent` back to back; records (ack time, path)."""

    def __init__(self, client, parent):
        super().__init__(daemon=True)
        self.c = client
        self.parent = parent
        self.acks = []
        self.errors = 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                path = self.c.create_async(self.parent + "/w-", b"x", sequence=True).get(timeout=2)
            except Exception:
                self.errors += 1
                time.sleep(0.002)
                continue
            self.acks.append((time.monotonic(), path))


def run_once(ens):
    """One kill. Returns (killed leader, longest gap s, kill-to-first-write s, acked writes)."""
    leader = ens.wait_settled()
    ens.runs += 1
    followers = [i for i in range(1, N + 1) if i != leader]
    hosts = ",".join(f"127.0.0.1:{ens.client_port[i]}" for i in followers)
    c = KazooClient(hosts=hosts, timeout=10.0,
                    connection_retry=KazooRetry(max_tries=-1, delay=0.01, max_delay=0.1))
    c.start(timeout=30)
    parent = f"/failover/run-{ens.runs}"
    c.ensure_path(parent)
    w = Writer(c, parent)
    w.start()
    time.sleep(WARMUP_S)
    if not w.acks:
        raise AssertionError(f"{ens.kind}: no write acknowledged before the kill; see {ens.base}")
    t_kill = time.monotonic()
    ens.kill9(leader)
    deadline = t_kill + GIVE_UP_S
    # Writes acknowledged just after the kill may be ones the dead leader committed: the
    # window ends only once the survivors have a serving leader AND writes flow again.
    survivors = [ens.client_port[i] for i in followers]
    settled = None
    while True:
        now = time.monotonic()
        if settled is None:
            modes = sorted(zkproc.mode(p) or "" for p in survivors)
            if modes == ["follower", "leader"]:
                settled = now
        else:
            resumed = next((t for t, _ in list(w.acks) if t > settled), None)
            if resumed is not None and now > resumed + AFTER_S:
                break
        if now > deadline:
            w.halt.set()
            raise AssertionError(f"{ens.kind}: no write acknowledged within {GIVE_UP_S:.0f} s of "
                                 f"killing leader {leader}; see {ens.base}")
        time.sleep(0.02)
    w.halt.set()
    w.join(10)
    acks = list(w.acks)
    times = [t for t, _ in acks]
    before = [t for t in times if t <= t_kill]
    window = [t for t in times if t >= before[-1]]
    # The longest gap, and the write that ended it (the first after the outage).
    gap, first_after = max((b - a, b) for a, b in zip(window, window[1:]))
    # Every acknowledged write must survive the failover.
    c.sync(parent)
    present = set(c.get_children(parent))
    lost = [p for _, p in acks if p.rsplit("/", 1)[1] not in present]
    c.stop()
    c.close()
    if lost:
        raise AssertionError(f"{ens.kind}: {len(lost)} acknowledged writes lost after killing leader "
                             f"{leader}, e.g. {lost[:3]}; see {ens.base}")
    ens.start(leader)
    return leader, gap, first_after - t_kill, len(acks)


def row(kind, samples):
    ms = [s * 1000 for s in samples]
    return (f"| {kind:<9} | {len(ms):>5} | {statistics.median(ms):>6.0f} | {min(ms):>6.0f} "
            f"| {max(ms):>6.0f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kind", choices=["apache", "rzk", "both"], required=True)
    ap.add_argument("--apache", default="scripts/start-apache-zk.sh")
    ap.add_argument("--rzk", default="target/release/rzk")
    ap.add_argument("--runs", type=int, default=10, help="kills per kind")
    ap.add_argument("--tick", type=int, default=2000)
    ap.add_argument("--port", type=int, default=24400)
    ap.add_argument("--rust-log", default=None, help="RUST_LOG for the rzk servers (server.log)")
    ap.add_argument("--check", action="store_true",
                    help="CI: only the safety/liveness checks; no timing table")
    args = ap.parse_args()
    # kazoo warns on every dropped connection; the failovers are expected.
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    kinds = ["rzk", "apache"] if args.kind == "both" else [args.kind]
    ens = {k: Ensemble(args, k, args.port + (50 if k == "apache" else 0)) for k in kinds}
    gaps = {k: [] for k in kinds}
    try:
        for k in kinds:
            for i in range(1, N + 1):
                ens[k].start(i)
        for r in range(args.runs):
            for k in kinds:
                leader, gap, first, n = run_once(ens[k])
                gaps[k].append(gap)
                print(f"{k} kill {r + 1}: leader {leader}, longest write gap {gap * 1000:.0f} ms, "
                      f"writes back {first * 1000:.0f} ms after the kill ({n} writes acknowledged, "
                      f"none lost)", flush=True)
        for k in kinds:
            ens[k].wait_settled()
    finally:
        for e in ens.values():
            e.stop_all()
    if args.check:
        print(f"failover: {args.runs} kills per kind ({', '.join(kinds)}), every one completed "
              f"with no acknowledged write lost")
        return
    print(f"\ntickTime {args.tick} ms, longest write gap around a kill -9 of the leader (ms); "
          f"load average {os.getloadavg()[0]:.2f}")
    print("| kind      | kills | median |    min |    max |")
    print("|-----------|-------|--------|--------|--------|")
    for k in kinds:
        print(row("rzk" if k == "rzk" else "ZooKeeper", gaps[k]))
    if len(kinds) == 2:
        ratio = statistics.median(gaps["rzk"]) / statistics.median(gaps["apache"])
        print(f"rzk / ZooKeeper (medians): {ratio:.2f}")


if __name__ == "__main__":
    main()
