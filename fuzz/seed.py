#!/usr/bin/env python3
"""Seeds the fuzz corpora (fuzz/corpus/<target>/) with real inputs.

    .venv-tests/bin/python fuzz/seed.py [--rzk target/debug/rzk] [--port-base 24410] [--out DIR]

What it does, once against rzk and once against Apache ZooKeeper 3.8 (scripts/start-apache-zk.sh):
- puts a recording TCP proxy in front of the server and runs a kazoo workload through it
  (creates of every mode, setData, ACLs, watches, multi, sync, digest auth, deletes); the
  client's frames become seeds of `client_request`, `records` and `four_letter`, the
  server's replies seeds of `records`;
- snapCount=20 makes the server write several snapshots; the transaction logs and
  snapshots it wrote become seeds of `txnlog` (raw and as framed payloads), `snapshot`
  and `snap_stream` (the snapshot body in the SNAP stream form);
- the logged txns, as PROPOSAL / INFORM payloads, and the client frames, as forwarded
  REQUESTs, go into quorum-packet streams next to LEARNERINFO, LEADERINFO, ACKEPOCH,
  NEWLEADER, PING, REVALIDATE packets in ZooKeeper's layout (docs/QUORUM-PROTOCOL.md);
- election notifications of every length ZooKeeper accepts and the initial connection
  message (both protocol versions), zoo.cfg files, myid, DIGEST-MD5 tokens, JAAS files.

Servers listen on 127.0.0.1 only, on --port-base .. +3; only processes started here are
stopped (by PID). Run `cargo fuzz cmin <target>` afterwards (scripts/fuzz.sh --cmin).
"""
import argparse
import gzip
import hashlib
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import zkproc  # noqa: E402


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def jstr(b):
    if isinstance(b, str):
        b = b.encode()
    return i32(len(b)) + b


class Recorder:
    """A TCP proxy on 127.0.0.1:`port` to `target`, keeping each connection's bytes in
    both directions."""

    def __init__(self, port, target):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.target = target
        self.conns = []  # [client->server bytearray, server->client bytearray]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.target))
            rec = [bytearray(), bytearray()]
            self.conns.append(rec)
            threading.Thread(target=self.pump, args=(c, s, rec[0]), daemon=True).start()
            threading.Thread(target=self.pump, args=(s, c, rec[1]), daemon=True).start()

    @staticmethod
    def pump(a, b, buf):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                buf.extend(d)
                b.sendall(d)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.sock.close()


def frames(b):
    """Splits a length-prefixed stream into payloads."""
    out, i = [], 0
    while i + 4 <= len(b):
        n = struct.unpack(">i", b[i:i + 4])[0]
        if n < 0 or i + 4 + n > len(b):
            break
        out.append(bytes(b[i + 4:i + 4 + n]))
        i += 4 + n
    return out


def workload(port):
    from kazoo.client import KazooClient
    from kazoo.security import make_digest_acl, OPEN_ACL_UNSAFE
    zk = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10)
    zk.start(timeout=15)
    zk.add_auth("digest", "fuzz:secret")
    zk.create("/f", b"root data")
    zk.create("/f/p", b"x" * 300, makepath=True)
    seq = zk.create("/f/s-", b"seq", sequence=True)
    zk.create("/f/e", b"eph", ephemeral=True)
    zk.create("/f/acl", b"secret", acl=[make_digest_acl("fuzz", "secret", all=True)])
    for i in range(25):
        zk.set("/f/p", str(i).encode() * 10)
    zk.get("/f/p", watch=lambda e: None)
    zk.exists("/f/nope", watch=lambda e: None)
    zk.get_children("/f", watch=lambda e: None)
    zk.get_children("/f", include_data=True)
    zk.get_acls("/f/acl")
    zk.set_acls("/f/p", OPEN_ACL_UNSAFE)
    t = zk.transaction()
    t.create("/f/m1", b"a")
    t.create("/f/m2", b"b", ephemeral=True)
    t.set_data("/f/p", b"multi")
    t.check("/f/p", 26)
    t.delete("/f/m1")
    t.commit()
    t = zk.transaction()
    t.create("/f/m3", b"c")
    t.delete("/f/missing")
    t.commit()
    zk.sync("/f")
    try:
        zk.create("/f/p", b"dup")
    except Exception:
        pass
    zk.delete(seq)
    zk.delete("/f", recursive=True)
    zk.stop()
    zk.close()


def run_server(kind, args, base, work):
    """Runs the workload against `kind` behind a recorder; returns (connections, data dir)."""
    sport, pport = base + 1, base
    d = os.path.join(work, kind)
    os.makedirs(d, exist_ok=True)
    if kind == "rzk":
        cfg = zkproc.write_config(os.path.join(d, "zoo.cfg"), sport, "snapCount=20")
        proc = zkproc.start_rzk(args.rzk, cfg, sport)
        zkproc.wait_serving(sport, proc, what="rzk")
        data = os.path.join(d, "data")
    else:
        proc = zkproc.start_apache(os.path.join(ROOT, "scripts", "start-apache-zk.sh"), sport, d,
                                   "snapCount=20", "admin.enableServer=false")
        data = os.path.join(d, "data")
    rec = Recorder(pport, sport)
    try:
        workload(pport)
        time.sleep(0.5)
        for w in ("ruok", "srvr", "mntr", "conf"):
            zkproc.four(pport, w)
        zkproc.four(pport, "stmk", extra=i64(0x1f))
    finally:
        rec.close()
        proc.stop()
    return rec.conns, data, os.path.join(d, "zoo.cfg")


def log_records(path):
    """(payload) of each record of a txn log file."""
    b = open(path, "rb").read()
    out, i = [], 16
    while i + 12 <= len(b):
        n = struct.unpack(">i", b[i + 8:i + 12])[0]
        if n <= 0 or i + 12 + n + 1 > len(b):
            break
        out.append(b[i + 12:i + 12 + n])
        i += 12 + n + 1
    return out, b[:i]


def snap_body_end(b):
    """Offset just past the node list's "/" terminator of an uncompressed snapshot."""
    i = 16
    n = struct.unpack(">i", b[i:i + 4])[0]
    i += 4 + n * 12
    n = struct.unpack(">i", b[i:i + 4])[0]
    i += 4
    for _ in range(n):
        i += 8
        m = struct.unpack(">i", b[i:i + 4])[0]
        i += 4
        for _ in range(max(m, 0)):
            i += 4
            for _ in range(2):
                k = struct.unpack(">i", b[i:i + 4])[0]
                i += 4 + max(k, 0)
    while True:
        k = struct.unpack(">i", b[i:i + 4])[0]
        path = b[i + 4:i + 4 + max(k, 0)]
        i += 4 + max(k, 0)
        if path == b"/":
            return i
        k = struct.unpack(">i", b[i:i + 4])[0]
        i += 4 + max(k, 0) + 8 + 60


def packet(ty, zxid, data=None, auth=None):
    out = i32(ty) + i64(zxid)
    out += i32(-1) if data is None else jstr(data)
    if auth is None:
        out += i32(-1)
    else:
        out += i32(len(auth)) + b"".join(jstr(s) + jstr(i) for s, i in auth)
    return out


def digest_response(user, pw, nonce, cnonce="fuzzcnonce", realm="zk-sasl-md5",
                    uri="zookeeper/zk-sasl-md5"):
    h = lambda s: hashlib.md5(s).digest()  # noqa: E731
    hx = lambda s: hashlib.md5(s).hexdigest()  # noqa: E731
    a1 = h(f"{user}:{realm}:{pw}".encode()) + f":{nonce}:{cnonce}".encode()
    a2 = f"AUTHENTICATE:{uri}".encode()
    resp = hx(f"{hx(a1)}:{nonce}:00000001:{cnonce}:auth:{hx(a2)}".encode())
    return (f'charset=utf-8,username="{user}",realm="{realm}",nonce="{nonce}",nc=00000001,'
            f'cnonce="{cnonce}",digest-uri="{uri}",maxbuf=65536,response={resp},qop=auth').encode()


class Corpus:
    def __init__(self, out):
        self.out = out
        self.n = {}

    def add(self, target, data):
        d = os.path.join(self.out, target)
        os.makedirs(d, exist_ok=True)
        name = hashlib.sha1(data).hexdigest()
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        self.n[target] = self.n.get(target, 0) + 1


# records target: the index of a record type in fuzz_targets/records.rs `pick!`.
RECORD_INDEX = {1: 4, 15: 4, 19: 4, 21: 5, 2: 6, 3: 7, 4: 8, 5: 9, 6: 10, 7: 11, 8: 12,
                12: 13, 9: 14, 13: 15, 17: 16, 18: 17, 16: 18, 100: 19, 101: 20, 105: 21,
                102: 22, 103: 23, 104: 24, 106: 25, 14: 26, 22: 26}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rzk", default=os.path.join(ROOT, "target", "debug", "rzk"))
    ap.add_argument("--port-base", type=int, default=24410)
    ap.add_argument("--out", default=os.path.join(HERE, "corpus"))
    ap.add_argument("--skip-apache", action="store_true")
    args = ap.parse_args()
    c = Corpus(args.out)
    work = tempfile.mkdtemp(prefix="rzk-fuzz-seed-")
    txn_payloads, client_frames = [], []
    kinds = ["rzk"] + ([] if args.skip_apache else ["apache"])
    for k, kind in enumerate(kinds):
        conns, data, cfg = run_server(kind, args, args.port_base + 2 * k, work)
        for up, down in conns:
            fs = frames(up)
            if not fs:
                c.add("four_letter", bytes(up[:12]))
                continue
            c.add("four_letter", bytes(up[:4 + len(fs[0])]))
            c.add("records", b"\x00" + fs[0])
            for f in fs[1:]:
                client_frames.append(f)
                c.add("client_request", f)
                op = struct.unpack(">i", f[4:8])[0] if len(f) >= 8 else 0
                if op in RECORD_INDEX:
                    c.add("records", bytes([RECORD_INDEX[op]]) + f[8:])
            ds = frames(down)
            if ds:
                c.add("records", b"\x01" + ds[0])
                for f in ds[1:6]:
                    c.add("records", b"\x03" + f)
        if os.path.exists(cfg):
            c.add("config", open(cfg, "rb").read() + b"\0-Dzookeeper.snapCount=7\0" + b"1\n")
        vdir = os.path.join(data, "version-2")
        for name in sorted(os.listdir(vdir)):
            p = os.path.join(vdir, name)
            if name.startswith("log."):
                recs, used = log_records(p)
                txn_payloads += recs
                c.add("txnlog", b"\x00" + used + b"\0" * 64)
                c.add("txnlog", b"\x01" + b"".join(struct.pack(">H", len(r)) + r for r in recs[:40]))
                for r in recs[:40]:
                    c.add("records", b"\xff" + r)
            elif name.startswith("snapshot.") and not name.endswith(".tmp"):
                b = open(p, "rb").read()
                c.add("snapshot", b"\x00" + b)
                c.add("snapshot", b"\x02" + b)
                c.add("snapshot", b"\x01" + gzip.compress(b))
                try:
                    end = snap_body_end(b)
                    c.add("snap_stream", b[16:end] + jstr("BenWasHere"))
                except (struct.error, IndexError):
                    pass
    # quorum packet streams (docs/QUORUM-PROTOCOL.md §4)
    z = 0x100000000
    learner = packet(11, z, i64(2) + i32(0x10000) + i64(0))
    c.add("quorum_packet", learner + packet(18, z, i32(-1)))
    c.add("quorum_packet", packet(16, 0, i64(4) + i32(0x10000) + i64(-1)))
    c.add("quorum_packet", packet(17, 2 * z, i32(0x10000)) + packet(13, z + 5)
          + b"".join(packet(2, z + 6 + j, p) + packet(4, z + 6 + j) for j, p in enumerate(txn_payloads[:6]))
          + packet(10, 2 * z, b"server.1=127.0.0.1:2888:3888:participant\nversion=0")
          + packet(12, 2 * z))
    for p in txn_payloads[:30]:
        c.add("quorum_packet", packet(2, z + 1, p) + packet(8, z + 1, p)
              + packet(19, z + 1, i64(3) + p) + packet(9, z + 1, i64(3) + p))
    for f in client_frames[:40]:
        xid, op = struct.unpack(">ii", f[:8])
        c.add("quorum_packet", packet(1, 0, i64(0x1000001) + i32(xid) + i32(op) + f[8:],
                                      [("ip", "127.0.0.1"), ("digest", "fuzz:abc=")]))
    c.add("quorum_packet", packet(5, z, i64(0x1000001) + i32(30000) + i64(0x1000002) + i32(4000))
          + packet(6, 0, i64(0x1000001) + i32(30000)) + packet(6, 0, i64(0x1000001) + b"\x01")
          + packet(7, 0) + packet(3, z + 1) + packet(14, z) + packet(15, z))
    # election: notifications (selector even) and initial messages (odd)
    for st in range(4):
        n = i32(st) + i64(2) + i64(z + 3) + i64(1) + i64(1)
        c.add("election", b"\x00" + n + i32(2) + jstr("server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nversion=100000000"))
    c.add("election", b"\x00" + i32(0) + i64(1) + i64(z) + i64(1))
    c.add("election", b"\x00" + i32(0) + i64(1) + i64(z) + i64(1) + i64(1))
    c.add("election", b"\x01" + i64(-65536) + i64(3) + jstr("127.0.0.1:3888"))
    c.add("election", b"\x01" + i64(-65535) + i64(3) + jstr("127.0.0.1:3888|[::1]:3889"))
    c.add("election", b"\x01" + i64(5))
    # config
    three = "".join(f"server.{i}=127.0.0.1:{2887 + i}:{3887 + i}\n" for i in (1, 2, 3))
    c.add("config", (f"tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/tmp/x\nclientPort=2181\n{three}"
                     "server.4=[::1]:2900:3900:observer;[::1]:2182\n4lw.commands.whitelist=stat, ruok\n"
                     "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n"
                     "ssl.quorum.keyStore.location=/k\\\n  s.jks\n").encode() + b"\0-Dzookeeper.a=b -Xmx1g\0" + b"2\n")
    c.add("config", b"dataDir=/tmp/y\nclientPort=2181\ndynamicConfigFile=/tmp/zoo.cfg.dynamic\n\0\0")
    # sasl
    c.add("sasl", b"\x00" + digest_response("bob", "secret", "OA6MG9tEQGm2hh"))
    c.add("sasl", b"\x01" + b'realm="zk-sasl-md5",nonce="N0",charset=utf-8,algorithm=md5-sess')
    c.add("sasl", b"\x02" + b'Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n'
          b'  user_super="adminsecret"\n  user_bob="secret";\n};\nClient {\n'
          b'  org.apache.zookeeper.server.auth.DigestLoginModule required\n  username="bob"\n  password="secret";\n};\n')
    # four-letter words and AdminServer commands
    for w in (b"ruok", b"stat", b"srvr", b"mntr", b"conf", b"cons", b"dump", b"wchc", b"envi"):
        c.add("four_letter", w)
    c.add("four_letter", b"stmk" + i64(0x1f))
    c.add("four_letter", b"gtmk\0set_trace_mask\ntraceMask=12")
    c.add("four_letter", b"isro\0monitor\n")
    shutil.rmtree(work, ignore_errors=True)
    for t, n in sorted(c.n.items()):
        print(f"{t}: {n} seeds")


if __name__ == "__main__":
    main()
