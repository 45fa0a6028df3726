#!/usr/bin/env python3
"""Client-port TLS against rzk and Apache ZooKeeper 3.8 alike: kazoo (use_ssl with ca,
certfile, keyfile), zkCli over Netty TLS, Curator over TLS, rzk shell (rzk-client), mutual
TLS refusing a client without a certificate, x509 ACLs and the x509 super user, port
unification, the key store formats (PKCS12, JKS, PEM; types inferred and explicit), a key
store replaced on disk with client.certReload, and, for
rzk, TLS settings it cannot honour stopping start-up with a message naming the key.

  tests/tls/tls_test.py --rzk target/debug/rzk --apache scripts/start-apache-zk.sh \
      [--kinds rzk,apache] [--base-port 23400] [--keep]

Prints one line per case and "N passed, M failed"; exits 1 on a failure. Servers listen
on 127.0.0.1 only; only the processes started here are signalled.
"""
import argparse
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "compat", "kazoo"))
import certs  # noqa: E402
import zkproc  # noqa: E402
import zkraw  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import AuthFailedError, InvalidACLError, NoAuthError  # noqa: E402
from kazoo.security import ACL, Id  # noqa: E402

NETTY = "org.apache.zookeeper.server.NettyServerCnxnFactory"
J = "/usr/share/java"
JAVA_CP = ":".join(f"{J}/{j}.jar" for j in (
    "zookeeper", "zookeeper-jute", "slf4j-api", "slf4j-simple", "netty-buffer", "netty-codec",
    "netty-common", "netty-handler", "netty-resolver", "netty-transport",
    "netty-transport-native-epoll", "netty-transport-native-unix-common"))
CURATOR_CP = ":".join(f"{J}/{j}.jar" for j in (
    "curator-recipes", "curator-framework", "curator-client", "guava")) + ":" + JAVA_CP


class Env:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.c = os.path.join(tmp, "certs")
        self.names = certs.make(self.c)
        self.procs = []
        self.results = []
        self.curator_dir = None

    def cert(self, name):
        return os.path.join(self.c, name)

    # ------------------------------------------------------------ servers

    def start(self, kind, tag, port, settings):
        """Starts a `kind` server on 127.0.0.1:`port` with extra zoo.cfg `settings`."""
        d = os.path.join(self.tmp, f"{kind}-{tag}")
        if kind == "rzk":
            cfg = zkproc.write_config(os.path.join(d, "zoo.cfg"), port, *settings)
            p = zkproc.start_rzk(self.args.rzk, cfg, port)
            self.procs.append(p)
            zkproc.wait_serving(port, p, 30, f"rzk {tag}")
        else:
            p = zkproc.start_apache(self.args.apache, port, d, *settings)
            self.procs.append(p)
            zkproc.wait_serving(port, p, 60, f"zookeeper {tag}")
        return p

    def stop_all(self):
        for p in self.procs:
            p.stop(10)
        self.procs = []

    # ------------------------------------------------------------ clients

    def kazoo(self, port, cert=None, tls=True, timeout=8):
        """A started kazoo client; TLS trusting ca.pem, with leaf `cert`'s certificate."""
        kw = {}
        if tls:
            kw = dict(use_ssl=True, ca=self.cert("ca.pem"), verify_certs=True)
            if cert:
                kw.update(certfile=self.cert(f"{cert}.pem"), keyfile=self.cert(f"{cert}.key"))
        z = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10, connection_retry=None, **kw)
        z.start(timeout=timeout)
        return z

    def refused(self, port, cert=None, tls=True):
        """True when a kazoo client cannot get a session on `port`."""
        try:
            z = self.kazoo(port, cert, tls, timeout=2.5)
        except Exception:
            return True
        z.stop()
        z.close()
        return False

    def java_flags(self, keystore, truststore):
        flags = ["-Dzookeeper.client.secure=true",
                 "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
                 f"-Dzookeeper.ssl.trustStore.location={self.cert(truststore)}",
                 f"-Dzookeeper.ssl.trustStore.password={certs.PASSWORD}"]
        if keystore:
            flags += [f"-Dzookeeper.ssl.keyStore.location={self.cert(keystore)}",
                      f"-Dzookeeper.ssl.keyStore.password={certs.PASSWORD}"]
        return flags

    def zkcli(self, port, keystore, truststore, *cmd):
        """Runs ZooKeeper's CLI (ZooKeeperMain) over Netty TLS; returns (rc, output)."""
        r = subprocess.run(
            ["java", "-Xmx128m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
             *self.java_flags(keystore, truststore), "-cp", JAVA_CP,
             "org.apache.zookeeper.ZooKeeperMain", "-server", f"127.0.0.1:{port}", *cmd],
            capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout + r.stderr

    def with_client_configuration(self, tool, port, props, *cmd):
        """zkCli (`tool` "zkcli") or rzk shell ("rzk") given only
        `-client-configuration props` for TLS; returns (rc, output)."""
        if tool == "zkcli":
            argv = ["java", "-Xmx128m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                    "-cp", JAVA_CP, "org.apache.zookeeper.ZooKeeperMain"]
        else:
            argv = [self.args.rzk, "shell"]
        env = {k: v for k, v in os.environ.items() if k not in ("CLIENT_JVMFLAGS", "JVMFLAGS")}
        r = subprocess.run([*argv, "-client-configuration", props, "-server",
                            f"127.0.0.1:{port}", *cmd],
                           capture_output=True, text=True, timeout=60, env=env)
        return r.returncode, r.stdout + r.stderr

    def curator(self, port, keystore, truststore, path):
        """Curator (framework + a distributed counter recipe) over TLS: prints the
        counter's value after incrementing it three times."""
        if self.curator_dir is None:
            self.curator_dir = os.path.join(self.tmp, "curator")
            os.makedirs(self.curator_dir)
            subprocess.run(["javac", "-nowarn", "-d", self.curator_dir, "-cp", CURATOR_CP,
                            os.path.join(HERE, "CuratorTls.java")], check=True,
                           capture_output=True)
        r = subprocess.run(
            ["java", "-Xmx128m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=error",
             "-Dzookeeper.sasl.client=false", *self.java_flags(keystore, truststore),
             "-cp", f"{self.curator_dir}:{CURATOR_CP}", "CuratorTls", f"127.0.0.1:{port}", path],
            capture_output=True, text=True, timeout=90)
        return r.returncode, r.stdout + r.stderr

    def shell(self, port, cert, *cmd, timeout_ms=10000):
        """`rzk shell` (rzk-client) over TLS; returns (rc, output)."""
        tls = ["-timeout", str(timeout_ms), "-tls-ca", self.cert("ca.pem")]
        if cert:
            tls += ["-tls-cert", self.cert(f"{cert}.pem"), "-tls-key", self.cert(f"{cert}.key")]
        r = subprocess.run([self.args.rzk, "shell", "-server", f"127.0.0.1:{port}", *tls, *cmd],
                           capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout + r.stderr

    # ------------------------------------------------------------ cases

    def case(self, name, fn):
        t0 = time.time()
        try:
            fn()
            self.results.append((name, True))
            print(f"PASS {name} ({time.time() - t0:.1f} s)", flush=True)
        except Exception as e:  # noqa: BLE001
            self.results.append((name, False))
            print(f"FAIL {name}: {e!r}", flush=True)
            traceback.print_exc()


def server_want(env, kind, plain, secure):
    """Plain and TLS ports side by side; PKCS12 key store and JKS trust store, types
    inferred from the file names; clientAuth=want; the admin certificate is super; TLS 1.2
    only (ssl.protocol), so a client asking for TLSv1.3 must also offer 1.2."""
    return env.start(kind, "want", plain, [
        f"secureClientPort={secure}", "secureClientPortAddress=127.0.0.1",
        f"serverCnxnFactory={NETTY}",
        f"ssl.keyStore.location={env.cert('server.p12')}", f"ssl.keyStore.password={certs.PASSWORD}",
        f"ssl.trustStore.location={env.cert('trust.jks')}", f"ssl.trustStore.password={certs.PASSWORD}",
        "ssl.clientAuth=want", f"X509AuthenticationProvider.superUser={env.names['admin']}",
        "ssl.protocol=TLSv1.2"])


def server_need(env, kind, port):
    """One port for plaintext and TLS (client.portUnification); PEM key store and trust
    store; ssl.clientAuth unset, so ZooKeeper's default (need). ZooKeeper 3.8.0 registers
    the x509 provider too late on a unified port without a secure port (a client with a
    certificate is then closed: "X509 Auth provider not found"), so authProvider.x509 is
    named explicitly, as ZooKeeper's documentation shows."""
    return env.start(kind, "need", port, [
        "client.portUnification=true", f"serverCnxnFactory={NETTY}",
        "authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider",
        f"ssl.keyStore.location={env.cert('server-keystore.pem')}",
        f"ssl.trustStore.location={env.cert('ca.pem')}"])


SASL_PW = "Tls-sasl-pw-5e0c27"


def sasl_settings(env, kind):
    """The SASL provider and a JAAS Server section with user bob (the JAAS file as a -D
    flag for ZooKeeper, as a zoo.cfg key for rzk)."""
    jaas = os.path.join(env.tmp, f"jaas-{kind}.conf")
    with open(jaas, "w") as f:
        f.write("Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n"
                f'  user_bob="{SASL_PW}";\n}};\n')
    flag = ("-D" if kind == "apache" else "") + "java.security.auth.login.config=" + jaas
    return ["authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider", flag]


def server_jks(env, kind, plain, secure):
    """JKS key store with an explicit type, PKCS12 trust store (keytool's), clientAuth=none;
    SASL DIGEST-MD5 with user bob; tickTime 500 ms."""
    return env.start(kind, "jks", plain, sasl_settings(env, kind) + [
        f"secureClientPort={secure}", "secureClientPortAddress=127.0.0.1",
        f"serverCnxnFactory={NETTY}",
        f"ssl.keyStore.location={env.cert('server.jks')}", "ssl.keyStore.type=JKS",
        f"ssl.keyStore.password={certs.PASSWORD}",
        f"ssl.trustStore.location={env.cert('trust.p12')}", f"ssl.trustStore.password={certs.PASSWORD}",
        "ssl.clientAuth=none",
        # sessions of 1-10 s, so that the slow-reader cases span several timeouts quickly
        "tickTime=500"])


def der(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def served_cert(port):
    """The certificate (DER) a TLS handshake with 127.0.0.1:`port` presents now."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw) as s:
            return s.getpeercert(binary_form=True)


# 8 x 640 KiB: more than a socket's largest send buffer here (tcp_wmem's 4 MiB), so the
# server's writes wait for the client.
SLOW_NODE = 640 * 1024
SLOW_READS = 8


def tls_raw_session(env, port, timeout_ms):
    """A raw session (zkraw) over TLS to 127.0.0.1:`port` (trusting ca.pem, no client
    certificate) on a socket with a 4 KiB receive buffer, so that large replies wait in
    the server for the client to read them."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(10)
    raw.connect(("127.0.0.1", port))
    ctx = ssl.create_default_context(cafile=env.cert("ca.pem"))
    ctx.check_hostname = False
    return zkraw.RawSession(None, timeout_ms, sock=ctx.wrap_socket(raw))


def pipeline_slow_reads(s, path):
    for _ in range(SLOW_READS):
        s.send(zkraw.OP_GETDATA, zkraw.path_watch_body(path))


def slow_tls_reader(env, port, path):
    """A TLS client reading large replies at up to ~800 KB/s (several session timeouts in all)
    and pinging every third of its timeout keeps its session: the bytes it takes, or
    its pings, show it is alive (ZooKeeper reads the pings meanwhile; rzk counts the
    progress of its writes)."""
    s = tls_raw_session(env, port, 1000)
    timeout = s.negotiated_timeout / 1000.0
    assert timeout <= 1.5, s.negotiated_timeout
    pipeline_slow_reads(s, path)
    buf, replies = b"", []
    start = last_ping = time.monotonic()
    while len(replies) < SLOW_READS and time.monotonic() - start < 60:
        time.sleep(0.01)
        if time.monotonic() - last_ping > timeout / 3:
            s.send(zkraw.OP_PING, b"", xid=zkraw.PING_XID)
            last_ping = time.monotonic()
        try:
            chunk = s.sock.recv(4096)
        except (ConnectionResetError, ssl.SSLError) as e:
            raise AssertionError(f"closed after {time.monotonic() - start:.1f} s, "
                                 f"{len(replies)} of {SLOW_READS} replies read: {e!r}")
        assert chunk, (f"closed after {time.monotonic() - start:.1f} s, "
                       f"{len(replies)} of {SLOW_READS} replies read")
        buf += chunk
        while len(buf) >= 4:
            n = int.from_bytes(buf[:4], "big", signed=True)
            if len(buf) < 4 + n:
                break
            xid, err = (int.from_bytes(buf[4:8], "big", signed=True),
                        int.from_bytes(buf[16:20], "big", signed=True))
            if xid > 0:
                replies.append((xid, err, n - 16))
            buf = buf[4 + n:]
    took = time.monotonic() - start
    assert [(x, e) for x, e, _ in replies] == [(x, 0) for x in range(1, SLOW_READS + 1)], \
        (took, replies)
    assert took > 2 * timeout, f"the replies took only {took:.1f} s"
    # The session lives: the next request is answered after what is still buffered.
    xid = s.send(zkraw.OP_EXISTS, zkraw.path_watch_body(path))
    deadline = time.monotonic() + 5
    while True:
        rep = s.read_reply(deadline - time.monotonic())
        if rep.xid == xid:
            assert rep.err == 0, rep
            break
    s.close()


def silent_tls_reader(env, port, path):
    """A TLS client that reads none of its replies is closed once it has been silent
    for about its session timeout (ZooKeeper: the session expires; rzk: the write that
    waits for it is given up), not kept for good."""
    s = tls_raw_session(env, port, 1000)
    pipeline_slow_reads(s, path)
    time.sleep(3 * s.negotiated_timeout / 1000.0)
    # Whatever the server still sent, then the end of the stream.
    s.sock.settimeout(3)
    got = 0
    while True:
        try:
            chunk = s.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            break
        except socket.timeout:
            raise AssertionError(f"still open: {got} bytes read, then nothing for 3 s")
        if not chunk:
            break
        got += len(chunk)
    s.close()


def run_kind(env, kind, base):
    plain, secure, unified, jplain, jsecure, notls = (base + i for i in range(6))
    client_dn = env.names["client"]
    p = f"/tls-{kind}"

    env.case(f"{kind}: start with plain + secure ports (p12 + jks stores, want)",
             lambda: server_want(env, kind, plain, secure))

    def side_by_side():
        z = env.kazoo(plain, tls=False)
        z.ensure_path(p)
        z.create(f"{p}/plain", b"from plaintext")
        z.stop()
        t = env.kazoo(secure)  # CA only, no client certificate
        assert t.get(f"{p}/plain")[0] == b"from plaintext"
        t.stop()
        assert env.refused(secure, tls=False), "plaintext client served on the TLS port"
        conf = zkproc.four(plain, "conf")
        assert f"secureClientPort={secure}" in conf, conf
    env.case(f"{kind}: kazoo plaintext and kazoo TLS (CA only) side by side", side_by_side)

    def x509_identity():
        z = env.kazoo(secure, "client")
        z.create(f"{p}/mine", b"secret", acl=[ACL(31, Id("auth", ""))])
        acl = z.get_acls(f"{p}/mine")[0]
        assert [(a.id.scheme, a.id.id) for a in acl] == [("x509", client_dn)], acl
        assert z.get(f"{p}/mine")[0] == b"secret"
        z.stop()
    env.case(f"{kind}: x509 identity is the RFC 2253 subject ('auth' ACL)", x509_identity)

    def x509_acl():
        z = env.kazoo(plain, tls=False)
        z.create(f"{p}/x509", b"x", acl=[ACL(1, Id("x509", client_dn))])
        try:
            z.get(f"{p}/x509")
            raise AssertionError("plaintext client read an x509-protected node")
        except NoAuthError:
            pass
        z.stop()
        anon = env.kazoo(secure)
        try:
            anon.get(f"{p}/x509")
            raise AssertionError("TLS client without a certificate read an x509-protected node")
        except NoAuthError:
            pass
        try:
            anon.add_auth("x509", "")
            raise AssertionError("addauth x509 without a certificate succeeded")
        except AuthFailedError:
            pass
        anon.stop()
        c = env.kazoo(secure, "client")
        assert c.get(f"{p}/x509")[0] == b"x"
        c.add_auth("x509", "")
        c.stop()
    env.case(f"{kind}: x509: ACL enforced; addauth x509 needs a certificate", x509_acl)

    def super_user():
        a = env.kazoo(secure, "admin")
        assert a.get(f"{p}/mine")[0] == b"secret"
        a.set_acls(f"{p}/x509", [ACL(31, Id("world", "anyone"))])
        a.stop()
    env.case(f"{kind}: X509AuthenticationProvider.superUser is super", super_user)

    env.case(f"{kind}: a certificate from an untrusted CA is refused",
             lambda: (_ for _ in ()).throw(AssertionError("rogue served"))
             if not env.refused(secure, "rogue") else None)

    def zkcli():
        rc, out = env.zkcli(secure, "client.jks", "trust.p12", "getAcl", f"{p}/mine")
        assert "cdrwa" in out and "client one" in out, out[-2000:]
        rc, out = env.zkcli(secure, None, "trust.jks", "get", f"{p}/plain")
        assert "from plaintext" in out, out[-2000:]
    env.case(f"{kind}: zkCli over Netty TLS (JKS key store, PKCS12/JKS trust stores)", zkcli)

    def client_configuration():
        props = os.path.join(env.tmp, f"client-{kind}.properties")
        with open(props, "w") as f:
            f.write("# zkCli's -client-configuration file (ZKClientConfig)\n"
                    "zookeeper.client.secure=true\n"
                    "zookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty\n"
                    f"zookeeper.ssl.keyStore.location={env.cert('client.jks')}\n"
                    f"zookeeper.ssl.keyStore.password={certs.PASSWORD}\n"
                    f"zookeeper.ssl.trustStore.location={env.cert('trust.p12')}\n"
                    f"zookeeper.ssl.trustStore.password={certs.PASSWORD}\n"
                    # The highest version offered (Java's SSLContext protocol); the server
                    # speaks only TLS 1.2.
                    "zookeeper.ssl.protocol=TLSv1.3\n")
        for tool in ("zkcli", "rzk"):
            rc, out = env.with_client_configuration(tool, secure, props, "getAcl", f"{p}/mine")
            assert "cdrwa" in out and "client one" in out, (tool, out[-2000:])
        # A setting rzk cannot honour stops rzk shell naming the key; a missing file exits 2
        # (zkCli: 2 as well).
        with open(props, "a") as f:
            f.write("zookeeper.ssl.ocsp=true\n")
        rc, out = env.with_client_configuration("rzk", secure, props, "ls", "/")
        assert rc == 2 and "zookeeper.ssl.ocsp" in out and certs.PASSWORD not in out, out
        # Java reads `secure=yes` as false and connects in plaintext; rzk shell refuses it.
        with open(props, "a") as f:
            f.write("zookeeper.client.secure=yes\n")
        rc, out = env.with_client_configuration("rzk", secure, props, "ls", "/")
        assert rc == 2 and "zookeeper.client.secure=yes" in out, out
        for tool in ("zkcli", "rzk"):
            rc, out = env.with_client_configuration(tool, secure, props + ".missing", "ls", "/")
            assert rc == 2, (tool, rc, out[-2000:])
    env.case(f"{kind}: -client-configuration (TLS from a ZKClientConfig file): zkCli and "
             "rzk shell", client_configuration)

    def curator():
        rc, out = env.curator(secure, "client.p12", "trust.jks", f"{p}/counter")
        assert rc == 0 and "counter=3" in out, out[-2000:]
    env.case(f"{kind}: Curator over TLS (DistributedAtomicLong)", curator)

    def shell():
        rc, out = env.shell(secure, "client", "get", f"{p}/mine")
        assert rc == 0 and "secret" in out, out
        rc, out = env.shell(secure, None, "get", f"{p}/mine")
        assert rc != 0 and "Insufficient permission" in out, out
        rc, out = env.shell(secure, None, "create", f"{p}/from-shell", "s")
        assert rc == 0, out
    env.case(f"{kind}: rzk shell (rzk-client) over TLS, with and without a certificate", shell)

    env.case(f"{kind}: start with client.portUnification (PEM stores, default clientAuth)",
             lambda: server_need(env, kind, unified))

    def mutual():
        assert env.refused(unified), "TLS client without a certificate served with clientAuth=need"
        rc, out = env.shell(unified, None, "ls", "/", timeout_ms=2000)
        assert rc != 0, out
        z = env.kazoo(unified, "client")
        z.create("/mtls", b"m")
        z.stop()
        plain_client = env.kazoo(unified, tls=False)
        assert plain_client.get("/mtls")[0] == b"m"
        plain_client.stop()
        assert zkproc.four(unified, "ruok") == "imok"
        rc, out = env.shell(unified, "client", "get", "/mtls")
        assert rc == 0 and "m" in out, out
    env.case(f"{kind}: mutual TLS refuses a client without a certificate; plaintext, TLS and "
             "4lw share the unified port", mutual)

    env.case(f"{kind}: start with a JKS key store (explicit type), PKCS12 trust store",
             lambda: server_jks(env, kind, jplain, jsecure))

    def jks():
        z = env.kazoo(jsecure)
        z.create("/jks", b"j")
        z.stop()
        rc, out = env.zkcli(jsecure, None, "trust.p12", "get", "/jks")
        assert "j" in out.split(), out[-2000:]
    env.case(f"{kind}: JKS server store, clientAuth=none", jks)

    def slow_readers():
        z = env.kazoo(jsecure)
        z.create("/slow", b"s" * SLOW_NODE)
        z.stop()
        slow_tls_reader(env, jsecure, "/slow")
        silent_tls_reader(env, jsecure, "/slow")
    env.case(f"{kind}: a TLS client reading large replies slowly keeps its session; one "
             "reading nothing is closed", slow_readers)

    def shell_tls_sasl():
        pw = os.path.join(env.tmp, "bob.pw")
        with open(pw, "w") as f:
            f.write(SASL_PW + "\n")
        bob = ["-sasl-user", "bob", "-sasl-password-file", pw]
        rc, out = env.shell(jsecure, None, *bob, "create", "/tls-sasl", "b", "sasl:bob:cdrwa")
        assert rc == 0, out
        rc, out = env.shell(jsecure, None, *bob, "whoami")
        assert rc == 0 and "sasl: bob" in out, out
        rc, out = env.shell(jsecure, None, "get", "/tls-sasl")
        assert rc != 0 and "Insufficient permission" in out, out
        with open(pw, "w") as f:
            f.write("wrong-" + SASL_PW + "\n")
        rc, out = env.shell(jsecure, None, *bob, "get", "/tls-sasl")
        # zkCli's words for the code (KeeperException.getCodeMessage), since session 50
        assert rc != 0 and "KeeperErrorCode = AuthFailed for /tls-sasl" in out, out
    env.case(f"{kind}: rzk shell over TLS logs in with SASL DIGEST-MD5 (sasl ACL)",
             shell_tls_sasl)

    def plaintext_addauth_x509():
        z = env.kazoo(jplain, tls=False)
        try:
            z.add_auth("x509", "")
            raise AssertionError("addauth x509 on a plaintext connection succeeded")
        except AuthFailedError:
            pass
        finally:
            z.stop()
            z.close()
    env.case(f"{kind}: addauth x509 on the plaintext port of a TLS server: AuthFailed",
             plaintext_addauth_x509)
    env.stop_all()

    env.case(f"{kind}: start without any TLS setting",
             lambda: env.start(kind, "notls", notls, []))

    def x509_without_tls():
        z = env.kazoo(notls, tls=False)
        x509 = [ACL(31, Id("x509", client_dn))]
        try:
            z.create("/x509-notls", b"", acl=x509)
            raise AssertionError("x509 ACL accepted by a server without TLS")
        except InvalidACLError:
            pass
        z.create("/x509-notls", b"")
        try:
            z.set_acls("/x509-notls", x509)
            raise AssertionError("setAcl x509 accepted by a server without TLS")
        except InvalidACLError:
            pass
        try:
            z.add_auth("x509", "")
            raise AssertionError("addauth x509 succeeded on a server without TLS")
        except AuthFailedError:
            pass
        z.stop()
        z.close()
    env.case(f"{kind}: no TLS: x509 ACLs are InvalidACL, addauth x509 AuthFailed",
             x509_without_tls)
    env.stop_all()

    def swapped_formats():
        # keytool -keystore x.jks writes PKCS12 (Java 9+), and Java opens a store declared
        # JKS that holds PKCS12 and the reverse: ZooKeeper serves these stores.
        shutil.copy(env.cert("server.p12"), env.cert("server-p12-named.jks"))
        shutil.copy(env.cert("trust.jks"), env.cert("trust-jks-named.p12"))
        env.start(kind, "swapped", base + 6, [
            f"secureClientPort={base + 7}", "secureClientPortAddress=127.0.0.1",
            f"serverCnxnFactory={NETTY}",
            f"ssl.keyStore.location={env.cert('server-p12-named.jks')}",
            f"ssl.keyStore.password={certs.PASSWORD}",
            f"ssl.trustStore.location={env.cert('trust-jks-named.p12')}",
            f"ssl.trustStore.password={certs.PASSWORD}", "ssl.clientAuth=need"])
        assert env.refused(base + 7), "a client without a certificate was served (need)"
        z = env.kazoo(base + 7, "client")
        z.create("/swapped", b"s")
        assert z.get("/swapped")[0] == b"s"
        z.stop()
        z.close()
    env.case(f"{kind}: a PKCS12 store named .jks and a JKS store named .p12 are served",
             swapped_formats)

    def cert_reload():
        # client.certReload: a key store replaced on disk is served to new connections;
        # a session opened before keeps working. The store is a PKCS12 file whose
        # password comes from ssl.keyStore.passwordPath; the replacement has another
        # password, written to that file first (read again at each reload, as ZooKeeper's
        # X509Util does).
        ks, pw = env.cert(f"reload-{kind}.p12"), env.cert(f"reload-{kind}.pw")
        shutil.copy(env.cert("server.p12"), ks)
        with open(pw, "w") as f:
            f.write(certs.PASSWORD + "\n")
        subprocess.run(["openssl", "pkcs12", "-export", "-in", env.cert("rogue.pem"),
                        "-inkey", env.cert("rogue.key"), "-out", ks + ".rotated",
                        "-passout", "pass:rotated-pw"], check=True, capture_output=True)
        env.start(kind, "reload", base + 8, [
            f"secureClientPort={base + 9}", "secureClientPortAddress=127.0.0.1",
            f"serverCnxnFactory={NETTY}", "client.certReload=true",
            f"ssl.keyStore.location={ks}", f"ssl.keyStore.passwordPath={pw}",
            f"ssl.trustStore.location={env.cert('ca.pem')}", "ssl.clientAuth=none"])
        assert served_cert(base + 9) == der(env.cert("server.pem"))
        z = env.kazoo(base + 9)
        z.create("/reload", b"r")
        with open(pw + ".new", "w") as f:
            f.write("rotated-pw\n")
        os.replace(pw + ".new", pw)
        os.replace(ks + ".rotated", ks)
        zkproc.wait_until(lambda: served_cert(base + 9) == der(env.cert("rogue.pem")), 20,
                          "the replaced certificate on new connections")
        assert z.get("/reload")[0] == b"r", "the open session broke"
        assert env.refused(base + 9), "a client trusting only the old CA was served"
        z.stop()
        z.close()
    # ZooKeeper reads client.certReload from 3.8.5 on; Debian's 3.8.0 has no oracle for it
    # (its quorum counterpart, sslQuorumReloadCertFiles, is in quorum_tls_test.py).
    if kind == "rzk":
        env.case(f"{kind}: client.certReload serves a replaced key store to new connections",
                 cert_reload)
    env.stop_all()


def rzk_refusals(env, base):
    """rzk stops start-up (exit 2) naming the key for TLS settings it cannot honour."""
    bad = [
        ("ssl.ciphersuites", ["ssl.ciphersuites=TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"]),
        ("ssl.keyStore.location", [f"ssl.keyStore.password=wrong"]),
        ("ssl.keyStore.type", [f"ssl.keyStore.location={env.cert('server.keystore')}"]),
        ("ssl.protocol", ["ssl.protocol=TLSv1.1"]),
        ("ssl.crl", ["ssl.crl=true"]),
    ]
    for key, extra in bad:
        def one(key=key, extra=extra):
            d = os.path.join(env.tmp, f"bad-{key}")
            settings = [f"secureClientPort={base + 1}", "secureClientPortAddress=127.0.0.1",
                        f"serverCnxnFactory={NETTY}",
                        f"ssl.keyStore.location={env.cert('server.p12')}",
                        f"ssl.keyStore.password={certs.PASSWORD}",
                        f"ssl.trustStore.location={env.cert('ca.pem')}"] + extra
            cfg = zkproc.write_config(os.path.join(d, "zoo.cfg"), base, *settings)
            r = subprocess.run([env.args.rzk, "server", "--config", cfg], capture_output=True,
                               text=True, timeout=30)
            assert r.returncode == 2, (r.returncode, r.stderr[-1000:])
            assert key in r.stderr, r.stderr[-1000:]
            assert certs.PASSWORD not in r.stderr and "wrong" not in r.stderr.replace(
                "wrong password", ""), "a password was printed"
        env.case(f"rzk: refuses {key} it cannot honour (exit 2, key named)", one)


def rzk_tls_only(env, base):
    """Only secureClientPort (no clientPort): no plaintext port is opened, as in ZooKeeper."""
    def one():
        d = os.path.join(env.tmp, "rzk-tls-only")
        os.makedirs(d, exist_ok=True)
        cfg = os.path.join(d, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write(f"dataDir={d}/data\nsecureClientPort={base + 1}\n"
                    "secureClientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
                    f"serverCnxnFactory={NETTY}\n"
                    f"ssl.keyStore.location={env.cert('server-keystore.pem')}\n"
                    f"ssl.trustStore.location={env.cert('ca.pem')}\nssl.clientAuth=none\n")
        zkproc.check_free(2181)
        p = zkproc.start_rzk(env.args.rzk, cfg, base + 1)
        env.procs.append(p)
        zkproc.wait_until(lambda: not env.refused(base + 1), 20, "the TLS-only port")
        assert zkproc.four(2181, "ruok") == "", "a plaintext port 2181 was opened"
        env.stop_all()
    env.case("rzk: only secureClientPort set: no plaintext client port", one)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rzk", default=os.path.join(ROOT, "target", "debug", "rzk"))
    ap.add_argument("--apache", default=os.path.join(ROOT, "scripts", "start-apache-zk.sh"))
    ap.add_argument("--kinds", default="rzk,apache")
    ap.add_argument("--base-port", type=int, default=23400)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rzk-tls-")
    env = Env(args, tmp)
    failed = True
    try:
        for i, kind in enumerate(args.kinds.split(",")):
            run_kind(env, kind, args.base_port + 10 * i)
        if "rzk" in args.kinds.split(","):
            rzk_refusals(env, args.base_port + 50)
            rzk_tls_only(env, args.base_port + 60)
        failed = any(not ok for _, ok in env.results)
    finally:
        env.stop_all()
        if failed or args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    n_ok = sum(1 for _, ok in env.results if ok)
    print(f"{n_ok} passed, {len(env.results) - n_ok} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
