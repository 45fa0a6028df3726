#!/usr/bin/env python3
"""kill -9 crash test: every write a client saw acknowledged survives, none appears twice.

Each round starts the server, lets W writer sessions create persistent sequential nodes
under /crash/r<round> (data = a unique token), kills the server with SIGKILL at a random
moment, restarts it and checks through the client protocol that
  * every acknowledged token is present exactly once,
  * every present token was attempted, and no token is present twice.
Writes that were in flight at the kill may or may not be present (at most once).

  crash_test.py --rzk target/debug/rzk --kills 50
  crash_test.py --apache scripts/start-apache-zk.sh --kills 5     # the oracle
"""
import argparse
import os
import random
import shutil
import sys
import tempfile
import threading
import time

from kazoo.client import KazooClient
from kazoo.retry import KazooRetry

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import zkproc  # noqa: E402


class Server:
    def __init__(self, args, workdir):
        self.args = args
        self.port = args.port
        self.workdir = workdir
        self.proc = None

    def start(self):
        if self.args.rzk:
            cfg = zkproc.write_config(os.path.join(self.workdir, "zoo.cfg"), self.port, "forceSync=yes")
            self.proc = zkproc.start_rzk(self.args.rzk, cfg, self.port)
        else:
            self.proc = zkproc.start_apache(self.args.apache, self.port, self.workdir, "forceSync=yes")
        zkproc.wait_serving(self.port, self.proc, what="server (see " + self.workdir + ")")

    def kill9(self):
        self.proc.kill9()
        self.proc = None

    def stop(self):
        if self.proc:
            self.proc.stop()


def client(port, timeout=10.0):
    c = KazooClient(hosts=f"127.0.0.1:{port}", timeout=timeout,
                    connection_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5),
                    command_retry=None)
    c.start(timeout=30)
    return c


def writer(port, base, w, stop, attempted, acked, lock):
    try:
        c = client(port)
    except Exception:
        return
    i = 0
    try:
        while not stop.is_set():
            token = f"{w}-{i}"
            i += 1
            with lock:
                attempted.add(token)
            try:
                c.create_async(base + "/n-", token.encode(), sequence=True).get(timeout=5)
            except Exception:
                break  # in flight at the kill: uncertain
            with lock:
                acked.add(token)
    finally:
        try:
            c.stop()
            c.close()
        except Exception:
            pass


def one_round(server, rnd, writers, rng):
    base = f"/crash/r{rnd}"
    c = client(server.port)
    c.ensure_path(base)
    c.stop()
    c.close()
    stop = threading.Event()
    attempted, acked, lock = set(), set(), threading.Lock()
    threads = [threading.Thread(target=writer, args=(server.port, base, w, stop, attempted, acked, lock))
               for w in range(writers)]
    for t in threads:
        t.start()
    time.sleep(rng.uniform(0.3, 1.5))
    server.kill9()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    server.start()
    c = client(server.port)
    try:
        seen = {}
        for name in c.get_children(base):
            data, _ = c.get(f"{base}/{name}")
            tok = data.decode()
            seen[tok] = seen.get(tok, 0) + 1
    finally:
        c.stop()
        c.close()
    errors = []
    lost = [t for t in acked if seen.get(t, 0) != 1]
    if lost:
        errors.append(f"acknowledged writes missing or duplicated: {sorted(lost)[:10]} ({len(lost)})")
    dup = [t for t, n in seen.items() if n > 1]
    if dup:
        errors.append(f"writes present twice: {sorted(dup)[:10]}")
    phantom = [t for t in seen if t not in attempted]
    if phantom:
        errors.append(f"writes never attempted: {sorted(phantom)[:10]}")
    return len(acked), len(seen), errors


def main():
    ap = argparse.ArgumentParser()
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--rzk", help="path of the rzk binary")
    g.add_argument("--apache", help="path of scripts/start-apache-zk.sh")
    ap.add_argument("--port", type=int, default=21900)
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    print(f"crash test: seed {args.seed}, {args.kills} kills, {args.writers} writers", flush=True)
    workdir = tempfile.mkdtemp(prefix="rzk-crash-")
    server = Server(args, workdir)
    server.start()
    failures = 0
    total_acked = 0
    try:
        for rnd in range(args.kills):
            acked, present, errors = one_round(server, rnd, args.writers, rng)
            total_acked += acked
            status = "ok" if not errors else "FAIL"
            print(f"kill {rnd + 1}: {acked} acknowledged, {present} present: {status}", flush=True)
            for e in errors:
                print("   " + e, flush=True)
            failures += bool(errors)
    finally:
        server.stop()
    if failures:
        where = f"workdir kept: {workdir}"
    else:
        shutil.rmtree(workdir, ignore_errors=True)
        where = "workdir removed"
    print(f"crash test: {args.kills} kills, {total_acked} acknowledged writes checked, {where}")
    print(f"{args.kills - failures} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
