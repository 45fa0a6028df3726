#!/usr/bin/env python3
"""kazoo's own reconfig tests (`kazoo.tests.test_client.TestReconfig`: no super auth ->
NOAUTH, add and remove an observer, a future `from_config` -> BADVERSION, bad input ->
BADARGUMENTS) run unchanged against a 3-voter ensemble this script starts, rzk or
Apache ZooKeeper 3.8 (`--impl`), instead of the ensemble kazoo's harness would start
from a ZooKeeper installation.

The ensemble is configured as kazoo's harness configures its own (reconfigEnabled=true,
the superDigest of `super:test`); kazoo's `get_global_cluster` is replaced by these
servers. Ports (127.0.0.1): clients 24161-24163, quorum 24171-24173, election
24181-24183 (zk: +100). Only processes this script started are signalled, by PID.

    tests/reconfig/kazoo_reconfig_test.py --impl rzk --rzk target/debug/rzk
    tests/reconfig/kazoo_reconfig_test.py --impl zk --apache scripts/start-apache-zk.sh
"""
import argparse
import os
import shutil
import sys
import tempfile
import types
import unittest

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


class Member:
    """What kazoo's harness reads of a cluster member."""

    def __init__(self, port):
        self.address = f"127.0.0.1:{port}"
        self.running = True


class Cluster(list):
    def start(self):
        pass

    def terminate(self):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--impl", choices=["zk", "rzk"], default="rzk")
    ap.add_argument("--rzk", default="target/debug/rzk")
    ap.add_argument("--apache", default="scripts/start-apache-zk.sh")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    o = 100 if args.impl == "zk" else 0
    ids = (1, 2, 3)
    client = {i: 24160 + o + i for i in ids}
    lines = [f"server.{i}=127.0.0.1:{24170 + o + i}:{24180 + o + i}:participant;"
             f"127.0.0.1:{client[i]}" for i in ids]
    root = tempfile.mkdtemp(prefix="rzk-kazoo-reconfig-")
    procs = []
    try:
        for i in ids:
            d = os.path.join(root, f"s{i}")
            os.makedirs(d)
            dyn = os.path.join(d, "zoo.cfg.dynamic.0")
            with open(dyn, "w") as f:
                f.write("".join(s + "\n" for s in lines))
            settings = ["reconfigEnabled=true", "tickTime=500", "initLimit=10",
                        "syncLimit=5", f"dynamicConfigFile={dyn}"]
            if args.impl == "zk":
                zkproc.write_myid(os.path.join(d, "data"), i)
                procs.append(zkproc.start_apache(
                    args.apache, client[i], d, *settings,
                    f"zookeeper.DigestAuthenticationProvider.superDigest={SUPER_DIGEST}"))
            else:
                cfg = zkproc.write_config(
                    os.path.join(d, "zoo.cfg"), client[i], "forceSync=no", *settings,
                    f"DigestAuthenticationProvider.superDigest={SUPER_DIGEST}", myid=i)
                procs.append(zkproc.start_rzk(args.rzk, cfg, client[i]))
        zkproc.wait_settled(list(client.values()), timeout=60, where=args.impl)
        cluster = Cluster(Member(client[i]) for i in ids)
        harness.get_global_cluster = lambda: cluster
        from kazoo.tests import test_client
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(test_client.TestReconfig)
        result = unittest.TextTestRunner(verbosity=2).run(suite)
        print(f"[{args.impl}] kazoo TestReconfig: {result.testsRun} run, "
              f"{len(result.failures)} failed, {len(result.errors)} errors, "
              f"{len(result.skipped)} skipped")
        sys.exit(0 if result.wasSuccessful() and not result.skipped else 1)
    finally:
        for p in procs:
            p.stop()
        if args.keep:
            print(f"data kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
