#!/usr/bin/env python3
"""`config` and `reconfig` in rzk shell against zkCli 3.8 (rzk-client's get_config,
get_config_w and reconfig through the real protocol).

1. A 3-node Apache ZooKeeper 3.8 ensemble (reconfigEnabled=true, skipACL=yes): the same
   interactive input through `rzk shell` and through zkCli, one session each, both
   against the same ensemble: config (-s, -c, -w and the watch firing on a reconfig),
   incremental reconfigs (-remove / -add of a follower, with -s), non-incremental ones
   (-members, -file), -v with a wrong version, and the refusals (usage, mixing modes,
   missing values, bad -v, a missing -file, a malformed server line, removing every
   voter). Each session leaves the ensemble as it found it.
2. The same session against a 3-node rzk ensemble (reconfigEnabled=true; an `addauth`
   as a superDigest user first, since rzk has no skipACL): both tools must print the
   same, and the reconfigs must commit.
3. rzk servers (standalone with reconfigEnabled=false, then true): both tools against
   the same rzk server must print the same answer (ZooKeeper: "Reconfig is disabled",
   and Unimplemented from a standalone server).

Normalised before comparing: banners and log lines, `version=` values, zxids, dates and
the first SyncConnected event; `config -c`'s host list is compared as a set (zkCli prints
it in hash order). Prints "cases run: N, cases identical: M"; exit 1 if any differ.
Ports 24950-24996.
"""
import argparse
import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import zkproc  # noqa: E402

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
CLIENT = 24950      # + id (1..3): client ports of the ZooKeeper ensemble
QUORUM = 24960      # + id
ELECTION = 24970    # + id
RZK_PORT = 24955
RZK_CLIENT = 24980  # + id: client ports of the rzk ensemble
SUPER_PASSWORD = "reconfig-compat"
# superDigest's form: super:<base64 of sha1("super:<password>")>
SUPER_DIGEST = "super:" + base64.b64encode(
    hashlib.sha1(f"super:{SUPER_PASSWORD}".encode()).digest()).decode()
RZK_QUORUM = 24990  # + id
RZK_ELECTION = 24986  # + id

LOG = re.compile(r"^(\d{4}-\d\d-\d\d[ T]|SLF4J:|log4j:)")
BANNER = {"Welcome to ZooKeeper!", "JLine support is disabled", "JLine support is enabled"}
HEX = re.compile(r"^(cZxid|mZxid|pZxid|ephemeralOwner) = 0x[0-9a-f]+$")
DATE = re.compile(r"^(ctime|mtime) = .*$")
CLIENT_CFG = re.compile(r"^([0-9a-f]+) ((?:[0-9.]+:\d+,?)+)$")


def line_of(i, client=CLIENT, quorum=QUORUM, election=ELECTION):
    return f"server.{i}=127.0.0.1:{quorum + i}:{election + i}:participant;127.0.0.1:{client + i}"


def session_lines(tmp, follower, line):
    """The interactive input for an ensemble: `line(i)` is member i's server line. Each
    session restores the three members, so both tools see the same start."""
    dyn = os.path.join(tmp, "members.cfg")
    with open(dyn, "w") as f:
        f.write("# the whole membership\n" + "\n".join(line(i) for i in (1, 2, 3)) + "\n")
    return [
        "config",
        "config -s",
        "config -c",
        "config -w",
        f"reconfig -remove {follower}",           # the watch fires
        "config",
        f"reconfig -s -add {line(follower)}",
        "reconfig",
        "reconfig -s",
        f"reconfig -members {line(1)} -add {line(2)}",
        f"reconfig -file {dyn} -members {line(1)}",
        "reconfig -add",
        "reconfig -remove 1 -v zz",
        "reconfig -v 1 -remove 2",
        "reconfig -remove 1,2,3",
        "reconfig -add server.9=127.0.0.1:abc",
        f"reconfig -file {tmp}/nonexistent",
        "reconfig -x -remove 2",
        f"reconfig -members {','.join(line(i) for i in (1, 2, 3) if i != follower)}",
        f"reconfig -file {dyn}",
        "config",
    ]


def normalise(text):
    out = []
    for line in text.splitlines():
        if line in BANNER or LOG.match(line) or line.startswith("Connecting to "):
            continue
        if line.startswith("version="):
            line = "version=<v>"
        m = CLIENT_CFG.match(line)
        if m:
            line = "<v> " + ",".join(sorted(m.group(2).split(",")))
        m = HEX.match(line)
        if m:
            line = f"{m.group(1)} = 0x<n>"
        m = DATE.match(line)
        if m:
            line = f"{m.group(1)} = <date>"
        out.append(line)
    first = ["", "WATCHER::", "", "WatchedEvent state:SyncConnected type:None path:null"]
    for i in range(len(out) - len(first) + 1):
        if out[i:i + len(first)] == first:
            out = out[:i] + out[i + len(first):]
            break
    # Watch events are printed by the tools' event threads, line by line, so where an
    # event's lines ("", "WATCHER::", "", "WatchedEvent ...") land among the command
    # output is a race in zkCli as in rzk shell (CI saw zkCli print "Committed new
    # configuration:" between "WATCHER::" and its event). The event lines are taken out
    # and compared at the end, sorted; blank lines are dropped (an event brings two).
    events = sorted(x for x in out if x == "WATCHER::" or x.startswith("WatchedEvent "))
    rest = [x for x in out if x and x != "WATCHER::" and not x.startswith("WatchedEvent ")]
    return rest + events


def session(cmd, server, lines, pause_after=()):
    """One interactive session: `lines` typed on stdin (a pause after the indexes in
    `pause_after`, so an asynchronous event is printed before the next command)."""
    p = subprocess.Popen(cmd + ["-server", server], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "RUST_LOG": ""})
    for i, l in enumerate(lines):
        p.stdin.write(l + "\n")
        p.stdin.flush()
        if i in pause_after:
            time.sleep(1.5)
    out, err = p.communicate("quit\n", timeout=120)
    return normalise(out), normalise(err)


def compare(name, mine, theirs, must=()):
    """Prints ok/DIFF; `must` are lines rzk shell's stdout has to contain (so that a
    case cannot pass by both tools failing the same way)."""
    missing = [m for m in must if m not in mine[0]]
    if mine == theirs and not missing:
        print(f"ok    {name}")
        return True
    print(f"DIFF  {name}")
    if missing:
        print(f"  rzk shell stdout lacks {missing}")
    for label, m, t in (("stdout", mine[0], theirs[0]), ("stderr", mine[1], theirs[1])):
        if m != t:
            print(f"  {label} rzk shell: {m}\n  {label} zkCli:     {t}")
            for k, (x, y) in enumerate(zip(m, t)):
                if x != y:
                    print(f"  first difference, line {k}: rzk shell {x!r} / zkCli {y!r}")
                    print(f"  rzk shell lines {k - 4}..: {m[max(0, k - 4):k + 6]}")
                    print(f"  zkCli lines {k - 4}..:     {t[max(0, k - 4):k + 6]}")
                    break
            else:
                print(f"  lengths differ: {len(m)} / {len(t)}")
    return False


def leader_and_follower(ports):
    """(leader id, a follower id) of the ensemble, by `srvr`."""
    modes = {i: zkproc.mode(p) for i, p in ports.items()}
    leader = next(i for i, m in modes.items() if m == "leader")
    return leader, next(i for i, m in modes.items() if m == "follower")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rzk", required=True)
    ap.add_argument("--apache", required=True, help="scripts/start-apache-zk.sh")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if not os.path.exists(ZKCLI):
        print(f"{ZKCLI} not found", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="rzk-reconfig-compat-")
    procs = []
    results = []
    try:
        # ---- 1. Apache ZooKeeper ensemble
        ports = {i: CLIENT + i for i in (1, 2, 3)}
        servers = [line_of(i) for i in ports]
        starters = []
        for i, port in ports.items():
            d = os.path.join(tmp, f"zk{i}")
            zkproc.write_myid(os.path.join(d, "data"), i)
            starters.append(zkproc.ApacheStart(
                a.apache, port, d, "reconfigEnabled=true", "skipACL=yes",
                "standaloneEnabled=false", *servers, env={"ZK_START_TIMEOUT": "90"}))
        for s in starters:
            try:
                procs.append(s.wait(timeout=120))
            except subprocess.CalledProcessError as e:
                print(f"cannot start Apache ZooKeeper: {e.stderr}", file=sys.stderr)
                return 1
        zkproc.wait_settled(list(ports.values()), timeout=90, where="ZooKeeper ensemble")
        leader, follower = leader_and_follower(ports)
        server = f"127.0.0.1:{ports[leader]}"
        lines = session_lines(tmp, follower, line_of)
        mine = session([a.rzk, "shell"], server, lines, pause_after={4})
        theirs = session([ZKCLI], server, lines, pause_after={4})
        results.append(compare(
            "config and reconfig against a ZooKeeper 3.8 ensemble", mine, theirs,
            must=["Committed new configuration:", line_of(follower),
                  "WatchedEvent state:SyncConnected type:NodeDataChanged path:/zookeeper/config"]))
        print(f"      {len(lines)} commands per session (leader {leader}, removed/added {follower})")

        # ---- 2. the same session against a 3-node rzk ensemble (reconfigEnabled=true):
        # both tools must print the same. rzk always checks ACLs (it has no skipACL), so
        # the sessions authenticate as a superDigest user first (addauth prints nothing).
        rzk_procs = []
        try:
            rline = lambda i: line_of(i, RZK_CLIENT, RZK_QUORUM, RZK_ELECTION)  # noqa: E731
            rports = {i: RZK_CLIENT + i for i in (1, 2, 3)}
            for i, port in rports.items():
                # The membership from zoo.cfg.dynamic.100000000: version 100000000, as a
                # fresh ZooKeeper ensemble's leader gives its version-0 membership with
                # reconfigEnabled (rzk's leader does the same); the second
                # session then sees a version of the same length (dataLength).
                d = os.path.join(tmp, f"rzk-ens{i}")
                os.makedirs(d, exist_ok=True)
                dyn = os.path.join(d, "zoo.cfg.dynamic.100000000")
                with open(dyn, "w") as f:
                    f.write("".join(rline(j) + "\n" for j in rports))
                cfg = zkproc.write_config(
                    os.path.join(d, "zoo.cfg"), port, "reconfigEnabled=true",
                    f"DigestAuthenticationProvider.superDigest={SUPER_DIGEST}",
                    f"dynamicConfigFile={dyn}", "tickTime=500", myid=i)
                rzk_procs.append(zkproc.start_rzk(a.rzk, cfg, port))
            zkproc.wait_settled(list(rports.values()), timeout=60, where=" (rzk ensemble)")
            rleader, rfollower = leader_and_follower(rports)
            rserver = f"127.0.0.1:{rports[rleader]}"
            rlines = [f"addauth digest super:{SUPER_PASSWORD}"] + session_lines(
                os.path.join(tmp, "rzk-ens1"), rfollower, rline)
            mine = session([a.rzk, "shell"], rserver, rlines, pause_after={5})
            theirs = session([ZKCLI], rserver, rlines, pause_after={5})
            landed = "Committed new configuration:" in mine[0]
            ok = compare("config and reconfig against a 3-node rzk ensemble", mine, theirs,
                         must=[rline(rfollower)])
            if not landed:
                print(f"DIFF  rzk ensemble: the reconfig did not commit: {mine}")
                ok = False
            print(f"      rzk's answer to reconfig: {'committed' if landed else 'not committed'}")
            results.append(ok)
        finally:
            for p in rzk_procs:
                p.stop()

        # ---- 3. rzk servers: both tools against the same rzk server
        for enabled in ("false", "true"):
            cfg = zkproc.write_config(os.path.join(tmp, f"rzk-{enabled}", "zoo.cfg"), RZK_PORT,
                                      f"reconfigEnabled={enabled}", "skipACL=yes")
            rz = zkproc.start_rzk(a.rzk, cfg, RZK_PORT)
            try:
                zkproc.wait_serving(RZK_PORT, rz, what="rzk")
                rs = f"127.0.0.1:{RZK_PORT}"
                rl = ["config", "reconfig -remove 3", f"reconfig -add {line_of(4)}", "config -c"]
                mine = session([a.rzk, "shell"], rs, rl)
                theirs = session([ZKCLI], rs, rl)
                want = ("KeeperErrorCode = Reconfig is disabled" if enabled == "false"
                        else "KeeperErrorCode = Unimplemented")
                ok = compare(f"rzk server, reconfigEnabled={enabled}: the refusal as zkCli reports it",
                             mine, theirs)
                if want not in mine[1]:
                    print(f"DIFF  rzk shell stderr lacks {want!r}: {mine[1]}")
                    ok = False
                results.append(ok)
            finally:
                rz.stop()
        print(f"cases run: {len(results)}, cases identical: {sum(results)}")
        return 0 if all(results) else 1
    finally:
        for p in procs:
            p.stop()
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
