#!/usr/bin/env python3
"""The AdminServer over HTTP (issue 11), rzk against Apache ZooKeeper 3.8 as the oracle.

  tests/admin/admin_test.py --rzk target/debug/rzk --apache scripts/start-apache-zk.sh [--keep]
                            [--cases https,idle,...]

Starts one standalone rzk and one standalone ZooKeeper (admin.commandURL=/cmds,
admin.idleTimeout=1000 on both) and a 3-voter ensemble of each (default URL), then:

  listing     GET <url> lists the same command names as ZooKeeper, as links under <url>
  shapes      every listed command (standalone, then leader and follower): rzk answers every
              key ZooKeeper answers, with a value of the same JSON type (nested objects and
              the first element of lists too; maps keyed by session, path or server id by
              the shape of their values; monitor too, but for the per-namespace summaries
              whose names depend on traffic); `command` and `error` always present; on a
              follower of each ensemble `leader`, `voting_view` and `zabstate` hold the
              values ZooKeeper gives for the same layout (ids, addresses, zxid parts)
  aliases     every alias of ZooKeeper 3.8 answers with its primary name, on both servers
  errors      unknown command, missing/bad set_trace_mask argument, `leader` on a standalone
              server: the same JSON on both; a path outside the URL is 404, POST is 405
  moving      after client traffic: monitor's packets_received and znode_count grow,
              server_stats' node_count follows, connections/watches/watches_by_path/dump
              name the client's session, set_trace_mask/get_trace_mask round-trip, stat_reset
              zeroes the packet counters (both servers)
  monitor     rzk's JSON monitor has exactly the keys of its `mntr` four-letter word
  secrets     no answer of rzk shows a password given in zoo.cfg or SERVER_JVMFLAGS;
              initial_configuration and system_properties show it as ********
  idle        a connection that sends nothing is closed after admin.idleTimeout (both)
  notserving  a lone ensemble member answers ruok with ZooKeeper's "not currently serving"
              error and still answers monitor; its four-letter words answer as
              ZooKeeper's (not serving; isro null) (both)
  secure      a TLS client of secureClientPort is listed under secure_connections, a plain
              one under connections, with the keys ZooKeeper gives them (both)
  busyport    an admin port already in use: a standalone server does not start, an ensemble
              member logs the error and serves clients (both)
  https       admin.forceHttps with the ssl.quorum.* stores: commands answer over TLS (no
              client certificate asked) with the same JSON and the Strict-Transport-Security
              header, plain HTTP gets no answer; admin.portUnification: both answer, the
              header only over TLS, insecure_admin_count counts the plain connections
              (both); a client stuck in its handshake holds up no other; rzk without a
              key store does not start, naming the key

Ports 22200-22299 on 127.0.0.1. Prints one line per case and "N passed, M failed"; exits 1
on a failure. Only processes started here are signalled.
"""
import argparse
import json
import ssl
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from http.client import HTTPException

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "tls"))
import certs  # noqa: E402
import zkproc  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402

# Standalone pair: client and admin ports.
RZK_PORT, RZK_ADMIN = 22200, 22201
ZK_PORT, ZK_ADMIN = 22202, 22203
URL = "/cmds"
# TLS pair (secure case): plain, secureClientPort and admin ports.
RZK_TLS, ZK_TLS = 22204, 22207
NETTY = "org.apache.zookeeper.server.NettyServerCnxnFactory"
# Ensembles: member i (1..3) has client BASE+i, admin BASE+10+i, quorum BASE+20+i,
# election BASE+30+i.
RZK_ENS, ZK_ENS = 22210, 22250
# HTTPS pairs (https case): client and admin ports of rzk then ZooKeeper, forceHttps and
# portUnification; then an rzk that must refuse to start.
HTTPS_FORCE = (22284, 22286)
HTTPS_UNIFIED = (22291, 22293)
HTTPS_NOKEY = 22295
STS = "max-age=86400; includeSubDomains"
# A port something else (our rzk standalone's AdminServer) already listens on.
BUSY = RZK_ADMIN
SECRET_CFG = "AdminCfgS3cret-h2"
SECRET_JVM = "AdminJvmS3cret-h2"

# ZooKeeper 3.8's command names and aliases (Commands.java), primary name first.
ALIASES = [
    ["connection_stat_reset", "crst"], ["configuration", "conf", "config"],
    ["connections", "cons"], ["hash"], ["dirs"], ["dump"], ["environment", "env", "envi"],
    ["get_trace_mask", "gtmk"], ["initial_configuration", "icfg"], ["is_read_only", "isro"],
    ["last_snapshot", "lsnp"], ["leader", "lead"], ["monitor", "mntr"],
    ["observer_connection_stat_reset", "orst"], ["ruok"], ["set_trace_mask", "stmk"],
    ["server_stats", "srvr"], ["stats", "stat"], ["stat_reset", "srst"],
    ["observers", "obsr"], ["system_properties", "sysp"], ["voting_view"],
    ["watches", "wchc"], ["watches_by_path", "wchp"], ["watch_summary", "wchs"], ["zabstate"],
]
# Objects whose keys are session ids, times, paths or server ids: compared by value shape.
ID_MAPS = {"expiry_time_to_session_ids", "session_id_to_ephemeral_paths",
           "session_id_to_watched_paths", "path_to_session_ids", "current_config"}
# Keys ZooKeeper leaves null where rzk answers: initial_configuration on an ensemble member
# (ZooKeeper's QuorumPeer never records its configuration text; docs/COMPATIBILITY.md).
NULL_IN_ZK = {"initial_configuration"}
# Commands that change counters, run last in `shapes` so other answers are not reset.
RESETS = ("connection_stat_reset", "stat_reset", "observer_connection_stat_reset")


def http(port, path, method="GET", timeout=10, tls=None, headers=None):
    """(status, body text) of one request to 127.0.0.1:`port` (over TLS with the
    ssl.SSLContext `tls`); `headers`, if a dict, gets the answer's headers."""
    scheme = "https" if tls else "http"
    req = urllib.request.Request(f"{scheme}://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=tls) as r:
            if headers is not None:
                headers.update({k.lower(): v for k, v in r.headers.items()})
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def cmd(port, name, url="/commands", query=""):
    """The JSON answer of one command (asserting HTTP 200 and a JSON object)."""
    status, body = http(port, f"{url}/{name}{query}")
    assert status == 200, f"{name} on :{port}: HTTP {status}"
    v = json.loads(body)
    assert isinstance(v, dict), f"{name}: not an object"
    return v


def listing(port, url):
    status, body = http(port, url)
    assert status == 200, f"{url} on :{port}: HTTP {status}"
    links = re.findall(r'<a href="([^"]+)">([^<]+)</a>', body)
    assert links, f"no links in {body!r}"
    for href, name in links:
        assert href == f"{url}/{name}", href
    return [name for _, name in links]


def jtype(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    return {float: "float", str: "str", type(None): "null", list: "list",
            dict: "object"}[type(v)]


def compare(zk, rz, where, problems):
    """Appends to `problems` every key of `zk` missing from `rz` or of another JSON type."""
    for k, zv in zk.items():
        at = f"{where}.{k}"
        if k not in rz:
            problems.append(f"missing {at}")
            continue
        rv = rz[k]
        if k == "error":
            if (zv is None) != (rv is None):
                problems.append(f"{at}: zookeeper {zv!r}, rzk {rv!r}")
            continue
        if zv is None and k in NULL_IN_ZK:
            continue
        if jtype(zv) != jtype(rv):
            problems.append(f"{at}: zookeeper {jtype(zv)} {zv!r}, rzk {jtype(rv)} {rv!r}")
        elif k in ID_MAPS:
            zvals, rvals = list(zv.values()), list(rv.values())
            if zvals and rvals:
                same_shape(zvals[0], rvals[0], f"{at}[*]", problems)
        else:
            same_shape(zv, rv, at, problems)


def same_shape(zv, rv, at, problems):
    if jtype(zv) != jtype(rv):
        problems.append(f"{at}: zookeeper {jtype(zv)}, rzk {jtype(rv)}")
    elif isinstance(zv, dict):
        compare(zv, rv, at, problems)
    elif isinstance(zv, list) and zv and rv:
        same_shape(zv[0], rv[0], f"{at}[0]", problems)


class Ctx:
    def __init__(self, args):
        self.rzk = os.path.abspath(args.rzk)
        self.apache = os.path.abspath(args.apache)
        self.keep = args.keep
        self.root = tempfile.mkdtemp(prefix="rzk-admin-")
        self.procs = []
        self.clients = []

    def dir(self, name):
        d = os.path.join(self.root, name)
        os.makedirs(d, exist_ok=True)
        return d

    def start_rzk(self, name, port, *settings, servers=(), myid=None, env=None, wait=True):
        cfg = zkproc.write_config(os.path.join(self.dir(name), "zoo.cfg"), port,
                                  "admin.enableServer=true", "admin.serverAddress=127.0.0.1",
                                  *settings, servers=servers, myid=myid)
        p = zkproc.start_rzk(self.rzk, cfg, port, env=env)
        self.procs.append(p)
        if wait:
            zkproc.wait_serving(port, p, 30, f"rzk {name}")
        return p

    def start_zk(self, name, port, *settings, servers=(), myid=None):
        d = self.dir(name)
        if myid is not None:
            zkproc.write_myid(os.path.join(d, "data"), myid)
        p = zkproc.start_apache(self.apache, port, d, "admin.enableServer=true",
                                "admin.serverAddress=127.0.0.1", *settings, *servers)
        self.procs.append(p)
        return p

    def kazoo(self, port):
        z = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10)
        z.start(timeout=15)
        self.clients.append(z)
        return z

    def log(self, name):
        for f in ("server.log", "zookeeper.log"):
            p = os.path.join(self.root, name, f)
            if os.path.exists(p):
                with open(p, errors="replace") as fh:
                    return fh.read()
        return ""

    def stop_all(self):
        for z in self.clients:
            try:
                z.stop()
                z.close()
            except Exception:
                pass
        self.clients = []
        for p in self.procs:
            p.stop(10)
        self.procs = []


def ens_lines(base):
    return zkproc.server_lines((1, 2, 3), base + 20, base + 30)


def ens_settings(base, i):
    # Member 1's admin port is taken: it must serve without its AdminServer (busyport).
    admin = BUSY if i == 1 else base + 10 + i
    return [f"admin.serverPort={admin}"]


# ------------------------------------------------------------------ set-up

def setup(ctx):
    """Standalone pair, then each ensemble's member 2 alone (notserving), then the rest."""
    env = {"SERVER_JVMFLAGS": f"-Xmx64m -Dzookeeper.ssl.trustStore.password={SECRET_JVM}"}
    ctx.start_rzk("rzk-solo", RZK_PORT, f"admin.serverPort={RZK_ADMIN}",
                  f"admin.commandURL={URL}", "admin.idleTimeout=1000",
                  f"ssl.keyStore.password={SECRET_CFG}", env=env)
    ctx.start_zk("zk-solo", ZK_PORT, f"admin.serverPort={ZK_ADMIN}",
                 f"admin.commandURL={URL}", "admin.idleTimeout=1000")
    ctx.lone = {}
    ctx.lone["rzk"] = ctx.start_rzk("rzk-2", RZK_ENS + 2, *ens_settings(RZK_ENS, 2),
                                    servers=ens_lines(RZK_ENS), myid=2, wait=False)
    ctx.lone["zk"] = ctx.start_zk("zk-2", ZK_ENS + 2, *ens_settings(ZK_ENS, 2),
                                  servers=ens_lines(ZK_ENS), myid=2)


def start_rest_of_ensembles(ctx):
    for i in (1, 3):
        ctx.start_rzk(f"rzk-{i}", RZK_ENS + i, *ens_settings(RZK_ENS, i),
                      servers=ens_lines(RZK_ENS), myid=i, wait=False)
        ctx.start_zk(f"zk-{i}", ZK_ENS + i, *ens_settings(ZK_ENS, i),
                     servers=ens_lines(ZK_ENS), myid=i)
    ports = {}
    for kind, base in (("rzk", RZK_ENS), ("zk", ZK_ENS)):
        members = [base + i for i in (1, 2, 3)]
        leader = zkproc.wait_settled(members, timeout=60, where=f" ({kind})")
        follower = next(p for p in members if p not in (leader, base + 1))
        ports[kind] = {"leader": leader + 10, "follower": follower + 10}
        # A leader files a learner's queue summaries (<sid>_learner_handler_qp_size and
        # _qp_time_ms) at the first packet and the first once-a-second marker sent to it,
        # in ZooKeeper as in rzk: wait for both learners' entries on both servers, or the
        # comparison depends on which server got there first.
        learners = [str(i) for i in (1, 2, 3) if base + i != leader]
        keys = [f"cnt_{sid}_learner_handler_qp_{m}" for sid in learners
                for m in ("size", "time_ms")]
        zkproc.wait_until(lambda: all(k in cmd(leader + 10, "monitor") for k in keys), 30,
                          f"{kind} leader's queue summaries for learners {learners}")
    return ports


# ------------------------------------------------------------------ cases

def case_notserving(ctx):
    answers = {}
    for kind, base in (("rzk", RZK_ENS), ("zk", ZK_ENS)):
        admin = base + 12
        zkproc.wait_until(lambda: http_ok(admin), 30, f"{kind} lone member's AdminServer")
        answers[kind] = cmd(admin, "ruok")
    assert answers["zk"] == {"command": "ruok", "error":
                             "This ZooKeeper instance is not currently serving requests"}, answers
    assert answers["rzk"] == answers["zk"], answers
    # Four-letter words on the lone members: those that need a running server say so
    # (hash without the newline, isro "null"); ruok still answers imok.
    words = ["conf", "cons", "crst", "dump", "dirs", "mntr", "srst", "wchs", "wchc", "wchp",
             "hash", "isro", "srvr", "stat", "ruok"]
    fours = {kind: {w: zkproc.four(base + 2, w) for w in words}
             for kind, base in (("rzk", RZK_ENS), ("zk", ZK_ENS))}
    assert fours["zk"]["mntr"] == "This ZooKeeper instance is not currently serving requests\n", fours
    assert fours["zk"]["isro"] == "null", fours
    assert fours["rzk"] == fours["zk"], {w: (fours["rzk"][w], fours["zk"][w]) for w in words
                                         if fours["rzk"][w] != fours["zk"][w]}
    z = {kind: cmd(base + 12, "zabstate") for kind, base in (("rzk", RZK_ENS), ("zk", ZK_ENS))}
    assert z["rzk"] == z["zk"], z
    # monitor needs no serving server: rzk answers it while looking. (ZooKeeper 3.8 fails
    # it with HTTP 500, a NullPointerException without a running server;
    # docs/COMPATIBILITY.md.)
    mon = cmd(RZK_ENS + 12, "monitor")
    assert mon["error"] is None and mon["server_state"] == "looking", mon
    assert http(ZK_ENS + 12, "/commands/monitor")[0] == 500


def http_ok(port):
    try:
        return http(port, "/commands", timeout=2)[0] == 200
    except OSError:
        return False


def case_listing(ctx):
    rz, zk = listing(RZK_ADMIN, URL), listing(ZK_ADMIN, URL)
    assert sorted(rz) == sorted(zk), f"rzk {sorted(set(rz) ^ set(zk))} differ"
    assert rz == sorted(rz), "not sorted"
    ctx.names = zk
    for port in (RZK_ADMIN, ZK_ADMIN):
        assert http(port, "/commands/ruok")[0] == 404, "the default URL answers although moved"


LEARNER_KEY = re.compile(r"^(avg|min|max|cnt|sum|p50|p95|p99|p999)_(\d+)_learner_handler_qp_")


def by_learner_rank(m):
    """A leader's per-learner summaries are named after the learner's server id
    (`<stat>_<sid>_learner_handler_qp_*`). The rzk and ZooKeeper ensembles may elect
    different members (which two start first is a race), so the ids are replaced by
    their rank among the leader's learners before the key sets are compared."""
    sids = sorted({int(x.group(2)) for k in m if (x := LEARNER_KEY.match(k))})
    rank = {str(s): f"learner{i}" for i, s in enumerate(sids)}
    return {LEARNER_KEY.sub(lambda x: f"{x.group(1)}_{rank[x.group(2)]}_learner_handler_qp_", k): v
            for k, v in m.items()}


def shapes(ctx, rz_port, zk_port, url, where):
    problems = []
    names = [n for n in ctx.names if n not in RESETS] + [n for n in ctx.names if n in RESETS]
    for name in names:
        zk, rz = cmd(zk_port, name, url), cmd(rz_port, name, url)
        assert rz.get("command") == zk.get("command"), (name, rz, zk)
        assert "error" in rz, f"{name}: no error field"
        if name == "system_properties":
            # The JVM's properties: compared by type only.
            bad = [k for k, v in rz.items() if k not in ("command", "error")
                   and not isinstance(v, str)]
            assert not bad, f"system_properties values not strings: {bad}"
            continue
        if name == "monitor":
            # Per-namespace summaries are named after the namespaces written or read so
            # far (e.g. zk_avg_app_write_per_namespace): traffic decides those names.
            zk = {k: v for k, v in zk.items() if not k.endswith("_per_namespace")}
            zk, rz = by_learner_rank(zk), by_learner_rank(rz)
        compare(zk, rz, f"{where} {name}", problems)
    assert not problems, "\n".join(problems)


def case_shapes(ctx):
    # Traffic first, so connections, watches, ephemerals and latencies have entries.
    for port in (RZK_PORT, ZK_PORT):
        z = ctx.kazoo(port)
        z.create("/shape", b"x", ephemeral=True)
        z.get("/shape", watch=lambda e: None)
    shapes(ctx, RZK_ADMIN, ZK_ADMIN, URL, "standalone")


def case_ensemble_shapes(ctx):
    ports = start_rest_of_ensembles(ctx)
    for role in ("leader", "follower"):
        shapes(ctx, ports["rzk"][role], ports["zk"][role], "/commands", role)
        rz = cmd(ports["rzk"][role], "leader")
        assert rz["is_leader"] == (role == "leader"), rz
        assert cmd(ports["rzk"][role], "zabstate")["zabstate"] == "broadcast"
    # Values, as ZooKeeper gives them for its own ensemble (same layout, other ports).
    for kind, base in (("rzk", RZK_ENS), ("zk", ZK_ENS)):
        admin = ports[kind]["follower"]
        me = admin - 10 - base
        leader_id = ports[kind]["leader"] - 10 - base
        lead = cmd(admin, "leader")
        assert (lead["is_leader"], lead["leader_id"], lead["leader_ip"]) == \
            (False, leader_id, "127.0.0.1"), (kind, lead)
        view = cmd(admin, "voting_view")["current_config"]
        assert sorted(view) == ["1", "2", "3"], (kind, view)
        for sid, v in view.items():
            i = int(sid)
            want = {"server_addresses": [f"127.0.0.1:{base + 20 + i}"],
                    "election_addresses": [f"127.0.0.1:{base + 30 + i}"],
                    "client_address": f"127.0.0.1:{base + i}" if i == me else "",
                    "learner_type": "participant"}
            assert v == want, (kind, sid, v, want)
        z = cmd(admin, "zabstate")
        zxid = cmd(admin, "server_stats")["server_stats"]["last_processed_zxid"]
        assert (z["myid"], z["voting"], z["zabstate"]) == (me, True, "broadcast"), (kind, z)
        assert z["quorum_address"]["one"] == f"127.0.0.1:{base + 20 + me}", (kind, z)
        assert z["election_address"]["all_ports"] == [base + 30 + me], (kind, z)
        assert z["client_address"] == f"127.0.0.1:{base + me}", (kind, z)
        assert int(z["last_zxid"], 16) == zxid, (kind, z, zxid)
        assert (z["zab_epoch"], z["zab_counter"]) == (zxid >> 32, zxid & 0xFFFFFFFF), (kind, z)
        assert "proposal_stats" in cmd(ports[kind]["leader"], "server_stats"), kind
    # dump's session part on a follower: ZooKeeper's learner tracker lists global sessions
    # with their timeouts (not expiry buckets), the session made through it included.
    layouts = {}
    for kind, base in (("rzk", RZK_ENS), ("zk", ZK_ENS)):
        client_port = ports[kind]["follower"] - 10
        z = KazooClient(hosts=f"127.0.0.1:{client_port}", timeout=10)
        z.start(timeout=30)
        try:
            text = zkproc.four(client_port, "dump")
            part = text.split("ephemeral nodes dump:")[0].splitlines()
            sid = f"0x{z.client_id[0]:x}\t10000ms"
            assert sid in part, (kind, sid, part)
            layouts[kind] = [part[0], part[1].split("(")[0]]
        finally:
            z.stop()
            z.close()
    assert layouts["rzk"] == layouts["zk"] == ["SessionTracker dump:", "Global Sessions"], layouts


def case_aliases(ctx):
    for names in ALIASES:
        for alias in names:
            for port in (RZK_ADMIN, ZK_ADMIN):
                got = cmd(port, alias, URL).get("command")
                assert got == names[0], f":{port} {alias} answered as {got}"


def case_errors(ctx):
    for path in ("nope", "CONS", "set_trace_mask", "set_trace_mask?traceMask=abc", "leader"):
        name, _, query = path.partition("?")
        rz = cmd(RZK_ADMIN, name, URL, "?" + query if query else "")
        zk = cmd(ZK_ADMIN, name, URL, "?" + query if query else "")
        assert rz == zk, f"{path}: rzk {rz} zookeeper {zk}"
        assert zk["error"], zk
    for port in (RZK_ADMIN, ZK_ADMIN):
        assert http(port, "/nothing")[0] == 404
        assert http(port, f"{URL}/ruok", method="POST")[0] == 405


def moving(ctx, port, admin):
    z = ctx.kazoo(port)
    sid = z.client_id[0]
    m1 = cmd(admin, "monitor", URL)
    for i in range(20):
        z.create(f"/move-{port}-{i}", b"v")
    z.create(f"/eph-{port}", b"", ephemeral=True)
    z.get(f"/move-{port}-0", watch=lambda e: None)
    m2 = cmd(admin, "monitor", URL)
    assert m2["packets_received"] >= m1["packets_received"] + 22, (m1["packets_received"],
                                                                   m2["packets_received"])
    assert m2["znode_count"] == m1["znode_count"] + 21, (m1["znode_count"], m2["znode_count"])
    assert cmd(admin, "server_stats", URL)["node_count"] == m2["znode_count"]
    cons = cmd(admin, "connections", URL)["connections"]
    assert sid in [c.get("session_id") for c in cons], (sid, cons)
    w = cmd(admin, "watches", URL)["session_id_to_watched_paths"]
    assert f"/move-{port}-0" in w.get(str(sid), []), w
    wp = cmd(admin, "watches_by_path", URL)["path_to_session_ids"]
    assert sid in wp.get(f"/move-{port}-0", []), wp
    assert cmd(admin, "watch_summary", URL)["num_total_watches"] >= 1
    eph = cmd(admin, "dump", URL)["session_id_to_ephemeral_paths"]
    assert f"/eph-{port}" in eph.get(str(sid), []), eph
    assert cmd(admin, "set_trace_mask", URL, "?traceMask=5")["tracemask"] == 5
    assert cmd(admin, "gtmk", URL)["tracemask"] == 5
    cmd(admin, "stmk", URL, "?traceMask=306")
    assert f"clientPort={port}" in cmd(admin, "icfg", URL)["initial_configuration"]
    assert cmd(admin, "conf", URL)["client_port"] == port
    before = cmd(admin, "server_stats", URL)["server_stats"]["packets_received"]
    cmd(admin, "stat_reset", URL)
    after = cmd(admin, "server_stats", URL)["server_stats"]["packets_received"]
    assert after < before, (before, after)


def case_moving(ctx):
    moving(ctx, RZK_PORT, RZK_ADMIN)
    moving(ctx, ZK_PORT, ZK_ADMIN)


def case_monitor(ctx):
    rz = cmd(RZK_ADMIN, "monitor", URL)
    text = zkproc.four(RZK_PORT, "mntr")
    keys = {line.split("\t", 1)[0][3:] for line in text.splitlines() if line.startswith("zk_")}
    json_keys = set(rz) - {"command", "error"}
    assert keys and json_keys == keys, f"differ: {sorted(json_keys ^ keys)[:20]}"
    for k in ("version", "server_state"):
        assert isinstance(rz[k], str), k
    for k in ("packets_received", "znode_count", "num_alive_connections"):
        assert isinstance(rz[k], int) and not isinstance(rz[k], bool), k
    assert isinstance(rz["avg_latency"], float), rz["avg_latency"]


def case_secrets(ctx):
    for name in ctx.names:
        if name in RESETS:
            continue
        status, body = http(RZK_ADMIN, f"{URL}/{name}")
        assert status == 200
        for s in (SECRET_CFG, SECRET_JVM):
            assert s not in body, f"{name} shows a secret"
    icfg = cmd(RZK_ADMIN, "icfg", URL)["initial_configuration"]
    assert "ssl.keyStore.password=********" in icfg, icfg
    sysp = cmd(RZK_ADMIN, "sysp", URL)
    assert sysp.get("zookeeper.ssl.trustStore.password") == "********", sysp
    assert sysp.get("zookeeper.ssl.keyStore.password") == "********", sysp


def idle_close_s(port):
    """Seconds until the server closes a connection that sends nothing (None: not in 6 s)."""
    t0 = time.time()
    with socket.create_connection(("127.0.0.1", port), timeout=6) as s:
        try:
            data = s.recv(100)
        except socket.timeout:
            return None
        except ConnectionResetError:
            data = b""
    return time.time() - t0 if data == b"" else None


def case_idle(ctx):
    for port in (RZK_ADMIN, ZK_ADMIN):
        t = idle_close_s(port)
        assert t is not None and 0.8 <= t <= 3.0, f":{port} closed an idle connection after {t}"


def case_busyport(ctx):
    # Standalone: the server does not start.
    p = ctx.start_rzk("rzk-busy", RZK_PORT + 90, f"admin.serverPort={BUSY}", wait=False)
    assert p.wait_exit(20), "rzk started although its admin port is busy"
    # ZooKeeper's ExitCode.ERROR_STARTING_ADMIN_SERVER.
    assert p.popen.returncode == 4, p.popen.returncode
    assert "AdminServer" in ctx.log("rzk-busy"), ctx.log("rzk-busy")[-2000:]
    try:
        ctx.start_zk("zk-busy", ZK_PORT + 90, f"admin.serverPort={BUSY}")
        raise AssertionError("zookeeper started although its admin port is busy")
    except subprocess.CalledProcessError:
        pass
    assert "Unable to start AdminServer" in ctx.log("zk-busy")
    # Ensemble member 1 (admin port busy) serves; its log names the AdminServer problem.
    for kind, base in (("rzk", RZK_ENS), ("zk", ZK_ENS)):
        assert zkproc.mode(base + 1) in ("leader", "follower"), f"{kind} member 1 not serving"
        assert "AdminServer" in ctx.log(f"{kind}-1"), f"{kind} member 1 did not log it"


def case_secure(ctx):
    d = ctx.dir("certs")
    certs.make(d)
    tls = [f"ssl.keyStore.location={d}/server-keystore.pem", f"ssl.trustStore.location={d}/ca.pem",
           "ssl.clientAuth=none", "secureClientPortAddress=127.0.0.1"]
    ctx.start_rzk("rzk-tls", RZK_TLS, f"secureClientPort={RZK_TLS + 1}",
                  f"admin.serverPort={RZK_TLS + 2}", f"serverCnxnFactory={NETTY}", *tls)
    ctx.start_zk("zk-tls", ZK_TLS, f"secureClientPort={ZK_TLS + 1}",
                 f"admin.serverPort={ZK_TLS + 2}", f"serverCnxnFactory={NETTY}", *tls)
    answers = {}
    for kind, base in (("rzk", RZK_TLS), ("zk", ZK_TLS)):
        plain = ctx.kazoo(base)
        secure = KazooClient(hosts=f"127.0.0.1:{base + 1}", timeout=10, use_ssl=True,
                             ca=f"{d}/ca.pem", verify_certs=True)
        secure.start(timeout=15)
        ctx.clients.append(secure)
        a = cmd(base + 2, "connections")
        ids = {k: [c["session_id"] for c in a[k]] for k in ("connections", "secure_connections")}
        assert ids == {"connections": [plain.client_id[0]],
                       "secure_connections": [secure.client_id[0]]}, (kind, ids)
        answers[kind] = a
    problems = []
    compare(answers["zk"], answers["rzk"], "connections", problems)
    assert not problems, "\n".join(problems)


def https_answer(port, name, tls):
    """(JSON answer, headers) of one command over TLS."""
    headers = {}
    status, body = http(port, f"/commands/{name}", tls=tls, headers=headers)
    assert status == 200, f"{name} on :{port} over TLS: HTTP {status}"
    return json.loads(body), headers


def plain_answers(port):
    """Whether a plain HTTP request to `port` gets an HTTP answer at all."""
    try:
        status, _ = http(port, "/commands/ruok", timeout=5)
        return status == 200
    except (urllib.error.URLError, OSError, HTTPException):
        return False


def case_https(ctx):
    d = ctx.dir("certs-admin")
    certs.make(d)
    stores = [f"ssl.quorum.keyStore.location={d}/server-keystore.pem",
              f"ssl.quorum.trustStore.location={d}/ca.pem"]
    tls = ssl.create_default_context(cafile=f"{d}/ca.pem")
    for mode, (rz, zk) in (("admin.forceHttps", HTTPS_FORCE),
                           ("admin.portUnification", HTTPS_UNIFIED)):
        ctx.start_rzk(f"rzk-{mode}", rz, f"admin.serverPort={rz + 1}", f"{mode}=true", *stores)
        ctx.start_zk(f"zk-{mode}", zk, f"admin.serverPort={zk + 1}", f"{mode}=true", *stores)
        answers = {}
        for kind, port in (("rzk", rz + 1), ("zk", zk + 1)):
            # A client stuck half-way into its handshake holds up nobody else.
            stuck = socket.create_connection(("127.0.0.1", port), timeout=5)
            stuck.sendall(b"\x16\x03\x01")
            a, headers = https_answer(port, "ruok", tls)
            stuck.close()
            assert headers.get("strict-transport-security") == STS, (kind, mode, headers)
            answers[kind] = a
            before = https_answer(port, "monitor", tls)[0]["insecure_admin_count"]
            if mode == "admin.forceHttps":
                assert not plain_answers(port), f"{kind}: plain HTTP answered on {mode}"
                expect = before
            else:
                for _ in range(3):
                    headers = {}
                    status, _ = http(port, "/commands/ruok", headers=headers)
                    assert status == 200, (kind, status)
                    assert "strict-transport-security" not in headers, (kind, headers)
                expect = before + 3
            after = https_answer(port, "monitor", tls)[0]["insecure_admin_count"]
            assert after == expect, f"{kind} {mode}: insecure_admin_count {before} -> {after}"
        assert answers["rzk"] == answers["zk"], answers
    # No key store: ZooKeeper runs without its AdminServer; rzk refuses to start.
    p = ctx.start_rzk("rzk-nokey", HTTPS_NOKEY, f"admin.serverPort={HTTPS_NOKEY + 1}",
                      "admin.forceHttps=true", wait=False)
    assert p.wait_exit(20), "rzk started with admin.forceHttps and no key store"
    assert "ssl.quorum.keyStore.location" in ctx.log("rzk-nokey"), ctx.log("rzk-nokey")[-2000:]


def head_answer(port, header_len):
    """Status line of the answer to a GET whose one extra header holds `header_len`
    bytes, and whether the server closed the connection after it."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET " + URL.encode() + b"/ruok HTTP/1.1\r\nHost: x\r\nX-Big: "
                  + b"a" * header_len + b"\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            part = s.recv(65536)
            if not part:
                break
            data += part
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        closed = "connection: close" in head.lower()
        return head.split("\r\n", 1)[0], closed


def case_bigheader(ctx):
    # Jetty's 8 KiB request head: 4 KB is served, 9 KB and 200 KB get 431 and a close.
    for port in (RZK_ADMIN, ZK_ADMIN):
        status, _ = head_answer(port, 4000)
        assert status.startswith("HTTP/1.1 200"), f":{port} 4 KB header: {status}"
        for n in (9000, 200_000):
            status, closed = head_answer(port, n)
            assert status.startswith("HTTP/1.1 431"), f":{port} {n} B header: {status}"
            assert closed, f":{port} {n} B header: connection kept"
        # The server still answers afterwards.
        assert cmd(port, "ruok", URL)["command"] == "ruok"


CASES = [
    ("notserving", case_notserving), ("listing", case_listing), ("shapes", case_shapes),
    ("aliases", case_aliases), ("errors", case_errors), ("moving", case_moving),
    ("monitor", case_monitor), ("secrets", case_secrets), ("idle", case_idle),
    ("secure", case_secure), ("ensemble-shapes", case_ensemble_shapes),
    ("busyport", case_busyport), ("https", case_https), ("bigheader", case_bigheader),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rzk", default="target/debug/rzk")
    ap.add_argument("--apache", default="scripts/start-apache-zk.sh")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    args = ap.parse_args()
    wanted = [c for c in args.cases.split(",") if c]
    unknown = set(wanted) - {name for name, _ in CASES}
    if unknown:
        ap.error(f"unknown cases: {sorted(unknown)}")
    ctx = Ctx(args)
    passed = failed = 0
    try:
        setup(ctx)
        for name, case in CASES:
            if wanted and name not in wanted:
                continue
            t0 = time.time()
            try:
                case(ctx)
                passed += 1
                print(f"PASS {name} ({time.time() - t0:.1f} s)", flush=True)
            except Exception:
                failed += 1
                print(f"FAIL {name} ({time.time() - t0:.1f} s)", flush=True)
                traceback.print_exc()
    except Exception:
        failed += 1
        print("FAIL setup", flush=True)
        traceback.print_exc()
    finally:
        ctx.stop_all()
    print(f"{passed} passed, {failed} failed")
    if failed == 0 and not args.keep:
        shutil.rmtree(ctx.root, ignore_errors=True)
    else:
        print(f"work directory kept: {ctx.root}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
