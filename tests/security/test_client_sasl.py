"""rzk's own client logs in with SASL DIGEST-MD5: `rzk shell` (rzk-client underneath)
against rzk AND Apache ZooKeeper 3.8 with the same JAAS `Server` section, configured by
flags (-sasl-user/-sasl-password-file, -jaas) and the zkCli way (CLIENT_JVMFLAGS with
-Djava.security.auth.login.config). The login gives `sasl:<user>`, a `sasl:` ACL is then
readable by that user only, and a wrong password or unknown user fails the command.

Every shell run writes its output, at RZK_LOG=debug, to <workdir>/rzk-shell-*/shell-N.log,
which test_zz_secrets.py greps for the suite's passwords with the servers' logs."""
import itertools
import os
import subprocess
import uuid

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_acl

from conftest import ALICE_PW, BOB_PW, JAAS_SERVER, RZK, SASL_PROVIDER, server_fixture, workdir

server = server_fixture("client-sasl", ["authProvider.1=" + SASL_PROVIDER], jaas=JAAS_SERVER)

SHELL_DIR = workdir("rzk-shell")
_runs = itertools.count()


def secret_file(name, text):
    p = os.path.join(SHELL_DIR, name)
    with open(p, "w") as f:
        f.write(text + "\n")
    return p


def client_jaas(user, password, section="Client"):
    return secret_file(f"jaas-{user}-{uuid.uuid4().hex[:6]}.conf",
                       f"{section} {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n"
                       f'  username="{user}"\n  password="{password}";\n}};')


def shell(server, *args, env_extra=None):
    """Runs `rzk shell -server <server> args...`; returns (exit code, output). The output
    goes to a log file of the suite first."""
    env = dict(os.environ, RZK_LOG="debug")
    env.pop("JVMFLAGS", None)
    env.pop("CLIENT_JVMFLAGS", None)
    env.update(env_extra or {})
    log = os.path.join(SHELL_DIR, f"shell-{next(_runs)}.log")
    with open(log, "wb") as out:
        r = subprocess.run([RZK, "shell", "-server", server.hosts, "-timeout", "10000", *args],
                           stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                           env=env, timeout=60)
    with open(log, errors="replace") as f:
        return r.returncode, f.read()


def as_user(user, password):
    return ["-sasl-user", user, "-sasl-password-file",
            secret_file(f"{user}-{uuid.uuid4().hex[:6]}.pw", password)]


@pytest.fixture
def path():
    return "/client-sasl-" + uuid.uuid4().hex[:10]


def test_flags_login_gives_the_sasl_id(server):
    rc, out = shell(server, *as_user("bob", BOB_PW), "whoami")
    assert rc == 0, out
    assert "sasl: bob" in out, out


def test_sasl_acl_readable_by_its_user_only(server, path):
    # kazoo (pure-sasl) makes the node: the oracle's client and ours agree on the ACL.
    bob = KazooClient(hosts=server.hosts, timeout=10, sasl_options={
        "mechanism": "DIGEST-MD5", "username": "bob", "password": BOB_PW})
    bob.start(timeout=15)
    try:
        bob.create(path, b"bobs-data", acl=[make_acl("sasl", "bob", all=True)])
        rc, out = shell(server, *as_user("bob", BOB_PW), "get", path)
        assert rc == 0 and "bobs-data" in out, out
        rc, out = shell(server, *as_user("alice", ALICE_PW), "get", path)
        assert rc != 0 and "Insufficient permission" in out and "bobs-data" not in out, out
        rc, out = shell(server, "get", path)
        assert rc != 0 and "Insufficient permission" in out, out
    finally:
        bob.delete(path)
        bob.stop()
        bob.close()


def test_shell_creates_and_reads_a_sasl_node(server, path):
    rc, out = shell(server, *as_user("alice", ALICE_PW), "create", path, "alices", "sasl:alice:cdrwa")
    assert rc == 0, out
    rc, out = shell(server, *as_user("alice", ALICE_PW), "getAcl", path)
    assert rc == 0 and "'sasl,'alice" in out, out
    rc, out = shell(server, *as_user("bob", BOB_PW), "get", path)
    assert rc != 0 and "Insufficient permission" in out, out
    rc, out = shell(server, *as_user("alice", ALICE_PW), "delete", path)
    assert rc == 0, out


@pytest.mark.parametrize("user,pw", [("bob", "not-" + BOB_PW), ("mallory", "mallory-pw")])
def test_wrong_credentials_fail(server, user, pw):
    rc, out = shell(server, *as_user(user, pw), "ls", "/")
    assert rc != 0, out
    assert "KeeperErrorCode = AuthFailed" in out, out


def test_unknown_user_with_the_last_users_password(server):
    """ZooKeeper 3.8's DIGEST-MD5 callback handler is shared by all connections and keeps
    the last known user's name when an unknown one logs in, so an unknown user with the
    password of whoever logged in last is let in as sasl:<unknown user>. rzk refuses it
    (docs/COMPATIBILITY.md); this pins both behaviours."""
    rc, out = shell(server, *as_user("bob", BOB_PW), "whoami")
    assert rc == 0 and "sasl: bob" in out, out
    rc, out = shell(server, *as_user("mallory", BOB_PW), "whoami")
    if server.kind == "apache":
        assert rc == 0 and "sasl: mallory" in out, out
    else:
        assert rc != 0 and "KeeperErrorCode = AuthFailed" in out, out


def test_jaas_client_section_by_flag_and_by_client_jvmflags(server):
    jaas = client_jaas("bob", BOB_PW)
    rc, out = shell(server, "-jaas", jaas, "whoami")
    assert rc == 0 and "sasl: bob" in out, out
    rc, out = shell(server, "whoami", env_extra={
        "CLIENT_JVMFLAGS": f"-Xmx128m -Djava.security.auth.login.config={jaas}"})
    assert rc == 0 and "sasl: bob" in out, out
    other = client_jaas("alice", ALICE_PW, section="AliceLogin")
    rc, out = shell(server, "whoami", env_extra={
        "JVMFLAGS": f"-Djava.security.auth.login.config={other} "
                    "-Dzookeeper.sasl.clientconfig=AliceLogin"})
    assert rc == 0 and "sasl: alice" in out, out
    wrong = client_jaas("bob", "wrong-" + BOB_PW)
    rc, out = shell(server, "whoami", env_extra={
        "CLIENT_JVMFLAGS": f"-Djava.security.auth.login.config={wrong}"})
    assert rc != 0 and "KeeperErrorCode = AuthFailed" in out, out


required = server_fixture(
    "client-sasl-required",
    ["authProvider.1=" + SASL_PROVIDER, "sessionRequireClientSASLAuth=true"],
    jaas=JAAS_SERVER,
)


def test_login_comes_before_any_other_request(required, path):
    """With SASL required (sessionRequireClientSASLAuth), any request before the login is
    refused with -124: rzk-client's create/getAcl/delete succeed, so nothing went out
    before its login; without a login the shell fails."""
    rc, out = shell(required, *as_user("bob", BOB_PW), "create", path, "x", "sasl:bob:cdrwa")
    assert rc == 0, out
    rc, out = shell(required, *as_user("bob", BOB_PW), "getAcl", path)
    assert rc == 0 and "'sasl,'bob" in out, out
    rc, out = shell(required, "ls", "/")
    assert rc != 0, out
    rc, out = shell(required, *as_user("bob", BOB_PW), "delete", path)
    assert rc == 0, out
