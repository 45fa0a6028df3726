#!/usr/bin/env python3
"""A 3-node rzk ensemble on 127.0.0.1, as real processes, through real kazoo clients.

  .venv-tests/bin/python tests/ensemble/ensemble_test.py --rzk target/debug/rzk

Checks, in order (each prints PASS or raises):
  1. election: exactly one leader and two followers; the leader reports 2 synced followers;
  2. replication: a write through every node is visible on every node (after sync);
  3. kill -9 of the leader, then of a follower, each restarted, while a client keeps
     writing: every acknowledged write is on every node, and all nodes converge to the
     same zxid and tree digest (4lw `hash`);
  4. SIGSTOP of the leader past syncLimit: the others elect a new leader and keep
     accepting writes; after SIGCONT the old leader rejoins as a follower with the data.
Only processes this script started are signalled (by PID). Data dirs under a temp dir,
kept on failure.
"""
import argparse
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from kazoo.client import KazooClient
from kazoo.retry import KazooRetry

N = 3


def four(port, cmd):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(cmd.encode())
            out = b""
            while True:
                b = s.recv(4096)
                if not b:
                    return out.decode(errors="replace")
                out += b
    except OSError:
        return ""


def field(text, name):
    for line in text.splitlines():
        if line.startswith(name):
            return line.split(":", 1)[1].strip() if ":" in line else line.split("\t", 1)[1]
    return None


class Ensemble:
    def __init__(self, rzk, port, tick):
        self.rzk = rzk
        self.tick = tick
        self.base = tempfile.mkdtemp(prefix="rzk-ensemble-")
        self.pids = {}
        self.client_port = {i: port + i for i in range(1, N + 1)}
        self.servers = [f"server.{i}=127.0.0.1:{port + 100 + i}:{port + 200 + i}" for i in range(1, N + 1)]

    def start(self, i):
        d = os.path.join(self.base, f"n{i}")
        os.makedirs(os.path.join(d, "data"), exist_ok=True)
        with open(os.path.join(d, "data", "myid"), "w") as f:
            f.write(f"{i}\n")
        cfg = os.path.join(d, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write("\n".join([f"tickTime={self.tick}", "initLimit=10", "syncLimit=5",
                               f"dataDir={d}/data", f"clientPort={self.client_port[i]}",
                               "clientPortAddress=127.0.0.1", "4lw.commands.whitelist=*",
                               "maxClientCnxns=0", *self.servers]) + "\n")
        log = open(os.path.join(d, "server.log"), "ab")
        p = subprocess.Popen([self.rzk, "server", "--config", cfg], stdout=log, stderr=log,
                             env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")})
        self.pids[i] = p

    def signal(self, i, sig):
        self.pids[i].send_signal(sig)

    def kill9(self, i):
        p = self.pids.pop(i)
        p.send_signal(signal.SIGKILL)
        p.wait()

    def stop_all(self):
        for i in list(self.pids):
            self.pids[i].send_signal(signal.SIGCONT)
            self.kill9(i)

    def mode(self, i):
        return field(four(self.client_port[i], "srvr"), "Mode")

    def wait_settled(self, nodes=None, timeout=60):
        nodes = nodes or list(range(1, N + 1))
        deadline = time.time() + timeout
        modes = {}
        while time.time() < deadline:
            modes = {i: self.mode(i) for i in nodes}
            vals = list(modes.values())
            if vals.count("leader") == 1 and vals.count("follower") == len(nodes) - 1:
                return [i for i, m in modes.items() if m == "leader"][0]
            time.sleep(0.05)
        raise AssertionError(f"ensemble did not settle: {modes}; logs in {self.base}")

    def client(self, nodes):
        hosts = ",".join(f"127.0.0.1:{self.client_port[i]}" for i in nodes)
        c = KazooClient(hosts=hosts, timeout=10.0,
                        connection_retry=KazooRetry(max_tries=-1, delay=0.02, max_delay=0.2),
                        command_retry=KazooRetry(max_tries=-1, delay=0.02, max_delay=0.2))
        c.start(timeout=30)
        return c


def check_election(ens):
    leader = ens.wait_settled()
    deadline = time.time() + 10
    while time.time() < deadline:
        synced = field(four(ens.client_port[leader], "mntr"), "zk_synced_followers")
        if synced == "2":
            break
        time.sleep(0.1)
    assert synced == "2", f"leader {leader} reports {synced} synced followers"
    print(f"PASS election: leader {leader}, 2 synced followers")
    return leader


def check_replication(ens):
    for i in range(1, N + 1):
        c = ens.client([i])
        c.ensure_path("/rep")
        c.create(f"/rep/from-{i}", f"v{i}".encode())
        c.stop()
        c.close()
    for j in range(1, N + 1):
        c = ens.client([j])
        c.sync("/")
        kids = sorted(c.get_children("/rep"))
        assert kids == [f"from-{i}" for i in range(1, N + 1)], f"node {j} sees {kids}"
        for i in range(1, N + 1):
            assert c.get(f"/rep/from-{i}")[0] == f"v{i}".encode()
        c.stop()
        c.close()
    print("PASS replication: writes through every node visible on every node")


class Writer(threading.Thread):
    """Creates sequential nodes as fast as it can; records the acknowledged ones."""

    def __init__(self, ens):
        super().__init__(daemon=True)
        self.c = ens.client(range(1, N + 1))
        self.c.ensure_path("/acked")
        self.acked = []
        self.errors = 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                p = self.c.create("/acked/w-", b"x", sequence=True)
                self.acked.append(p.rsplit("/", 1)[1])
            except Exception:
                self.errors += 1
                time.sleep(0.01)

    def stop(self):
        self.halt.set()
        self.join(timeout=30)
        self.c.stop()
        self.c.close()


def converged(ens, timeout=30):
    deadline = time.time() + timeout
    hashes = {}
    while time.time() < deadline:
        hashes = {i: four(ens.client_port[i], "hash").strip() for i in range(1, N + 1)}
        if len(set(hashes.values())) == 1 and all(hashes.values()):
            return hashes[1]
        time.sleep(0.1)
    raise AssertionError(f"nodes did not converge: {hashes}")


def check_crashes(ens):
    w = Writer(ens)
    w.start()
    time.sleep(1.5)
    leader = ens.wait_settled()
    ens.kill9(leader)
    print(f"  kill -9 leader {leader}")
    rest = [i for i in range(1, N + 1) if i != leader]
    new_leader = ens.wait_settled(rest)
    time.sleep(1.5)
    ens.start(leader)
    ens.wait_settled()
    time.sleep(1.0)
    follower = [i for i in range(1, N + 1) if i != new_leader][0]
    ens.kill9(follower)
    print(f"  kill -9 follower {follower}")
    time.sleep(1.5)
    ens.start(follower)
    ens.wait_settled()
    time.sleep(1.0)
    w.stop()
    acked = set(w.acked)
    assert len(acked) > 50, f"only {len(acked)} writes acknowledged"
    for i in range(1, N + 1):
        c = ens.client([i])
        c.sync("/")
        kids = set(c.get_children("/acked"))
        missing = acked - kids
        assert not missing, f"node {i} lost {len(missing)} acknowledged writes, e.g. {sorted(missing)[:5]}"
        c.stop()
        c.close()
    h = converged(ens)
    print(f"PASS crashes: {len(acked)} acknowledged writes ({w.errors} retried errors) on every node; "
          f"converged at {h}")


def check_sigstop(ens):
    leader = ens.wait_settled()
    ens.signal(leader, signal.SIGSTOP)
    print(f"  SIGSTOP leader {leader}")
    try:
        rest = [i for i in range(1, N + 1) if i != leader]
        new_leader = ens.wait_settled(rest, timeout=60)
        c = ens.client(rest)
        c.create("/while-stopped", b"s")
        c.stop()
        c.close()
    finally:
        ens.signal(leader, signal.SIGCONT)
    print(f"  SIGCONT {leader}; new leader {new_leader}")
    final = ens.wait_settled(timeout=60)
    assert final == new_leader, f"leader changed again: {final}"
    assert ens.mode(leader) == "follower"
    c = ens.client([leader])
    c.sync("/")
    assert c.get("/while-stopped")[0] == b"s"
    c.stop()
    c.close()
    converged(ens)
    print(f"PASS sigstop: old leader {leader} stepped down and rejoined as follower of {new_leader}")


def main():
    logging.basicConfig(level=logging.ERROR)
    ap = argparse.ArgumentParser()
    ap.add_argument("--rzk", default="target/debug/rzk")
    ap.add_argument("--port", type=int, default=42100)
    ap.add_argument("--tick", type=int, default=500)
    args = ap.parse_args()
    ens = Ensemble(os.path.abspath(args.rzk), args.port, args.tick)
    ok = False
    try:
        for i in range(1, N + 1):
            ens.start(i)
        check_election(ens)
        check_replication(ens)
        check_crashes(ens)
        check_sigstop(ens)
        ok = True
    finally:
        ens.stop_all()
        if ok:
            shutil.rmtree(ens.base, ignore_errors=True)
        else:
            print(f"FAILED; logs kept in {ens.base}", file=sys.stderr)
    print("all ensemble checks passed")


if __name__ == "__main__":
    main()
