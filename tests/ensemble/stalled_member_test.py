#!/usr/bin/env python3
"""A member that was stopped past its clients' session timeouts does not answer the
requests queued in their sockets meanwhile from its out-of-date tree.

  stalled_member_test.py --rzk target/release/rzk --apache scripts/start-apache-zk.sh \
      [--kinds rzk,apache]

Found by a break-it review: a follower stopped (SIGSTOP) for longer than a client's
session timeout, then resumed (SIGCONT), answered the getData the client had sent during
the stop from its tree as it was before the stop, although the leader had committed a
newer value and expired the client's session long before (a client holding a lock node
would see it still there). ZooKeeper's NIO connection factory closes a connection that
had no I/O for its session's timeout (its connection expiry queue, on a grid of
`zookeeper.nio.sessionlessCnxnTimeout`, 10 s); rzk closes such a connection at the next
read past the timeout (net/conn.rs, `Conn::idle_past_timeout`).

Cases, on a 3-member ensemble of each kind (tickTime=500, syncLimit=2):
  1. stalled: client C (session timeout 3 s) on follower F reads /st ("old"); F is
     stopped; another client sets /st to "new"; 14 s later (past C's timeout and the
     end of ZooKeeper's expiry grid) C sends a getData and F is resumed. rzk must close
     C's connection without answering. ZooKeeper's expiry thread races its selector
     thread for the request after a resume: in runs here it closed the connection
     unanswered or answered "old", so for ZooKeeper the outcome is printed, not asserted.
  2. pinging: a client on a follower that pings every second for twice its 3 s timeout
     and then reads is answered (no connection is closed for being idle while the
     client is alive), on both kinds.
Ports: clients 22841-22843 on 127.0.0.1, quorum 22861-22863, election 22871-22873. Only
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
from zkraw import (OP_CREATE, OP_GETDATA, OP_SETDATA, RawSession, buffer,  # noqa: E402
                   create_body, i32, path_watch_body, ustring)

BASE = 22840
STALL_S = 14
TIMEOUT_MS = 3000


def run(args, kind):
    base = tempfile.mkdtemp(prefix=f"rzk-stalled-{kind}-")
    ens = zkproc.Ensemble(args, kind, base, BASE,
                          ["tickTime=500", "initLimit=10", "syncLimit=2"])
    sessions = []

    def session(i, timeout_ms=10000):
        s = RawSession(f"127.0.0.1:{ens.port[i]}", timeout_ms=timeout_ms)
        sessions.append(s)
        return s

    ok = False
    try:
        leader, (f1, f2) = ens.start()
        print(f"{kind}: leader {leader}, followers {f1} and {f2}")
        b = session(leader)
        assert b.call(OP_CREATE, create_body("/st", b"old")).err == 0

        # 2. first (the ensemble is whole): an idle but pinging client is served.
        p = session(f2, TIMEOUT_MS)
        assert p.negotiated_timeout == TIMEOUT_MS, p.negotiated_timeout
        for _ in range(2 * TIMEOUT_MS // 1000):
            time.sleep(1.0)
            assert p.ping().err == 0
        r = p.call(OP_GETDATA, path_watch_body("/st"), timeout=10)
        assert r.err == 0 and r.reader().buffer() == b"old", r
        print(f"PASS {kind}: a client pinging every second for {2 * TIMEOUT_MS} ms is served")

        # 1. the stalled follower.
        c = session(f1, TIMEOUT_MS)
        r = c.call(OP_GETDATA, path_watch_body("/st"))
        assert r.err == 0 and r.reader().buffer() == b"old", r
        ens.procs[f1].signal(signal.SIGSTOP)
        try:
            assert b.call(OP_SETDATA, ustring("/st") + buffer(b"new") + i32(-1)).err == 0
            time.sleep(STALL_S)
            c.send(OP_GETDATA, path_watch_body("/st"))
        finally:
            ens.procs[f1].signal(signal.SIGCONT)
        closed, frames = c.expect_closed(timeout=15)
        answers = [(f.err, f.reader().buffer() if f.err == 0 else None) for f in frames]
        outcome = (f"connection closed={closed}, answers {answers}")
        if kind == "rzk":
            assert closed and not frames, f"stalled follower: {outcome}"
            print(f"PASS {kind}: a follower stopped for {STALL_S} s closed the connection "
                  f"without answering the read queued meanwhile")
        else:
            print(f"INFO {kind}: a follower stopped for {STALL_S} s: {outcome}")
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
            print(f"{kind}: all stalled-member cases passed in {time.monotonic() - t0:.0f} s")
        except AssertionError as e:
            failed += 1
            print(f"FAIL {kind}: {e}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
