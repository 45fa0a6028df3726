#!/usr/bin/env python3
"""Data-directory interchange between Apache ZooKeeper and rzk, both ways.

  interchange.py --rzk target/debug/rzk --apache scripts/start-apache-zk.sh

For each direction (writer -> reader): the writer server starts on an empty dataDir, a
client creates persistent, sequential and ephemeral nodes with data and ACLs, the tree is
dumped through the client protocol (paths, data, ACLs, stats), the writer is stopped
(SIGKILL, so nothing but fsynced files remain), the reader server starts on the same
dataDir and must serve the same dump; the ephemeral node must belong to the same session
and vanish once that session expires. Then the writer starts again on the reader's files
(its start-up snapshot and log) and must serve what the reader served last. Null node
data (length -1) must stay null throughout.

Each direction runs once per snapshot compression (`--compressions`, default
none,gz,snappy: ZooKeeper's `zookeeper.snapshot.compression.method`) with snapCount=10 on
both servers, so both write snapshots of the tree mid-run; a compressed run also requires
that each server left a compressed snapshot past zxid 0 for the other to read.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

from kazoo.client import KazooClient
from kazoo.protocol.serialization import Create, SetData
from kazoo.security import OPEN_ACL_UNSAFE, make_digest_acl, make_acl

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import zkproc  # noqa: E402

PORT = 21960


def start(kind, args, datadir, compression):
    settings = ["snapCount=10"]
    if compression != "none":
        settings.append(f"zookeeper.snapshot.compression.method={compression}")
    if kind == "rzk":
        # The same dataDir scripts/start-apache-zk.sh gives Apache ZooKeeper: <datadir>/data.
        cfg = zkproc.write_config(os.path.join(datadir, "rzk.cfg"), PORT, *settings)
        proc = zkproc.start_rzk(args.rzk, cfg, PORT, log=os.path.join(datadir, "rzk.log"))
    else:
        proc = zkproc.start_apache(args.apache, PORT, datadir, "forceSync=yes", *settings)
    zkproc.wait_serving(PORT, proc, what=f"{kind} on {datadir}")
    return proc


def connect(timeout=10.0, auth=True):
    c = KazooClient(hosts=f"127.0.0.1:{PORT}", timeout=timeout)
    c.start(timeout=30)
    if auth:
        c.add_auth("digest", "alice:secret")
    return c


def populate(c):
    c.create("/app", b"root-data")
    c.create("/app/config", b"x" * 1000)
    c.set("/app/config", b"y" * 10)
    for i in range(5):
        c.create("/app/queue/item-", str(i).encode(), sequence=True, makepath=True)
    c.delete("/app/queue/item-0000000001")
    c.create("/app/secret", b"s", acl=[make_digest_acl("alice", "secret", all=True)])
    c.create("/app/readonly", b"r", acl=[make_acl("world", "anyone", read=True)])
    c.create("/app/deep/a/b/c", b"deep", makepath=True)
    c.set_acls("/app/deep", [make_acl("world", "anyone", all=True)])
    # Null data (buffer length -1, what zkCli's `create /x` stores) must stay null, apart
    # from empty data, in logs and snapshots. kazoo's API sends only bytes: raw requests.
    raw(c, Create("/app/null", None, OPEN_ACL_UNSAFE, 0))
    c.create("/app/empty", b"")
    c.create("/app/set-null", b"v")
    raw(c, SetData("/app/set-null", None, -1))


def raw(c, request):
    result = c.handler.async_result()
    c._call(request, result)
    return result.get(timeout=10)


def dump(c, path="/"):
    out = {}

    def walk(p):
        data, st = c.get(p)
        acls, _ = c.get_acls(p)
        out[p] = (data, tuple(sorted((a.perms, a.id.scheme, a.id.id) for a in acls)),
                  (st.czxid, st.mzxid, st.pzxid, st.ctime, st.mtime, st.version, st.cversion,
                   st.aversion, st.ephemeralOwner, st.dataLength, st.numChildren))
        for ch in sorted(c.get_children(p)):
            walk(("" if p == "/" else p) + "/" + ch)

    walk(path)
    return out


def compressed_snapshots(datadir, compression):
    """The snapshots past zxid 0 with `compression`'s extension, as (name, mtime) pairs:
    a server that starts on a snapshot taken at the last zxid writes its start-up
    snapshot under the same name, so a new file is told apart by its time too."""
    version = os.path.join(datadir, "data", "version-2")
    ext = "." + compression
    return {(n, os.stat(os.path.join(version, n)).st_mtime_ns) for n in os.listdir(version)
            if n.startswith("snapshot.") and n.endswith(ext)
            and n[len("snapshot."):-len(ext)] not in ("0", "")}


def direction(writer, reader, compression, args, base):
    datadir = os.path.join(base, f"{writer}-to-{reader}-{compression}")
    proc = start(writer, args, datadir, compression)
    c = connect()
    populate(c)
    eph = connect(timeout=6.0, auth=False)
    eph.create("/app/ephemeral", b"e", ephemeral=True)
    eph_session = eph.client_id[0]
    before = dump(c)
    c.stop()
    proc.kill9()  # the ephemeral's session is still open at the crash
    try:
        eph.stop()
    except Exception:
        pass
    errors = []
    written = set()
    if compression != "none":
        written = compressed_snapshots(datadir, compression)
        if not written:
            errors.append(f"{writer} wrote no {compression} snapshot past zxid 0")
    proc = start(reader, args, datadir, compression)
    try:
        c = connect()
        after = dump(c)
        for p in sorted(set(before) | set(after)):
            if before.get(p) != after.get(p):
                errors.append(f"{p}: {writer} wrote {before.get(p)}, {reader} serves {after.get(p)}")
        if before.get("/app/ephemeral", (None, None, [None] * 9))[2][8] != eph_session:
            errors.append("ephemeral owner is not the writer's session")
        deadline = time.time() + 30
        while c.exists("/app/ephemeral") and time.time() < deadline:
            time.sleep(0.2)
        if c.exists("/app/ephemeral"):
            errors.append("ephemeral of the dead session did not expire within 30 s")
        if before.get("/app/null", (b"",))[0] is not None:
            errors.append(f"{writer} did not keep null data apart from empty")
        final = dump(c)
        c.stop()
        # Back to the writer on the reader's files (its start-up snapshot, its log).
        proc.kill9()
        if compression != "none" and not compressed_snapshots(datadir, compression) - written:
            errors.append(f"{reader} wrote no {compression} snapshot past zxid 0")
        proc = start(writer, args, datadir, compression)
        c = connect()
        back = dump(c)
        c.stop()
        for p in sorted(set(final) | set(back)):
            if final.get(p) != back.get(p):
                errors.append(f"{p}: {reader} served {final.get(p)}, {writer} then serves {back.get(p)}")
    finally:
        proc.kill9()
    print(f"{writer} -> {reader} ({compression} snapshots): {len(before)} znodes compared: "
          f"{'ok' if not errors else 'FAIL'}")
    for e in errors:
        print("   " + e)
    return not errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rzk", required=True)
    ap.add_argument("--apache", required=True)
    ap.add_argument("--directions", default="apache:rzk,rzk:apache")
    ap.add_argument("--compressions", default="none,gz,snappy")
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="rzk-interchange-")
    results = [direction(w, r, comp, args, base)
               for comp in args.compressions.split(",")
               for w, r in (d.split(":") for d in args.directions.split(","))]
    ok = sum(results)
    print(f"{ok} passed, {len(results) - ok} failed")
    if all(results):
        shutil.rmtree(base, ignore_errors=True)
    else:
        print(f"data dirs kept in {base}")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
