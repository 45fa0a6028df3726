#!/usr/bin/env python3
"""Memory, snapshot and restart benchmark: rzk against Apache ZooKeeper 3.8 in one run.

Called by scripts/bench-memory.sh (which builds rzk and documents the environment). For
each server, one after the other, on the same disk, both with forceSync=yes and the
default snapCount (100000):

1. start it on an empty data directory and read its RSS (VmRSS of the server process);
2. populate it with `rzk bench --op create --count N` (SESSIONS sessions x INFLIGHT
   requests in flight, VALUE_SIZE-byte values, znodes left in place), for each N of
   --counts in turn (cumulative: 100000 then 1000000 means 900000 more); after each, wait
   SETTLE seconds and read RSS and mntr's znode_count. bytes/znode = (RSS - empty RSS) /
   (znode_count - empty znode_count);
3. restart it --repeat times after SIGTERM and --repeat times after SIGKILL. Before each
   stop one setData on /bench-memory-marker is acknowledged, so every restart has a logged
   txn after the newest snapshot to replay. RSS is read once the last restart's snapshot
   is written, and again SETTLE seconds later.

Restart time, precisely: from just before the start command is spawned (the rzk binary
itself; for ZooKeeper scripts/start-apache-zk.sh, which spawns the JVM after writing its
zoo.cfg) to the moment the first getData of /bench-memory-marker, sent on a new session,
is answered with error code 0. A probe (TCP connect, ConnectRequest, getData, each with a
2 s timeout) is attempted every 20 ms until one succeeds. The stopped process has exited
(its PID is gone) before the clock starts.

Snapshot: after each SIGKILL restart the script waits until the server reports a
snapshot in mntr (cnt_snapshottime >= 1: ZooKeeper writes one while it starts, before it
serves; rzk writes one in the background once the replayed txns are applied) and records
max_snapshottime (ms) and the size of the newest snapshot file.

Prints one table with medians and the ratio rzk / ZooKeeper per row, plus a
`RESULT key=value ...` line. Only processes this script started are signalled (by PID).
"""
import argparse
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import zkproc  # noqa: E402

MARKER = "/bench-memory-marker"
MIB = 1024 * 1024


# ------------------------------------------------------------------ raw protocol probe

def _frame(body):
    return struct.pack(">i", len(body)) + body


def _recv_frame(s):
    def exact(n):
        out = b""
        while len(out) < n:
            chunk = s.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        return out

    (n,) = struct.unpack(">i", exact(4))
    if n < 0 or n > 16 * MIB:
        raise ConnectionError(f"bad frame length {n}")
    return exact(n)


def probe_read(port, path, timeout=2.0):
    """One attempt: new session, getData(path). True when the reply's error code is 0."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            # ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly
            s.sendall(_frame(struct.pack(">iqiqi", 0, 0, 30000, 0, 16) + b"\0" * 16 + b"\0"))
            resp = _recv_frame(s)
            if len(resp) < 16:
                return False
            _, timeout_ms, session = struct.unpack(">iiq", resp[:16])
            if timeout_ms <= 0 or session == 0:
                return False
            p = path.encode()
            s.sendall(_frame(struct.pack(">ii", 1, 4) + struct.pack(">i", len(p)) + p + b"\0"))
            reply = _recv_frame(s)
            xid, _zxid, err = struct.unpack(">iqi", reply[:16])
            ok = xid == 1 and err == 0
            # closeSession, so probes do not leave sessions behind.
            s.sendall(_frame(struct.pack(">ii", 2, -11)))
            try:
                _recv_frame(s)
            except OSError:
                pass
            return ok
    except (OSError, ConnectionError, struct.error):
        return False


def time_to_first_read(port, path, t0, limit):
    while time.monotonic() - t0 < limit:
        if probe_read(port, path):
            return time.monotonic() - t0
        time.sleep(0.02)
    raise RuntimeError(f"no successful read on port {port} within {limit}s")


# ------------------------------------------------------------------ helpers

def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def mntr(port):
    out = {}
    for line in zkproc.four(port, "mntr", timeout=5.0).splitlines():
        if "\t" in line:
            k, v = line.split("\t", 1)
            k = k.strip()
            out[k[3:] if k.startswith("zk_") else k] = v.strip()
    return out


def mntr_num(port, key):
    v = mntr(port).get(key)
    try:
        return float(v) if v is not None else None
    except ValueError:
        return None


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def newest_snapshot(data_dir):
    d = os.path.join(data_dir, "version-2")
    best = None
    for name in os.listdir(d):
        if not name.startswith("snapshot.") or name.endswith(".tmp"):
            continue
        try:
            z = int(name.split(".")[1], 16)
        except (IndexError, ValueError):
            continue
        if best is None or z > best[0]:
            best = (z, os.path.join(d, name))
    return best[1] if best else None


# ------------------------------------------------------------------ servers

class Server:
    """One server under test: `start()` returns seconds to the first successful read."""

    def __init__(self, name, port, work, args):
        self.name, self.port, self.args = name, port, args
        self.dir = os.path.join(work, name)
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.dir, exist_ok=True)
        self.pid = None
        self.proc = None  # rzk only: our child

    def start(self, probe_path, limit):
        raise NotImplementedError

    def stop(self, sig, limit=120.0):
        pid = self.pid
        os.kill(pid, sig)
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.proc is not None:
                if self.proc.poll() is not None:
                    break
            elif not pid_alive(pid):
                break
            time.sleep(0.01)
        else:
            os.kill(pid, signal.SIGKILL)
            raise RuntimeError(f"{self.name} (pid {pid}) did not exit within {limit}s of signal {sig}")
        self.pid = None
        self.proc = None

    def kill_quietly(self):
        if self.pid is not None:
            try:
                self.stop(signal.SIGTERM, 30)
            except (OSError, RuntimeError):
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except OSError:
                    pass


class Rzk(Server):
    """rzk; `extra` are more zoo.cfg lines (key=value), e.g. snapCount=N."""

    def __init__(self, port, work, args, extra=()):
        super().__init__("rzk", port, work, args)
        self.cfg = os.path.join(self.dir, "zoo.cfg")
        with open(self.cfg, "w") as f:
            f.write(
                f"tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={self.data}\n"
                f"clientPort={port}\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n"
                "forceSync=yes\n4lw.commands.whitelist=*\nadmin.enableServer=false\n"
                + "".join(f"{kv}\n" for kv in extra)
            )

    def start(self, probe_path, limit):
        log = open(os.path.join(self.dir, "server.log"), "a")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [self.args.rzk, "server", "-c", self.cfg],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.pid = self.proc.pid
        return time_to_first_read(self.port, probe_path, t0, limit)


class Zk(Server):
    """Apache ZooKeeper; `extra` are more zoo.cfg lines (key=value) for the start script."""

    def __init__(self, port, work, args, extra=()):
        super().__init__("zk", port, work, args)
        self.extra = list(extra)

    def start(self, probe_path, limit):
        env = dict(os.environ)
        env["JVMFLAGS"] = (env.get("JVMFLAGS", "") + " " + self.args.zk_heap).strip()
        env["ZK_START_TIMEOUT"] = str(int(limit))
        t0 = time.monotonic()
        p = subprocess.Popen(
            [self.args.start_zk, str(self.port), self.dir, "forceSync=yes", *self.extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
        )
        try:
            took = time_to_first_read(self.port, probe_path, t0, limit)
        finally:
            out, err = p.communicate(timeout=limit)
        if p.returncode != 0:
            raise RuntimeError(f"start-apache-zk.sh failed: {err.decode(errors='replace')}")
        self.pid = int(out.decode().split()[-1])
        return took


# ------------------------------------------------------------------ the run

def shell(args, port, *cmd):
    r = subprocess.run([args.rzk, "shell", "-server", f"127.0.0.1:{port}", *cmd],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def populate(args, srv, count):
    cmd = [args.rzk, "bench", "--hosts", f"127.0.0.1:{srv.port}", "--op", "create",
           "--count", str(count), "--sessions", str(args.sessions), "--inflight", str(args.inflight),
           "--value-size", str(args.value_size), "--warmup", "0", "--duration", "100000",
           "--no-cleanup", "--quiet", "--path", "/bench-memory"]
    t = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True)
    took = time.monotonic() - t
    if r.returncode != 0:
        raise RuntimeError(f"populating {srv.name} failed: {r.stderr[-2000:]}")
    result = [line for line in r.stdout.splitlines() if line.startswith("RESULT")]
    errs = 0
    if result:
        for kv in result[-1].split():
            if kv.startswith("errors="):
                errs = int(kv.split("=")[1])
    return took, errs


def measure(args, srv, res):
    log = lambda msg: print(f"[{srv.name}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    if args.from_data:
        # Restart timing only, on a copy of a data directory populated by an earlier run.
        # cp keeps the logs' zero preallocation sparse, as the server left it.
        subprocess.run(["cp", "-a", "--sparse=always", args.from_data, srv.data], check=True)
        t = srv.start(MARKER, args.start_limit)
        log(f"copied {args.from_data}; first start: first read after {t:.2f}s")
    else:
        populate_all(args, srv, res, log)
    restarts(args, srv, res, log)


def populate_all(args, srv, res, log):
    srv.start("/", args.start_limit)
    time.sleep(args.settle)
    base_rss, base_nodes = rss_bytes(srv.pid), mntr_num(srv.port, "znode_count") or 0
    log(f"empty: RSS {base_rss / MIB:.1f} MiB, {base_nodes:.0f} znodes")
    res[srv.name, "rss_empty"] = base_rss
    rc, out = shell(args, srv.port, "create", MARKER, "m")
    if rc != 0 or "rror" in out:
        raise RuntimeError(f"create {MARKER} on {srv.name}: {out}")
    done = 0
    for n in args.counts:
        took, errs = populate(args, srv, n - done)
        done = n
        time.sleep(args.settle)
        rss, nodes = rss_bytes(srv.pid), mntr_num(srv.port, "znode_count") or 0
        per = (rss - base_rss) / max(nodes - base_nodes, 1)
        log(f"{n} created in {took:.1f}s ({n / took:.0f}/s, {errs} errors): RSS {rss / MIB:.1f} MiB, "
            f"{nodes:.0f} znodes, {per:.0f} B/znode")
        res[srv.name, f"rss_{n}"] = rss
        res[srv.name, f"bpz_{n}"] = per
        res[srv.name, f"populate_s_{n}"] = took


def restarts(args, srv, res, log):
    for kind, sig in (("term", signal.SIGTERM), ("kill", signal.SIGKILL)):
        times, snap_ms, snap_size = [], [], []
        for i in range(args.repeat):
            rc, out = shell(args, srv.port, "set", MARKER, f"{kind}{i}")
            if rc != 0 or "rror" in out:
                raise RuntimeError(f"set {MARKER} on {srv.name}: {out}")
            srv.stop(sig)
            t = srv.start(MARKER, args.start_limit)
            times.append(t)
            msg = f"restart after SIG{kind.upper()} #{i + 1}: first read after {t:.2f}s"
            if kind == "kill":
                deadline = time.monotonic() + args.start_limit
                while time.monotonic() < deadline and (mntr_num(srv.port, "cnt_snapshottime") or 0) < 1:
                    time.sleep(0.2)
                ms = mntr_num(srv.port, "max_snapshottime")
                path = newest_snapshot(srv.data)
                if ms is not None and path:
                    snap_ms.append(ms)
                    snap_size.append(os.path.getsize(path))
                    msg += f"; snapshot {os.path.getsize(path) / MIB:.1f} MiB in {ms:.0f} ms"
            log(msg)
        res[srv.name, f"restart_{kind}"] = statistics.median(times)
        res[srv.name, f"restart_{kind}_all"] = times
        if snap_ms:
            res[srv.name, "snap_ms"] = statistics.median(snap_ms)
            res[srv.name, "snap_size"] = statistics.median(snap_size)
    res[srv.name, "rss_after_restart"] = rss_bytes(srv.pid)
    # Once more after SETTLE idle seconds: memory the allocator returns only with time
    # (jemalloc's decay of the pages the snapshot's copy of the tree freed) is gone then.
    time.sleep(args.settle)
    res[srv.name, "rss_after_restart_settled"] = rss_bytes(srv.pid)
    log(f"RSS after the restarts {res[srv.name, 'rss_after_restart'] / MIB:.1f} MiB, "
        f"{args.settle:.0f}s later {res[srv.name, 'rss_after_restart_settled'] / MIB:.1f} MiB")
    srv.stop(signal.SIGTERM)


def table(args, res, targets):
    rows = [("RSS empty (MiB)", "rss_empty", MIB)]
    for n in args.counts:
        rows.append((f"RSS {n} znodes (MiB)", f"rss_{n}", MIB))
        rows.append((f"bytes/znode at {n}", f"bpz_{n}", 1))
    rows += [
        ("RSS after restarts (MiB)", "rss_after_restart", MIB),
        ("  and SETTLE s later (MiB)", "rss_after_restart_settled", MIB),
        ("snapshot size (MiB)", "snap_size", MIB),
        ("snapshot write (ms)", "snap_ms", 1),
        ("restart after SIGTERM (s)", "restart_term", 1),
        ("restart after SIGKILL (s)", "restart_kill", 1),
        (f"populate {args.counts[-1]} (s)", f"populate_s_{args.counts[-1]}", 1),
    ]
    print()
    print(f"{'metric':<30} {'rzk':>10} {'zk':>10} {'rzk/zk':>7}")
    line = ["RESULT"]
    for title, key, div in rows:
        r, z = res.get(("rzk", key)), res.get(("zk", key))
        fmt = lambda v: "-" if v is None else f"{v / div:.2f}" if div == 1 and v < 100 else f"{v / div:.1f}"  # noqa: E731
        ratio = "-" if r is None or not z else f"{r / z:.2f}"
        print(f"{title:<30} {fmt(r) if 'rzk' in targets else '-':>10} {fmt(z) if 'zk' in targets else '-':>10} {ratio:>7}")
        for t in targets:
            v = res.get((t, key))
            if v is not None:
                line.append(f"{t}_{key}={v / div:.3f}")
    for t in targets:
        for kind in ("term", "kill"):
            v = res.get((t, f"restart_{kind}_all"))
            if v:
                print(f"  {t} restarts after SIG{kind.upper()}: " + ", ".join(f"{x:.2f}s" for x in v))
    print(f"(medians of {args.repeat} restarts; sessions={args.sessions} inflight={args.inflight} "
          f"value={args.value_size}B forceSync=yes; ZooKeeper JVM {args.zk_heap}; ratio = rzk/zk)")
    print(" ".join(line))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rzk", required=True, help="rzk binary (server, shell and bench)")
    ap.add_argument("--start-zk", required=True, help="scripts/start-apache-zk.sh")
    ap.add_argument("--work", required=True, help="parent of the data directories")
    ap.add_argument("--counts", default="100000,1000000")
    ap.add_argument("--targets", default="rzk,zk")
    ap.add_argument("--sessions", type=int, default=32)
    ap.add_argument("--inflight", type=int, default=8)
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--settle", type=float, default=5.0)
    ap.add_argument("--start-limit", type=float, default=300.0)
    ap.add_argument("--rzk-port", type=int, default=24701)
    ap.add_argument("--zk-port", type=int, default=24702)
    ap.add_argument("--from-data", help="skip populating: restart timing only, on a copy of this "
                    "data directory (kept from an earlier run with KEEP=1); use with --targets rzk")
    ap.add_argument("--zk-heap", default="-Xmx1000m",
                    help="JVM heap flag for ZooKeeper (1000m: the default of ZooKeeper's zkEnv.sh)")
    args = ap.parse_args()
    args.counts = [int(c) for c in args.counts.split(",") if c]
    targets = [t for t in args.targets.split(",") if t]
    res = {}
    for t in targets:
        srv = Rzk(args.rzk_port, args.work, args) if t == "rzk" else Zk(args.zk_port, args.work, args)
        try:
            measure(args, srv, res)
        finally:
            srv.kill_quietly()
    table(args, res, targets)


if __name__ == "__main__":
    main()
