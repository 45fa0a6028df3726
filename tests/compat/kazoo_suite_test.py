#!/usr/bin/env python3
"""kazoo's own test suite (the `kazoo.tests` modules installed with kazoo, unchanged) run
against a 3-voter ensemble this script starts, rzk or Apache ZooKeeper 3.8 (`--impl`), or
both in one ensemble (`--impl mixed`), in place of the ensemble kazoo's harness would
start from a ZooKeeper installation.

The ensemble is configured as kazoo's harness configures its own: 4lw.commands.whitelist=*,
reconfigEnabled=true, read-only mode on (-Dreadonlymode.enabled=true), local sessions off
(on while kazoo's read-only test sets ZOOKEEPER_LOCAL_SESSION_RO) and the superDigest of
`super:test`. kazoo's `get_global_cluster` is replaced by these servers; the harness stops
the cluster after each test class and starts it again, and a test that stops and restarts
a member (`cluster[i].stop()` / `.run()`) stops and restarts that server process, on the
same data directory and ports.

The tests run under pytest, as kazoo runs them. Tests not run here are in `NOT_RUN`, skips
kazoo's tests make themselves that are expected here in `EXPECTED_SKIPS`, each with the
reason; every other test must pass, on both servers. Ports (127.0.0.1): clients
25701-25703, quorum 25711-25713, election 25721-25723 (zk: +50, mixed: +100), so the runs
can go at once (tests/compat/kazoo_suite.sh). Only processes this script started are signalled, by
PID.

    tests/compat/kazoo_suite_test.py --impl rzk --rzk target/debug/rzk
    tests/compat/kazoo_suite_test.py --impl zk --apache scripts/start-apache-zk.sh
    tests/compat/kazoo_suite_test.py --impl rzk --modules test_lock test_queue
    tests/compat/kazoo_suite_test.py --impl mixed --mixed-zk 1 3 --rzk ... --apache ...
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
import types

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import zkproc  # noqa: E402

# kazoo.testing.common imports pyOpenSSL and pyjks for its TLS clusters, which this
# script does not start: empty stand-ins when they are not installed.
for _name in ("OpenSSL", "jks"):
    try:
        __import__(_name)
    except ImportError:
        sys.modules[_name] = types.ModuleType(_name)
import kazoo.testing.harness as harness  # noqa: E402

# kazoo's harness: -Dzookeeper.DigestAuthenticationProvider.superDigest=super:<this>
SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
# kazoo's harness starts every member with read-only mode on.
RO_FLAG = "-Dreadonlymode.enabled=true"
# Clients PORT_BASE+1..3, quorum +11..13, election +21..23; ZooKeeper's ensemble +50.
PORT_BASE = 25700

# The modules run by default: every kazoo.tests module that talks to a server, except the
# ones for other async handlers (gevent, eventlet: not installed) and SASL (needs a
# Kerberos KDC or JAAS; tests/security covers SASL).
MODULES = [
    "test_barrier", "test_build", "test_cache", "test_client", "test_connection",
    "test_counter", "test_election", "test_exceptions", "test_hosts", "test_interrupt",
    "test_lease", "test_lock", "test_partitioner", "test_party", "test_paths", "test_queue",
    "test_retry", "test_security", "test_threading_handler", "test_utils", "test_watchers",
]

# Tests not run here (pytest -k expressions), with the reason; the same for both servers.
NOT_RUN = {
    "TestSSLClient": "kazoo's TLS cluster is generated with pyOpenSSL and pyjks and needs "
                     "a ZooKeeper started with its keystores; client TLS is tests/tls",
}

# kazoo's tests that race the server (test name -> its module and the race). A failure of
# one of these, and only these, is run once more against the same server; it must pass
# then. Any other failure fails the run at once.
RACY = {
    "TestConnectionDrop.test_connection_dropped": (
        "test_connection",
        "a 1 MB set must still be unanswered when kazoo drops its own connection; a server "
        "that answers first (seen against ZooKeeper 3.8 on a CI run) fails it"),
    "KazooLockTests.test_lock_ephemeral": (
        "test_lock",
        "reads the lock node through another client, which may be connected to another "
        "member that has not applied its create yet (no order between two clients' "
        "requests without a sync); seen against ZooKeeper 3.8 on a CI run (session 56)"),
}

# Skips kazoo's tests make themselves that are expected here (test name -> what their
# reason says): anything else skipped fails the run, so a test cannot go quiet.
EXPECTED_SKIPS = {
    "test_zookeeper_version": "Only run build config tests on CI",
    "test_timeout_arg_eventlet": "eventlet handler not available",
}


class Member:
    """One server of the ensemble, as kazoo's tests use a cluster member: `address`,
    `running`, `stop()` and `run()` (restart on the same data and ports)."""

    def __init__(self, impl, args, myid, d, port, settings, servers):
        self.impl, self.args, self.myid, self.dir = impl, args, myid, d
        self.port, self.settings, self.servers = port, settings, servers
        # kazoo's harness sets these per cluster (ZOOKEEPER_LOCAL_SESSION_RO).
        self.local_sessions = "false"
        self.proc = None
        self.address = f"127.0.0.1:{port}"

    def start_async(self):
        """Starts the process; Apache ZooKeeper's start script waits for `ruok`, so for it
        this returns a starter to `wait()` on (all members then start together)."""
        local = [f"localSessionsEnabled={self.local_sessions}",
                 f"localSessionsUpgradingEnabled={self.local_sessions}"]
        if self.impl == "zk":
            zkproc.write_myid(os.path.join(self.dir, "data"), self.myid)
            return zkproc.ApacheStart(
                self.args.apache, self.port, self.dir, *self.settings, *local, RO_FLAG,
                f"-Dzookeeper.DigestAuthenticationProvider.superDigest={SUPER_DIGEST}",
                *self.servers)
        cfg = zkproc.write_config(
            os.path.join(self.dir, "zoo.cfg"), self.port, *self.settings, *local, "forceSync=no",
            f"DigestAuthenticationProvider.superDigest={SUPER_DIGEST}",
            servers=self.servers, myid=self.myid)
        # rzk reads JVM system properties as zkServer.sh passes them.
        self.proc = zkproc.start_rzk(self.args.rzk, cfg, self.port,
                                     env={"SERVER_JVMFLAGS": RO_FLAG})
        return None

    @property
    def running(self):
        return self.proc is not None and self.proc.alive()

    def run(self):
        if self.running:
            return
        starter = self.start_async()
        if starter is not None:
            self.proc = starter.wait(timeout=120)
        zkproc.wait_until(lambda: zkproc.mode(self.port), 60, f"member {self.myid} to serve")

    def stop(self):
        if self.proc is not None:
            self.proc.stop()
        self.proc = None


class Cluster(list):
    """What kazoo's harness and tests read of the global cluster. kazoo's harness
    terminates its cluster after each test class and starts a new one for the next
    (`KazooTestCase.tearDownClass`, `setup_zookeeper`). Here the cluster runs on from one
    class to the next (every test works in a chroot of its own, and a JVM start per class
    would triple ZooKeeper's run time), unless `restart_per_class` is set: then the
    members stop and start again on their data directories."""

    restart_per_class = False

    def start(self):
        """Starts every member that is not running, all at once (a voter serves only once
        a quorum runs), and waits until they have settled."""
        down = [m for m in self if not m.running]
        starters = [(m, m.start_async()) for m in down]
        for m, s in starters:
            if s is not None:
                m.proc = s.wait(timeout=120)
        zkproc.wait_settled([m.port for m in self], timeout=60, where=self[0].impl)

    def stop(self):
        for m in self:
            m.stop()

    def terminate(self):
        if self.restart_per_class:
            self.stop()

    def shutdown(self):
        self.stop()

    def reset(self):
        pass

    def get_logs(self):
        return []

    def current(self):
        """kazoo's `get_global_cluster`: the cluster as the environment asks for it. kazoo's
        read-only test sets ZOOKEEPER_LOCAL_SESSION_RO=true (local sessions on) for its
        class, and the harness then restarts its cluster that way."""
        want = os.environ.get("ZOOKEEPER_LOCAL_SESSION_RO", "false")
        if any(m.local_sessions != want for m in self):
            self.stop()
            for m in self:
                m.local_sessions = want
            self.start()
        return self


def start_cluster(args, root):
    base = PORT_BASE + {"rzk": 0, "zk": 50, "mixed": 100}[args.impl]
    ids = (1, 2, 3)
    servers = zkproc.server_lines(ids, base + 10, base + 20)
    settings = ["tickTime=500", "initLimit=10", "syncLimit=5", "reconfigEnabled=true",
                "4lw.commands.whitelist=*"]
    cluster = Cluster()
    for i in ids:
        d = os.path.join(root, f"s{i}")
        os.makedirs(d)
        impl = args.impl
        if impl == "mixed":
            impl = "zk" if i in args.mixed_zk else "rzk"
        cluster.append(Member(impl, args, i, d, base + i, settings, servers))
    cluster.start()
    return cluster


class Outcomes:
    """pytest plugin: each test's outcome (its call phase, or the phase that failed or
    skipped it) and duration."""

    def __init__(self):
        self.outcome, self.reason, self.duration = {}, {}, {}

    def pytest_runtest_logreport(self, report):
        name = report.nodeid.split("::", 1)[-1].replace("::", ".")
        self.duration[name] = self.duration.get(name, 0.0) + report.duration
        if report.when == "call" or report.outcome != "passed":
            if self.outcome.get(name) in ("failed", "skipped"):
                return
            self.outcome[name] = report.outcome
            if report.outcome == "skipped" and isinstance(report.longrepr, tuple):
                self.reason[name] = report.longrepr[2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--impl", choices=["zk", "rzk", "mixed"], default="rzk",
                    help="mixed: members in --mixed-zk are ZooKeeper 3.8, the others rzk")
    ap.add_argument("--mixed-zk", type=int, nargs="*", default=[2],
                    help="with --impl mixed: the ids (1-3) of the ZooKeeper members")
    ap.add_argument("--rzk", default="target/debug/rzk")
    ap.add_argument("--apache", default="scripts/start-apache-zk.sh")
    ap.add_argument("--modules", nargs="*", default=MODULES)
    ap.add_argument("--restart-per-class", action="store_true",
                    help="stop and start the servers after each test class, as kazoo's "
                    "harness does")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="rzk-kazoo-suite-")
    cluster = None
    try:
        Cluster.restart_per_class = args.restart_per_class
        cluster = start_cluster(args, root)
        harness.get_global_cluster = cluster.current
        import pytest
        out = Outcomes()
        deselect = " and ".join(f"not {k}" for k in NOT_RUN)
        t0 = time.time()
        pytest.main(["-q", "-p", "no:cacheprovider", "-o", "log_level=WARNING",
                     "-k", deselect, "--pyargs", *(f"kazoo.tests.{m}" for m in args.modules)],
                     plugins=[out])
        took = time.time() - t0
        counts = {}
        for o in out.outcome.values():
            counts[o] = counts.get(o, 0) + 1
        bad = sorted(n for n, o in out.outcome.items() if o == "failed")
        if bad and all(n.split(".", 1)[-1] in RACY or n in RACY for n in bad):
            for n in list(bad):
                key = n if n in RACY else n.split(".", 1)[-1]
                module, race = RACY[key]
                again = Outcomes()
                pytest.main(["-q", "-p", "no:cacheprovider", "-o", "log_level=WARNING",
                             "-k", key.rsplit(".", 1)[-1], "--pyargs", f"kazoo.tests.{module}"],
                            plugins=[again])
                passed = bool(again.outcome) and all(o == "passed" for o in again.outcome.values())
                print(f"[{args.impl}] {n} failed ({race}); run again: "
                      + ("passed" if passed else "failed again"))
                if passed:
                    bad.remove(n)
        unexpected_skips = sorted(
            n for n, o in out.outcome.items() if o == "skipped"
            and EXPECTED_SKIPS.get(n.rsplit(".", 1)[-1], "\0") not in out.reason.get(n, ""))
        slow = sorted(out.duration.items(), key=lambda kv: -kv[1])[:5]
        print(f"[{args.impl}] slowest: " + ", ".join(f"{t} {d:.1f}s" for t, d in slow))
        print(f"[{args.impl}] kazoo suite: {len(out.outcome)} tests in {took:.0f}s: "
              + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
        for n in bad:
            print(f"[{args.impl}] FAILED: {n}")
        for n in unexpected_skips:
            print(f"[{args.impl}] SKIPPED (not expected): {n}: {out.reason.get(n)}")
        ok = out.outcome and not bad and not unexpected_skips
        sys.exit(0 if ok else 1)
    finally:
        if cluster is not None:
            cluster.shutdown()
        if args.keep:
            print(f"data kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
