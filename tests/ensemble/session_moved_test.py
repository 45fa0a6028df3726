#!/usr/bin/env python3
"""SESSIONMOVED: a session's requests on a connection it has left are never applied.

  session_moved_test.py --rzk target/release/rzk --apache scripts/start-apache-zk.sh \
      [--kinds rzk,apache]

The same steps against a 3-member rzk ensemble and a 3-member Apache ZooKeeper 3.8
ensemble (raw client frames, tests/compat/kazoo/zkraw.py). A client that moves its
session to another server (a ConnectRequest with the session's id and password there)
has left its first connection; ZooKeeper's leader records where each session is attached
(its "owner": the learner that revalidated it, or the leader itself) and refuses a write
from anywhere else with SESSIONMOVED, and the server the request came on closes that
connection without an answer. Otherwise an older write of the session, held up on the old
connection, runs after the newer ones the client sent on its new connection: per-session
order is lost (found by a break-it review: rzk applied both).

Each case opens connection `old` (session S), moves S to connection `new` on another
member, then sends writes on `old`; `old` must be closed with no successful answer, and
the writes must not be applied, while `new` keeps working:
  1. follower -> follower, the old follower stopped (SIGSTOP) with two writes (setData,
     ephemeral create) in its socket: the client writes again on `new` and sees no
     ephemeral; the old follower resumes (SIGCONT); the old writes must not be applied
     (setData would overwrite the newer value; the ephemeral would be a lock the client
     does not know it holds).
  2. follower -> leader: a setData on `old`.
  3. leader -> follower: a setData on `old` (the leader's own connection).
  4. follower -> follower: a multi (create + setData) on `old`.
Ports: clients 22801-22803 on 127.0.0.1, quorum 22821-22823, election 22831-22833. Only
processes this script started are signalled (by PID); data under a temp dir, kept on
failure.
"""
import argparse
import os
import shutil
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "compat", "kazoo"))
import zkproc  # noqa: E402
from zkraw import (OP_CREATE, OP_DELETE, OP_EXISTS, OP_GETDATA, OP_MULTI, OP_SETDATA,  # noqa: E402
                   OP_SYNC, RawSession, boolean, buffer, create_body, i32, path_watch_body,
                   ustring)

BASE = 22800
NONODE, SESSIONMOVED = -101, -118
EPHEMERAL = 1


def set_body(path, data, version=-1):
    return ustring(path) + buffer(data) + i32(version)


def multi_body(ops):
    out = b""
    for opcode, body in ops:
        out += i32(opcode) + boolean(False) + i32(-1) + body
    return out + i32(-1) + boolean(True) + i32(-1)


def addr(port):
    return f"127.0.0.1:{port}"


def value(s, path):
    """The data of `path` read through `s` after a sync (None when it does not exist)."""
    assert s.call(OP_SYNC, ustring(path)).err == 0
    r = s.call(OP_GETDATA, path_watch_body(path))
    if r.err == NONODE:
        return None
    assert r.err == 0, r
    return r.reader().buffer()


def exists(s, path):
    assert s.call(OP_SYNC, ustring(path)).err == 0
    return s.call(OP_EXISTS, path_watch_body(path)).err == 0


def expect_old_closed(old, what):
    closed, frames = old.expect_closed(timeout=15)
    applied = [f for f in frames if f.err == 0]
    assert closed, f"{what}: the old connection stayed open (answers {frames})"
    assert not applied, f"{what}: the old connection's writes were answered OK: {applied}"
    return frames


def run(args, kind):
    base = tempfile.mkdtemp(prefix=f"rzk-moved-{kind}-")
    ens = zkproc.Ensemble(args, kind, base, BASE,
                          ["tickTime=500", "initLimit=10", "syncLimit=5"])
    sessions = []

    def session(i, **kw):
        s = RawSession(addr(ens.port[i]), timeout_ms=10000, **kw)
        sessions.append(s)
        return s

    def move(old, i):
        # As real clients do (the Java and C clients keep one xid counter per handle,
        # across reconnects), the new connection goes on from the old one's xids: a
        # follower matches a committed txn to its own waiting request by session and
        # xid, as ZooKeeper's commit processor does.
        new = session(i, session_id=old.session_id, passwd=old.passwd)
        new.xid = old.xid + 100
        return new

    ok = False
    try:
        leader, (f1, f2) = ens.start()
        print(f"{kind}: leader {leader}, followers {f1} and {f2}")
        b = session(leader)
        assert b.call(OP_CREATE, create_body("/mv")).err == 0

        # 1. follower -> follower, the old follower stopped with two writes queued.
        assert b.call(OP_CREATE, create_body("/mv/x", b"0")).err == 0
        old = session(f1)
        ens.procs[f1].signal(signal.SIGSTOP)
        try:
            time.sleep(0.2)
            old.send(OP_SETDATA, set_body("/mv/x", b"old-connection"))
            old.send(OP_CREATE, create_body("/mv/lock", flags=EPHEMERAL))
            new = move(old, f2)
            assert new.negotiated_timeout > 0, "the move was refused"
            assert new.call(OP_SETDATA, set_body("/mv/x", b"new-connection")).err == 0
            assert new.call(OP_DELETE, ustring("/mv/lock") + i32(-1)).err == NONODE
        finally:
            ens.procs[f1].signal(signal.SIGCONT)
        expect_old_closed(old, "follower->follower (stopped)")
        assert value(b, "/mv/x") == b"new-connection", value(b, "/mv/x")
        assert not exists(b, "/mv/lock"), "the old connection's ephemeral was created"
        assert value(new, "/mv/x") == b"new-connection"
        print(f"PASS {kind}: follower->follower with the old follower stopped: old connection "
              f"closed, its setData and ephemeral create not applied")

        # 2. and 3. follower -> leader, leader -> follower.
        for name, (i, j) in [("follower->leader", (f1, leader)),
                             ("leader->follower", (leader, f1))]:
            path = f"/mv/{name}"
            assert b.call(OP_CREATE, create_body(path, b"0")).err == 0
            old = session(i)
            new = move(old, j)
            assert new.negotiated_timeout > 0, f"{name}: the move was refused"
            assert new.call(OP_SETDATA, set_body(path, b"new-connection")).err == 0
            old.send(OP_SETDATA, set_body(path, b"old-connection"))
            expect_old_closed(old, name)
            assert value(b, path) == b"new-connection", (name, value(b, path))
            assert value(new, path) == b"new-connection"
            print(f"PASS {kind}: {name}: old connection closed, its setData not applied")

        # 4. a multi on the old connection.
        assert b.call(OP_CREATE, create_body("/mv/m", b"0")).err == 0
        old = session(f1)
        new = move(old, f2)
        old.send(OP_MULTI, multi_body([(OP_CREATE, create_body("/mv/m/child")),
                                       (OP_SETDATA, set_body("/mv/m", b"old-connection"))]))
        expect_old_closed(old, "multi")
        assert value(b, "/mv/m") == b"0" and not exists(b, "/mv/m/child")
        assert value(new, "/mv/m") == b"0"
        print(f"PASS {kind}: a multi on the old connection: closed, not applied")
        ok = True
    finally:
        for s in sessions:
            s.close()
        ens.stop_all()
        if ok:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"{kind}: data and logs kept in {base}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rzk", required=True)
    ap.add_argument("--apache", required=True)
    ap.add_argument("--kinds", default="rzk,apache")
    args = ap.parse_args()
    args.rzk = os.path.abspath(args.rzk)
    failed = 0
    for kind in [k for k in args.kinds.split(",") if k]:
        t0 = time.monotonic()
        try:
            run(args, kind)
            print(f"{kind}: all session-moved cases passed in {time.monotonic() - t0:.0f} s")
        except AssertionError as e:
            failed += 1
            print(f"FAIL {kind}: {e}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
