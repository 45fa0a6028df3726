#!/usr/bin/env python3
"""Soak: does a server give back what sessions took once they are gone?

  tests/soak/soak_test.py --rzk target/debug/rzk [--apache scripts/start-apache-zk.sh]
      [--kinds rzk,apache] [--rounds 16] [--sessions 48] [--port 26000] [--keep]

Rounds of churn against one standalone server per kind (tickTime 500, containers and TTL
nodes checked every 500 ms). In each round S raw sessions (tests/compat/kazoo/zkraw.py,
from 4 threads) each create ephemerals (plain and sequential), a container that gets a
child and loses it, a TTL node, a persistent node changed by a multi, and set every kind
of watch (exists on a missing node, getData, getChildren, addWatch persistent and
persistent-recursive); a writer fires the persistent ones. Then a third of the sessions
close, a third drop their connection without a closeSession (they expire), and a third
re-attach on a new connection and close there; the writer deletes the round's
persistent nodes.

After each round the server must be back where it started: no ephemeral, no watch, no
session (`dump`), the znode count of the start (containers and TTL nodes reaped), and
one connection (the probe's own). Across rounds its threads and open files must not
grow; its RSS per round is printed (ZooKeeper's JVM heap grows until it collects, so the
RSS bound applies to rzk only: after the third round it may grow by at most
--rss-slack-mb plus 10 %).

The short run (16 rounds of 48 sessions, ~30 s per kind) is the CI stage `soak`; the long
one is scripts/soak.sh (ROUNDS=500, both kinds side by side).
"""
import argparse
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "compat", "kazoo"))
import zkproc  # noqa: E402
import zkraw  # noqa: E402
from zkraw import (OP_ADDWATCH, OP_CREATE, OP_CREATECONTAINER, OP_CREATETTL, OP_DELETE,  # noqa: E402
                   OP_EXISTS, OP_GETCHILDREN, OP_GETDATA, OP_MULTI, OP_SETDATA, i32)

OK, NONODE = 0, -101
EPHEMERAL, EPHEMERAL_SEQUENTIAL, CONTAINER = 1, 3, 4
WATCH_PERSISTENT, WATCH_PERSISTENT_RECURSIVE = 0, 1
WATCHED = 8  # /soak/w/0../soak/w/7: the persistent watches' nodes
THREADS = 4

SETTINGS = ("tickTime=500", "minSessionTimeout=1000", "maxSessionTimeout=10000",
            "extendedTypesEnabled=true", "znode.container.checkIntervalMs=500",
            "snapCount=2000")


def must(s, op, body, ok=(OK,)):
    rep = s.call(op, body)
    if rep.err not in ok:
        raise AssertionError(f"op {op} on session {s.session_id:#x} answered {rep.err}, want {ok}")
    return rep


def multi(ops):
    out = b""
    for op, body in ops:
        out += i32(op) + zkraw.boolean(False) + i32(-1) + body
    return out + i32(-1) + zkraw.boolean(True) + i32(-1)


def set_body(path, data):
    return zkraw.ustring(path) + zkraw.buffer(data) + i32(-1)


def delete_body(path):
    return zkraw.ustring(path) + i32(-1)


def watch_body(path, mode):
    return zkraw.ustring(path) + i32(mode)


def session_work(hosts, r, i, timeout_ms):
    """One session's share of round `r`: nodes of every kind, watches of every kind."""
    s = zkraw.RawSession(hosts, timeout_ms=timeout_ms)
    tag = f"{r}-{i}"
    for k in range(3):
        must(s, OP_CREATE, zkraw.create_body(f"/soak/e/{tag}-{k}", b"x" * 50, flags=EPHEMERAL))
    must(s, OP_CREATE, zkraw.create_body(f"/soak/e/{tag}-q", b"", flags=EPHEMERAL_SEQUENTIAL))
    must(s, OP_CREATECONTAINER, zkraw.create_body(f"/soak/c/{tag}", b"", flags=CONTAINER))
    must(s, OP_CREATE, zkraw.create_body(f"/soak/c/{tag}/k", b"y"))
    must(s, OP_DELETE, delete_body(f"/soak/c/{tag}/k"))
    must(s, OP_CREATETTL, zkraw.create_ttl_body(f"/soak/t/{tag}", b"z", ttl=300))
    must(s, OP_CREATE, zkraw.create_body(f"/soak/p/{tag}", b"p" * 100))
    must(s, OP_MULTI, multi([(OP_CREATE, zkraw.create_body(f"/soak/p/{tag}/m", b"m")),
                             (OP_SETDATA, set_body(f"/soak/p/{tag}", b"q" * 100)),
                             (OP_DELETE, delete_body(f"/soak/p/{tag}/m"))]))
    must(s, OP_EXISTS, zkraw.path_watch_body(f"/soak/none/{tag}", True), ok=(NONODE,))
    must(s, OP_GETDATA, zkraw.path_watch_body(f"/soak/p/{tag}", True))
    must(s, OP_GETDATA, zkraw.path_watch_body(f"/soak/e/{r}-{(i + 1) % 1000}-0", True), ok=(OK, NONODE))
    must(s, OP_GETCHILDREN, zkraw.path_watch_body("/soak/e", True))
    must(s, OP_ADDWATCH, watch_body(f"/soak/w/{i % WATCHED}", WATCH_PERSISTENT))
    must(s, OP_ADDWATCH, watch_body("/soak/w", WATCH_PERSISTENT_RECURSIVE))
    return s


def session_end(hosts, s, i):
    """A third close, a third drop the connection (the session expires), a third re-attach
    on a new connection and close there."""
    how = i % 3
    if how == 0:
        s.close_session()
    elif how == 1:
        s.close()
    else:
        again = zkraw.RawSession(hosts, timeout_ms=s.negotiated_timeout, session_id=s.session_id,
                                 passwd=s.passwd)
        s.close()
        if again.session_id != s.session_id:
            raise AssertionError(f"re-attach of {s.session_id:#x} gave {again.session_id:#x}")
        again.close_session()


def drain_events(s, want, timeout=10.0):
    """Reads `s`'s watch events until it holds `want` of those under /soak/w (the
    persistent watches'); returns those, sorted."""
    deadline = time.monotonic() + timeout
    while True:
        got = sorted((t, p) for t, _st, p, _z in s.events if p == "/soak/w" or p.startswith("/soak/w/"))
        left = deadline - time.monotonic()
        if len(got) >= want or left <= 0:
            return got
        try:
            rep = s.read_reply(left)
        except TimeoutError:
            continue
        if rep.xid == zkraw.WATCH_XID:
            s.events.append((*rep.event(), rep.zxid))


def writer_round(hosts, r, sessions):
    w = zkraw.RawSession(hosts, timeout_ms=10000)
    for j in range(WATCHED):
        must(w, OP_SETDATA, set_body(f"/soak/w/{j}", str(r).encode()))
        must(w, OP_CREATE, zkraw.create_body(f"/soak/w/{j}/x{r}", b""))
        must(w, OP_DELETE, delete_body(f"/soak/w/{j}/x{r}"))
    return w


def writer_cleanup(w, r, sessions):
    for i in range(sessions):
        must(w, OP_DELETE, delete_body(f"/soak/p/{r}-{i}"))
    w.close_session()


def mntr(port):
    out = {}
    for line in zkproc.four(port, "mntr", timeout=5).splitlines():
        k, _, v = line.partition("\t")
        out[k] = v
    return out


def sessions_in_dump(port):
    """Session ids `dump` lists (its session sets: ids that will expire)."""
    return set(re.findall(r"^\s*(0x[0-9a-f]+)\b", zkproc.four(port, "dump", timeout=5), re.M))


def proc_sample(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = int(re.search(r"^VmRSS:\s+(\d+)", f.read(), re.M).group(1))
    return {"rss_kb": rss, "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": len(os.listdir(f"/proc/{pid}/task"))}


def quiesced(port, base_znodes):
    """None once the server holds nothing of the sessions, else what it still holds."""
    m = mntr(port)
    left = {k: m.get(k) for k in ("zk_ephemerals_count", "zk_watch_count")
            if m.get(k) not in ("0", None)}
    if m.get("zk_znode_count") != str(base_znodes):
        left["zk_znode_count"] = f"{m.get('zk_znode_count')} (start {base_znodes})"
    if m.get("zk_num_alive_connections") not in ("1", None):
        left["zk_num_alive_connections"] = m.get("zk_num_alive_connections")
    ids = sessions_in_dump(port)
    if ids:
        left["sessions in dump"] = len(ids)
    return left or None


def soak(kind, proc, port, args):
    hosts = f"127.0.0.1:{port}"
    w = zkraw.RawSession(hosts, timeout_ms=10000)
    for p in ["/soak", "/soak/e", "/soak/c", "/soak/t", "/soak/p", "/soak/w"] + \
             [f"/soak/w/{j}" for j in range(WATCHED)]:
        must(w, OP_CREATE, zkraw.create_body(p, b""))
    w.close_session()
    zkproc.wait_until(lambda: mntr(port).get("zk_num_alive_connections") == "1", 20, "setup closed")
    base = int(mntr(port)["zk_znode_count"])
    timeout_ms = 1000
    samples = []
    pool = ThreadPoolExecutor(THREADS)
    for r in range(args.rounds):
        t0 = time.time()
        sessions = list(pool.map(lambda i: session_work(hosts, r, i, timeout_ms), range(args.sessions)))
        w = writer_round(hosts, r, args.sessions)
        # Each session's persistent-recursive watch on /soak/w sees the writer's 8
        # setData, 8 creates and 8 deletes; its persistent watch on /soak/w/<i % 8> adds
        # the two NodeChildrenChanged of that node (the setData there is one event for
        # both watches: one per session, path and type, as ZooKeeper's WatchManager).
        want = 3 * WATCHED + 2
        got = list(pool.map(lambda s: drain_events(s, want), sessions))
        for i, g in enumerate(got):
            if len(g) != want:
                raise AssertionError(f"{kind} round {r}: session {i} got {len(g)} events under "
                                     f"/soak/w, want {want}: {g}")
        events = sum(len(s.events) for s in sessions)
        list(pool.map(lambda a: session_end(hosts, *a), [(s, i) for i, s in enumerate(sessions)]))
        writer_cleanup(w, r, args.sessions)
        holding = None
        deadline = time.time() + 20
        while time.time() < deadline:
            holding = quiesced(port, base)
            if holding is None:
                break
            time.sleep(0.2)
        if holding is not None:
            raise AssertionError(f"{kind} round {r}: 20 s after the sessions went it still holds {holding}")
        sample = proc_sample(proc.pid)
        sample["secs"] = time.time() - t0
        sample["events"] = events
        samples.append(sample)
        print(f"  {kind} round {r}: {sample['secs']:.1f} s, {events} events, "
              f"RSS {sample['rss_kb'] / 1024:.1f} MiB, {sample['fds']} fds, {sample['threads']} threads",
              flush=True)
    pool.shutdown()
    return samples


def judge(kind, samples, args):
    """Threads and open files must not grow after the first rounds; rzk's RSS neither."""
    problems = []
    warm = min(2, len(samples) - 1)
    ref = samples[warm]
    top = max(samples[warm:], key=lambda s: s["fds"])
    if top["fds"] > ref["fds"] + 2:
        problems.append(f"open files grew from {ref['fds']} to {top['fds']}")
    top = max(samples[warm:], key=lambda s: s["threads"])
    if top["threads"] > ref["threads"] + (0 if kind == "rzk" else 4):
        problems.append(f"threads grew from {ref['threads']} to {top['threads']}")
    if kind == "rzk":
        limit = ref["rss_kb"] * 1.10 + args.rss_slack_mb * 1024
        if samples[-1]["rss_kb"] > limit:
            problems.append(f"RSS grew from {ref['rss_kb'] / 1024:.1f} MiB (round {warm}) to "
                            f"{samples[-1]['rss_kb'] / 1024:.1f} MiB (limit {limit / 1024:.1f})")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rzk", required=True)
    ap.add_argument("--apache", help="scripts/start-apache-zk.sh (needed for kind apache)")
    ap.add_argument("--kinds", default="rzk,apache")
    ap.add_argument("--rounds", type=int, default=16)
    ap.add_argument("--sessions", type=int, default=48)
    ap.add_argument("--port", type=int, default=26000)
    ap.add_argument("--rss-slack-mb", type=float, default=16)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if args.rounds < 3:
        ap.error("--rounds must be at least 3 (the first ones warm up)")
    kinds = [k for k in args.kinds.split(",") if k]
    work = tempfile.mkdtemp(prefix="rzk-soak-")
    failed = []
    for n, kind in enumerate(kinds):
        port = args.port + n
        d = os.path.join(work, kind)
        os.makedirs(d)
        print(f"== {kind} on 127.0.0.1:{port}: {args.rounds} rounds of {args.sessions} sessions", flush=True)
        if kind == "rzk":
            cfg = zkproc.write_config(os.path.join(d, "zoo.cfg"), port, *SETTINGS)
            proc = zkproc.start_rzk(args.rzk, cfg, port)
            zkproc.wait_serving(port, proc, what="rzk")
        elif kind == "apache":
            if not args.apache:
                ap.error("kind apache needs --apache")
            proc = zkproc.start_apache(args.apache, port, d, *SETTINGS)
            # It answers ruok before its ZooKeeperServer runs (sessions are refused then).
            zkproc.wait_serving(port, proc, what="ZooKeeper")
        else:
            ap.error(f"unknown kind {kind}")
        try:
            samples = soak(kind, proc, port, args)
            problems = judge(kind, samples, args)
        except (AssertionError, OSError, zkraw.ConnectionClosed) as e:
            problems = [f"{type(e).__name__}: {e}"]
        finally:
            proc.stop()
        for p in problems:
            print(f"FAIL {kind}: {p}", flush=True)
        if problems:
            failed.append(kind)
        else:
            print(f"ok {kind}", flush=True)
    if args.keep or failed:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    threading.current_thread().name = "soak"
    main()
