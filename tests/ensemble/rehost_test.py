#!/usr/bin/env python3
"""A member named by host name comes back on a new address; the others must reach it there.

  rehost_test.py --rzk target/release/rzk

Three rzk members whose `server.N` lines name hosts zk1, zk2 and zk3. Each runs in its own
mount namespace (`unshare -m`, needs root) where its own hosts file of this test is
bind-mounted over /etc/hosts, so the test changes what the names resolve to without
touching the machine's own /etc/hosts (the files are rewritten in place: the members see
the change).

1. zk1, zk2, zk3 on 127.0.0.81-83: one leader, two followers.
2. Member 1 stops; zk1 now resolves to 127.0.0.91; member 1 starts there (it binds its
   ports on the address its own name resolves to).
3. Member 1 must serve as a follower again within 30 s, and see a znode written through
   another member. Member 1 has the smallest id: the election rule (the larger id keeps
   a connection) makes members 2 and 3 dial it, so they must resolve zk1 again (ZooKeeper
   3.8's `recreateSocketAddresses` before each dial). A member that resolved names only
   at start-up dials 127.0.0.81 forever and member 1 never leaves LOOKING.
4. Member 1 stops again and zk1 stops resolving for members 2 and 3 (its line leaves
   their hosts files). Member 1 starts again on 127.0.0.91 and must serve within 30 s:
   2 and 3 dial where zk1 last resolved (127.0.0.91), not its start-up address, as
   ZooKeeper keeps a member's last good address when a lookup fails.

Ports: clients 22741-22743 on 127.0.0.1, quorum 22750 and election 22760 on each member's
own address. Only the servers this test started are stopped (by PID).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from kazoo.client import KazooClient

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import zkproc  # noqa: E402

CLIENT_BASE = 22740
QUORUM, ELECTION = 22750, 22760


def write_hosts(path, addrs):
    # In place (same inode): the bind mount sees the new text.
    with open(path, "r+") as f:
        f.seek(0)
        f.truncate()
        f.write("127.0.0.1 localhost\n" + "".join(f"{a} zk{i}\n" for i, a in addrs.items()))
        f.flush()
        os.fsync(f.fileno())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rzk", required=True)
    args = ap.parse_args()
    rzk = os.path.abspath(args.rzk)
    base = tempfile.mkdtemp(prefix="rzk-rehost-")
    hosts = {i: os.path.join(base, f"hosts{i}") for i in (1, 2, 3)}
    addrs = {1: "127.0.0.81", 2: "127.0.0.82", 3: "127.0.0.83"}
    for h in hosts.values():
        open(h, "w").close()
        write_hosts(h, addrs)
    # rzk in a mount namespace of its own with member i's hosts file; exec keeps the PID.
    wrapper = {}
    for i, h in hosts.items():
        wrapper[i] = os.path.join(base, f"rzk-ns{i}")
        with open(wrapper[i], "w") as f:
            f.write("#!/bin/sh\n"
                    f"exec unshare -m sh -c 'mount --bind \"$0\" /etc/hosts && exec \"$@\"' "
                    f"'{h}' '{rzk}' \"$@\"\n")
        os.chmod(wrapper[i], 0o755)
    probe = subprocess.run([wrapper[1], "--version"], capture_output=True, text=True)
    if probe.returncode != 0:
        print(f"FAIL: cannot run rzk in a mount namespace of its own (root and unshare(1) "
              f"are needed): {probe.stderr.strip()}")
        sys.exit(1)

    servers = [f"server.{i}=zk{i}:{QUORUM}:{ELECTION}" for i in (1, 2, 3)]
    settings = ["tickTime=500", "initLimit=10", "syncLimit=5"]
    port = {i: CLIENT_BASE + i for i in (1, 2, 3)}
    procs = {}

    def start(i):
        d = os.path.join(base, f"m{i}")
        os.makedirs(d, exist_ok=True)
        cfg = zkproc.write_config(os.path.join(d, "zoo.cfg"), port[i], *settings,
                                  servers=servers, myid=i)
        procs[i] = zkproc.start_rzk(wrapper[i], cfg, port[i])

    ok = False
    try:
        for i in (1, 2, 3):
            start(i)
        zkproc.wait_settled(list(port.values()), timeout=60, where=f"; logs in {base}")
        print(f"three members on {sorted(addrs.values())}: one leader, two followers")

        procs[1].stop()
        addrs[1] = "127.0.0.91"
        for h in hosts.values():
            write_hosts(h, addrs)
        start(1)
        t0 = time.time()
        leader = zkproc.wait_settled(list(port.values()), timeout=30,
                                     where=f" after member 1 moved to 127.0.0.91; logs in {base}")
        print(f"member 1 back on 127.0.0.91: serving as {zkproc.mode(port[1])} "
              f"after {time.time() - t0:.1f} s (leader on client port {leader})")

        other = KazooClient(hosts=f"127.0.0.1:{port[3]}", timeout=10)
        other.start(timeout=30)
        other.create("/rehost", b"written-through-3")
        other.stop()
        moved = KazooClient(hosts=f"127.0.0.1:{port[1]}", timeout=10)
        moved.start(timeout=30)
        moved.sync("/rehost")
        data, _ = moved.get("/rehost")
        moved.stop()
        assert data == b"written-through-3", data
        print("member 1 serves the znode written through member 3")

        procs[1].stop()
        for i in (2, 3):
            write_hosts(hosts[i], {k: a for k, a in addrs.items() if k != 1})
        start(1)
        t0 = time.time()
        zkproc.wait_settled(list(port.values()), timeout=30,
                            where=f" after zk1 stopped resolving for 2 and 3; logs in {base}")
        print(f"zk1 no longer resolves for members 2 and 3: member 1 serving as "
              f"{zkproc.mode(port[1])} after {time.time() - t0:.1f} s (dialled where it "
              f"last resolved)")
        ok = True
    except AssertionError as e:
        print(f"FAIL: {e}")
    finally:
        for p in procs.values():
            p.stop()
    if ok:
        shutil.rmtree(base, ignore_errors=True)
    print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
