#!/usr/bin/env python3
"""Failover time of a 3-node ensemble: kill -9 the leader, time the first committed write.

  failover.py --kind apache --apache scripts/start-apache-zk.sh --runs 10
  failover.py --kind rzk --rzk target/release/rzk --runs 10

Both kinds get the same tickTime/initLimit/syncLimit. A kazoo client connected to the two
followers writes as soon as it can after the kill; the time from the SIGKILL to the first
successful write is one sample. The killed node is restarted (and must rejoin as a
follower) before the next run. Prints every sample and the median.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

from kazoo.client import KazooClient
from kazoo.retry import KazooRetry

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import zkproc  # noqa: E402

N = 3


class Ensemble:
    def __init__(self, args):
        self.args = args
        self.base = tempfile.mkdtemp(prefix=f"rzk-failover-{args.kind}-")
        self.procs = {}
        self.client_port = {i: args.port + i for i in range(1, N + 1)}
        self.servers = zkproc.server_lines(range(1, N + 1), args.port + 700, args.port + 1700)
        self.common = [f"tickTime={args.tick}", "initLimit=10", "syncLimit=5", "forceSync=yes"]

    def start(self, i):
        d = os.path.join(self.base, f"n{i}")
        port = self.client_port[i]
        if self.args.kind == "apache":
            zkproc.write_myid(os.path.join(d, "data"), i)
            self.procs[i] = zkproc.start_apache(self.args.apache, port, d, *self.common, *self.servers)
        else:
            cfg = zkproc.write_config(os.path.join(d, "zoo.cfg"), port, *self.common,
                                      servers=self.servers, myid=i)
            self.procs[i] = zkproc.start_rzk(self.args.rzk, cfg, port)

    def kill9(self, i):
        self.procs.pop(i).kill9()

    def stop_all(self):
        for i in list(self.procs):
            self.kill9(i)

    def wait_settled(self, timeout=120):
        ports = [self.client_port[i] for i in range(1, N + 1)]
        leader = zkproc.wait_settled(ports, timeout=timeout, where=f"; see {self.base}")
        return leader - self.args.port


def run_once(ens):
    leader = ens.wait_settled()
    followers = [i for i in range(1, N + 1) if i != leader]
    hosts = ",".join(f"127.0.0.1:{ens.client_port[i]}" for i in followers)
    c = KazooClient(hosts=hosts, timeout=10.0,
                    connection_retry=KazooRetry(max_tries=-1, delay=0.01, max_delay=0.1))
    c.start(timeout=30)
    c.ensure_path("/failover")
    t0 = time.monotonic()
    ens.kill9(leader)
    while True:
        try:
            c.create_async("/failover/w-", b"x", sequence=True).get(timeout=2)
            break
        except Exception:
            time.sleep(0.005)
    elapsed = time.monotonic() - t0
    c.stop()
    c.close()
    ens.start(leader)
    return leader, elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=["apache", "rzk"], required=True)
    ap.add_argument("--apache", default="scripts/start-apache-zk.sh")
    ap.add_argument("--rzk", default="target/release/rzk")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--tick", type=int, default=2000)
    ap.add_argument("--port", type=int, default=22300)
    args = ap.parse_args()
    ens = Ensemble(args)
    samples = []
    try:
        for i in range(1, N + 1):
            ens.start(i)
        for r in range(args.runs):
            leader, s = run_once(ens)
            samples.append(s)
            print(f"run {r + 1}: killed leader {leader}, first write after {s * 1000:.0f} ms", flush=True)
        ens.wait_settled()
    finally:
        ens.stop_all()
    print(f"{args.kind}: tickTime {args.tick} ms, failover median {statistics.median(samples) * 1000:.0f} ms "
          f"over {len(samples)} runs (min {min(samples) * 1000:.0f}, max {max(samples) * 1000:.0f})")


if __name__ == "__main__":
    main()
