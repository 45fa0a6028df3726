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
Then two cases of the same kind, rzk only (a member answering "expired" for a live
session from state its leader role left behind or had not rebuilt yet; ZooKeeper builds a
new session tracker for each role and loads its whole database before it leads, as the
reviews of session 45 checked by hand):
  5. an old leader's closing marks: the followers stopped past the session timeout, the
     leader expires the session and proposes a closeSession that never commits; the
     followers, restarted while the old leader is stopped, elect a new leader, the
     session moves there and lives on; the old leader resumes and rejoins as a follower:
     the session re-attaches at it (it was answered "expired" from its own marks).
  6. a new leader still applying its log: member 3 (snapCount 10^8, the others 20,000)
     leads a few seconds of setData load; a session is created; all three killed -9 and
     restarted; the session re-attaches at a follower that serves while the leader still
     replays its log tail: it must never be told it expired (the leader answered
     REVALIDATE from its session table before replaying the createSession).
  7. a re-attach's REVALIDATE is not queued behind writes: 4 members, two followers
     stopped (the leader keeps leading without a quorum for a while) and 12,000
     pipelined setData at the leader (past its 10,000 outstanding proposals, so writes
     wait); the session re-attaches at the running follower, the client gives up after
     3 s and re-attaches at the leader; the followers resume: the session's write on the
     leader connection must succeed (a REVALIDATE answered after the later re-attach
     made the follower the owner: SESSIONMOVED, found by a review of session 45's own fix).
Ports: clients 22801-22804 on 127.0.0.1, quorum 22821-22824, election 22831-22834. Only
processes this script started are signalled (by PID); data under a temp dir, kept on
failure.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "compat", "kazoo"))
import zkproc  # noqa: E402
from zkraw import (ConnectionClosed, OP_CREATE, OP_DELETE, OP_EXISTS, OP_GETDATA, OP_MULTI, OP_SETDATA,  # noqa: E402
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


def finish(ens, base, ok, kind, conns=()):
    """Closes `conns`, stops the ensemble, and removes its directory if the case passed
    (kept, and named, otherwise)."""
    for c in conns:
        c.close()
    ens.stop_all()
    if ok:
        shutil.rmtree(base, ignore_errors=True)
    else:
        print(f"{kind}: data and logs kept in {base}")


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
        finish(ens, base, ok, kind, sessions)


def restart(ens, i, settings=None):
    """Starts member `i` of `ens` again on its data (rzk only: returns at once)."""
    ens.procs[i] = zkproc.start_member(ens.kind, ens.args, os.path.join(ens.base, f"n{i}"),
                                       ens.port[i], i, settings or ens.settings, ens.servers)


def reattach(port, sid, pw, last_zxid=0, io_timeout=5):
    """(session id, timeout) the member on `port` answers a re-attach of `sid` with, or
    None when it closes the connection without an answer (not serving, or behind)."""
    try:
        s = RawSession(addr(port), timeout_ms=10000, session_id=sid, passwd=pw,
                       last_zxid=last_zxid, io_timeout=io_timeout)
    except (ConnectionClosed, OSError):
        return None
    out = (s.session_id, s.negotiated_timeout)
    s.close()
    return out


def run_stale_closing(args):
    """Case 5: an old leader's closing marks do not answer for the new leader."""
    base = tempfile.mkdtemp(prefix="rzk-closing-")
    ens = zkproc.Ensemble(args, "rzk", base, BASE,
                          ["tickTime=500", "initLimit=10", "syncLimit=10"])
    ok = False
    try:
        leader, followers = ens.start()
        s = RawSession(addr(ens.port[followers[0]]), timeout_ms=2000)
        sid, pw = s.session_id, s.passwd
        s.close()
        for f in followers:
            ens.procs[f].signal(signal.SIGSTOP)
        time.sleep(3.5)  # past the 2 s timeout: the leader expires the session
        for f in followers:
            ens.procs[f].kill9()
        ens.procs[leader].signal(signal.SIGSTOP)
        for f in followers:
            restart(ens, f)
        zkproc.wait_settled([ens.port[f] for f in followers], timeout=60)
        # The session lives on at the new leader's ensemble (kept alive by pings).
        live = RawSession(addr(ens.port[followers[0]]), timeout_ms=2000, session_id=sid,
                          passwd=pw)
        assert live.session_id == sid and live.negotiated_timeout > 0, "the move was refused"
        ens.procs[leader].signal(signal.SIGCONT)
        deadline = time.time() + 30
        while zkproc.mode(ens.port[leader]) != "follower":
            assert time.time() < deadline, "the old leader did not rejoin as a follower"
            live.ping()
            time.sleep(0.2)
        live.ping()
        answer = reattach(ens.port[leader], sid, pw)
        assert answer is not None and answer[0] == sid and answer[1] > 0, (
            f"the old leader, now a follower, refused the live session: {answer}")
        print("PASS rzk: an old leader's closing marks: the live session re-attaches at it")
        ok = True
    finally:
        finish(ens, base, ok, "rzk")


def run_replaying_leader(args):
    """Case 6: a new leader answers REVALIDATE once its log is applied."""
    base = tempfile.mkdtemp(prefix="rzk-replay-")
    common = ["tickTime=500", "initLimit=20", "syncLimit=10"]
    ens = zkproc.Ensemble(args, "rzk", base, BASE, common + ["snapCount=20000"])
    leader_settings = common + ["snapCount=100000000"]
    ok = False
    try:
        for i in ens.IDS:
            restart(ens, i, leader_settings if i == 3 else None)
        leader_port = zkproc.wait_settled(list(ens.port.values()), timeout=90)
        assert leader_port == ens.port[3], "member 3 (the highest id) should lead"
        subprocess.run([args.rzk, "bench", "--hosts", addr(ens.port[1]), "--sessions", "8",
                        "--inflight", "32", "--op", "set", "--value-size", "10",
                        "--duration", "3", "--warmup", "0", "--quiet"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        s = RawSession(addr(ens.port[1]), timeout_ms=10000)
        sid, pw = s.session_id, s.passwd
        last = s.call(OP_EXISTS, path_watch_body("/")).zxid
        s.close()
        for i in ens.IDS:
            ens.procs[i].kill9()
        restart(ens, 3, leader_settings)
        time.sleep(0.3)
        restart(ens, 1)
        restart(ens, 2)
        answers = []
        deadline = time.time() + 60
        while time.time() < deadline:
            for f in (1, 2):
                a = reattach(ens.port[f], sid, pw, last)
                if a is not None:
                    answers.append((f, a))
            if any(a[0] == sid for _, a in answers):
                break
            time.sleep(0.005)
        refused = [(f, a) for f, a in answers if a[0] != sid]
        assert not refused, f"a follower answered the live session as expired: {refused[:3]}"
        assert answers, "no follower answered within 60 s"
        print(f"PASS rzk: a new leader still applying its log: the session re-attaches "
              f"({len(answers)} answers, none expired)")
        ok = True
    finally:
        finish(ens, base, ok, "rzk")


class Ensemble4(zkproc.Ensemble):
    IDS = (1, 2, 3, 4)


def run_revalidate_order(args):
    """Case 7: ownership follows the order of the re-attaches, not of a write backlog."""
    base = tempfile.mkdtemp(prefix="rzk-reval-order-")
    ens = Ensemble4(args, "rzk", base, BASE,
                    ["tickTime=1000", "initLimit=10", "syncLimit=40", "maxSessionTimeout=60000"])
    ok = False
    conns = []
    try:
        leader, followers = ens.start()
        # Idle until the end (~10 s and more on a loaded machine): a timeout longer than
        # that, or the leader closes its connection as idle (as ZooKeeper does) and
        # expires it.
        b = RawSession(addr(ens.port[leader]), timeout_ms=60000)
        conns.append(b)
        for path in ("/order-x", "/order-y"):
            assert b.call(OP_CREATE, create_body(path, b"0")).err == 0
        mover = followers[2]
        s = RawSession(addr(ens.port[mover]), timeout_ms=60000)
        sid, pw = s.session_id, s.passwd
        s.close()
        writers = [RawSession(addr(ens.port[leader])) for _ in range(12)]
        conns.extend(writers)
        for f in followers[:2]:
            ens.procs[f].signal(signal.SIGSTOP)
        resume = threading.Timer(8.0, lambda: [ens.procs[f].signal(signal.SIGCONT)
                                               for f in followers[:2]])
        resume.start()
        try:
            body = i32(1) + i32(OP_SETDATA) + set_body("/order-x", b"y" * 10)
            for w in writers:
                w.sock.sendall((i32(len(body)) + body) * 1000)
            time.sleep(1.0)
            # The follower's REVALIDATE reaches the leader; the client gives up after 3 s
            # and moves to the leader, which answers once its quorum is back.
            reattach(ens.port[mover], sid, pw, io_timeout=3)
            moved = RawSession(addr(ens.port[leader]), timeout_ms=60000, session_id=sid,
                               passwd=pw, io_timeout=40)
            conns.append(moved)
        finally:
            resume.join()
        assert moved.session_id == sid and moved.negotiated_timeout > 0, "the move was refused"
        try:
            err = moved.call(OP_SETDATA, set_body("/order-y", b"from-the-leader")).err
        except ConnectionClosed:
            err = "no answer, connection closed (SESSIONMOVED)"
        assert err == 0, f"the live session's write at the leader got {err}"
        assert value(b, "/order-y") == b"from-the-leader"
        print("PASS rzk: a re-attach's REVALIDATE is answered ahead of a write backlog")
        ok = True
    finally:
        finish(ens, base, ok, "rzk", conns)


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
            if kind == "rzk":
                run_stale_closing(args)
                run_replaying_leader(args)
                run_revalidate_order(args)
            print(f"{kind}: all session-moved cases passed in {time.monotonic() - t0:.0f} s")
        except AssertionError as e:
            failed += 1
            print(f"FAIL {kind}: {e}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
