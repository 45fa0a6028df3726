#!/usr/bin/env python3
"""Quorum TLS (sslQuorum, portUnification, ssl.quorum.*) on real ensembles:

  tls3     3 rzk voters over quorum TLS: election, replication, leader kill -9 and
           re-election, rejoin; the peer ports speak TLS with mutual authentication and
           refuse plaintext.
  rolling  3 rzk voters moved from plaintext to TLS-only by rolling restarts, ZooKeeper's
           documented way: add ssl.quorum.* + portUnification=true, then sslQuorum=true,
           then portUnification=false; a write replicates after every restart.
  mixed    2 rzk voters and 1 Apache ZooKeeper 3.8 voter, all with sslQuorum=true: the
           ensemble settles, writes replicate to every member, the leader is killed and
           the rest elect a new one.
  reload   2 rzk voters and 1 ZooKeeper voter with sslQuorumReloadCertFiles=true, each with
           its own PEM key store file, trusting two CAs: members 1 (rzk) and 3 (ZooKeeper)
           get a key store from the other CA on disk; their election ports present it to
           new connections; the leader is killed and the ensemble re-elects and replicates.
  sasl     2 rzk voters and 1 ZooKeeper voter with quorum SASL (quorum.auth.enableSasl,
           learnerRequireSasl, serverRequireSasl; DIGEST-MD5 from the JAAS sections
           QuorumServer / QuorumLearner): the ensemble forms, replicates and re-elects; an
           rzk member whose QuorumLearner password is wrong is kept out while the others
           serve, and joins once restarted with the right one.
  jvmtrust 2 rzk voters and 1 ZooKeeper voter with ssl.quorum.keyStore.* but no
           ssl.quorum.trustStore.*: each trusts the JVM default trust store named by
           -Djavax.net.ssl.trustStore (JVMFLAGS for rzk), as ZooKeeper's quorum does; the
           ensemble forms, replicates and re-elects.

  tests/tls/quorum_tls_test.py --rzk target/debug/rzk --apache scripts/start-apache-zk.sh \
      [--variants tls3,rolling,mixed,names,reload,sasl,jvmtrust] [--base-port 23600] [--keep]

Prints one line per variant and "N passed, M failed"; exits 1 on a failure. Everything
listens on 127.0.0.1; only processes started here are signalled.
"""
import argparse
import os
import shutil
import socket
import ssl
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import certs  # noqa: E402
import zkproc  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402


class Ensemble:
    """Three voters on 127.0.0.1: client base+i, quorum base+10+i, election base+20+i."""

    def __init__(self, args, tmp, name, base, kinds, host="127.0.0.1"):
        self.args, self.base, self.kinds = args, base, kinds  # kinds: {id: "rzk"|"apache"}
        self.dir = os.path.join(tmp, name)
        self.procs = {}
        self.servers = [line.replace("=127.0.0.1:", f"={host}:") for line in
                        zkproc.server_lines(sorted(kinds), base + 10, base + 20)]

    def port(self, i):
        return self.base + i

    def start(self, i, settings, jvm_flags=()):
        """Starts member i with zoo.cfg `settings` and `-D` flags `jvm_flags` (JVMFLAGS
        for rzk, java arguments for ZooKeeper)."""
        d = os.path.join(self.dir, f"s{i}")
        if self.kinds[i] == "rzk":
            cfg = zkproc.write_config(os.path.join(d, "zoo.cfg"), self.port(i), *settings,
                                      servers=self.servers, myid=i)
            env = {"JVMFLAGS": " ".join(jvm_flags)} if jvm_flags else None
            self.procs[i] = zkproc.start_rzk(self.args.rzk, cfg, self.port(i), env=env)
        else:
            zkproc.write_myid(os.path.join(d, "data"), i)
            self.procs[i] = zkproc.start_apache(self.args.apache, self.port(i), d,
                                                "initLimit=10", "syncLimit=5", *settings,
                                                *jvm_flags, *self.servers)

    def stop(self, i, kill=False):
        p = self.procs.pop(i)
        p.kill9() if kill else p.stop(20)

    def stop_all(self):
        for i in list(self.procs):
            self.stop(i)

    def settled(self, timeout=60):
        ports = [self.port(i) for i in sorted(self.procs)]
        leader_port = zkproc.wait_settled(ports, timeout=timeout, where=f" ({self.dir})")
        return leader_port - self.base

    def replicated(self, path, value, skip=()):
        """Writes `path` through one member and waits until every running member (but
        those in `skip`) has it."""
        first = sorted(i for i in self.procs if i not in skip)[0]
        z = KazooClient(hosts=f"127.0.0.1:{self.port(first)}", timeout=10)
        z.start(timeout=20)
        try:
            z.ensure_path(os.path.dirname(path) or "/")
            if z.exists(path):
                z.set(path, value)
            else:
                z.create(path, value)
        finally:
            z.stop()
            z.close()
        for i in sorted(i for i in self.procs if i not in skip):
            c = KazooClient(hosts=f"127.0.0.1:{self.port(i)}", timeout=10)
            c.start(timeout=20)
            try:
                zkproc.wait_until(lambda: c.sync(path) is not None and c.exists(path)
                                  and c.get(path)[0] == value, 20, f"{path} on member {i}")
            finally:
                c.stop()
                c.close()


def quorum_tls(c, ssl_quorum=True, unification=None, leaf="server"):
    s = [f"ssl.quorum.keyStore.location={c}/{leaf}.p12",
         f"ssl.quorum.keyStore.password={certs.PASSWORD}",
         f"ssl.quorum.trustStore.location={c}/trust.jks",
         f"ssl.quorum.trustStore.password={certs.PASSWORD}",
         f"sslQuorum={'true' if ssl_quorum else 'false'}"]
    if unification is not None:
        s.append(f"portUnification={'true' if unification else 'false'}")
    return s


def tls_handshake_ok(port, c):
    """A mutual-TLS handshake with the peer port succeeds (with a peer certificate)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(f"{c}/ca.pem")
    ctx.load_cert_chain(f"{c}/server.pem", f"{c}/server.key")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return s.version() is not None


def tls_without_cert_refused(port, c):
    """A TLS client without a certificate gets no working connection."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(f"{c}/ca.pem")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"\x00" * 8)
                return s.recv(1) == b""  # TLS 1.3: the refusal arrives after the handshake
    except (ssl.SSLError, OSError):
        return True


def plaintext_refused(port, claim_sid, claim_election_port):
    """A plaintext election connection claiming to come from member `claim_sid` (larger
    than the member on `port`, so a plaintext-accepting member would keep it) is closed."""
    addr = f"127.0.0.1:{claim_election_port}".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall((-65536).to_bytes(8, "big", signed=True) + claim_sid.to_bytes(8, "big")
                  + len(addr).to_bytes(4, "big") + addr)
        s.settimeout(3)
        try:
            s.recv(64)  # EOF, or a TLS alert before the close: refused
            return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False  # kept open and silent: served as a plaintext peer


def v_tls3(args, tmp, c):
    e = Ensemble(args, tmp, "tls3", args.base_port, {1: "rzk", 2: "rzk", 3: "rzk"})
    try:
        for i in (1, 2, 3):
            e.start(i, quorum_tls(c))
        leader = e.settled()
        e.replicated("/qtls/a", b"1")
        for i in (1, 2, 3):
            assert tls_handshake_ok(e.base + 20 + i, c), f"election port {i} not TLS"
            assert tls_without_cert_refused(e.base + 20 + i, c), \
                f"election port {i} took a client without a certificate"
        for i in (1, 2):
            assert plaintext_refused(e.base + 20 + i, 3, e.base + 23), \
                f"election port {i} took plaintext"
        assert tls_handshake_ok(e.base + 10 + leader, c), "leader's quorum port not TLS"
        e.stop(leader, kill=True)
        new = e.settled()
        assert new != leader
        e.replicated("/qtls/b", b"2")
        e.start(leader, quorum_tls(c))
        e.settled()
        e.replicated("/qtls/c", b"3")
    finally:
        e.stop_all()


def v_rolling(args, tmp, c):
    e = Ensemble(args, tmp, "rolling", args.base_port + 30, {1: "rzk", 2: "rzk", 3: "rzk"})
    try:
        for i in (1, 2, 3):
            e.start(i, [])
        e.settled()
        e.replicated("/roll/v", b"plain")
        steps = [("unification", quorum_tls(c, ssl_quorum=False, unification=True)),
                 ("sslQuorum", quorum_tls(c, ssl_quorum=True, unification=True)),
                 ("tls-only", quorum_tls(c, ssl_quorum=True, unification=False))]
        for name, settings in steps:
            for i in (1, 2, 3):
                e.stop(i)
                e.start(i, settings)
                e.settled()
                e.replicated("/roll/v", f"{name}-{i}".encode())
        for i in (1, 2):
            assert plaintext_refused(e.base + 20 + i, 3, e.base + 23), \
                f"member {i} still takes plaintext"
    finally:
        e.stop_all()


def v_mixed(args, tmp, c):
    e = Ensemble(args, tmp, "mixed", args.base_port + 60, {1: "rzk", 2: "rzk", 3: "apache"})
    try:
        for i in (3, 1, 2):
            e.start(i, quorum_tls(c))
        leader = e.settled(90)
        e.replicated("/mixed/a", b"1")
        e.stop(leader, kill=True)
        e.settled(90)
        e.replicated("/mixed/b", b"2")
        e.start(leader, quorum_tls(c))
        e.settled(90)
        e.replicated("/mixed/c", b"3")
    finally:
        e.stop_all()


def v_names(args, tmp, c):
    """server.N lines name `localhost`, certificates name only DNS:localhost (no IP):
    peers verify each other by host name, both when dialling and when accepting; an
    Apache ZooKeeper member takes part."""
    e = Ensemble(args, tmp, "names", args.base_port + 90, {1: "rzk", 2: "rzk", 3: "apache"},
                 host="localhost")
    try:
        for i in (3, 1, 2):
            e.start(i, quorum_tls(c, leaf="peerdns"))
        leader = e.settled(90)
        e.replicated("/names/a", b"1")
        e.stop(leader, kill=True)
        e.settled(90)
        e.replicated("/names/b", b"2")
    finally:
        e.stop_all()


def v_jvmtrust(args, tmp, c):
    e = Ensemble(args, tmp, "jvmtrust", args.base_port + 120,
                 {1: "rzk", 2: "rzk", 3: "apache"})
    settings = [s for s in quorum_tls(c) if ".trustStore." not in s]
    flags = [f"-Djavax.net.ssl.trustStore={c}/trust.jks",
             f"-Djavax.net.ssl.trustStorePassword={certs.PASSWORD}"]
    try:
        for i in (3, 1, 2):
            e.start(i, settings, flags)
        leader = e.settled(90)
        e.replicated("/jvmtrust/a", b"1")
        for i in (1, 2):
            assert tls_handshake_ok(e.base + 20 + i, c), f"election port {i} not TLS"
        e.stop(leader, kill=True)
        e.settled(90)
        e.replicated("/jvmtrust/b", b"2")
    finally:
        e.stop_all()


def served_cert(port, c):
    """The certificate (DER) a mutual-TLS handshake with 127.0.0.1:`port` presents now."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(f"{c}/client.pem", f"{c}/client.key")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw) as s:
            return s.getpeercert(binary_form=True)


def der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def v_reload(args, tmp, c):
    e = Ensemble(args, tmp, "reload", args.base_port + 150,
                 {1: "rzk", 2: "rzk", 3: "apache"})
    both = f"{c}/both-cas.pem"
    with open(both, "w") as out:
        for f in ("ca.pem", "other-ca.pem"):
            with open(f"{c}/{f}") as src:
                out.write(src.read())
    ks = {i: f"{c}/reload-ks-{i}.pem" for i in (1, 2, 3)}
    try:
        for i in (3, 1, 2):
            shutil.copy(f"{c}/server-keystore.pem", ks[i])
            e.start(i, [f"ssl.quorum.keyStore.location={ks[i]}",
                        f"ssl.quorum.trustStore.location={both}",
                        "sslQuorum=true", "sslQuorumReloadCertFiles=true"])
        leader = e.settled(90)
        e.replicated("/reload/a", b"1")
        for i in (1, 3):
            assert served_cert(e.base + 20 + i, c) == der(f"{c}/server.pem"), i
            shutil.copy(f"{c}/rogue-keystore.pem", ks[i] + ".new")
            os.replace(ks[i] + ".new", ks[i])
        for i in (1, 3):
            zkproc.wait_until(lambda i=i: served_cert(e.base + 20 + i, c) ==
                              der(f"{c}/rogue.pem"), 30, f"member {i}'s replaced certificate")
        assert served_cert(e.base + 22, c) == der(f"{c}/server.pem"), "member 2 changed"
        e.stop(leader, kill=True)
        e.settled(90)
        e.replicated("/reload/b", b"2")
    finally:
        e.stop_all()


QUORUM_JAAS = """QuorumServer {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_zkpeer="%s";
};
QuorumLearner {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="zkpeer"
    password="%s";
};
"""


def v_sasl(args, tmp, c):
    e = Ensemble(args, tmp, "sasl", args.base_port + 180, {1: "rzk", 2: "rzk", 3: "apache"})
    jaas = {}
    for name, learner_pw in (("good", "peer-pw-1"), ("bad", "not-the-pw")):
        jaas[name] = os.path.join(tmp, f"quorum-jaas-{name}.conf")
        with open(jaas[name], "w") as f:
            f.write(QUORUM_JAAS % ("peer-pw-1", learner_pw))
    settings = ["quorum.auth.enableSasl=true", "quorum.auth.learnerRequireSasl=true",
                "quorum.auth.serverRequireSasl=true"]
    flags = lambda name: [f"-Djava.security.auth.login.config={jaas[name]}"]  # noqa: E731
    try:
        for i in (3, 1, 2):
            e.start(i, settings, flags("good"))
        leader = e.settled(90)
        e.replicated("/qsasl/a", b"1")
        e.stop(leader, kill=True)
        e.settled(90)
        e.replicated("/qsasl/b", b"2")
        e.start(leader, settings, flags("good"))
        e.settled(90)
        # An rzk follower with the wrong learner password: kept out, the rest serve.
        out = next(i for i in (1, 2) if zkproc.mode(e.port(i)) == "follower")
        e.stop(out)
        e.start(out, settings, flags("bad"))
        time.sleep(6)
        assert zkproc.mode(e.port(out)) not in ("leader", "follower"), \
            f"member {out} joined with a wrong quorum password"
        e.replicated("/qsasl/c", b"3", skip=(out,))
        e.stop(out)
        e.start(out, settings, flags("good"))
        e.settled(90)
        e.replicated("/qsasl/d", b"4")
    finally:
        e.stop_all()


VARIANTS = {"tls3": v_tls3, "rolling": v_rolling, "mixed": v_mixed, "names": v_names,
            "reload": v_reload, "sasl": v_sasl, "jvmtrust": v_jvmtrust}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rzk", default=os.path.join(ROOT, "target", "debug", "rzk"))
    ap.add_argument("--apache", default=os.path.join(ROOT, "scripts", "start-apache-zk.sh"))
    ap.add_argument("--variants", default="tls3,rolling,mixed,names,reload,sasl,jvmtrust")
    ap.add_argument("--base-port", type=int, default=23600)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rzk-qtls-")
    c = os.path.join(tmp, "certs")
    certs.make(c)
    results = []
    for v in args.variants.split(","):
        t0 = time.time()
        try:
            VARIANTS[v](args, tmp, c)
            results.append(True)
            print(f"PASS {v} ({time.time() - t0:.1f} s)", flush=True)
        except Exception as ex:  # noqa: BLE001
            results.append(False)
            print(f"FAIL {v}: {ex!r}", flush=True)
            traceback.print_exc()
    failed = not all(results)
    if failed or args.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
