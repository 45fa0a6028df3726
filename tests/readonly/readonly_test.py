#!/usr/bin/env python3
"""Read-only mode (`readonlymode.enabled`) of a 3-member ensemble, the same script against
rzk and against Apache ZooKeeper 3.8 (ports 24200-24299 on 127.0.0.1).

  .venv-tests/bin/python tests/readonly/readonly_test.py --rzk target/debug/rzk \
      --apache scripts/start-apache-zk.sh [--kinds rzk,apache] [--local-sessions true|false]

The operator turns the mode on as ZooKeeper reads it, as the JVM system property
`-Dreadonlymode.enabled=true` (ZooKeeper: JVMFLAGS; rzk: `SERVER_JVMFLAGS`, as zkServer.sh
passes it). ZooKeeper 3.8 hands read-only clients a session only with
`localSessionsEnabled=true` (without it the connect request is answered by a NOTREADONLY
reply header in place of a ConnectResponse, which no client can read); rzk serves them
either way, so `--local-sessions false` is only for rzk (the CI stage runs both).

Per kind, in order (each step prints PASS or raises):
  1. three members settle; a read-write client writes /ro = "hello";
  2. the two other members are killed -9: member 1 enters read-only mode within
     2 s (tickTime 2000) + slack: `isro` says `ro`, `srvr` Mode `read-only` with the
     "READ-ONLY mode" line, mntr `zk_server_state` `read-only`, the AdminServer's
     `is_read_only` answers `read_only: true`;
  3. a client without canBeReadOnly is refused (raw: the connection closes without a
     ConnectResponse; kazoo read_only=False cannot connect);
  4. a raw ConnectRequest with readOnly=1 gets a ConnectResponse with readOnly=1 and a
     session id whose top byte is the member's myid; mntr counts it in
     `zk_local_sessions`;
  5. kazoo read_only=True connects (CONNECTED_RO), reads /ro and its children, sets a
     watch; create, set, delete, sync and a multi all fail with NotReadOnlyCallError
     (-119); /ro is unchanged; rzk-client with can_be_read_only (`rzk shell -r`) reads
     /ro and is refused a set ("Not a read-only call"), without it gets no session;
  6. the two members come back: member 1 leaves read-only mode (isro `rw`, Mode
     follower/leader), its read-only connections are closed, kazoo reconnects read-write
     (CONNECTED) and a write succeeds.
Only processes this script started are signalled (by PID); data under a temp dir, kept
on failure.
"""
import argparse
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

from kazoo.client import KazooClient
from kazoo.exceptions import NotReadOnlyCallError
from kazoo.protocol.states import KeeperState

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import zkproc  # noqa: E402

BASE = 24200
IDS = (1, 2, 3)
RO_FLAG = "-Dreadonlymode.enabled=true"


READS_BEFORE = 60


def received(port):
    """srvr's `Received:` count."""
    return int(zkproc.field(zkproc.four(port, "srvr"), "Received"))


def ok(msg):
    print(f"PASS {msg}", flush=True)


def raw_connect(port, read_only, session_id=0, passwd=b"\0" * 16, timeout_ms=30000):
    """Sends one ConnectRequest (with the trailing readOnly byte) and returns the whole
    answer until the server closes or one frame has arrived (b"" when it just closes)."""
    body = struct.pack(">iqiqi", 0, 0, timeout_ms, session_id, len(passwd)) + passwd
    body += b"\1" if read_only else b"\0"
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
                if len(out) >= 4 and len(out) >= 4 + struct.unpack(">i", out[:4])[0]:
                    break
        except (ConnectionResetError, socket.timeout):
            pass
    return out


def multi(c):
    t = c.transaction()
    t.create("/ro/t", b"")
    t.set_data("/ro", b"no")
    return t.commit()


def parse_connect_response(frame):
    """(protocolVersion, timeOut, sessionId, passwd, readOnly or None) of one framed
    ConnectResponse."""
    n = struct.unpack(">i", frame[:4])[0]
    body = frame[4:4 + n]
    proto, to, sid, plen = struct.unpack(">iiqi", body[:20])
    pw = body[20:20 + plen]
    rest = body[20 + plen:]
    return proto, to, sid, pw, (rest[0] if rest else None)


class Ensemble:
    def __init__(self, args, kind, base):
        self.args, self.kind, self.base = args, kind, base
        self.port = {i: BASE + i for i in IDS}
        self.admin_port = BASE + 50
        self.servers = zkproc.server_lines(IDS, BASE + 20, BASE + 30)
        self.common = ["tickTime=2000", "initLimit=5", "syncLimit=2",
                       f"localSessionsEnabled={args.local_sessions}"]
        self.procs = {}

    def admin(self, i):
        # Member 1 runs the AdminServer (HTTP) on BASE+50.
        if i != 1:
            return ["admin.enableServer=false"]
        return ["admin.enableServer=true", f"admin.serverPort={self.admin_port}",
                "admin.serverAddress=127.0.0.1"]

    def start(self, i):
        d = os.path.join(self.base, f"n{i}")
        # Member 3 whitelists no isro: read-only mode allows it anyway (as ZooKeeper).
        wl = ["4lw.commands.whitelist=srvr,mntr,ruok"] if i == 3 else []
        if self.kind == "apache":
            zkproc.write_myid(os.path.join(d, "data"), i)
            self.procs[i] = zkproc.start_apache(self.args.apache, self.port[i], d, RO_FLAG,
                                                *self.common, *wl, *self.admin(i), *self.servers)
        else:
            cfg = zkproc.write_config(os.path.join(d, "zoo.cfg"), self.port[i], *self.common,
                                      *wl, *self.admin(i), servers=self.servers, myid=i)
            self.procs[i] = zkproc.start_rzk(self.args.rzk, cfg, self.port[i],
                                             env={"SERVER_JVMFLAGS": RO_FLAG})

    def kill9(self, i):
        self.procs.pop(i).kill9()

    def stop_all(self):
        for i in list(self.procs):
            self.kill9(i)

    def settled(self):
        return zkproc.wait_settled([self.port[i] for i in IDS], timeout=90,
                                   where=f"; see {self.base}")

    def admin_get(self, cmd):
        url = f"http://127.0.0.1:{self.admin_port}/commands/{cmd}"
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())


def run(args, kind):
    base = tempfile.mkdtemp(prefix=f"rzk-readonly-{kind}-")
    ens = Ensemble(args, kind, base)
    p1 = ens.port[1]
    clients = []
    try:
        for i in IDS:
            ens.start(i)
        ens.settled()
        c = KazooClient(hosts=f"127.0.0.1:{p1}", timeout=10.0)
        c.start(timeout=30)
        clients.append(c)
        c.ensure_path("/ro/child")
        c.set("/ro", b"hello")
        for _ in range(READS_BEFORE):
            c.exists("/ro")
        c.stop()
        before = received(p1)
        assert before >= READS_BEFORE, f"srvr Received {before} after {READS_BEFORE} reads"
        assert zkproc.four(p1, "isro") == "rw", "isro before the partition"
        p3 = ens.port[3]
        assert "not in the whitelist" in zkproc.four(p3, "stat"), "member 3's whitelist"
        assert zkproc.four(p3, "isro") == "rw", "isro outside member 3's whitelist"
        ok(f"{kind}: 3 members settled, /ro written, isro rw (also on member 3, whose "
           f"whitelist lacks it)")

        t0 = time.monotonic()
        for i in (2, 3):
            ens.kill9(i)
        zkproc.wait_until(lambda: zkproc.mode(p1) == "read-only", 20, "Mode read-only")
        took = time.monotonic() - t0
        assert took >= 1.9, f"read-only after {took:.1f}s: before the 2 s grace period"
        assert zkproc.four(p1, "isro") == "ro"
        srvr = zkproc.four(p1, "srvr")
        assert "READ-ONLY mode; serving only read-only clients" in srvr, srvr
        # A new role is a new server object in ZooKeeper, with counters from zero.
        assert received(p1) < READS_BEFORE, f"srvr Received {received(p1)} kept (was {before})"
        mntr = zkproc.four(p1, "mntr")
        assert zkproc.field(mntr, "zk_server_state") == "read-only", mntr
        # A read-only server is no quorum server: no peer state or quorum size rows.
        assert "zk_peer_state" not in mntr and "zk_quorum_size" not in mntr, mntr
        ro = ens.admin_get("is_read_only")
        assert ro.get("read_only") is True, ro
        ok(f"{kind}: read-only mode {took:.1f}s after the partition: isro ro, srvr/mntr "
           f"read-only, AdminServer is_read_only {ro['read_only']}")

        assert raw_connect(p1, read_only=False) == b"", "a not-read-only client got an answer"
        rw = KazooClient(hosts=f"127.0.0.1:{p1}", timeout=4.0, read_only=False)
        clients.append(rw)
        try:
            rw.start(timeout=4)
            raise AssertionError("a read-write kazoo client connected in read-only mode")
        except rw.handler.timeout_exception:
            pass
        finally:
            rw.stop()
        ok(f"{kind}: clients without canBeReadOnly refused (connection closed, no answer)")

        frame = raw_connect(p1, read_only=True)
        assert frame, "no ConnectResponse for a read-only client"
        proto, to, sid, pw, ro_byte = parse_connect_response(frame)
        assert ro_byte == 1, f"readOnly byte {ro_byte}"
        assert sid != 0 and (sid >> 56) == 1, f"session id 0x{sid:x}"
        assert to == 30000 and len(pw) == 16, (to, pw)
        local = int(zkproc.field(zkproc.four(p1, "mntr"), "zk_local_sessions"))
        assert local >= 1, f"zk_local_sessions {local}"
        ok(f"{kind}: readOnly ConnectResponse: readOnly=1, session 0x{sid:x} (myid in the "
           f"top byte), zk_local_sessions {local}")

        states = []
        c = KazooClient(hosts=f"127.0.0.1:{p1}", timeout=10.0, read_only=True)
        clients.append(c)
        c.add_listener(lambda s: states.append(s))
        c.start(timeout=20)
        assert c.client_state == KeeperState.CONNECTED_RO, c.client_state
        data, stat = c.get("/ro")
        assert data == b"hello" and stat.version == 1, (data, stat)
        assert c.get_children("/ro") == ["child"]
        assert c.exists("/ro", watch=lambda e: None) is not None
        refused = []
        for name, op in [("create", lambda: c.create("/ro/new", b"x")),
                         ("set", lambda: c.set("/ro", b"no")),
                         ("delete", lambda: c.delete("/ro/child")),
                         ("sync", lambda: c.sync("/ro")),
                         ("multi", lambda: multi(c))]:
            try:
                op()
                raise AssertionError(f"{name} succeeded in read-only mode")
            except NotReadOnlyCallError:
                refused.append(name)
        assert c.get("/ro")[0] == b"hello" and c.exists("/ro/new") is None
        ok(f"{kind}: kazoo read_only=True CONNECTED_RO: reads served, "
           f"{'/'.join(refused)} -> NotReadOnlyCallError")

        # Pipelined: reads and refused writes sent back to back are answered in request
        # order (per-session FIFO). ZooKeeper 3.8 answers the writes' NOTREADONLY at once,
        # ahead of earlier reads still in its pipeline (kazoo: "xids do not match"; a
        # break-it review in session 59, docs/COMPATIBILITY.md), so rzk only.
        if kind == "rzk":
            p = KazooClient(hosts=f"127.0.0.1:{p1}", timeout=10.0, read_only=True)
            clients.append(p)
            p.start(timeout=20)
            want, got = [], []
            for round_ in range(20):
                batch = [("ok", p.get_async("/ro")),
                         ("refused", p.create_async(f"/ro/pipelined-{round_}", b"x")),
                         ("ok", p.exists_async("/ro")),
                         ("refused", p.set_async("/ro", b"no")),
                         ("ok", p.get_children_async("/ro"))]
                for expect, r in batch:
                    want.append(expect)
                    try:
                        r.get(timeout=10)
                        got.append("ok")
                    except NotReadOnlyCallError:
                        got.append("refused")
            assert got == want, f"pipelined answers {got}"
            assert p.client_state == KeeperState.CONNECTED_RO, p.client_state
            assert p.get("/ro")[0] == b"hello" and p.exists("/ro/pipelined-0") is None
            p.stop()
            ok(f"{kind}: 20 pipelined batches of get, create, exists, set, getChildren: "
               f"answered in order (reads ok, writes NotReadOnlyCallError), connection kept")

        # rzk-client (through `rzk shell -r`, its can_be_read_only option) as a second client.
        shell = [args.rzk, "shell", "-timeout", "5000", "-server", f"127.0.0.1:{p1}"]
        out = subprocess.run(shell[:2] + ["-r"] + shell[2:] + ["get", "/ro"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and "hello" in out.stdout, out
        out = subprocess.run(shell[:2] + ["-r"] + shell[2:] + ["set", "/ro", "no"],
                             capture_output=True, text=True, timeout=30)
        # zkCli's words (CliWrapperException), checked whole since a break-it review
        # (session 50) found rzk shell printing "KeeperErrorCode = Not a read-only call for".
        assert "Not a read-only call: /ro" in out.stderr.splitlines(), out
        out = subprocess.run(shell[:2] + ["-r"] + shell[2:] + ["sync", "/ro"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and "Sync has failed. rc=-119" in out.stdout.splitlines(), out
        out = subprocess.run(shell + ["get", "/ro"], capture_output=True, text=True, timeout=30)
        assert "hello" not in out.stdout, out
        ok(f"{kind}: rzk-client can_be_read_only (rzk shell -r): get served, set refused "
           f"(Not a read-only call: /ro), sync fails as zkCli's (rc=-119); without -r no session")

        t1 = time.monotonic()
        for i in (2, 3):
            ens.start(i)
        ens.settled()
        assert zkproc.four(p1, "isro") == "rw"
        zkproc.wait_until(lambda: c.client_state == KeeperState.CONNECTED, 60,
                          "the read-only kazoo client to reconnect read-write")
        for _ in range(READS_BEFORE):
            c.exists("/ro")
        assert received(p1) < 2 * READS_BEFORE, f"srvr Received {received(p1)} kept"
        c.create("/ro/after", b"rw")
        assert c.get("/ro/after")[0] == b"rw"
        c.stop()
        ok(f"{kind}: quorum back after {time.monotonic() - t1:.1f}s: isro rw, kazoo "
           f"reconnected read-write and wrote")
        ens.stop_all()
        shutil.rmtree(base, ignore_errors=True)
    except BaseException:
        print(f"data and logs kept in {base}", flush=True)
        raise
    finally:
        for c in clients:
            try:
                c.stop()
                c.close()
            except Exception:
                pass
        ens.stop_all()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rzk", default="target/debug/rzk")
    ap.add_argument("--apache", default="scripts/start-apache-zk.sh")
    ap.add_argument("--kinds", default="rzk,apache")
    ap.add_argument("--local-sessions", choices=["true", "false"], default="true")
    args = ap.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    if "apache" in kinds and args.local_sessions != "true":
        ap.error("ZooKeeper 3.8 serves read-only clients only with --local-sessions true")
    for kind in kinds:
        t0 = time.monotonic()
        run(args, kind)
        print(f"{kind}: all read-only steps passed in {time.monotonic() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
