#!/usr/bin/env python3
"""A Jepsen-style fault suite of real processes: rzk or Apache ZooKeeper 3.8 ensembles of 3
or 5 voters, a register workload (read / write / compare-and-set from many kazoo sessions,
plus pipelined sessions), a nemesis schedule (kill -9, SIGSTOP, partitions, disk faults),
then heal, convergence and a linearizability check of the history (linearizability.py).

    faults.py --rzk target/release/rzk --apache scripts/start-apache-zk.sh \\
        --servers rzk,apache --nodes 3 --nemeses kill-leader,partition-leader --duration 20

Member i: quorum and election ports on its own loopback address 127.0.0.(10+i), client
port on 127.0.0.1 (start-apache-zk.sh probes there). Each member runs under its own uid
(25010+i, via setpriv) so that iptables can tell which member opened a connection: a
permanent rule marks every new connection with its opener's uid (CONNMARK), and a cut
link i-j drops every packet of connections i opened to 127.0.0.(10+j) and j opened to
127.0.0.(10+i), both directions. ZooKeeper and rzk both connect from 127.0.0.1 (neither
binds its outgoing quorum sockets), so addresses alone could not say who opened a
connection; the owner of the socket can. Only our own chains (S6FAULTS-*) are touched and
they are removed at exit.

Prints one table row per run and exits 1 when a history is not linearizable, the members
do not converge, a run did too few operations, or the nemesis had no effect.
"""
import argparse
import atexit
import collections
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import zkproc  # noqa: E402
from linearizability import Op, check_history  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import BadVersionError  # noqa: E402
from kazoo.retry import KazooRetry  # noqa: E402

PORT_BASE = 25000
BLOCK = 15  # ports per run: client, quorum, election x 5 members
BLOCKS = 19  # 25000..25284
TICK = 500
INIT_LIMIT = 10
SYNC_LIMIT = 4  # 2 s
SESSION_TIMEOUT = 5.0
OP_TIMEOUT = 3.0
KEYS = ["r0", "r1", "r2"]
ROOT = "/faults"
UID_BASE = 25010
MARK_CHAIN = "S6FAULTS-MARK"
DROP_CHAIN = "S6FAULTS-DROP"

NEMESES = ["none", "kill-random", "kill-leader", "stop-leader", "partition-leader",
           "partition-halves", "partition-bridge", "partition-random"]
DISK_NEMESES = ["disk-fsync-fail", "disk-full", "disk-torn-write", "disk-lose-unsynced"]


def now():
    return time.monotonic()


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def addr(i):
    return f"127.0.0.{10 + i}"


# ---------------------------------------------------------------- the network


def ipt(*args, check=True):
    r = subprocess.run(["iptables", "-w", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"iptables {' '.join(args)}: {r.stderr.strip()}")
    return r.returncode == 0


class Net:
    """Our two iptables chains (filter table, OUTPUT): marks and drops. `cut` adds drops for
    a link, `heal` flushes them, `teardown` removes both chains."""

    def __init__(self, members):
        self.members = members
        self.cuts = set()

    def setup(self):
        self.teardown()
        for chain in (MARK_CHAIN, DROP_CHAIN):
            ipt("-N", chain)
            ipt("-A", "OUTPUT", "-j", chain)
        for i in self.members:
            ipt("-A", MARK_CHAIN, "-m", "conntrack", "--ctstate", "NEW", "-m", "owner",
                "--uid-owner", str(UID_BASE + i), "-j", "CONNMARK", "--set-mark", hex(UID_BASE + i))

    def cut(self, i, j):
        for a, b in ((i, j), (j, i)):
            if (a, b) in self.cuts:
                continue
            ipt("-A", DROP_CHAIN, "-m", "connmark", "--mark", hex(UID_BASE + a), "-m",
                "conntrack", "--ctorigdst", addr(b), "-j", "DROP")
            self.cuts.add((a, b))

    def partition(self, groups):
        """Cuts every link between members of different `groups` (a member may be in two
        groups: a bridge)."""
        for i in self.members:
            for j in self.members:
                if i < j and not any(i in g and j in g for g in groups):
                    self.cut(i, j)

    def heal(self):
        ipt("-F", DROP_CHAIN, check=False)
        self.cuts.clear()

    def teardown(self):
        for chain in (MARK_CHAIN, DROP_CHAIN):
            while ipt("-D", "OUTPUT", "-j", chain, check=False):
                pass
            ipt("-F", chain, check=False)
            ipt("-X", chain, check=False)


# ---------------------------------------------------------------- the ensemble


class Ensemble:
    """`n` voters of `kind` ("rzk" or "apache") in `root`, ports from `base`."""

    def __init__(self, args, kind, n, base, root, env=None):
        self.args, self.kind, self.n, self.base, self.root = args, kind, n, base, root
        self.ids = list(range(1, n + 1))
        self.procs = {}
        self.env = env or {}
        self.servers = zkproc.server_lines(self.ids, base + 4, base + 9, host=addr)
        self.restarts = {i: 0 for i in self.ids}
        # disk faults: the failpoints build, with the durable length of each log recorded
        self.disk = bool(args.disk)
        self.bin = args.rzk_failpoints if self.disk else args.rzk_bin

    def synced_dir(self, i):
        return os.path.join(self.sdir(i), "synced")

    def lose_unsynced(self, i):
        """After a kill -9 of member i: every byte of its transaction logs past the length
        its last fdatasync covered (RZK_FAILPOINT_SYNCED_DIR) is zeroed, as a power loss
        would leave a preallocated file. A log never synced keeps only its header.
        Returns the bytes discarded."""
        logdir = os.path.join(self.sdir(i), "data", "version-2")
        lost = 0
        for name in sorted(os.listdir(logdir)):
            if not name.startswith("log."):
                continue
            path = os.path.join(logdir, name)
            try:
                with open(os.path.join(self.synced_dir(i), name)) as f:
                    text = f.read().strip()
                keep = int(text)  # an unreadable record is a harness failure, not a 0
            except FileNotFoundError:
                keep = 16
            size = os.path.getsize(path)
            if size <= keep:
                continue
            with open(path, "r+b") as f:
                f.seek(keep)
                data = f.read()
                nonzero = len(data.rstrip(b"\0"))
                f.seek(keep)
                f.write(b"\0" * len(data))
                f.flush()
            lost += nonzero
        return lost

    def port(self, i):
        return self.base + i - 1

    def sdir(self, i):
        return os.path.join(self.root, f"m{i}")

    def wrapper(self, i, exe):
        """A script that runs `exe` under member i's uid (exec: same PID)."""
        path = os.path.join(self.root, f"as-m{i}-{os.path.basename(exe)}")
        return zkproc.as_user(path, exe, UID_BASE + i)

    def settings(self):
        return [f"tickTime={TICK}", f"initLimit={INIT_LIMIT}", f"syncLimit={SYNC_LIMIT}",
                "maxSessionTimeout=20000", "snapCount=2000"]

    def chown(self, i):
        uid = UID_BASE + i
        for dirpath, dirnames, filenames in os.walk(self.sdir(i)):
            os.chown(dirpath, uid, uid)
            for f in filenames:
                os.chown(os.path.join(dirpath, f), uid, uid)

    def start(self, i, failpoints=None):
        d = self.sdir(i)
        os.makedirs(d, exist_ok=True)
        if self.kind == "rzk":
            cfg = zkproc.write_config(os.path.join(d, "zoo.cfg"), self.port(i), *self.settings(),
                                      servers=self.servers, myid=i)
            env = dict(self.env)
            if self.disk:
                os.makedirs(self.synced_dir(i), exist_ok=True)
                env["RZK_FAILPOINT_SYNCED_DIR"] = self.synced_dir(i)
                env["RZK_FAILPOINTS"] = failpoints or ""
            self.chown(i)
            self.procs[i] = zkproc.start_rzk(self.wrapper(i, self.bin), cfg, self.port(i),
                                             env=env or None)
        else:
            zkproc.write_myid(os.path.join(d, "data"), i)
            self.chown(i)
            logf = os.path.join(d, "zookeeper.log")
            if os.path.exists(logf):
                os.rename(logf, f"{logf}.{self.restarts[i]}")
            java = shutil.which("java") or "java"
            env = {"JAVA": self.wrapper(i, java), "JVMFLAGS": "-Xmx256m"}
            self.procs[i] = zkproc.start_apache(self.args.apache, self.port(i), d, *self.settings(),
                                                "zookeeper.snapshotSizeFactor=-1", *self.servers,
                                                env=env)

    def start_all(self):
        for i in self.ids:
            self.start(i)
        return self.settled(90)

    def kill(self, i):
        p = self.procs.pop(i, None)
        if p:
            p.kill9()

    def restart(self, i, failpoints=None):
        self.restarts[i] += 1
        zkproc.wait_until(lambda: self.free(i), 30, f"member {i}'s client port free")
        self.start(i, failpoints)

    def free(self, i):
        try:
            zkproc.check_free(self.port(i))
            return True
        except RuntimeError:
            return False

    def stop_all(self):
        for i in list(self.procs):
            p = self.procs.pop(i)
            p.signal(signal.SIGCONT)
            p.kill9()

    def leader(self):
        for i in self.ids:
            if i in self.procs and zkproc.mode(self.port(i), timeout=0.5) == "leader":
                return i
        return None

    def settled(self, timeout=60):
        ports = [self.port(i) for i in self.ids]
        return zkproc.wait_settled(ports, timeout=timeout, where=f" ({self.root})") - self.base + 1

    def hosts(self, first):
        order = [first] + [i for i in self.ids if i != first]
        return ",".join(f"127.0.0.1:{self.port(i)}" for i in order)

    def log_path(self, i):
        return os.path.join(self.sdir(i), "server.log" if self.kind == "rzk" else "zookeeper.log")


# ---------------------------------------------------------------- the workload


class History:
    def __init__(self):
        self.lock = threading.Lock()
        self.ops = []  # dicts

    def add(self, rec):
        with self.lock:
            self.ops.append(rec)


def client(hosts, timeout=SESSION_TIMEOUT):
    r = KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5)
    c = KazooClient(hosts=hosts, timeout=timeout, connection_retry=r, command_retry=None,
                    randomize_hosts=False)
    c.start(timeout=30)
    return c


class Worker(threading.Thread):
    """One session doing read (sync + getData), write (setData) and CAS (setData with a
    version) on the registers; `pipeline` > 1: that many ops issued at once per round."""

    def __init__(self, wid, ens, home, history, stop, seed, pipeline=1):
        super().__init__(daemon=True)
        self.wid, self.ens, self.home, self.history, self.stop = wid, ens, home, history, stop
        self.rng = random.Random(seed)
        self.pipeline = pipeline
        self.counter = 0
        self.seen = {k: 0 for k in KEYS}
        self.error = None

    def run(self):
        try:
            self.c = client(self.ens.hosts(self.home))
        except Exception as e:  # noqa: BLE001 - reported in the run's summary
            self.error = f"start: {e!r}"
            return
        try:
            while not self.stop.is_set():
                if not self.c.connected:
                    time.sleep(0.05)
                    continue
                batch = [self.issue() for _ in range(self.pipeline)]
                for rec, waits in batch:
                    self.finish(rec, waits)
                if self.pipeline == 1:
                    time.sleep(self.rng.random() * 0.01)
        finally:
            try:
                self.c.stop()
                self.c.close()
            except Exception:  # noqa: BLE001
                pass

    def member(self):
        """The member this session is connected to now (by client port), or None."""
        try:
            port = self.c._connection._socket.getpeername()[1]
            return port - self.ens.base + 1
        except Exception:  # noqa: BLE001 - not connected
            return None

    def issue(self):
        key = self.rng.choice(KEYS)
        path = f"{ROOT}/{key}"
        x = self.rng.random()
        rec = {"key": key, "worker": self.wid, "member": self.member()}
        done = {}

        def stamp(_):
            done.setdefault("t", now())
        if x < 0.4:
            rec.update(kind="read", arg=None, call=now())
            a1 = self.c.sync_async(path)
            a2 = self.c.get_async(path)
            a2.rawlink(stamp)
            return rec, (a1, a2, done)
        self.counter += 1
        v = self.wid * 10_000_000 + self.counter
        if x < 0.7:
            rec.update(kind="write", arg=v, call=now())
            a = self.c.set_async(path, str(v).encode(), -1)
        else:
            expect = self.seen[key]
            rec.update(kind="cas", arg=[expect, v], call=now())
            a = self.c.set_async(path, str(v).encode(), expect)
        a.rawlink(stamp)
        return rec, (None, a, done)

    def finish(self, rec, waits):
        a1, a, done = waits
        try:
            if a1 is not None:
                a1.get(timeout=OP_TIMEOUT)
            res = a.get(timeout=OP_TIMEOUT)
            ret = done.get("t", now())
            if rec["kind"] == "read":
                data, stat = res
                rec.update(status="ok", out=[int(data), stat.version], ret=ret)
                self.seen[rec["key"]] = stat.version
            else:
                rec.update(status="ok", out=res.version, ret=ret)
                self.seen[rec["key"]] = res.version
        except BadVersionError:
            rec.update(status="fail", out=False, ret=done.get("t", now()), err="BadVersion")
        except Exception as e:  # noqa: BLE001 - every other outcome: unknown
            if rec["kind"] == "read":
                rec.update(status="fail", ret=now(), err=type(e).__name__)
            else:
                rec.update(status="info", ret=None, err=type(e).__name__)
        self.history.add(rec)


# ---------------------------------------------------------------- nemeses


class Nemesis:
    """Applies `name` in cycles: `quiet` s healthy, then the fault for `hold` s, then heal."""

    def __init__(self, name, ens, net, rng, faults_log):
        self.name, self.ens, self.net, self.rng = name, ens, net, rng
        self.events = faults_log
        self.stopped = []

    def note(self, what):
        self.events.append({"t": now(), "what": what})
        log(f"  nemesis: {what}")

    def apply(self):
        e, n = self.ens, self.name
        ids = list(e.ids)
        if n == "none":
            return
        if n in ("kill-random", "kill-leader"):
            i = self.rng.choice(ids) if n == "kill-random" else e.leader()
            if i is None:
                self.note("no leader to kill")
                return
            e.kill(i)
            self.killed = i
            self.note(f"kill -9 member {i}{' (leader)' if n == 'kill-leader' else ''}")
        elif n == "stop-leader":
            i = e.leader()
            if i is None:
                self.note("no leader to stop")
                return
            e.procs[i].signal(signal.SIGSTOP)
            self.stopped.append(i)
            self.note(f"SIGSTOP leader {i}")
        elif n == "partition-leader":
            i = e.leader()
            if i is None:
                self.note("no leader to isolate")
                return
            self.net.partition([[i], [j for j in ids if j != i]])
            self.note(f"isolate leader {i}")
        elif n == "partition-halves":
            self.rng.shuffle(ids)
            k = len(ids) // 2
            groups = [sorted(ids[:k]), sorted(ids[k:])]
            self.net.partition(groups)
            self.note(f"partition {groups[0]} | {groups[1]}")
        elif n == "partition-bridge":
            self.rng.shuffle(ids)
            k = len(ids) // 2
            bridge = ids[k]
            groups = [sorted(ids[:k + 1]), sorted(ids[k:])]
            self.net.partition(groups)
            self.note(f"bridge {groups[0]} | {groups[1]} through {bridge}")
        elif n == "partition-random":
            links = [(i, j) for i in ids for j in ids if i < j]
            cut = [lk for lk in links if self.rng.random() < 0.5] or [self.rng.choice(links)]
            for i, j in cut:
                self.net.cut(i, j)
            self.note(f"cut links {cut}")
        elif n in ("disk-fsync-fail", "disk-full", "disk-torn-write"):
            i = e.leader() or self.rng.choice(ids)
            point = {"disk-fsync-fail": "fsync-error", "disk-full": "write-enospc",
                     "disk-torn-write": "write-torn"}[n]
            k = self.rng.randint(3, 40)
            e.kill(i)
            e.restart(i, f"{point}@{k}")
            self.armed = i
            self.note(f"restart member {i} with {point}@{k}")
        elif n == "disk-lose-unsynced":
            for i in ids:
                if i in e.procs:
                    e.procs[i].signal(signal.SIGKILL)
            for i in ids:
                e.kill(i)
            lost = {i: e.lose_unsynced(i) for i in ids}
            for i in ids:
                e.restart(i)
            self.note(f"power loss: kill -9 all, unsynced log bytes discarded {lost}, restart all")
        else:
            raise ValueError(n)

    def hold_time(self):
        if self.name == "stop-leader":
            return SYNC_LIMIT * TICK / 1000 + 2.5  # past syncLimit
        return 4.0

    def heal(self):
        e = self.ens
        if getattr(self, "armed", None):
            i, self.armed = self.armed, None
            p = e.procs.get(i)
            how = "still running" if p and p.alive() else "exited by itself"
            e.kill(i)
            e.restart(i)
            self.note(f"member {i} {how} with the fault; restarted without it")
        if self.name in ("kill-random", "kill-leader") and getattr(self, "killed", None):
            i, self.killed = self.killed, None
            e.restart(i)
            self.note(f"restart member {i}")
        for i in self.stopped:
            if i in e.procs:
                e.procs[i].signal(signal.SIGCONT)
                self.note(f"SIGCONT member {i}")
        self.stopped = []
        if self.net.cuts:
            self.net.heal()
            self.note("heal network")


# ---------------------------------------------------------------- one run


def final_state(ens, history):
    """Per member: sync + read of every register (added to the history as reads) and mntr's
    zk_znode_count."""
    state = {}
    for i in ens.ids:
        c = client(f"127.0.0.1:{ens.port(i)}")
        try:
            regs = {}
            for k in KEYS:
                path = f"{ROOT}/{k}"
                t0 = now()
                c.sync(path)
                data, stat = c.get(path)
                history.add({"key": k, "worker": f"final-{i}", "member": i, "kind": "read", "arg": None,
                             "call": t0, "ret": now(), "status": "ok",
                             "out": [int(data), stat.version]})
                regs[k] = [int(data), stat.version]
            count = zkproc.field(zkproc.four(ens.port(i), "mntr"), "zk_znode_count")
            state[i] = {"registers": regs, "znode_count": count}
        finally:
            c.stop()
            c.close()
    return state


def run_one(args, kind, n, nemesis, block, seed, out_dir):
    base = PORT_BASE + (block % BLOCKS) * BLOCK
    rng = random.Random(seed)
    name = f"{kind}-{n}-{nemesis}"
    root = tempfile.mkdtemp(prefix=f"faults-{name}-", dir=args.tmp)
    os.chmod(root, 0o755)
    env = {}
    args.disk = nemesis.startswith("disk-")
    if args.disk and (kind != "rzk" or not args.rzk_failpoints):
        raise SystemExit(f"{nemesis} needs --servers rzk and --rzk-failpoints (ZooKeeper has no failpoints)")
    ens = Ensemble(args, kind, n, base, root, env)
    net = Net(ens.ids)
    net.setup()
    row = {"server": kind, "nodes": n, "nemesis": nemesis, "seed": seed, "dir": root}
    history = History()
    stop = threading.Event()
    workers = []
    t_start = now()
    try:
        first_leader = ens.start_all()
        c = client(ens.hosts(1))
        c.ensure_path(ROOT)
        for k in KEYS:
            c.create(f"{ROOT}/{k}", b"0")
        c.stop()
        c.close()
        log(f"{name}: leader {first_leader}, seed {seed}")
        wid = 0
        for s in range(args.sessions):
            wid += 1
            workers.append(Worker(wid, ens, ens.ids[s % n], history, stop, rng.random()))
        for s in range(args.pipelined):
            wid += 1
            workers.append(Worker(wid, ens, ens.ids[(s + 1) % n], history, stop, rng.random(),
                                  pipeline=args.batch))
        for w in workers:
            w.start()
        faults = []
        nem = Nemesis(nemesis, ens, net, rng, faults)
        leaders = {first_leader}
        deadline = now() + args.duration
        while now() < deadline:
            time.sleep(min(args.quiet, max(0, deadline - now())))
            if now() >= deadline:
                break
            nem.apply()
            t_end = min(now() + nem.hold_time(), deadline)
            while now() < t_end:
                time.sleep(0.25)
                ld = ens.leader()
                if ld:
                    leaders.add(ld)
            nem.heal()
        nem.heal()
        stop.set()
        for w in workers:
            w.join(OP_TIMEOUT * 3 + 5)
        # convergence: one leader, then every member's registers and znode count alike
        t_heal = now()
        conv = "no"
        states = {}
        try:
            leaders.add(ens.settled(60))
            for _ in range(20):
                states = final_state(ens, history)
                vals = [json.dumps(s, sort_keys=True) for s in states.values()]
                if len(set(vals)) == 1:
                    conv = f"yes ({now() - t_heal:.1f} s)"
                    break
                time.sleep(1)
        except AssertionError as e:
            conv = f"no: {e}"
        row["convergence"] = conv
        row["final"] = states
        row["leaders_seen"] = sorted(leaders)
        row["faults"] = len(faults)
        row["worker_errors"] = [w.error for w in workers if w.error]
    finally:
        stop.set()
        net.heal()
        net.teardown()
        ens.stop_all()
    ops = history.ops
    row["ok"] = sum(1 for o in ops if o["status"] == "ok")
    row["failed"] = sum(1 for o in ops if o["status"] == "fail")
    row["info"] = sum(1 for o in ops if o["status"] == "info")
    errs = collections.Counter(f"{o['kind']}:{o['err']}" for o in ops if o.get("err"))
    row["errors"] = dict(errs)
    if errs:
        log(f"  errors: {', '.join(f'{k} {v}' for k, v in errs.most_common())}")
    by_key = {}
    for o in ops:
        if o["kind"] == "read" and o["status"] != "ok":
            continue  # a read that failed has no effect
        out = o.get("out")
        if o["status"] == "info":
            out = None
        arg = tuple(o["arg"]) if isinstance(o["arg"], list) else o["arg"]
        by_key.setdefault(o["key"], []).append(
            Op(o["kind"], arg, out, o["call"] - t_start,
               None if o["status"] == "info" else o["ret"] - t_start, f"w{o['worker']}"))
    t0 = now()
    verdict, results = check_history(by_key, budget_s=args.check_budget)
    n_stale, stale_by = stale_reads(ops)
    if n_stale:
        verdict += f" ({n_stale} stale reads, served by member(s) {stale_by})"
    row["verdict"] = verdict
    row["check_s"] = round(now() - t0, 1)
    with open(os.path.join(out_dir, f"{name}-{seed}.history.json"), "w") as f:
        json.dump({"row": row, "ops": ops}, f)
    for k, r in results.items():
        if r.ok is False:
            w = r.witness
            log(f"  key {k}: NOT linearizable; state {w['state']} when {w['blocked']} had to "
                f"return; pending {w['pending'][:6]}; last linearized {w['linearized_tail']}")
    row["pass"] = (verdict == "linearizable" and conv.startswith("yes") and row["ok"] >= args.min_ok
                   and not row["worker_errors"]
                   and (nemesis not in ("kill-leader", "partition-leader", "stop-leader")
                        or len(leaders) > 1 or row["faults"] == 0))
    if row["pass"]:
        shutil.rmtree(root, ignore_errors=True)
    return row


def stale_reads(ops):
    """Reads (ok) that returned a version older than one an acknowledged write had returned
    before the read was called: the plainest kind of non-linearizable read. Returns
    (count, {member that served them: count})."""
    n, by_member = 0, {}
    for key in KEYS:
        acks = sorted((o["ret"], o["out"]) for o in ops if o["key"] == key and o["status"] == "ok"
                      and o["kind"] in ("write", "cas"))
        best, j, best_at = 0, 0, []
        for t, v in acks:
            best = max(best, v)
            best_at.append((t, best))
        for o in ops:
            if o["key"] != key or o["kind"] != "read" or o["status"] != "ok":
                continue
            # highest version acknowledged before the read's call
            lo, hi = 0, len(best_at)
            while lo < hi:
                mid = (lo + hi) // 2
                if best_at[mid][0] < o["call"]:
                    lo = mid + 1
                else:
                    hi = mid
            if lo and best_at[lo - 1][1] > o["out"][1]:
                n += 1
                m = o.get("member")
                by_member[m] = by_member.get(m, 0) + 1
    return n, by_member


def fmt_row(r):
    return (f"| {r['server']} | {r['nodes']} | {r['nemesis']} | {r['ok']} / {r['failed']} / "
            f"{r['info']} | {r['verdict']} | {r['convergence']} | {r['faults']} | "
            f"{r['leaders_seen']} | {'PASS' if r['pass'] else 'FAIL'} |")


HEADER = ("| server | nodes | nemesis | ok / failed / indeterminate | checker | convergence | "
          "nemesis events | leaders seen | result |\n|---|---|---|---|---|---|---|---|---|")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rzk", default=None, help="rzk binary")
    ap.add_argument("--rzk-failpoints", default=None,
                    help="rzk built with --features rzk-server/failpoints (disk-* nemeses)")
    ap.add_argument("--apache", default=None, help="scripts/start-apache-zk.sh")
    ap.add_argument("--servers", default="rzk")
    ap.add_argument("--nodes", default="3")
    ap.add_argument("--nemeses", default="kill-leader,partition-leader")
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--quiet", type=float, default=3.0, help="healthy seconds between faults")
    ap.add_argument("--sessions", type=int, default=6)
    ap.add_argument("--pipelined", type=int, default=2)
    ap.add_argument("--batch", type=int, default=6)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--min-ok", type=int, default=100)
    ap.add_argument("--check-budget", type=float, default=120)
    ap.add_argument("--out", default=None, help="where histories go (default: a temp dir)")
    ap.add_argument("--tmp", default=None)
    args = ap.parse_args()
    # kazoo warns on every dropped connection; the nemesis drops many on purpose
    logging.basicConfig(level=logging.ERROR)
    if os.geteuid() != 0 or not shutil.which("iptables") or not shutil.which("setpriv"):
        sys.exit("faults.py needs root, iptables and setpriv (scripts/install-test-deps.sh)")
    args.rzk_bin = os.path.abspath(args.rzk) if args.rzk else None
    args.apache = os.path.abspath(args.apache) if args.apache else None
    args.rzk_failpoints = os.path.abspath(args.rzk_failpoints) if args.rzk_failpoints else None
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    out_dir = args.out or tempfile.mkdtemp(prefix="faults-out-")
    os.makedirs(out_dir, exist_ok=True)
    net = Net([])
    atexit.register(net.teardown)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows = []
    block = 0
    log(f"seed {seed}; histories in {out_dir}")
    for kind in args.servers.split(","):
        if (kind == "rzk" and not args.rzk_bin) or (kind == "apache" and not args.apache):
            sys.exit(f"--servers {kind} needs --{kind}")
        for n in [int(x) for x in args.nodes.split(",")]:
            for nemesis in args.nemeses.split(","):
                r = run_one(args, kind, n, nemesis, block, seed + block, out_dir)
                block += 1
                rows.append(r)
                log(fmt_row(r))
    print("\n" + HEADER)
    for r in rows:
        print(fmt_row(r))
    bad = [r for r in rows if not r["pass"]]
    print(f"\nruns: {len(rows)}, passed: {len(rows) - len(bad)}; histories and logs of failed runs: {out_dir}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
