"""SASL DIGEST-MD5 (kazoo + pure-sasl), `sasl` ACLs and super users, against rzk and
Apache ZooKeeper with the same JAAS `Server` section and
authProvider.1=...SASLAuthenticationProvider."""
import os
import subprocess
import uuid

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError, InvalidACLError, NoAuthError
from kazoo.security import ACL, Id, Permissions, make_acl, make_digest_acl

from conftest import (ADMIN_PW, ALICE_PW, BOB_PW, SASL_PROVIDER, SUPER_DIGEST_PW,
                      SUPER_SASL_PW, JAAS_SERVER, digest_of, expect_refused_start,
                      server_fixture)
import zkext

server = server_fixture(
    "sasl",
    ["authProvider.1=" + SASL_PROVIDER],
    jaas=JAAS_SERVER,
    sysprops=["zookeeper.superUser=admin",
              "zookeeper.DigestAuthenticationProvider.superDigest="
              + digest_of("super:" + SUPER_DIGEST_PW)],
)


def client(server, user=None, password=None, auth=None, start=True):
    opts = None
    if user is not None:
        opts = {"mechanism": "DIGEST-MD5", "username": user, "password": password}
    c = KazooClient(hosts=server.hosts, timeout=10, sasl_options=opts, auth_data=auth,
                    connection_retry={"max_tries": 0}, command_retry={"max_tries": 0})
    if start:
        c.start(timeout=15)
    return c


@pytest.fixture
def clients():
    made = []

    def make(*a, **kw):
        c = client(*a, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        try:
            c.stop()
            c.close()
        except Exception:
            pass


@pytest.fixture
def path():
    return "/sasl-" + uuid.uuid4().hex[:10]


def test_digest_md5_login_adds_sasl_id(server, clients):
    bob = clients(server, "bob", BOB_PW)
    assert ("sasl", "bob") in zkext.who_am_i(bob)


@pytest.mark.parametrize("user,pw", [("bob", "not-the-password"), ("mallory", "whatever")])
def test_bad_credentials_are_refused(server, user, pw):
    c = client(server, user, pw, start=False)
    try:
        expect_refused_start(c, AuthFailedError)
    finally:
        c.stop()
        c.close()


def test_sasl_acl_enforced(server, clients, path):
    bob = clients(server, "bob", BOB_PW)
    alice = clients(server, "alice", ALICE_PW)
    anon = clients(server)
    bob.create(path, b"mine", acl=[make_acl("sasl", "bob", all=True)])
    assert bob.get(path)[0] == b"mine"
    acl, _ = bob.get_acls(path)
    assert acl == [ACL(Permissions.ALL, Id("sasl", "bob"))]
    for other in (alice, anon):
        with pytest.raises(NoAuthError):
            other.get(path)
        with pytest.raises(NoAuthError):
            other.set(path, b"theirs")
    bob.delete(path)


def test_auth_acl_expands_to_sasl_id(server, clients, path):
    bob = clients(server, "bob", BOB_PW)
    bob.create(path, acl=[make_acl("auth", "", all=True)])
    acl, _ = bob.get_acls(path)
    assert acl == [ACL(Permissions.ALL, Id("sasl", "bob"))]
    bob.delete(path)


def test_invalid_sasl_acl_id(server, clients, path):
    bob = clients(server, "bob", BOB_PW)
    with pytest.raises(InvalidACLError):
        bob.create(path, acl=[make_acl("sasl", "a@B@C", all=True)])


@pytest.mark.parametrize("who", ["admin-superUser", "sasl-user-super", "superDigest"])
def test_super_users(server, clients, path, who):
    bob = clients(server, "bob", BOB_PW)
    bob.create(path, b"secret-data", acl=[make_acl("sasl", "bob", all=True)])
    if who == "admin-superUser":      # zookeeper.superUser=admin
        su = clients(server, "admin", ADMIN_PW)
    elif who == "sasl-user-super":    # SASL user "super" matches every sasl ACL
        su = clients(server, "super", SUPER_SASL_PW)
    else:                             # zookeeper.DigestAuthenticationProvider.superDigest
        su = clients(server, auth=[("digest", "super:" + SUPER_DIGEST_PW)])
    assert su.get(path)[0] == b"secret-data"
    su.set(path, b"changed")
    su.delete(path)


def test_super_user_bypasses_digest_acl_only_when_granted_super(server, clients, path):
    """The SASL user "super" matches sasl ACLs only; superUser=admin is a real super."""
    bob = clients(server, "bob", BOB_PW)
    bob.create(path, acl=[make_digest_acl("carol", "pw", all=True)])
    with pytest.raises(NoAuthError):
        clients(server, "super", SUPER_SASL_PW).get(path)
    admin = clients(server, "admin", ADMIN_PW)
    admin.get(path)
    admin.delete(path)


ZKCLI = os.environ.get("ZKCLI", "/usr/share/zookeeper/bin/zkCli.sh")


@pytest.mark.skipif(not os.path.exists(ZKCLI), reason="zkCli.sh not installed")
@pytest.mark.parametrize("password,expect", [(BOB_PW, "sasl: bob"),
                                             ("not-" + BOB_PW, "state:AuthFailed")])
def test_zkcli_jaas_client_section(server, tmp_path, password, expect):
    """Java's zkCli logs in with the `Client` section of its own JAAS file."""
    jaas = tmp_path / "client-jaas.conf"
    jaas.write_text('Client {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n'
                    f'  username="bob"\n  password="{password}";\n}};\n')
    env = dict(os.environ, CLIENT_JVMFLAGS=f"-Xmx128m -Djava.security.auth.login.config={jaas}")
    r = subprocess.run([ZKCLI, "-server", server.hosts, "whoami"], env=env, timeout=60,
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    out = r.stdout + r.stderr
    assert expect in out, out
    if expect.startswith("sasl"):
        assert "state:SaslAuthenticated" in out, out
