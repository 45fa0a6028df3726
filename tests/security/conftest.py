"""Fixtures of the security suite (tests/security): servers configured for SASL,
enforce.auth and super users, each test run against rzk AND Apache ZooKeeper (the oracle),
plus rzk-only start-up checks (fail closed) and the check that no secret reaches a log.

Environment:
  RZK               the rzk binary (default target/debug/rzk)
  SECURITY_KINDS    servers to test, comma separated (default "rzk,apache")
  SECURITY_PORT     first client port to use (default 22400)
  SECURITY_KEEP     keep the work directory (always kept, and printed, on failure)

Every rzk this suite starts logs at debug level into <workdir>/rzk-*/; the last test
(test_zz_secrets.py) greps all of them for every password the suite used.
"""
import itertools
import logging
import os
import shutil
import sys
import tempfile

import pytest
from kazoo.exceptions import AuthFailedError
from kazoo.protocol.states import KeeperState

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "tests", "compat", "kazoo"))
import zkproc  # noqa: E402

RZK = os.environ.get("RZK", os.path.join(ROOT, "target", "debug", "rzk"))
APACHE = os.path.join(ROOT, "scripts", "start-apache-zk.sh")
KINDS = [k for k in os.environ.get("SECURITY_KINDS", "rzk,apache").split(",") if k]
_ports = itertools.count(int(os.environ.get("SECURITY_PORT", "22400")))

# Every secret the suite hands a server. None of them may appear in an rzk log, in an rzk
# error message or in four-letter-word output (test_zz_secrets.py).
BOB_PW = "Bob-pw-7f3a91c2"
ALICE_PW = "Alice-pw-0d81e6b4"
ADMIN_PW = "Admin-pw-55c0e3aa"
SUPER_SASL_PW = "SuperSasl-pw-913fe0d7"
SUPER_DIGEST_PW = "SuperDigest-pw-2be4c1f9"
EXTRA_SECRET = "Extra-secret-6a4d20e8"
KEYSTORE_PW = "Keystore-pw-c7e1b0d3"
SECRETS = [BOB_PW, ALICE_PW, ADMIN_PW, SUPER_SASL_PW, SUPER_DIGEST_PW, EXTRA_SECRET, KEYSTORE_PW]

SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"


def digest_of(user_password):
    """ZooKeeper's digest id `user:base64(sha1(user:password))`."""
    import base64
    import hashlib
    user = user_password.split(":", 1)[0]
    return user + ":" + base64.b64encode(hashlib.sha1(user_password.encode()).digest()).decode()


JAAS_SERVER = """
// the server's DIGEST-MD5 users (the Client section is for zkCli)
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_bob="%s"
    user_alice="%s"
    user_admin="%s"
    user_super="%s";
};
Client {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="bob"
    password="%s";
};
""" % (BOB_PW, ALICE_PW, ADMIN_PW, SUPER_SASL_PW, BOB_PW)

WORKDIR = os.environ.get("SECURITY_WORKDIR") or tempfile.mkdtemp(prefix="rzk-security-")
os.makedirs(WORKDIR, exist_ok=True)


def workdir(name):
    """A fresh directory <workdir>/<name>-N."""
    for i in itertools.count():
        d = os.path.join(WORKDIR, f"{name}-{i}")
        if not os.path.exists(d):
            os.makedirs(d)
            return d


def write_jaas(d, text=JAAS_SERVER):
    p = os.path.join(d, "jaas.conf")
    with open(p, "w") as f:
        f.write(text)
    return p


class Server:
    """A running server of `kind` on 127.0.0.1:`port`."""

    def __init__(self, kind, port, proc, dir):
        self.kind = kind
        self.port = port
        self.proc = proc
        self.dir = dir
        self.hosts = f"127.0.0.1:{port}"

    def stop(self):
        self.proc.stop()


def rzk_env():
    """What every rzk of the suite runs with on top of the inherited environment (as for
    zkproc.environ): debug logs, and no SERVER_JVMFLAGS or JVMFLAGS of the caller's."""
    return {"RZK_LOG": "debug", "SERVER_JVMFLAGS": None, "JVMFLAGS": None}


def start_server(kind, name, settings, jaas=None, sysprops=(), jvmflags=None):
    """Starts a server of `kind` ("rzk" or "apache") with zoo.cfg `settings` ("k=v"), the
    JAAS file text `jaas` (given as -Djava.security.auth.login.config to ZooKeeper, as the
    zoo.cfg key java.security.auth.login.config to rzk) and JVM system properties
    `sysprops` ("zookeeper.x=v": -D flags in JVMFLAGS for both; a zoo.cfg line spelt
    zookeeper.x is ignored by ZooKeeper, and refused by rzk for a security key). `jvmflags`:
    the environment variable JVMFLAGS for both (zkServer.sh hands it to ZooKeeper's JVM;
    scripts/start-apache-zk.sh does the same)."""
    port = next(_ports)
    d = workdir(f"{kind}-{name}")
    settings = list(settings)
    if kind == "rzk":
        if jaas is not None:
            settings.append("java.security.auth.login.config=" + write_jaas(d, jaas))
        cfg = zkproc.write_config(os.path.join(d, "zoo.cfg"), port, *settings)
        env = rzk_env()
        flags = ([jvmflags] if jvmflags is not None else []) + ["-D" + p for p in sysprops]
        if flags:
            env["JVMFLAGS"] = " ".join(flags)
        proc = zkproc.start_rzk(RZK, cfg, port, env=env)
        zkproc.wait_serving(port, proc, what="rzk " + name)
    else:
        args = list(settings)
        if jaas is not None:
            args.append("-Djava.security.auth.login.config=" + write_jaas(d, jaas))
        args += ["-D" + s for s in sysprops]
        env = None if jvmflags is None else {"JVMFLAGS": "-Xmx256m " + jvmflags}
        proc = zkproc.start_apache(APACHE, port, d, *args, env=env)
        zkproc.wait_serving(port, proc, what="apache " + name)
    return Server(kind, port, proc, d)


@pytest.fixture(scope="session", autouse=True)
def _workdir_report():
    yield
    if os.environ.get("SECURITY_KEEP"):
        print(f"\nsecurity suite work directory kept: {WORKDIR}")


def pytest_sessionfinish(session, exitstatus):
    if exitstatus == 0 and not os.environ.get("SECURITY_KEEP"):
        shutil.rmtree(WORKDIR, ignore_errors=True)
    else:
        print(f"\nsecurity suite work directory: {WORKDIR}")


def expect_refused_start(c, *errors):
    """A refused login: one of `errors` from start() or from the first request. kazoo
    reports CONNECTED before its SASL exchange when the exchange is slow enough, so the
    refusal may surface from the first request; when the exchange fails before that,
    start() never sees CONNECTED and would time out with the client already in
    AUTH_FAILED (CI saw it on a loaded machine): that counts as refused too, for
    callers that accept AuthFailedError. So does a connection thread that died of one of
    `errors` before reporting any state: kazoo logs "Unhandled exception in connection
    loop" and start() times out (CI saw SessionClosedRequireSaslError end it so against
    ZooKeeper 3.8 in session 56)."""
    auth_failed = []
    report = c._session_callback  # the connection thread reports KeeperStates here

    def spy(state):
        if state == KeeperState.AUTH_FAILED:
            auth_failed.append(state)
        return report(state)
    c._session_callback = spy

    died_of = []

    class Died(logging.Handler):
        def emit(self, record):
            if record.exc_info and record.exc_info[1] is not None:
                died_of.append(record.exc_info[1])
    died = Died(level=logging.ERROR)
    kazoo_log = logging.getLogger("kazoo.client")
    kazoo_log.addHandler(died)
    try:
        c.start(timeout=15)
    except c.handler.timeout_exception:
        if auth_failed and AuthFailedError in errors:
            return
        if any(isinstance(e, errors) for e in died_of):
            return
        raise
    finally:
        kazoo_log.removeHandler(died)
    with pytest.raises(errors):
        c.exists("/")


def server_fixture(name, settings, jaas=None, sysprops=(), jvmflags=None):
    """A module-scoped fixture parametrized over KINDS."""
    @pytest.fixture(scope="module", params=KINDS)
    def fixture(request):
        s = start_server(request.param, name, settings, jaas, sysprops, jvmflags)
        yield s
        s.stop()
    return fixture
