#!/usr/bin/env python3
"""Load held by one server (issue 14): many sessions, a watch storm, 1 MB values at
jute.maxbuffer, maxClientCnxns per client IP, a slow client flooded with watch events;
against rzk and against Apache ZooKeeper 3.8, through the real client protocol.

  tests/load/load_test.py --rzk target/debug/rzk [--apache scripts/start-apache-zk.sh]
      [--full] [--sessions N] [--watch-nodes K] [--flood-mb M] [--only rzk|apache]
      [--cases sessions,limits,queues] [--apache-cases ...] [--pipeline P] [--json FILE] [--keep]

The client is this file: Python asyncio with hand-built jute frames (no kazoo), one
socket per session, so 10,000 sessions cost ~10,000 sockets and one thread. The file
limit (RLIMIT_NOFILE) is raised to its hard limit here; the servers inherit it.

Cases, each on its own server per implementation:
  sessions  N sessions (default 2,000; --full 10,000) on one server (maxClientCnxns=0),
            connected from 127.0.0.2-9; each sets a data watch (getData) on K znodes
            /load/w0../load/w<K-1> (default 10), i.e. N*K watches (ZooKeeper keeps at most
            one data watch per session and znode, so N*K watches need K znodes); one
            multi of K setData fires them all at once. Checked: every session receives
            every event exactly once (nothing more within 1 s); an unrelated session's
            getData keeps being answered during the storm (latency reported); every
            session still answers an exists afterwards.
  limits    a server with maxClientCnxns=5, maxCnxns=8, nio.sessionlessCnxnTimeout=1500:
            - sessionless: a connection that sends nothing is closed within 3 timeouts; a
              ruok sent one byte every 0.6 s (longer in all than the timeout) is answered;
            - maxbuffer: setData frames of exactly jute.maxbuffer (0xfffff) bytes, one
              byte more, and a 1 MiB value; the outcome (ok / error code / connection
              closed) must be the same as ZooKeeper 3.8's (below); the largest value
              accepted is read back intact;
            - maxcnxns: 5 sessions from 127.0.0.1, the 6th connection from 127.0.0.1 is
              closed without a ConnectResponse, one from 127.0.0.2 is served, and after
              one of the 5 closes 127.0.0.1 is served again;
            - maxtotal (maxCnxns=8): 8 sessions from 127.0.0.2-3, a 9th connection from
              127.0.0.4 is closed without a ConnectResponse, and served after one closes;
  queues    a server with maxClientCnxns=0:
            - writes: W sessions (default 8; --full 20) each pipeline 1,000 setData at
              once, more than rzk's write queue (WRITE_QUEUE_CAPACITY 4096, node/jobs.rs)
              and than one connection may have in flight (MAX_OUTSTANDING_PER_CONN):
              every write is answered without error and in its session's order, another
              session's reads are answered meanwhile (latency reported);
            - pipeline: a client pipelines P getData of a 100 KB znode (default 2,000;
              --full 10,000) with a 4 KiB receive buffer and reads nothing: the server
              must stop reading it (rzk: MAX_OUTSTANDING_PER_CONN, net/conn.rs; ZooKeeper
              throttles too) rather than hold P x 100 KB of replies; another session is
              served meanwhile; then every reply arrives, in order; rzk's RSS must not
              grow by 64 MB;
            - slowclient: a session with a persistent recursive watch on /flood stops
              reading its socket (receive buffer 4 KiB) while another session changes
              /flood/<12000-char name> M MB worth of events (default 16; --full 200).
              rzk must close that connection once over MAX_QUEUED_NOTIFY_BYTES (8 MiB,
              crates/server/src/node/clients.rs) are queued and log it; its RSS must stay
              bounded; other sessions are served meanwhile. ZooKeeper's behaviour is
              recorded (it queues them all without a limit) and not asserted.

For every case the server's RSS is sampled from /proc/<pid>/status (every 0.1 s) and
reported (before, peak, after); the rzk log must contain no panic. A table of the
figures for rzk and ZooKeeper is printed at the end (and written as JSON with --json).
Ports 24500-24699 on 127.0.0.1 (rzk 245xx, ZooKeeper 246xx). Only processes started here
are signalled. Exits 1 when a check fails.
"""
import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import struct
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import zkproc  # noqa: E402

JUTE_MAXBUFFER = 0xFFFFF
# What Apache ZooKeeper 3.8 does with each maxbuffer case (seen with this test against
# scripts/start-apache-zk.sh); rzk must do the same. Filled in from the oracle run.
ZK_MAXBUFFER_OUTCOMES = {
    "frame=maxbuffer": "ok",
    "frame=maxbuffer+1": "closed",
    "value=1MiB": "closed",
}

OP_CREATE, OP_EXISTS, OP_GETDATA, OP_SETDATA, OP_PING, OP_MULTI, OP_ADDWATCH = 1, 3, 4, 5, 11, 14, 106
OPEN_ACL_UNSAFE = struct.pack(">i", 1) + struct.pack(">i", 31) + b"\x00\x00\x00\x05world\x00\x00\x00\x06anyone"


# ---------------------------------------------------------------- jute frames

def jstr(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack(">i", len(b)) + b


def frame(body):
    return struct.pack(">i", len(body)) + body


def connect_frame(timeout_ms=30000):
    return frame(struct.pack(">iqiq", 0, 0, timeout_ms, 0) + jstr(b"\x00" * 16) + b"\x00")


def request(xid, op, body=b""):
    return frame(struct.pack(">ii", xid, op) + body)


def get_data_body(path, watch):
    return jstr(path) + (b"\x01" if watch else b"\x00")


def set_data_body(path, data, version=-1):
    return jstr(path) + jstr(data) + struct.pack(">i", version)


def create_body(path, data=b"", flags=0):
    return jstr(path) + jstr(data) + OPEN_ACL_UNSAFE + struct.pack(">i", flags)


def multi_set_body(paths, data):
    out = b""
    for p in paths:
        out += struct.pack(">i?i", OP_SETDATA, False, -1) + set_data_body(p, data)
    return out + struct.pack(">i?i", -1, True, -1)


class Closed(Exception):
    pass


# ---------------------------------------------------------------- asyncio session

class Session(asyncio.Protocol):
    """One session on its own connection (an asyncio Protocol: frames are parsed in
    data_received, cheap enough for 100,000 events); replies matched by xid, events
    counted by path."""

    def __init__(self, on_event=None):
        self.buf = bytearray()
        self.xid = 0
        self.waiting = {}
        self.events = {}
        self.on_event = on_event
        self.closed = False
        self.connected = asyncio.get_running_loop().create_future()
        self.sid = None
        self.t = None
        self.order = None  # a list: xids of replies in arrival order

    @classmethod
    async def open(cls, host, port, local=None, on_event=None, timeout_ms=30000):
        loop = asyncio.get_running_loop()
        t, s = await loop.create_connection(lambda: cls(on_event), host, port,
                                            local_addr=(local, 0) if local else None)
        s.t = t
        t.write(connect_frame(timeout_ms))
        await asyncio.wait_for(s.connected, 30)
        if s.sid == 0:
            t.close()
            raise Closed("session refused")
        return s

    def data_received(self, data):
        self.buf += data
        buf = self.buf
        pos = 0
        while len(buf) - pos >= 4:
            (n,) = struct.unpack_from(">i", buf, pos)
            if len(buf) - pos - 4 < n:
                break
            p = bytes(buf[pos + 4:pos + 4 + n])
            pos += 4 + n
            if self.sid is None:
                self.sid = struct.unpack_from(">q", p, 8)[0]
                if not self.connected.done():
                    self.connected.set_result(True)
                continue
            xid, _zxid, err = struct.unpack_from(">iqi", p)
            if xid == -1:
                (ln,) = struct.unpack_from(">i", p, 24)
                path = p[28:28 + ln].decode()
                self.events[path] = self.events.get(path, 0) + 1
                if self.on_event:
                    self.on_event()
            elif xid != -2:
                if self.order is not None:
                    self.order.append(xid)
                f = self.waiting.pop(xid, None)
                if f and not f.done():
                    f.set_result((err, p[16:]))
        del buf[:pos]

    def connection_lost(self, exc):
        self.closed = True
        if not self.connected.done():
            self.connected.set_exception(Closed("closed before the ConnectResponse"))
        for f in self.waiting.values():
            if not f.done():
                f.set_exception(Closed("connection closed"))
        self.waiting.clear()

    def send(self, op, body=b""):
        """Queues a request; returns the future of (err, body)."""
        if self.closed:
            raise Closed("connection closed")
        self.xid += 1
        f = asyncio.get_running_loop().create_future()
        self.waiting[self.xid] = f
        self.t.write(request(self.xid, op, body))
        return f

    async def call(self, op, body=b"", timeout=30):
        return await asyncio.wait_for(self.send(op, body), timeout)

    def ping(self):
        if not self.closed:
            self.t.write(request(-2, OP_PING))

    async def close(self):
        if not self.closed:
            self.t.write(request(self.xid + 1, -11))
            await asyncio.sleep(0)
        self.t.close()


# ---------------------------------------------------------------- the probe process

def probe_main(port, path):
    """`--probe PORT PATH`: an unrelated client in its own process (so the load client's
    work does not delay it): one session, getData PATH every 5 ms until stdin closes;
    prints "<wall clock s> <latency ms> <error code>" per read."""
    import select
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def read_frame():
        def exact(n):
            b = b""
            while len(b) < n:
                c = s.recv(n - len(b))
                if not c:
                    raise Closed("eof")
                b += c
            return b
        (n,) = struct.unpack(">i", exact(4))
        return exact(n)
    s.sendall(connect_frame(30000))
    read_frame()
    print("ready", flush=True)
    xid = 0
    while True:
        xid += 1
        t = time.monotonic()
        s.sendall(request(xid, OP_GETDATA, get_data_body(path, False)))
        while True:
            p = read_frame()
            rx, _z, err = struct.unpack_from(">iqi", p)
            if rx == xid:
                break
        print(f"{time.time():.4f} {(time.monotonic() - t) * 1000:.3f} {err}", flush=True)
        r, _, _ = select.select([sys.stdin], [], [], 0.005)
        if r and not sys.stdin.readline():
            return 0


class Probe:
    """Starts the probe process; `between(t0, t1)` gives the latencies (ms) of the reads
    that started in that wall-clock window."""

    def __init__(self, port, path):
        self.out = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--probe", str(port), path],
                                  stdin=subprocess.PIPE, stdout=self.out, text=True)
        zkproc.wait_until(lambda: self._text().startswith("ready"), 30, "the probe to connect")

    def _text(self):
        self.out.seek(0)
        return self.out.read()

    def stop(self):
        self.p.communicate(timeout=60)
        self.rows = []
        for line in self._text().splitlines()[1:]:
            w, ms, err = line.split()
            check(err == "0", f"probe getData error {err}")
            self.rows.append((float(w), float(ms)))
        return self.rows

    def between(self, t0, t1):
        return [ms for w, ms in self.rows if t0 - 0.001 <= w - ms / 1000 <= t1]


# ---------------------------------------------------------------- RSS sampling

def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler:
    def __init__(self, pid):
        self.pid = pid
        self.peak = 0
        self.task = None

    async def _run(self):
        while True:
            self.peak = max(self.peak, rss_kb(self.pid))
            await asyncio.sleep(0.1)

    def start(self):
        self.peak = rss_kb(self.pid)
        self.task = asyncio.ensure_future(self._run())
        return self

    def stop(self):
        if self.task:
            self.task.cancel()
        self.peak = max(self.peak, rss_kb(self.pid))
        return self.peak


def mb(kb):
    return round(kb / 1024, 1)


# ---------------------------------------------------------------- servers

class Servers:
    def __init__(self, args):
        self.args = args
        self.root = tempfile.mkdtemp(prefix="rzk-load-")
        self.procs = []
        self.logs = []

    def start(self, impl, port, name, *settings):
        d = os.path.join(self.root, f"{impl}-{name}")
        os.makedirs(d, exist_ok=True)
        if impl == "rzk":
            # forceSync=no as scripts/start-apache-zk.sh gives ZooKeeper.
            cfg = zkproc.write_config(os.path.join(d, "zoo.cfg"), port, "forceSync=no", *settings)
            p = zkproc.start_rzk(os.path.abspath(self.args.rzk), cfg, port,
                                 env={"RUST_LOG": "info"})
            log = os.path.join(d, "server.log")
        else:
            p = zkproc.start_apache(self.args.apache, port, d, *settings)
            log = os.path.join(d, "zookeeper.log")
        self.procs.append(p)
        self.logs.append(log)
        zkproc.wait_serving(port, p if impl == "rzk" else None, what=f"{impl} {name}")
        return p, log

    def stop(self, p):
        p.stop()

    def show_last_log(self):
        """Prints the warnings and errors, then the last lines, of the newest server log
        (the test deletes its directory afterwards unless --keep)."""
        if not self.logs:
            return
        try:
            lines = open(self.logs[-1], errors="replace").read().splitlines()
        except OSError as e:
            print(f"  (no server log: {e})")
            return
        bad = [ln for ln in lines if re.search(r"WARN|ERROR|panick|closing connection", ln)]
        print(f"  server log {self.logs[-1]}: {len(lines)} lines, {len(bad)} warnings, errors or closes; the last of those:")
        for ln in bad[-40:]:
            print("    " + ln[:400])
        print("  its last lines:")
        for ln in lines[-20:]:
            print("    " + ln[:400])

    def cleanup(self):
        for p in self.procs:
            p.stop()
        if not self.args.keep:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            print(f"kept {self.root}")


def log_problems(impl, log):
    """Lines of the server log that say it panicked (rzk) or hit an error (ZooKeeper)."""
    try:
        text = open(log, errors="replace").read()
    except OSError:
        return []
    if impl == "rzk":
        return [l for l in text.splitlines() if "panicked" in l or "panic" in l.lower()]
    return [l for l in text.splitlines()
            if "OutOfMemoryError" in l or " ERROR " in l or "[ERROR]" in l]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


# ---------------------------------------------------------------- case: sessions + watch storm

async def case_sessions(impl, port, pid, n, k, res):
    loop = asyncio.get_running_loop()
    host = "127.0.0.1"
    res["rss_start_mb"] = mb(rss_kb(pid))
    sampler = RssSampler(pid).start()
    admin = await Session.open(host, port)
    for path in ["/load"] + [f"/load/w{i}" for i in range(k)]:
        err, _ = await admin.call(OP_CREATE, create_body(path, b"0"))
        check(err in (0, -110), f"create {path}: error {err}")
    paths = [f"/load/w{i}" for i in range(k)]

    expected = n * k
    got = [0]
    all_in = asyncio.Event()

    def on_event():
        got[0] += 1
        if got[0] >= expected:
            all_in.set()

    sem = asyncio.Semaphore(200)
    # Every session (the writer first) is pinged every 5 s from the start: connecting
    # 10,000 sessions takes longer than a session timeout on a loaded ZooKeeper.
    live = [admin]
    stop_ping = asyncio.Event()

    async def pinger():
        while not stop_ping.is_set():
            for s in list(live):
                s.ping()
            try:
                await asyncio.wait_for(stop_ping.wait(), 5)
            except asyncio.TimeoutError:
                pass
    ping_task = asyncio.ensure_future(pinger())
    t0 = time.monotonic()

    async def one(i):
        async with sem:
            for attempt in range(5):
                try:
                    s = await Session.open(host, port, local=f"127.0.0.{2 + i % 8}",
                                           on_event=on_event)
                    live.append(s)
                    return s
                except (OSError, Closed, asyncio.TimeoutError) as e:
                    err = e
                    await asyncio.sleep(0.2 * (attempt + 1))
            raise AssertionError(f"session {i} could not connect: {err!r}")

    sessions = await asyncio.gather(*(one(i) for i in range(n)))
    res["sessions"] = len(sessions)
    res["connect_s"] = round(time.monotonic() - t0, 2)
    res["rss_sessions_mb"] = mb(rss_kb(pid))

    t0 = time.monotonic()
    futs = [s.send(OP_GETDATA, get_data_body(p, True)) for s in sessions for p in paths]
    replies = await asyncio.wait_for(asyncio.gather(*futs), 300)
    check(all(e == 0 for e, _ in replies), "a watch-setting getData failed")
    res["watches"] = len(futs)
    res["set_watches_s"] = round(time.monotonic() - t0, 2)
    del futs, replies
    res["rss_watches_mb"] = mb(rss_kb(pid))

    # An unrelated client (its own process) reads during the storm.
    probe = Probe(port, "/load")
    await asyncio.sleep(0.3)
    t_idle = time.time()
    await asyncio.sleep(0.3)

    w0 = time.time()
    t0 = time.monotonic()
    mf = admin.send(OP_MULTI, multi_set_body(paths, b"fired"))
    err, _ = await asyncio.wait_for(mf, 120)
    check(err == 0, f"multi setData error {err}")
    res["multi_reply_ms"] = round((time.monotonic() - t0) * 1000, 1)
    try:
        await asyncio.wait_for(all_in.wait(), 300)
    except asyncio.TimeoutError:
        raise AssertionError(f"only {got[0]} of {expected} watch events arrived") from None
    res["fire_all_s"] = round(time.monotonic() - t0, 3)
    w1 = time.time()
    await asyncio.sleep(0.2)
    probe.stop()
    idle = probe.between(t_idle - 0.3, w0)
    lat = probe.between(w0, w1)
    res["probe_idle_ms_median"] = round(statistics.median(idle), 2) if idle else None
    res["probe_storm_n"] = len(lat)
    res["probe_storm_ms_median"] = round(statistics.median(lat), 2) if lat else None
    res["probe_storm_ms_max"] = round(max(lat), 2) if lat else None
    check(lat, "the probe was not answered during the storm")
    await asyncio.sleep(1.0)  # anything more would be a duplicate
    check(got[0] == expected, f"{got[0]} watch events for {expected} watches")
    bad = [s for s in sessions if s.events != {p: 1 for p in paths}]
    check(not bad, f"{len(bad)} sessions did not get each event exactly once")
    res["events"] = got[0]
    res["rss_peak_mb"] = mb(sampler.stop())
    res["rss_after_storm_mb"] = mb(rss_kb(pid))

    # Every session is still served.
    t0 = time.monotonic()
    futs = [s.send(OP_EXISTS, get_data_body("/load", False)) for s in sessions]
    replies = await asyncio.wait_for(asyncio.gather(*futs), 120)
    check(all(e == 0 for e, _ in replies), "an exists after the storm failed")
    res["exists_all_s"] = round(time.monotonic() - t0, 2)
    stop_ping.set()
    await ping_task
    await asyncio.gather(*(s.close() for s in sessions))
    await admin.close()
    await asyncio.sleep(2)
    res["rss_closed_mb"] = mb(rss_kb(pid))


# ---------------------------------------------------------------- case: limits

async def outcome_of_set(port, path, data_len):
    """Sends one setData of `data_len` bytes on a fresh session: 'ok', 'err:<code>' or
    'closed' (the connection ended without a reply)."""
    s = await Session.open("127.0.0.1", port, local="127.0.0.3")
    try:
        err, _ = await s.call(OP_SETDATA, set_data_body(path, b"x" * data_len), timeout=20)
        return "ok" if err == 0 else f"err:{err}"
    except Closed:
        return "closed"
    except asyncio.TimeoutError:
        return "timeout"
    finally:
        await s.close()


async def case_maxbuffer(port, res):
    s = await Session.open("127.0.0.1", port, local="127.0.0.3")
    path = "/big"
    err, _ = await s.call(OP_CREATE, create_body(path))
    check(err in (0, -110), f"create /big: {err}")
    await s.close()
    # Frame payload: header 8 + path (4 + len) + data (4 + D) + version 4.
    overhead = 8 + 4 + len(path) + 4 + 4
    cases = {
        "frame=maxbuffer": JUTE_MAXBUFFER - overhead,
        "frame=maxbuffer+1": JUTE_MAXBUFFER - overhead + 1,
        "value=1MiB": 1024 * 1024,
    }
    out = {}
    for name, d in cases.items():
        out[name] = await outcome_of_set(port, path, d)
    res["maxbuffer"] = out
    # The largest value accepted reads back intact.
    s = await Session.open("127.0.0.1", port, local="127.0.0.3")
    err, body = await s.call(OP_GETDATA, get_data_body(path, False))
    await s.close()
    check(err == 0, f"getData /big: {err}")
    (dl,) = struct.unpack(">i", body[:4])
    res["maxbuffer_readback_bytes"] = dl
    if out["frame=maxbuffer"] == "ok":
        check(dl == cases["frame=maxbuffer"] and body[4:4 + dl] == b"x" * dl,
              "the largest accepted value did not read back intact")
    return out


async def raw_connect_outcome(port, local):
    """Opens a connection from `local` and sends a ConnectRequest: 'session' or 'closed'."""
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0))
    except ConnectionRefusedError:
        return "refused", None
    except ConnectionError:  # accepted and closed before connect() returned (a reset,
        # or EPIPE: seen with ZooKeeper 3.8 over maxClientCnxns on a loaded machine)
        return "closed", None
    try:
        w.write(connect_frame())
        (n,) = struct.unpack(">i", await asyncio.wait_for(r.readexactly(4), 10))
        await r.readexactly(n)
        return "session", w
    except (asyncio.IncompleteReadError, ConnectionError, OSError):
        w.close()
        return "closed", None
    except asyncio.TimeoutError:
        w.close()
        return "timeout", None


async def case_maxcnxns(port, res):
    five = [await Session.open("127.0.0.1", port, local="127.0.0.1") for _ in range(5)]
    sixth, _ = await raw_connect_outcome(port, "127.0.0.1")
    other, w2 = await raw_connect_outcome(port, "127.0.0.2")
    await five[0].close()
    await asyncio.sleep(1.0)
    again, w3 = await raw_connect_outcome(port, "127.0.0.1")
    res["maxcnxns"] = {"5 from 127.0.0.1": "session", "6th from 127.0.0.1": sixth,
                       "from 127.0.0.2": other, "127.0.0.1 after one closed": again}
    for w in (w2, w3):
        if w:
            w.close()
    for s in five[1:]:
        await s.close()
    check(sixth == "closed", f"6th connection from one IP: {sixth}, expected closed")
    check(other == "session", f"connection from another IP: {other}")
    check(again == "session", f"after one closed: {again}")


async def case_maxtotal(port, res):
    """maxCnxns=8: connections of the port in all, whatever their address."""
    eight = [await Session.open("127.0.0.1", port, local=f"127.0.0.{2 + i % 2}")
             for i in range(8)]
    ninth, _ = await raw_connect_outcome(port, "127.0.0.4")
    await eight[0].close()
    await asyncio.sleep(1.0)
    again, w = await raw_connect_outcome(port, "127.0.0.4")
    res["maxtotal"] = {"8 from 127.0.0.2-3": "session", "9th": ninth, "after one closed": again}
    if w:
        w.close()
    for s in eight[1:]:
        await s.close()
    check(ninth == "closed", f"9th connection over maxCnxns=8: {ninth}, expected closed")
    check(again == "session", f"after one closed: {again}")


async def case_slowclient(impl, port, pid, log, flood_mb, res):
    flooder = await Session.open("127.0.0.1", port, local="127.0.0.4")
    name = "n" * 12000
    child = f"/flood/{name}"
    for p in ("/flood", child):
        err, _ = await flooder.call(OP_CREATE, create_body(p))
        check(err in (0, -110), f"create {p[:20]}: {err}")
    # The slow client: a blocking socket with a 4 KiB receive buffer that, after its
    # handshake and addWatch, never reads again.
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.bind(("127.0.0.5", 0))
    slow.settimeout(10)
    slow.connect(("127.0.0.1", port))
    slow.sendall(connect_frame(30000))

    def read_frame(sock):
        hdr = b""
        while len(hdr) < 4:
            c = sock.recv(4 - len(hdr))
            if not c:
                raise Closed("eof")
            hdr += c
        (n,) = struct.unpack(">i", hdr)
        body = b""
        while len(body) < n:
            c = sock.recv(n - len(body))
            if not c:
                raise Closed("eof")
            body += c
        return body
    read_frame(slow)
    slow.sendall(request(1, OP_ADDWATCH, jstr("/flood") + struct.pack(">i", 1)))
    rep = read_frame(slow)
    check(struct.unpack(">iqi", rep[:16])[2] == 0, "addWatch failed")

    frame_len = 4 + 16 + 12 + len(child)
    per_multi = 100
    rounds = max(1, int(flood_mb * 1024 * 1024 / frame_len / per_multi))
    total = rounds * per_multi
    res["flood_events"] = total
    res["flood_mb"] = round(total * frame_len / 1024 / 1024, 1)
    res["rss_start_mb"] = mb(rss_kb(pid))
    sampler = RssSampler(pid).start()
    probe = await Session.open("127.0.0.1", port, local="127.0.0.6")
    lat = []
    t0 = time.monotonic()
    for r in range(rounds):
        # Pipelined single setData requests, not one multi: each txn is kept in the
        # committed-proposal log (commitLogCount, 500 txns, as ZooKeeper does), so big
        # multis would measure that log instead of the notification queues.
        futs = [flooder.send(OP_SETDATA, set_data_body(child, b"v%d" % r)) for _ in range(per_multi)]
        errs = await asyncio.wait_for(asyncio.gather(*futs), 60)
        check(all(e == 0 for e, _ in errs), "flood setData failed")
        t = time.monotonic()
        err, _ = await probe.call(OP_GETDATA, get_data_body("/flood", False))
        lat.append((time.monotonic() - t) * 1000)
        check(err == 0, "probe getData during the flood failed")
    res["flood_s"] = round(time.monotonic() - t0, 2)
    await asyncio.sleep(1.0)
    res["rss_peak_mb"] = mb(sampler.stop())
    res["probe_ms_median"] = round(statistics.median(lat), 2)
    res["probe_ms_max"] = round(max(lat), 2)
    # Now drain the slow client: how many events reached it, and was it closed?
    slow.settimeout(5)
    got = 0
    closed = False
    try:
        while True:
            b = read_frame(slow)
            if struct.unpack(">i", b[:4])[0] == -1:
                got += 1
            if got == total:
                break
    except (Closed, ConnectionError):
        closed = True
    except socket.timeout:
        pass
    slow.close()
    res["slow_events_received"] = got
    res["slow_closed_by_server"] = closed
    res["rss_after_mb"] = mb(rss_kb(pid))
    await probe.close()
    await flooder.close()
    if impl == "rzk":
        check(closed and got < total,
              f"rzk did not close the slow connection ({got}/{total} events, closed={closed})")
        text = open(log, errors="replace").read()
        check("watch notifications queued" in text, "rzk did not log why it closed the slow client")
        # 8 MiB queue + socket buffers + what the flood itself needs; far below the flood.
        growth = res["rss_peak_mb"] - res["rss_start_mb"]
        check(growth < 64, f"rzk RSS grew by {growth} MB during the flood")


def read_sock_frame(sock):
    def exact(n):
        b = bytearray()
        while len(b) < n:
            c = sock.recv(min(n - len(b), 1 << 20))
            if not c:
                raise Closed("eof")
            b += c
        return bytes(b)
    (n,) = struct.unpack(">i", exact(4))
    return exact(n)


async def case_pipeline(impl, port, pid, n, res):
    """A client pipelines `n` getData of a 100 KB znode and does not read the replies
    (receive buffer 4 KiB): the server must stop reading it (rzk: MAX_OUTSTANDING_PER_CONN
    requests in flight, net/conn.rs) instead of buffering n x 100 KB of replies; other
    sessions are served; when the client reads, every reply arrives, in order."""
    import threading
    s = await Session.open("127.0.0.1", port, local="127.0.0.4")
    value = b"p" * (100 * 1024)
    err, _ = await s.call(OP_CREATE, create_body("/pipe", value))
    check(err in (0, -110), f"create /pipe: {err}")
    res["rss_start_mb"] = mb(rss_kb(pid))
    sampler = RssSampler(pid).start()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind(("127.0.0.7", 0))
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    sock.sendall(connect_frame(30000))
    read_sock_frame(sock)
    reqs = b"".join(request(i + 1, OP_GETDATA, get_data_body("/pipe", False)) for i in range(n))
    sent = threading.Event()
    threading.Thread(target=lambda: (sock.sendall(reqs), sent.set()), daemon=True).start()
    lat = []
    for _ in range(15):
        t = time.monotonic()
        err, _ = await s.call(OP_EXISTS, get_data_body("/pipe", False))
        lat.append((time.monotonic() - t) * 1000)
        check(err == 0, "exists from another session failed")
        await asyncio.sleep(0.1)
    res["requests"] = n
    res["replies_mb_if_buffered"] = round(n * len(value) / 1024 / 1024)
    res["rss_held_mb"] = mb(rss_kb(pid))
    res["probe_ms_max"] = round(max(lat), 2)
    # Now read everything.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    got = 0
    in_order = True
    t0 = time.monotonic()
    try:
        while got < n:
            p = read_sock_frame(sock)
            xid, _z, e = struct.unpack_from(">iqi", p)
            if xid < 0:
                continue
            got += 1
            if xid != got or e != 0:
                in_order = False
    except (Closed, OSError):
        pass
    res["replies_read"] = got
    res["in_order"] = in_order
    res["read_all_s"] = round(time.monotonic() - t0, 2)
    res["rss_peak_mb"] = mb(sampler.stop())
    sock.close()
    await s.close()
    check(got == n and in_order, f"{got}/{n} replies (in order: {in_order})")
    if impl == "rzk":
        growth = res["rss_peak_mb"] - res["rss_start_mb"]
        check(growth < 64, f"rzk RSS grew by {growth} MB with {n} replies held back")


async def case_limits(impl, port, pid, log, args, res):
    # First: the other checks leave connections open (maxClientCnxns, maxCnxns).
    await case_sessionless(port, res)
    out = await case_maxbuffer(port, res)
    check(out == ZK_MAXBUFFER_OUTCOMES,
          f"{impl}: maxbuffer outcomes {out} differ from ZooKeeper 3.8's {ZK_MAXBUFFER_OUTCOMES}")
    await case_maxcnxns(port, res)
    await asyncio.sleep(1.0)
    await case_maxtotal(port, res)


# nio.sessionlessCnxnTimeout of the limits servers (ZooKeeper reads the zoo.cfg key as the
# system property zookeeper.nio.sessionlessCnxnTimeout).
SESSIONLESS_MS = 1500


async def case_sessionless(port, res):
    """A connection silent for longer than nio.sessionlessCnxnTimeout before its first
    request is closed; one whose first request trickles in (a four-letter word, one byte
    every 0.6 s: 2.4 s in all, more than the timeout, no gap as long) is answered: each
    byte received starts the time again (ZooKeeper's connection expiry queue is touched
    on every read; rzk had a fixed 10 s deadline for the whole first request, and no key)."""
    # From an address the other limits checks leave no connection on (maxClientCnxns).
    reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                   local_addr=("127.0.0.6", 0))
    t0 = time.monotonic()
    data = await asyncio.wait_for(reader.read(1), 30)
    silent_s = time.monotonic() - t0
    writer.close()
    check(data == b"" and silent_s < SESSIONLESS_MS / 1000 * 3,
          f"sessionless: a silent connection closed after {silent_s:.1f} s ({data!r}); "
          f"nio.sessionlessCnxnTimeout={SESSIONLESS_MS} ms")
    # From an address the other limits checks leave no connection on (maxClientCnxns).
    reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                   local_addr=("127.0.0.6", 0))
    t0 = time.monotonic()
    for b in b"ruok":
        await asyncio.sleep(0.6)
        writer.write(bytes([b]))
        await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    check(answer == b"imok", f"sessionless: a trickled ruok got {answer!r} "
          f"after {time.monotonic() - t0:.1f} s")
    res["sessionless_closed_s"] = round(silent_s, 1)
    print(f"  sessionless: silent connection closed after {silent_s:.1f} s; "
          f"ruok trickled over 2.4 s answered")


async def case_writes(impl, port, pid, n_sessions, per_session, res):
    """n_sessions sessions each pipeline per_session setData at once: more writes in flight
    than rzk's write queue holds (WRITE_QUEUE_CAPACITY, node/jobs.rs) and than one
    connection may have outstanding (MAX_OUTSTANDING_PER_CONN): the connections wait, and
    every write is answered, without error and in each session's order; another session's
    reads are served meanwhile."""
    res["rss_start_mb"] = mb(rss_kb(pid))
    sampler = RssSampler(pid).start()
    first = await Session.open("127.0.0.1", port, local="127.0.0.8")
    err, _ = await first.call(OP_CREATE, create_body("/wq"))
    check(err in (0, -110), f"create /wq: {err}")
    sessions = [await Session.open("127.0.0.1", port, local="127.0.0.8") for _ in range(n_sessions)]
    for s in sessions:
        s.order = []
    t0 = time.monotonic()
    futs = [s.send(OP_SETDATA, set_data_body("/wq", b"%d" % i)) for i in range(per_session) for s in sessions]
    lat = []
    all_done = asyncio.ensure_future(asyncio.wait_for(asyncio.gather(*futs), 300))
    while not all_done.done():
        t = time.monotonic()
        err, _ = await first.call(OP_GETDATA, get_data_body("/wq", False), timeout=60)
        lat.append((time.monotonic() - t) * 1000)
        check(err == 0, "a read during the write flood failed")
        await asyncio.sleep(0.05)
    replies = await all_done
    res["writes"] = len(futs)
    res["writes_s"] = round(time.monotonic() - t0, 2)
    res["writes_per_s"] = round(len(futs) / max(res["writes_s"], 0.001))
    res["probe_ms_max"] = round(max(lat), 2) if lat else None
    res["rss_peak_mb"] = mb(sampler.stop())
    check(all(e == 0 for e, _ in replies), "a pipelined setData failed")
    check(all(s.order == list(range(1, per_session + 1)) for s in sessions),
          "replies out of a session's order")
    for s in sessions + [first]:
        await s.close()


async def case_queues(impl, port, pid, log, args, res):
    wq = {}
    res["writes"] = wq
    await case_writes(impl, port, pid, args.write_sessions, 1000, wq)
    pipe = {}
    res["pipeline"] = pipe
    await case_pipeline(impl, port, pid, args.pipeline, pipe)
    slow = {}
    res["slowclient"] = slow
    await case_slowclient(impl, port, pid, log, args.flood_mb, slow)


# ---------------------------------------------------------------- main

def run_case(servers, impl, case, args, results):
    base = 24500 if impl == "rzk" else 24600
    res = {}
    results.setdefault(impl, {})[case] = res
    if case == "sessions":
        p, log = servers.start(impl, base, "sessions", "maxClientCnxns=0")
        res["rss_idle_mb"] = mb(rss_kb(p.pid))
        asyncio.run(case_sessions(impl, base, p.pid, args.sessions, args.watch_nodes, res))
    elif case == "limits":
        p, log = servers.start(impl, base + 10, "limits", "maxClientCnxns=5", "maxCnxns=8",
                               f"nio.sessionlessCnxnTimeout={SESSIONLESS_MS}")
        res["rss_idle_mb"] = mb(rss_kb(p.pid))
        asyncio.run(case_limits(impl, base + 10, p.pid, log, args, res))
    else:
        p, log = servers.start(impl, base + 20, "queues", "maxClientCnxns=0")
        res["rss_idle_mb"] = mb(rss_kb(p.pid))
        asyncio.run(case_queues(impl, base + 20, p.pid, log, args, res))
    check(p.alive(), f"{impl} server exited")
    problems = log_problems(impl, log)
    res["log_problems"] = len(problems)
    servers.stop(p)
    if impl == "rzk":
        check(not problems, f"rzk log: {problems[:3]}")
    elif problems:
        print(f"  note: ZooKeeper log: {problems[:2]}")


def table(results):
    rows = [
        ("sessions", "sessions", "sessions"), ("sessions", "connect_s", "connect all (s)"),
        ("sessions", "watches", "watches"), ("sessions", "set_watches_s", "set watches (s)"),
        ("sessions", "multi_reply_ms", "multi reply (ms)"), ("sessions", "fire_all_s", "all events in (s)"),
        ("sessions", "events", "events delivered"),
        ("sessions", "probe_idle_ms_median", "probe idle median (ms)"),
        ("sessions", "probe_storm_n", "probe reads in storm"),
        ("sessions", "probe_storm_ms_median", "probe storm median (ms)"),
        ("sessions", "probe_storm_ms_max", "probe storm max (ms)"),
        ("sessions", "rss_idle_mb", "RSS idle (MB)"), ("sessions", "rss_sessions_mb", "RSS sessions (MB)"),
        ("sessions", "rss_watches_mb", "RSS + watches (MB)"), ("sessions", "rss_peak_mb", "RSS peak (MB)"),
        ("sessions", "rss_after_storm_mb", "RSS after storm (MB)"), ("sessions", "rss_closed_mb", "RSS closed (MB)"),
        ("limits", "maxbuffer", "maxbuffer outcomes"), ("limits", "maxcnxns", "maxClientCnxns=5"), ("limits", "maxtotal", "maxCnxns=8"),
        ("queues", "writes", "pipelined writes (1,000 per session)"),
        ("queues", "pipeline", "pipelined reads not read"),
        ("queues", "slowclient", "slow client"),
    ]
    impls = [i for i in ("rzk", "apache") if i in results]
    print("\n| figure | " + " | ".join(impls) + " |")
    print("|---|" + "---|" * len(impls))
    for case, key, label in rows:
        vals = [results[i].get(case, {}).get(key, "-") for i in impls]
        if all(v == "-" for v in vals):
            continue
        print(f"| {label} | " + " | ".join(json.dumps(v) if isinstance(v, dict) else str(v) for v in vals) + " |")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--probe":
        return probe_main(int(sys.argv[2]), sys.argv[3])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rzk", default="target/debug/rzk")
    ap.add_argument("--apache", help="scripts/start-apache-zk.sh (omit: rzk only)")
    ap.add_argument("--full", action="store_true", help="10,000 sessions, 100,000 watches, 200 MB flood")
    ap.add_argument("--sessions", type=int)
    ap.add_argument("--watch-nodes", type=int, default=10)
    ap.add_argument("--flood-mb", type=float)
    ap.add_argument("--pipeline", type=int, help="getData requests of the pipelining client (2,000; --full 10,000)")
    ap.add_argument("--write-sessions", type=int, help="sessions pipelining 1,000 setData each (8; --full 20)")
    ap.add_argument("--apache-cases", help="cases against ZooKeeper (default: --cases)")
    ap.add_argument("--only", choices=["rzk", "apache"])
    ap.add_argument("--cases", default="sessions,limits,queues")
    ap.add_argument("--json")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    args.sessions = args.sessions or (10000 if args.full else 2000)
    args.flood_mb = args.flood_mb or (200 if args.full else 16)
    args.pipeline = args.pipeline or (10000 if args.full else 2000)
    args.write_sessions = args.write_sessions or (20 if args.full else 8)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 2 * args.sessions + 1000) if hard != resource.RLIM_INFINITY else 2 * args.sessions + 1000
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < args.sessions + 500:
        print(f"file limit {resource.getrlimit(resource.RLIMIT_NOFILE)} too low for {args.sessions} sessions")
        return 1
    impls = [i for i in ("rzk", "apache") if args.only in (None, i)]
    if "apache" in impls and not args.apache:
        impls.remove("apache")
    servers = Servers(args)
    results = {}
    failed = 0
    passed = 0
    try:
        for impl in impls:
            cases = args.apache_cases if impl == "apache" and args.apache_cases else args.cases
            for case in cases.split(","):
                t0 = time.monotonic()
                try:
                    run_case(servers, impl, case, args, results)
                    passed += 1
                    print(f"PASS {impl} {case} ({time.monotonic() - t0:.1f} s)", flush=True)
                except Exception as e:  # noqa: BLE001 - report and go on
                    failed += 1
                    print(f"FAIL {impl} {case}: {e}", flush=True)
                    traceback.print_exc()
                    for p in list(servers.procs):
                        p.stop()
                    servers.show_last_log()
    finally:
        servers.cleanup()
    table(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
