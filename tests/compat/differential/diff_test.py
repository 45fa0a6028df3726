#!/usr/bin/env python3
"""Seeded differential tester: rzk against Apache ZooKeeper 3.8 over the raw wire protocol.

For each seed, the same generated sequence of client operations runs against a fresh
rzk server and a fresh ZooKeeper server (started once per run, fresh data dirs), through
2-4 raw sessions per server (tests/compat/kazoo/zkraw.py), one request at a time. Every
reply (err, decoded body with normalised stats) and every watch notification (after a
barrier read on every session) are compared. A seed stops at its first difference,
which is printed with a replayable op list, then shrunk.

    python diff_test.py --seeds 0-199 --ops 150 [--rzk BIN] [--inject KIND]

See README.md in this folder.
"""

import argparse
import base64
import hashlib
import os
import random
import shutil
import socket
import struct
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "compat", "kazoo"))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import zkraw  # noqa: E402
from zkraw import (i32, i64, boolean, ustring, buffer, Reader, ConnectionClosed)  # noqa: E402
import zkproc  # noqa: E402

# ----------------------------------------------------------------------------- constants

ERR = {0: "OK", -1: "SYSTEMERROR", -2: "RUNTIMEINCONSISTENCY", -3: "DATAINCONSISTENCY",
       -4: "CONNECTIONLOSS", -5: "MARSHALLINGERROR", -6: "UNIMPLEMENTED",
       -7: "OPERATIONTIMEOUT", -8: "BADARGUMENTS", -13: "NEWCONFIGNOQUORUM",
       -14: "RECONFIGINPROGRESS", -100: "APIERROR", -101: "NONODE", -102: "NOAUTH",
       -103: "BADVERSION", -108: "NOCHILDRENFOREPHEMERALS", -110: "NODEEXISTS",
       -111: "NOTEMPTY", -112: "SESSIONEXPIRED", -113: "INVALIDCALLBACK",
       -114: "INVALIDACL", -115: "AUTHFAILED", -118: "SESSIONMOVED", -119: "NOTREADONLY",
       -120: "EPHEMERALONLOCALSESSION", -121: "NOWATCHER", -123: "RECONFIGDISABLED",
       -124: "SESSIONCLOSEDREQUIRESASLAUTH", -125: "QUOTAEXCEEDED", -127: "THROTTLEDOP"}

BIG_INTERVAL = "2000000000"   # container/TTL reaper period: never during a run

USERS = {"u1": "p1", "u2": "p2"}


def digest_id(user, pw):
    return user + ":" + base64.b64encode(hashlib.sha1(("%s:%s" % (user, pw)).encode()).digest()).decode()


ACLS = {
    "open": [(31, "world", "anyone")],
    "read": [(1, "world", "anyone")],
    "u1": [(31, "digest", digest_id("u1", "p1"))],
    "u1+read": [(31, "digest", digest_id("u1", "p1")), (1, "world", "anyone")],
    "u2cdrw": [(15, "digest", digest_id("u2", "p2"))],
    "auth": [(31, "auth", "")],
    "noadmin": [(15, "world", "anyone")],
    "ip": [(31, "ip", "127.0.0.1")],
    "ip-bad": [(31, "ip", "1.2.3.4/33")],
    "digest-bad": [(31, "digest", "nocolon")],
    "scheme-bad": [(31, "nosuch", "x")],
    "empty": [],
    "dup": [(31, "world", "anyone"), (31, "world", "anyone")],
    # an id holding U+1F600 as a Java client's jute writes it (CESU-8: two 3-byte surrogates)
    "cesu": [(31, "world", "anyone"), (1, "digest", b"u\xed\xa0\xbd\xed\xb8\x80:x")],
}


# ----------------------------------------------------------------------------- servers

class Server(object):
    def __init__(self, kind, port, workdir, rzk_bin=None, extra=()):
        self.kind, self.port, self.workdir, self.rzk_bin = kind, port, workdir, rzk_bin
        self.extra = list(extra)
        self.proc = None

    @property
    def hosts(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        if os.path.exists(self.workdir):
            shutil.rmtree(self.workdir)
        os.makedirs(self.workdir)
        if self.kind == "rzk":
            cfg = zkproc.write_config(os.path.join(self.workdir, "zoo.cfg"), self.port,
                                      "extendedTypesEnabled=true",
                                      "znode.container.checkIntervalMs=" + BIG_INTERVAL, *self.extra)
            self.proc = zkproc.start_rzk(self.rzk_bin, cfg, self.port)
            zkproc.wait_serving(self.port, self.proc, 30, "rzk")
        else:
            self.proc = zkproc.start_apache(os.path.join(ROOT, "scripts", "start-apache-zk.sh"),
                                            self.port, self.workdir, "extendedTypesEnabled=true",
                                            "znode.container.checkIntervalMs=" + BIG_INTERVAL)
            zkproc.wait_serving(self.port, self.proc, 60, "zookeeper")

    def stop(self):
        if self.proc is not None:
            self.proc.stop(10)
            self.proc = None


# ----------------------------------------------------------------------------- body decoding

class Ctx(object):
    """Per-server normalisation state: the zxid base of the run and session-id labels."""

    def __init__(self):
        self.zbase = 0
        self.sids = {}        # session id -> label

    def zx(self, z):
        """A zxid relative to the start of the seed; zxids from before it (nodes shared
        by all seeds, such as /zookeeper/*) are all "pre-seed": earlier seeds compared
        them, and a seed that diverged (or its shrink runs) must not spoil later ones."""
        if z <= 0:
            return z
        if z <= self.zbase:
            return "pre-seed"
        return z - self.zbase

    def owner(self, o):
        if o == 0:
            return 0
        return self.sids.get(o, "unknown-session-0x%x" % o)


def bstr(r):
    """A ustring as bytes-ish: str if valid UTF-8, else the raw bytes."""
    b = r.buffer()
    if b is None:
        return None
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b


def dstat(r, ctx):
    s = r.stat()
    return {"czxid": ctx.zx(s["czxid"]), "mzxid": ctx.zx(s["mzxid"]), "pzxid": ctx.zx(s["pzxid"]),
            "version": s["version"], "cversion": s["cversion"], "aversion": s["aversion"],
            "ephemeralOwner": ctx.owner(s["ephemeralOwner"]), "dataLength": s["dataLength"],
            "numChildren": s["numChildren"]}


def dacls(r):
    n = r.i32()
    return [(r.i32(), bstr(r), bstr(r)) for _ in range(max(n, 0))]


def dchildren(r):
    n = r.i32()
    return sorted((bstr(r) for _ in range(max(n, 0))), key=repr)  # order: COMPATIBILITY.md


def decode_multi(r, ctx, read):
    out = []
    while True:
        t, done, err = r.i32(), r.boolean(), r.i32()
        if done:
            out.append(("end", t, err))
            break
        if t == -1:
            out.append(("err", err, r.i32()))
        elif t == 1:
            out.append(("create", bstr(r)))
        elif t in (15, 19, 21):
            out.append(("create2", t, bstr(r), dstat(r, ctx)))
        elif t in (2, 13):
            out.append((t,))
        elif t == 5:
            out.append(("setData", dstat(r, ctx)))
        elif t == 4:
            out.append(("getData", r.buffer(), dstat(r, ctx)))
        elif t == 8:
            out.append(("getChildren", dchildren(r)))
        else:
            out.append(("?", t))
            break
    return out


def decode_body(opcode, body, ctx):
    if not body:
        return None
    r = Reader(body)
    try:
        if opcode == 1:
            v = bstr(r)
        elif opcode in (15, 19, 21):
            v = (bstr(r), dstat(r, ctx))
        elif opcode in (3, 5, 7):
            v = dstat(r, ctx)
        elif opcode == 4:
            v = (r.buffer(), dstat(r, ctx))
        elif opcode == 6:
            v = (dacls(r), dstat(r, ctx))
        elif opcode in (8, 103):
            v = dchildren(r)
        elif opcode == 12:
            v = (dchildren(r), dstat(r, ctx))
        elif opcode == 9:
            v = bstr(r)
        elif opcode in (104, 106):
            v = r.i32()
        elif opcode in (14, 22):
            v = decode_multi(r, ctx, opcode == 22)
        else:
            return ("raw", body.hex())
        if r.remaining():
            return ("trailing", v, body[r.off:].hex())
        return v
    except Exception as e:  # noqa: BLE001
        return ("undecodable", body.hex(), str(e))


# ----------------------------------------------------------------------------- request encoding

def create_body(op):
    b = ustring(op["path"]) + buffer(op.get("data", b"")) + zkraw.acl_vector(ACLS[op.get("acl", "open")]) \
        + i32(op.get("flags", 0))
    if op["op"] == 21:
        b += i64(op.get("ttl", 0))
    return b


def multi_body(op):
    b = b""
    for k, sub in enumerate(op["ops"]):
        if op.get("early_done") == k:
            b += i32(-1) + boolean(True) + i32(-1)      # the list ends here; the rest trails
        t = sub["op"]
        b += i32(t) + boolean(sub.get("done", False)) + i32(sub.get("herr", -1))
        if "raw" in sub:
            b += sub["raw"]
            continue
        if t in (1, 15, 19, 21):
            b += create_body(sub)
        elif t == 2:
            b += ustring(sub["path"]) + i32(sub["version"])
        elif t == 5:
            b += ustring(sub["path"]) + buffer(sub.get("data", b"")) + i32(sub["version"])
        elif t == 13:
            b += ustring(sub["path"]) + i32(sub["version"])
        elif t in (4, 8):
            b += ustring(sub["path"]) + boolean(sub.get("watch", False))
    return b + i32(-1) + boolean(True) + i32(-1)


def request(op):
    """(opcode, body, xid or None) of a wire op."""
    o = op["op"]
    if o in (1, 15, 19, 21):
        return o, create_body(op), None
    if o == 2:
        return o, ustring(op["path"]) + i32(op["version"]), None
    if o in (3, 4, 8, 12):
        return o, ustring(op["path"]) + boolean(op.get("watch", False)), None
    if o == 5:
        return o, ustring(op["path"]) + buffer(op.get("data", b"")) + i32(op["version"]), None
    if o == 6:
        return o, ustring(op["path"]), None
    if o == 7:
        return o, ustring(op["path"]) + zkraw.acl_vector(ACLS[op["acl"]]) + i32(op["version"]), None
    if o in (9, 104):
        return o, ustring(op["path"]), None
    if o == 103:
        return o, ustring(op["path"]), None
    if o in (14, 22):
        return o, multi_body(op), None
    if o in (17, 18):
        return o, ustring(op["path"]) + i32(op["wtype"]), None
    if o == 106:
        return o, ustring(op["path"]) + i32(op["mode"]), None
    if o == 100:
        return o, i32(0) + ustring(op["scheme"]) + buffer(op["cred"]), zkraw.AUTH_XID
    if o == -11:
        return o, b"", None
    # raw / unknown opcode
    return o, op.get("body", b""), None


# ----------------------------------------------------------------------------- one server's sessions

class Side(object):
    """One server's view of a seed: its sessions and normalisation context."""

    def __init__(self, server, ctx, inject=None):
        self.server = server
        self.ctx = ctx
        self.sessions = {}     # idx -> RawSession (None once closed)
        self.inject = inject

    def open(self, idx, label, timeout_ms=30000):
        s = zkraw.RawSession(self.server.hosts, timeout_ms=timeout_ms, io_timeout=10.0)
        self.sessions[idx] = s
        self.ctx.sids[s.session_id] = label
        return ("connected", s.negotiated_timeout, len(s.passwd or b""), s.read_only)

    def probe(self, idx, op):
        """A handshake on a throwaway connection: a wrong password or unknown session id,
        a lastZxidSeen ahead of the server, readOnly, odd timeouts. A session it creates
        is closed at once (so it cannot expire later)."""
        known = self.sessions.get(op.get("target", idx))
        sid, pw = 0, b"\0" * 16
        if op["kind"] == "badpw" and known is not None:
            sid, pw = known.session_id, b"\x01" * 16
        elif op["kind"] == "closed" and known is not None:
            sid, pw = known.session_id, known.passwd
        elif op["kind"] == "unknown-sid":
            sid, pw = 0x7eadbeef00000001, b"\0" * 16
        last = self.ctx.zbase + 1000000 if op["kind"] == "zxid-ahead" else 0
        ro = op.get("ro")
        c = zkraw.RawSession(self.server.hosts, handshake=False, io_timeout=5.0)
        body = i32(0) + i64(last) + i32(op.get("timeout", 30000)) + i64(sid) + buffer(pw)
        if ro is not None:
            body += boolean(ro)
        c.send_frame(body)
        try:
            r = Reader(c.recv_frame())
        except (ConnectionClosed, socket.timeout, OSError) as e:
            c.close()
            return ("no-connect-response", type(e).__name__)
        proto, to, rsid = r.i32(), r.i32(), r.i64()
        rpw = r.buffer()
        rro = r.boolean() if r.remaining() > 0 else None
        out = ("connect-response", proto, to, "new" if rsid not in (0, sid) else ("same" if rsid == sid and sid else rsid),
               len(rpw or b""), rro)
        if rsid and to > 0 and rsid != sid:
            c.session_id, c.passwd = rsid, rpw
            try:
                c.close_session()
            except Exception:  # noqa: BLE001
                pass
        else:
            closed, frames = c.expect_closed(2.0)
            out += ("closed" if closed else "open",)
        c.close()
        return out

    def reattach(self, idx):
        old = self.sessions[idx]
        old.close()
        s = zkraw.RawSession(self.server.hosts, timeout_ms=30000, session_id=old.session_id,
                             passwd=old.passwd, io_timeout=10.0)
        s.xid = old.xid
        self.sessions[idx] = s
        return ("reattached", s.negotiated_timeout, s.session_id == old.session_id)

    def do(self, idx, op):
        """Runs one op; returns the normalised result (and marks a closed connection)."""
        if op["op"] == "open":
            return self.open(idx, op["label"], op.get("timeout", 30000))
        if op["op"] == "probe":
            return self.probe(idx, op)
        s = self.sessions.get(idx)
        if s is None:
            return ("no-such-session",)
        if op["op"] == "reattach":
            return self.reattach(idx)
        if getattr(s, "dead", False):
            return ("session-dead",)
        if op["op"] in (101, 105):
            rz = {"zero": 0, "base": self.ctx.zbase, "future": self.ctx.zbase + 1000000}[op["rz"]]
            body = i64(rz) + b"".join(zkraw.string_vector(v) for v in op["lists"])
            opcode, xid = op["op"], zkraw.SETWATCHES_XID
        else:
            opcode, body, xid = request(op)
        if op.get("xid") == "normal":
            xid = None
        elif op.get("xid") is not None:
            xid = op["xid"]
        m = op.get("mutate")
        if m:
            if m[0] == "append":
                body = body + m[1]
            elif m[0] == "truncate":
                body = body[:max(0, len(body) - m[1])]
        try:
            rep = s.call(opcode, body, xid=xid)
        except ConnectionClosed:
            s.dead = True
            if opcode == -11:
                s.closed = True
            return ("closed-without-reply",)
        except socket.timeout:
            s.dead = True
            return ("timeout",)
        except (UnicodeDecodeError, struct.error) as e:   # a notification frame we cannot parse
            s.dead = True
            s.close()
            return ("unparseable-notification", type(e).__name__)
        except AssertionError as e:       # a reply with another xid than the request's
            s.dead = True
            s.close()
            return ("unexpected-reply", str(e).split(":")[0])
        body = rep.body
        if opcode in (14, 22) and rep.err != 0:
            # COMPATIBILITY.md "Null fields": ZooKeeper sends an empty multi result after
            # an error header, rzk none; clients read no body from an error reply.
            body = b""
        res = {"err": ERR.get(rep.err, rep.err), "body": decode_body(opcode, body, self.ctx) if rep.err == 0
               or opcode in (14, 22) else (body.hex() if body else None),
               "hdr_zxid": self.ctx.zx(rep.zxid)}
        if opcode == -11:
            s.close()
            s.dead = s.closed = True
        else:
            closed, frames = False, []
            if rep.err in (-6, -115):
                # both servers close the connection after these; wait for the EOF (a
                # ping sent right away can race with ZooKeeper's asynchronous close)
                closed, frames = s.expect_closed(2.0)
                for f in frames:
                    if f.xid == -1:
                        t, st, p = f.event()
                        s.events.append((t, st, p, f.zxid))
            elif rep.err == -5 or opcode not in KNOWN_OPCODES:
                # did the server close the connection after this reply? A ping tells
                # at once: answered (open) or EOF / reset (closed).
                try:
                    s.call(zkraw.OP_PING, b"", xid=zkraw.PING_XID, timeout=5)
                except (ConnectionClosed, OSError, struct.error):
                    closed = True
                if closed:
                    s.dead = True
                    res["then"] = "connection closed"
        if self.inject and self.inject(op, res):
            res = dict(res, injected=True)
        return res

    def barrier(self, idx):
        """A read on session idx whose reply must come after every notification the
        previous ops caused there. Returns (events, barrier header zxid)."""
        s = self.sessions.get(idx)
        if s is None or getattr(s, "dead", False):
            return None
        try:
            rep = s.call(3, ustring("/") + boolean(False))
        except (ConnectionClosed, socket.timeout, OSError):
            s.dead = True
            return ("barrier-failed",)
        ev = [(t, st, p, self.ctx.zx(z)) for (t, st, p, z) in s.events]
        s.events = []
        return ev

    def late_events(self, idx, wait):
        s = self.sessions.get(idx)
        if s is None or getattr(s, "dead", False):
            return []
        out = []
        while True:
            e = s.wait_event(wait)
            if e is None:
                return out
            out.append(e[:3] + (self.ctx.zx(e[3]),))

    def close_all(self):
        """Closes every session not closed yet, re-attaching those whose connection the
        server dropped: a session left to expire would take a zxid at some random later
        moment and shift every later comparison."""
        for idx, s in list(self.sessions.items()):
            if s is None or getattr(s, "closed", False):
                continue
            # A connection the server has just closed may not be marked dead yet (a seed
            # stopped right after the reply that preceded the close): the close then
            # fails, and the session is re-attached and closed once more. Left open, it
            # expired in a later seed and shifted that seed's zxids.
            for attempt in (0, 1):
                try:
                    if attempt or getattr(s, "dead", False):
                        s.close()
                        self.reattach(idx)
                        s = self.sessions[idx]
                    s.close_session()
                    break
                except Exception as e:  # noqa: BLE001
                    if attempt:
                        print("warning: could not close session %d on %s: %s" % (idx, self.server.kind, e))
            s.close()
            s.dead = s.closed = True


KNOWN_OPCODES = {11, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 14, 15, 19, 21, 22, 17, 18, 100, 101, 103, 104, 105, 106, -11}


# ----------------------------------------------------------------------------- server state (four-letter words)

MNTR_KEYS = ("zk_znode_count", "zk_watch_count", "zk_ephemerals_count", "zk_approximate_data_size")


def server_state(server, ctx):
    """Watch tables (wchc, wchs), ephemerals by session (dump) and a few mntr counters,
    with session ids mapped to labels and orders sorted."""
    def sid(t):
        t = t.strip()
        try:
            return ctx.sids.get(int(t, 16), "?" + t)
        except ValueError:
            return t

    def by_session(text, keep_empty=False):
        out, cur = {}, None
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("\t"):
                out.setdefault(cur, []).append(line.strip())
            else:
                cur = sid(line.rstrip(":"))
                if keep_empty:
                    out.setdefault(cur, [])
        return {k: sorted(v) for k, v in out.items()}

    # A session listed without paths (its watches all fired) counts too. In `dump`,
    # ZooKeeper also lists a session whose ephemerals were all deleted, without paths,
    # until it closes; rzk does not (docs/COMPATIBILITY.md), so empty ones are dropped.
    wchc = by_session(zkproc.four(server.port, "wchc", timeout=5), keep_empty=True)
    # "N connections watching": both count a connection whose watches all fired until it
    # closes (rzk since session 38).
    wchs = zkproc.four(server.port, "wchs", timeout=5).strip()
    dump = zkproc.four(server.port, "dump", timeout=5)
    eph = dump.split("ephemeral nodes dump:", 1)[-1].split("Connections dump:", 1)[0]
    eph = by_session("\n".join(eph.splitlines()[2:]))
    mntr = zkproc.four(server.port, "mntr", timeout=5)
    m = {k: zkproc.field(mntr, k) for k in MNTR_KEYS}
    return {"wchc": wchc, "wchs": wchs, "ephemerals": eph, "mntr": m}


# ----------------------------------------------------------------------------- generator

NAMES = ["a", "b", "c", "n", "a", "b", "\u00e9", "\u4e2d", "x y", "zookeeper_limits"]


class Gen(object):
    """Seeded op generator. Its model (nodes, versions, watches) is updated from the
    ZooKeeper side's replies, and only guides choices; the ops it emits are literal."""

    def __init__(self, seed, base, documented=False, cesu=True):
        self.rng = random.Random(seed)
        self.cesu = cesu
        self.base = base
        self.documented = documented
        self.nodes = {base: {"version": 0, "aversion": 0, "eph": None, "acl": "open"}}
        self.live = []          # session idxs with a usable connection
        self.closed = []        # session idxs closed by a closeSession
        self.next_idx = 0
        self.auth = {}          # idx -> set of users
        self.w = {}             # idx -> {path: set(kinds)} kinds: data child persist recur

    # -- model upkeep
    def pick_path(self, existing=0.6):
        if not self.nodes:      # the base was deleted (or recreated as an ephemeral, now gone)
            self.nodes[self.base] = {"version": 0, "aversion": 0, "eph": None, "acl": "open"}
        r = self.rng.random()
        if r < existing:
            return self.rng.choice(sorted(self.nodes))
        parent = self.rng.choice(sorted(self.nodes))
        return parent + "/" + self.rng.choice(NAMES)

    def bad_path(self):
        b = self.base
        p = self.rng.choice(["", "a", b + "/", b + "//x", "/zookeeper/x", b + "/x\u0000y",
                                (b + "/\xed\xa0\x80").encode("latin-1"), b + "/.", b + "/..",
                                b + "/\u0001", "/", "/zookeeper", "/zookeeper/quota",
                                "/zookeeper/config", b + "/\ufffe", b + "/\ud7ff",
                                (b + "/\xc0\xaf").encode("latin-1")])
        if not self.cesu and isinstance(p, bytes) and b"\xed" in p:
            p = b + "/\xff"
        return p

    def watches_on(self, path, other_than=None):
        return any(path in ws and ws[path] for i, ws in self.w.items() if i != other_than)

    def mine(self, idx, path):
        return self.w.setdefault(idx, {}).setdefault(path, set())

    def version_for(self, path, kind="version"):
        n = self.nodes.get(path)
        r = self.rng.random()
        if n is not None and r < 0.6:
            return n[kind]
        return self.rng.choice([-1, -1, 0, 1, 5, -2, 2 ** 31 - 1, -(2 ** 31)])

    def data(self):
        return self.rng.choice([b"", b"x", b"hello", bytes(range(256)), b"y" * 3000])

    # -- op choice
    def next_op(self, opi):
        rng = self.rng
        idx = rng.choice(self.live)
        choices = [("create", 22), ("delete", 8), ("read", 20), ("setData", 8), ("acl", 5),
                   ("multi", 7), ("multiRead", 3), ("sync", 1), ("count", 2), ("ephemerals", 2),
                   ("addWatch", 4), ("watchctl", 4), ("auth", 2), ("close", 1), ("open", 1),
                   ("bad", 5), ("badop", 1), ("multiDep", 5), ("watchMore", 6), ("setWatches", 2), ("probe", 1), ("quota", 3), ("mangle", 4), ("multiOdd", 3)]
        total = sum(w for _, w in choices)
        x = rng.uniform(0, total)
        for kind, wgt in choices:
            x -= wgt
            if x <= 0:
                break
        return idx, getattr(self, "g_" + kind)(idx)

    def g_create(self, idx):
        rng = self.rng
        path = self.pick_path(0.2)
        if path == self.base:     # sequential names under "/" would tie seeds together
            path = self.base + "/" + rng.choice(NAMES)
        v = rng.random()
        if v < 0.55:
            op = {"op": rng.choice([1, 15]), "path": path, "flags": rng.choice([0, 0, 1, 1, 2, 3]),
                  "data": self.data(), "acl": rng.choice(["open"] * 8 + ["read", "u1", "u1+read",
                                                                         "auth", "noadmin", "dup"])}
        elif v < 0.7:
            op = {"op": 19, "path": path, "flags": 4, "data": self.data(), "acl": "open"}
        elif v < 0.85:
            op = {"op": 21, "path": path, "flags": rng.choice([5, 6]), "acl": "open",
                  "ttl": rng.choice([3600000, 86400000, 0, 2 ** 40, 2 ** 40 - 1, -1]), "data": b"t"}
        else:
            op = {"op": rng.choice([1, 15, 19, 21]), "path": path,
                  "flags": rng.choice([0, 1, 2, 3, 4, 5, 6, 7, -1]),
                  "acl": rng.choice([a for a in ACLS if self.cesu or a != "cesu"]),
                  "data": b"", "ttl": rng.choice([0, 1000, 3600000])}
            if op["op"] == 21 and op["flags"] not in (5, 6) and op["ttl"] < 0:
                op["ttl"] = 0   # 3.8.0 crashes on createTTL, flags 0, ttl -1 (COMPATIBILITY.md)
        return op

    def g_delete(self, idx):
        p = self.pick_path(0.8)
        if p == self.base and self.rng.random() < 0.9:
            p = self.pick_path(0.8)
        return {"op": 2, "path": p, "version": self.version_for(p)}

    def g_read(self, idx):
        rng = self.rng
        p = self.pick_path(0.75)
        o = rng.choice([3, 4, 8, 12, 6])
        watch = o != 6 and rng.random() < 0.5
        if watch and any(k in ("persist", "recur") for k in self.mine(idx, p)) and not self.documented:
            watch = False   # 3.8 replaces a persistent watch's mode (COMPATIBILITY.md)
        op = {"op": o, "path": p}
        if o != 6:
            op["watch"] = watch
        return op

    def g_setData(self, idx):
        p = self.pick_path(0.85)
        return {"op": 5, "path": p, "data": self.data(), "version": self.version_for(p)}

    def g_acl(self, idx):
        rng = self.rng
        p = self.pick_path(0.85)
        if rng.random() < 0.3:
            return {"op": 6, "path": p}
        return {"op": 7, "path": p, "acl": rng.choice(["open", "open", "read", "u1", "u1+read", "u2cdrw",
                                                       "auth", "noadmin", "ip", "ip-bad", "digest-bad",
                                                       "scheme-bad", "empty", "dup"]),
                "version": self.version_for(p, "aversion")}

    def g_multi(self, idx):
        rng = self.rng
        ops = []
        for _ in range(rng.randint(0, 5)):
            k = rng.random()
            p = self.pick_path(0.5)
            if k < 0.35:
                if p == self.base:
                    p = self.base + "/" + rng.choice(NAMES)
                sub = {"op": 1, "path": p, "flags": rng.choice([0, 1, 2, 3]), "data": b"m", "acl": "open"}
                r2 = rng.random()
                if r2 < 0.15:
                    sub = {"op": 19, "path": p, "flags": 4, "data": b"", "acl": "open"}
                elif r2 < 0.3:
                    sub = {"op": 21, "path": p, "flags": 5, "data": b"", "acl": "open",
                           "ttl": rng.choice([3600000, 0])}
                elif r2 < 0.35 and self.documented:
                    sub = {"op": 15, "path": p, "flags": 0, "data": b"", "acl": "open"}
            elif k < 0.55:
                sub = {"op": 2, "path": p, "version": self.version_for(p)}
            elif k < 0.75:
                sub = {"op": 5, "path": p, "data": b"md", "version": self.version_for(p)}
            else:
                sub = {"op": 13, "path": p, "version": self.version_for(p)}
            ops.append(sub)
        if rng.random() < 0.05:
            ops.append({"op": 4, "path": self.base, "watch": False})   # read in a write multi
        return {"op": 14, "ops": ops}

    def g_multiDep(self, idx):
        """A multi whose ops depend on each other: create, then write, check, delete the
        same node or its child, with right and wrong versions."""
        rng = self.rng
        p = self.pick_path(0.3)
        if p == self.base:
            p = self.base + "/" + rng.choice(NAMES)
        c = p + "/" + rng.choice(NAMES)
        menu = [
            {"op": 1, "path": p, "flags": rng.choice([0, 1, 2]), "data": b"d", "acl": "open"},
            {"op": 19, "path": p, "flags": 4, "data": b"", "acl": "open"},
            {"op": 21, "path": p, "flags": 5, "data": b"", "acl": "open", "ttl": 3600000},
            {"op": 5, "path": p, "data": b"v1", "version": rng.choice([0, 1, -1])},
            {"op": 13, "path": p, "version": rng.choice([0, 1, -1])},
            {"op": 1, "path": c, "flags": rng.choice([0, 1, 3]), "data": b"", "acl": "open"},
            {"op": 5, "path": c, "data": b"v", "version": rng.choice([0, -1])},
            {"op": 2, "path": c, "version": rng.choice([0, -1, 1])},
            {"op": 2, "path": p, "version": rng.choice([0, 1, -1])},
            {"op": 13, "path": c, "version": rng.choice([0, -1])},
        ]
        ops = [rng.choice(menu[:3])] + [rng.choice(menu) for _ in range(rng.randint(1, 6))]
        return {"op": 14, "ops": ops}

    def g_watchMore(self, idx):
        """A one-shot or persistent watch on an existing node (watch-heavy seeds)."""
        rng = self.rng
        p = self.pick_path(0.9)
        mine = self.mine(idx, p)
        if rng.random() < 0.3 and not (mine & {"data", "child"}):
            mode = rng.choice([0, 1])
            want = "persist" if mode == 0 else "recur"
            if not (mine - {want}):
                return {"op": 106, "path": p, "mode": mode}
        if mine & {"persist", "recur"}:
            return {"op": 3, "path": p, "watch": False}
        return {"op": rng.choice([3, 4, 8, 12]), "path": p, "watch": True}

    def g_setWatches(self, idx):
        """setWatches (101) / setWatches2 (105), xid -8, with relativeZxid 0, the seed's
        start or far ahead (translated to each server's zxids)."""
        rng = self.rng
        o = rng.choice([101, 105])
        lists = [[] for _ in range(5 if o == 105 else 3)]
        kinds = ["data", "data", "child", "persist", "recur"]
        used = set()
        for _ in range(rng.randint(1, 4)):
            p = self.pick_path(0.7)
            li = rng.randrange(len(lists))
            mine = self.mine(idx, p)
            k = kinds[li]
            if p in used and not self.documented:
                continue
            if not self.documented and ((k in ("persist", "recur") and (mine - {k}))
                                        or (k in ("data", "child") and mine & {"persist", "recur"})):
                continue
            used.add(p)
            lists[li].append(p)
        return {"op": o, "rz": rng.choice(["zero", "base", "future"]), "lists": lists}

    def g_multiOdd(self, idx):
        """multi / multiRead with op types they do not take, odd header fields, an early
        end marker."""
        rng = self.rng
        o = rng.choice([14, 22])
        base = self.g_multi(idx) if o == 14 else self.g_multiRead(idx)
        ops = base["ops"] or [{"op": 13, "path": self.base, "version": -1}]
        k = rng.random()
        if k < 0.4:
            t = rng.choice([3, 6, 7, 9, 12, 14, 22, 20, 0, 99, -1, 101, 106])
            raw = ustring(self.pick_path(0.8)) + rng.choice([b"", i32(-1), b"\0", boolean(True)])
            ops.insert(rng.randrange(len(ops) + 1), {"op": t, "raw": raw})
        elif k < 0.7:
            sub = rng.choice(ops)
            sub.update(rng.choice([{"done": True}, {"herr": 0}, {"herr": -101}]))
        else:
            base["early_done"] = rng.randrange(len(ops))
        base["ops"] = ops
        base["op"] = o
        return base

    def g_multiRead(self, idx):
        rng = self.rng
        ops = [{"op": rng.choice([4, 8]), "path": self.pick_path(0.7), "watch": rng.random() < 0.3}
               for _ in range(rng.randint(0, 4))]
        if rng.random() < 0.05:
            ops.append({"op": 13, "path": self.base, "version": -1})
        return {"op": 22, "ops": ops}

    def g_sync(self, idx):
        return {"op": 9, "path": self.rng.choice([self.base, "/", self.pick_path(), "", "x"])}

    def g_count(self, idx):
        return {"op": 104, "path": self.rng.choice([self.base, self.pick_path(0.7), "/zookeeper"])}

    def g_ephemerals(self, idx):
        p = self.pick_path(0.9)
        return {"op": 103, "path": self.rng.choice([self.base, "/", "", p, p[:-1], p + "0", "  ", " /",
                                                    self.base + "/", "nope", " " + self.base + " "])}

    def g_addWatch(self, idx):
        rng = self.rng
        p = self.pick_path(0.7)
        mode = rng.choice([0, 1])
        mine = self.mine(idx, p)
        want = "persist" if mode == 0 else "recur"
        if not self.documented and (mine - {want}):
            return self.g_read(idx)   # mixed modes on one path: COMPATIBILITY.md table
        return {"op": 106, "path": p, "mode": mode}

    def g_watchctl(self, idx):
        rng = self.rng
        mine_paths = [q for q, k in self.w.get(idx, {}).items() if k]
        p = rng.choice(mine_paths) if mine_paths and rng.random() < 0.7 else self.pick_path(0.7)
        o = rng.choice([17, 18])
        if o == 17 and not self.documented and not (isinstance(p, str) and p.startswith("/")):
            o = 18    # checkWatches on a relative path: COMPATIBILITY.md (3.8 MARSHALLINGERROR)
        wtype = rng.choice([1, 2, 3, 3, 0, 6] + ([4, 5] if self.documented else []))
        if not self.documented:
            mine = self.mine(idx, p)
            if wtype in (1, 2) and mine & {"persist", "recur"}:
                wtype = 3
            if o == 17 and wtype == 3 and self.watches_on(p, other_than=idx):
                return self.g_read(idx)   # 3.8 checkWatches Any sees other sessions' watches
            if o == 17 and wtype in (1, 2) and self.watches_on(p, other_than=idx):
                return self.g_read(idx)
        return {"op": o, "path": p, "wtype": wtype}

    def g_auth(self, idx):
        rng = self.rng
        r = rng.random()
        if r < 0.8:
            u = rng.choice(sorted(USERS))
            return {"op": 100, "scheme": "digest", "cred": ("%s:%s" % (u, USERS[u])).encode()}
        return {"op": 100, "scheme": rng.choice(["nosuch", "digest"]),
                "cred": rng.choice([b"", b"u1", b"u1:p1:x"])}

    def g_close(self, idx):
        if len(self.live) <= 1:
            return self.g_read(idx)
        return {"op": -11}

    def g_open(self, idx):
        if self.rng.random() < 0.3:
            return {"op": "open", "timeout": self.rng.choice([0, 1000, 4000, 45000, 100000, -1])}
        return {"op": "open"}

    def g_probe(self, idx):
        rng = self.rng
        op = {"op": "probe", "kind": rng.choice(["badpw", "unknown-sid", "zxid-ahead", "new", "closed"])}
        if op["kind"] == "closed":
            if not self.closed:
                op["kind"] = "new"
            else:
                op["target"] = rng.choice(self.closed)
        if rng.random() < 0.4:
            op["ro"] = rng.choice([True, False])
        if rng.random() < 0.4:
            op["timeout"] = rng.choice([0, 1, 3999, 40001, 2 ** 31 - 1, -5])
        return op

    def g_quota(self, idx):
        """Well-formed quota nodes under /zookeeper/quota<base>[/x] (malformed ones and a
        quota on / stop Apache 3.8.0: COMPATIBILITY.md, Quotas)."""
        rng = self.rng
        target = rng.choice([self.base] + [p for p in sorted(self.nodes) if p.count("/") == 2][:3])
        q = "/zookeeper/quota" + target
        parts = q.split("/")
        chain = ["/".join(parts[:i]) for i in range(4, len(parts) + 1)]
        k = rng.random()
        if k < 0.35:
            return {"op": 14, "ops": [{"op": 1, "path": p, "flags": 0, "data": b"", "acl": "open"} for p in chain]}
        if k < 0.6:
            lim = rng.choice([b"count=5,bytes=-1", b"count=-1,bytes=100", b"count=3,bytes=50",
                              b"countHardLimit=2,bytesHardLimit=-1,count=-1,bytes=-1"])
            return {"op": 1, "path": q + "/zookeeper_limits", "flags": 0, "data": lim, "acl": "open"}
        if k < 0.75:
            return {"op": 1, "path": q + "/zookeeper_stats", "flags": 0, "data": b"count=0,bytes=0", "acl": "open"}
        if k < 0.95:
            return {"op": 4, "path": q + rng.choice(["/zookeeper_stats", "/zookeeper_limits"]), "watch": False}
        return {"op": 2, "path": q + rng.choice(["/zookeeper_stats", "/zookeeper_limits"]), "version": -1}

    def g_bad(self, idx):
        rng = self.rng
        p = self.bad_path()
        o = rng.choice([1, 15, 2, 3, 4, 5, 8, 12, 6, 7, 103, 104, 106, 18] + ([17] if self.documented else []))
        op = {"op": o, "path": p}
        if o in (1, 15):
            op.update(flags=0, data=b"", acl="open")
        if o in (2, 5):
            if p in ("/", "/zookeeper") and o == 5:
                op["path"] = p = "/zookeeper/config"
            op["version"] = rng.choice([-1, 0, 99])
        if o == 7:
            if p in ("/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"):
                op["path"] = p = "/zookeeper/x"
            op.update(acl="open", version=-1)
        if o in (3, 4, 8, 12):
            op["watch"] = False
        if o in (17, 18):
            op["wtype"] = 3
        if o == 106:
            op["mode"] = 0
            if isinstance(p, str) and p.startswith("/") and not self.documented:
                op["op"] = 3
                op["watch"] = False
                op.pop("mode")
        return op

    def g_mangle(self, idx):
        """An ordinary op whose encoded body gets trailing bytes or loses its tail, or an
        auth / ping sent with an ordinary xid, a ping with xid -4..."""
        rng = self.rng
        r = rng.random()
        if r < 0.15:
            op = self.g_auth(idx)
            op["xid"] = "normal"
            return op
        if r < 0.25:
            return {"op": 11, "xid": rng.choice(["normal", -2, -4, -8, 0])}
        if r < 0.3:
            op = self.g_read(idx)
            op["xid"] = rng.choice([-2, -4, -8, 0])   # (-1 would read as a notification)
            return op
        kind = rng.choice(["create", "delete", "read", "setData", "acl", "multi", "multiRead",
                           "sync", "count", "ephemerals", "addWatch", "watchctl"])
        op = getattr(self, "g_" + kind)(idx)
        if op["op"] in ("open", "probe", 100, -11):
            return op
        if rng.random() < 0.5:
            op["mutate"] = ("append", rng.choice([b"\0", b"\0\0\0\0", b"\xff\xff\xff\xff", b"garbage!"]))
        else:
            op["mutate"] = ("truncate", rng.choice([1, 2, 4, 5]))
        return op

    def g_badop(self, idx):
        o = self.rng.choice([0, 10, 99, 200, -3, 20, 16] + ([13] if self.documented else []))
        body = {20: ustring(self.base), 16: ustring("") + ustring("") + ustring("") + i64(-1)}.get(o, b"\0" * 8)
        return {"op": o, "body": body}

    # -- model update from the reference side's result
    def observe(self, idx, op, res, events_by_idx):
        o = op["op"]
        if isinstance(op.get("path"), str) and op["path"].startswith("/zookeeper"):
            return   # quota nodes stay out of the model: random data there stops 3.8.0
        if o == 14 and any(str(x.get("path", "")).startswith("/zookeeper") for x in op["ops"]):
            return
        ok = isinstance(res, dict) and res.get("err") == "OK"
        if o in (1, 15, 19, 21) and ok:
            body = res["body"]
            path = body if o == 1 else body[0]
            if isinstance(path, str):
                eph = idx if op.get("flags") in (1, 3) else None
                self.nodes[path] = {"version": 0, "aversion": 0, "eph": eph, "acl": op.get("acl")}
        elif o == 2 and ok:
            self.forget(op["path"])
        elif o == 14 and ok:
            body = res.get("body") or []
            subs = op["ops"]
            if body and body[0][0] != "err":
                for sub, r in zip(subs, body):
                    if r[0] == "create":
                        self.nodes[r[1]] = {"version": 0, "aversion": 0,
                                            "eph": idx if sub.get("flags") in (1, 3) else None}
                    elif r[0] == "create2" and isinstance(r[2], str):
                        self.nodes[r[2]] = {"version": 0, "aversion": 0, "eph": None}
                    elif r == (2,):
                        self.forget(sub["path"])
                    elif r[0] == "setData" and sub["path"] in self.nodes:
                        self.nodes[sub["path"]]["version"] = r[1]["version"]
        elif o in (3, 4, 5, 7, 12, 6) and ok:
            body = res["body"]
            st = body if o in (3, 5, 7) else (body[1] if isinstance(body, tuple) else None)
            p = op["path"]
            if isinstance(st, dict) and p in self.nodes:
                self.nodes[p]["version"] = st["version"]
                self.nodes[p]["aversion"] = st["aversion"]
        if o in (3, 4, 8, 12) and op.get("watch") and isinstance(res, dict) and res.get("err") in ("OK", "NONODE"):
            if not (o in (8, 12) and res.get("err") != "OK") and not (o == 4 and res.get("err") != "OK"):
                self.mine(idx, op["path"]).add("child" if o in (8, 12) else "data")
        if o in (101, 105) and ok:
            for li, paths in enumerate(op["lists"]):
                for p in paths:
                    self.mine(idx, p).add(["data", "data", "child", "persist", "recur"][li])
        if o == 106 and ok:
            self.mine(idx, op["path"]).add("persist" if op["mode"] == 0 else "recur")
        if o == 18 and ok:
            kinds = self.mine(idx, op["path"])
            if op["wtype"] == 3:
                kinds.clear()
            elif op["wtype"] == 1:
                kinds.discard("child")
            elif op["wtype"] == 2:
                kinds.discard("data")
        if o == 100 and ok and op["scheme"] == "digest":
            self.auth.setdefault(idx, set()).add(op["cred"])
        for j, evs in events_by_idx.items():
            if not isinstance(evs, list):
                continue
            if o in (101, 105) and j == idx:
                continue   # setWatches answers with events; watches set before stay
            for (t, st, p, z) in evs:
                kinds = self.w.get(j, {}).get(p)
                if kinds:
                    if t in (1, 2, 3):
                        kinds.discard("data")
                    if t in (2, 4):
                        kinds.discard("child")

    def forget(self, path):
        for p in list(self.nodes):
            if p == path or p.startswith(path + "/"):
                if p != self.base:
                    del self.nodes[p]

    def session_gone(self, idx):
        self.closed.append(idx)
        if idx in self.live:
            self.live.remove(idx)
        self.w.pop(idx, None)
        for p, n in list(self.nodes.items()):
            if n.get("eph") == idx:
                del self.nodes[p]


# ----------------------------------------------------------------------------- running a script

class _Long(object):
    def __init__(self, r):
        self.r = r

    def __repr__(self):
        return self.r


def compact(v):
    """Long repeated bytes shown as b'y' * 3000 (still a Python literal)."""
    if isinstance(v, bytes) and len(v) > 64:
        if v == v[:1] * len(v):
            return _Long("%r * %d" % (v[:1], len(v)))
        if v == bytes(range(256)):
            return _Long("bytes(range(256))")
        return v
    if isinstance(v, dict):
        return {k: compact(x) for k, x in v.items()}
    if isinstance(v, list):
        return [compact(x) for x in v]
    if isinstance(v, tuple):
        return tuple(compact(x) for x in v)
    return v


def fmt_op(op):
    return repr(compact(op))


class Difference(Exception):
    def __init__(self, kind, opi, what, a, b, op=None):
        Exception.__init__(self, kind)
        self.kind, self.opi, self.what, self.a, self.b = kind, opi, what, a, b
        # what shrinking must keep: the kind, the op's code and both error codes
        errs = tuple(x.get("err") if isinstance(x, dict) else str(x)[:20] for x in (a, b))
        self.sig = (kind, op.get("op") if isinstance(op, dict) else None) + (errs if kind == "reply" else ())


def subst(op, base):
    """Literal op with '{B}' replaced by base (strings and bytes)."""
    def s(v):
        if isinstance(v, str):
            return v.replace("{B}", base)
        if isinstance(v, bytes):
            return v.replace(b"{B}", base.encode())
        if isinstance(v, list):
            return [s(x) for x in v]
        if isinstance(v, dict):
            return {k: s(x) for k, x in v.items()}
        return v
    return s(op)


def unsubst(op, base):
    def s(v):
        if isinstance(v, str):
            return v.replace(base, "{B}")
        if isinstance(v, bytes):
            return v.replace(base.encode(), b"{B}")
        if isinstance(v, list):
            return [s(x) for x in v]
        if isinstance(v, dict):
            return {k: s(x) for k, x in v.items()}
        if isinstance(v, tuple):
            return tuple(s(x) for x in v)
        return v
    return s(op)


class Runner(object):
    def __init__(self, rzk, zk, args):
        self.rzk, self.zk, self.args = rzk, zk, args
        self.ctx = {"rzk": Ctx(), "zk": Ctx()}
        self.runs = 0
        self.stats = {}        # (opcode, zk err) -> count
        self.n_events = 0
        self.close_order_notes = 0

    def zbase(self):
        """Sets each side's zxid base to its last processed zxid (a control session's read)."""
        for name, srv in (("rzk", self.rzk), ("zk", self.zk)):
            s = zkraw.RawSession(srv.hosts, timeout_ms=30000)
            rep = s.call(3, ustring("/") + boolean(False))
            s.close_session()
            # the control session's own create and close took two zxids before this read?
            # no: the read sees the createSession; the close takes one more.
            self.ctx[name].zbase = rep.zxid + 1

    def run(self, script, base, nsess, gen=None, nops=None, stop_hdr=False):
        """Runs `script` (literal ops, sessions opened by its 'open' ops) or, with `gen`,
        `nsess` sessions and generated ops up to `nops`, under `base`.
        Returns (script as run, first Difference or None, hdr-zxid notes)."""
        self.runs += 1
        self.zbase()
        sides = {"rzk": Side(self.rzk, self.ctx["rzk"], self.args.inject_fn),
                 "zk": Side(self.zk, self.ctx["zk"])}
        ran = []
        hdr_notes = []
        try:
            def step(opi, idx, op):
                ran.append((idx, unsubst(op, base)))
                if op["op"] == "open":
                    op = dict(op, label="s%d" % idx)
                res = {k: sd.do(idx, op) for k, sd in sides.items()}
                a, b = res["rzk"], res["zk"]
                key = (op["op"], b.get("err") if isinstance(b, dict) else b[0])
                self.stats[key] = self.stats.get(key, 0) + 1
                if self.args.verbose:
                    print("  #%d s%d %s\n      rzk %s\n      zk  %s" % (opi, idx, show(op)[:300], show(a)[:400], show(b)[:400]))
                ha = a.get("hdr_zxid") if isinstance(a, dict) else None
                hb = b.get("hdr_zxid") if isinstance(b, dict) else None
                if isinstance(a, dict) and isinstance(b, dict):
                    a2 = {k: v for k, v in a.items() if k != "hdr_zxid"}
                    b2 = {k: v for k, v in b.items() if k != "hdr_zxid"}
                else:
                    a2, b2 = a, b
                if a2 != b2:
                    raise Difference("reply", opi, "reply", a, b, op)
                if ha != hb:
                    d = Difference("hdr-zxid", opi, "reply header zxid", ha, hb, op)
                    if stop_hdr:
                        raise d
                    hdr_notes.append(d)
                # barrier and events
                evs = {}
                for k, sd in sides.items():
                    evs[k] = {j: sd.barrier(j) for j in sorted(sd.sessions)}
                self.n_events += sum(len(v) for v in evs["zk"].values() if isinstance(v, list))
                if self.args.verbose and any(evs["zk"].values()) or self.args.verbose and any(evs["rzk"].values()):
                    print("      events rzk %s\n      events zk  %s" % (evs["rzk"], evs["zk"]))
                if op["op"] == -11 and not self.args.strict_close_order and evs["rzk"] != evs["zk"]:
                    # The order in which a closed session's ephemerals are deleted (and so
                    # their notifications) is ZooKeeper's HashSet order vs rzk's path
                    # order; compared as sets of per-session lists (see README).
                    def srt(e):
                        return {j: sorted(v, key=repr) if isinstance(v, list) else v for j, v in e.items()}
                    if srt(evs["rzk"]) == srt(evs["zk"]):
                        self.close_order_notes += 1
                        evs = {k: srt(v) for k, v in evs.items()}
                if evs["rzk"] != evs["zk"]:
                    late = {k: {j: sd.late_events(j, 0.3) for j in sorted(sd.sessions)}
                            for k, sd in sides.items()}
                    def merged(k):
                        return {j: (v + late[k][j] if isinstance(v, list) else v) for j, v in evs[k].items()}
                    ea, eb = merged("rzk"), merged("zk")
                    if ea == eb:
                        raise Difference("event-late", opi, "events after barrier read", evs["rzk"], evs["zk"], op)
                    raise Difference("events", opi, "watch events", ea, eb, op)
                every = self.args.state_every
                if every and opi >= 0 and opi % every == 0:
                    self.compare_state(sides, opi, op, "server state (4lw)")
                return b, evs["zk"]

            if gen:
                for i in range(nsess):
                    step(len(ran), i, {"op": "open"})
                    gen.live.append(i)
                gen.next_idx = nsess
                step(len(ran), 0, {"op": 1, "path": base, "flags": 0, "data": b"", "acl": "open"})
                while len(ran) < nops:
                    idx, op = gen.next_op(len(ran))
                    if op["op"] == "open":
                        idx = gen.next_idx
                        gen.next_idx += 1
                    res, evs = step(len(ran), idx, op)
                    if op["op"] == "open":
                        gen.live.append(idx)
                    gen.observe(idx, op, res, evs)
                    self.after(sides, gen, idx, op, res, step)
            else:
                for idx, op in script:
                    op = subst(op, base)
                    step(len(ran), idx, op)
            if self.args.state_every:
                self.compare_state(sides, len(ran) - 1, None, "server state (4lw) before closing")
                for sd in sides.values():
                    sd.close_all()
                self.compare_state(sides, len(ran), None, "server state (4lw) after every session closed")
            return ran, None, hdr_notes
        except Difference as d:
            return ran, d, hdr_notes
        finally:
            for sd in sides.values():
                sd.close_all()

    def compare_state(self, sides, opi, op, what):
        # A closed connection's watches go away asynchronously (after the close reply, or
        # after the server dropped it): poll up to 10 s for both servers to settle (a
        # matching state ends the wait at once; a loaded CI machine can be slow).
        deadline = time.time() + 10.0
        while True:
            st = {k: server_state(sd.server, sd.ctx) for k, sd in sides.items()}
            if st["rzk"] == st["zk"] or time.time() > deadline:
                break
            time.sleep(0.1)
        if st["rzk"] != st["zk"]:
            a = {k: v for k, v in st["rzk"].items() if v != st["zk"][k]}
            b = {k: v for k, v in st["zk"].items() if v != st["rzk"][k]}
            raise Difference("state", opi, what, a, b, op)

    def after(self, sides, gen, idx, op, res, step):
        """Session bookkeeping after an op: a closed session leaves the rotation; a
        connection the server closed is re-attached to its session (a literal
        'reattach' op, so a replay does the same)."""
        if op["op"] == -11:
            if gen:
                gen.session_gone(idx)
            return
        dead = [getattr(sd.sessions[idx], "dead", False) for sd in sides.values()]
        if any(dead) and op["op"] not in ("open", "reattach"):
            if not all(dead):
                raise Difference("reply", -1, "connection state", dead, None)
            step(-1, idx, {"op": "reattach"})


# ----------------------------------------------------------------------------- shrinking and printing

def valid(script):
    """Every op names a session opened before it."""
    opened = set()
    for idx, op in script:
        if op["op"] == "open":
            opened.add(idx)
        elif idx not in opened:
            return False
    return True


def shrink(runner, script, nsess, sig, budget):
    """Greedy delta debugging: drop chunks of ops while a difference of the same kind
    still shows. Returns the smallest script found."""
    best = list(script)
    chunk = max(1, len(best) // 2)
    tries = 0
    while chunk >= 1 and tries < budget:
        i = 0
        changed = False
        while i < len(best) and tries < budget:
            cand = best[:i] + best[i + chunk:]
            if not valid(cand):
                i += chunk
                continue
            tries += 1
            runner.shrink_n += 1
            base = "/shrink%d" % runner.shrink_n
            _, d, _ = runner.run(cand, base, 0)
            if d is not None and d.sig == sig:
                best = cand
                changed = True
            else:
                i += chunk
        if not changed:
            chunk //= 2
    return best


def show(v):
    s = repr(compact(v))
    return s if len(s) < 3000 else s[:3000] + "...(%d chars)" % len(s)


def report(seed, script, d, shrunk, out):
    lines = ["=" * 78,
             "DIFFERENCE seed=%s kind=%s at op #%d (%s)" % (seed, d.kind, d.opi, d.what),
             "  rzk: " + show(d.a),
             "  zk : " + show(d.b),
             "  ops leading there (%d; '{B}' is the base path; session index first):" % len(script)]
    for i, (idx, op) in enumerate(script):
        lines.append("    %3d  s%d %s" % (i, idx, fmt_op(op)))
    if shrunk is not None:
        lines.append("  shrunk to %d ops (replay: --replay FILE):" % len(shrunk))
        for i, (idx, op) in enumerate(shrunk):
            lines.append("    %3d  s%d %s" % (i, idx, fmt_op(op)))
        lines.append("  replay literal: " + repr(compact(shrunk)))
    text = "\n".join(lines)
    print(text)
    out.write(text + "\n")
    out.flush()


# ----------------------------------------------------------------------------- injection (self-test)

def make_inject(kind):
    """A deliberate difference applied to the rzk side's results, to show the checks catch it."""
    if not kind:
        return None
    if kind == "badversion-as-nonode":
        def f(op, res):
            if isinstance(res, dict) and res.get("err") == "BADVERSION":
                res["err"] = "NONODE"
                return True
            return False
        return f
    if kind == "cversion":
        def f(op, res):
            b = res.get("body") if isinstance(res, dict) else None
            if isinstance(b, tuple) and len(b) == 2 and isinstance(b[1], dict) and b[1]["numChildren"] > 2:
                b[1]["cversion"] += 1
                return True
            return False
        return f
    raise SystemExit("unknown --inject " + kind)


# ----------------------------------------------------------------------------- main

def parse_seeds(s):
    out = []
    for part in s.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0-19")
    ap.add_argument("--ops", type=int, default=150)
    ap.add_argument("--rzk", default=os.path.join(ROOT, "target", "release", "rzk"))
    ap.add_argument("--rzk-port", type=int, default=27001)
    ap.add_argument("--zk-port", type=int, default=27002)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--rzk-cfg", action="append", default=[],
                    help="extra zoo.cfg line for rzk only (self-test: extendedTypesEnabled=false)")
    ap.add_argument("--out", default=None, help="append differences to this file")
    ap.add_argument("--shrink-budget", type=int, default=150)
    ap.add_argument("--no-shrink", action="store_true")
    ap.add_argument("--continue-on-hdr-zxid", action="store_true",
                    help="note a reply-header zxid difference and go on (default: it stops the seed)")
    ap.add_argument("--no-cesu", action="store_true",
                    help="generate no CESU-8 (surrogate) strings: the one known open difference (README)")
    ap.add_argument("--documented", action="store_true",
                    help="also generate cases COMPATIBILITY.md lists as deliberate differences")
    ap.add_argument("--inject", default=None, help="self-test: badversion-as-nonode | cversion")
    ap.add_argument("--strict-close-order", action="store_true",
                    help="compare the order of a closeSession's notifications too (default: as sets)")
    ap.add_argument("--state-every", type=int, default=10,
                    help="compare wchc/wchs/dump/mntr every N ops and around the final closes (0: never)")
    ap.add_argument("--stats", action="store_true", help="print op/answer counts at the end")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every op and both results")
    ap.add_argument("--replay", default=None, help="file holding a shrunk op list (python literal)")
    ap.add_argument("--sessions", type=int, default=0, help="for --replay: session count (0: from the ops)")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    args.inject_fn = make_inject(args.inject)

    work = args.workdir or tempfile.mkdtemp(prefix="rzk-diff-")
    os.makedirs(work, exist_ok=True)
    rzk = Server("rzk", args.rzk_port, os.path.join(work, "rzk"), args.rzk, args.rzk_cfg)
    zk = Server("zk", args.zk_port, os.path.join(work, "zk"))
    out = open(args.out or os.path.join(work, "differences.txt"), "a")
    t0 = time.time()
    rzk.start()
    zk.start()
    print("servers up in %.1fs (rzk :%d, zookeeper :%d; work dir %s)" % (time.time() - t0, rzk.port, zk.port, work))
    runner = Runner(rzk, zk, args)
    runner.shrink_n = 0
    found = {}
    hdr = {}
    t1 = time.time()
    n_seeds = 0
    try:
        if args.replay:
            import ast
            script = eval(open(args.replay).read(), {"__builtins__": {"bytes": bytes, "range": range}})
            nsess = 0
            _, d, notes = runner.run(script, "/replay%d" % os.getpid(), nsess)
            if d:
                report("replay", script, d, None, out)
            else:
                print("replay: no difference")
            for n in notes:
                print("hdr-zxid note at op #%d: rzk %s zk %s" % (n.opi, n.a, n.b))
            return 1 if d else 0
        for seed in parse_seeds(args.seeds):
            n_seeds += 1
            rng = random.Random(seed * 7919 + 1)
            nsess = rng.randint(2, 4)
            gen = Gen(seed, "/d%d" % seed, args.documented, not args.no_cesu)
            try:
                script, d, notes = runner.run(None, "/d%d" % seed, nsess, gen=gen, nops=args.ops,
                                              stop_hdr=not args.continue_on_hdr_zxid)
            except Exception:  # noqa: BLE001
                traceback.print_exc()
                print("seed %d: harness error" % seed)
                continue
            for n in notes:
                key = (n.what,)
                hdr.setdefault(key, []).append((seed, n.opi, script[n.opi] if 0 <= n.opi < len(script) else None,
                                                n.a, n.b))
            if d is None:
                print("seed %d: ok (%d ops, %d sessions%s)" % (seed, len(script), nsess,
                                                               ", %d hdr-zxid notes" % len(notes) if notes else ""))
                continue
            shrunk = None
            if not args.no_shrink:
                shrunk = shrink(runner, script, nsess, d.sig, args.shrink_budget)
            report(seed, script, d, shrunk, out)
            found.setdefault(d.kind, []).append(seed)
    finally:
        el = time.time() - t1
        for sd in (rzk, zk):
            sd.stop()
        print("-" * 78)
        print("%d seeds in %.1fs (%.2fs/seed); differences by kind: %s" % (
            n_seeds, el, el / max(n_seeds, 1), {k: v for k, v in found.items()} or "none"))
        for k, v in hdr.items():
            print("reply-header zxid differences: %d (first: seed %s op #%s %s rzk %s zk %s)" % (
                len(v), v[0][0], v[0][1], v[0][2], v[0][3], v[0][4]))
        if args.stats:
            print("ops by (opcode, ZooKeeper's answer):")
            for k in sorted(runner.stats, key=lambda k: (str(k[0]), str(k[1]))):
                print("  %-12s %-26s %d" % (k[0], k[1], runner.stats[k]))
            print("watch notifications compared: %d" % runner.n_events)
        if runner.close_order_notes:
            print("closeSession notifications in a different order (normalised): %d times" % runner.close_order_notes)
        print("differences written to", out.name)
        out.close()
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
