"""DigestAuthenticationProvider.digestAlg: digest ids, digest ACLs and superDigest hashed
with SHA-256 instead of SHA-1, on rzk and Apache ZooKeeper 3.8 alike (the setting is a JVM
system property for both, as ZooKeeper reads it)."""
import base64
import hashlib

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_acl

from conftest import server_fixture

ALG = "SHA-256"
SUPER_PW = "Sha256-super-pw-5e1d"


def digest256(user_password):
    user = user_password.split(":", 1)[0]
    h = hashlib.sha256(user_password.encode()).digest()
    return user + ":" + base64.b64encode(h).decode()


server = server_fixture(
    "digestalg", [],
    sysprops=[f"zookeeper.DigestAuthenticationProvider.digestAlg={ALG}",
              "zookeeper.DigestAuthenticationProvider.superDigest="
              + digest256("super:" + SUPER_PW)],
)


def client(server, auth=None):
    c = KazooClient(hosts=server.hosts, timeout=10, auth_data=auth)
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
        c.stop()
        c.close()


def test_auth_acl_holds_the_sha256_id(server, clients):
    bob = clients(server, auth=[("digest", "bob:pw-1")])
    path = f"/digestalg-{server.kind}"
    bob.create(path, b"x", acl=[make_acl("auth", "", all=True)])
    acl, _ = bob.get_acls(path)
    assert [(a.id.scheme, a.id.id) for a in acl] == [("digest", digest256("bob:pw-1"))]
    # A digest ACL written by hand with the SHA-256 id lets bob in, and only bob.
    other = f"{path}-byhand"
    bob.create(other, b"y", acl=[make_acl("digest", digest256("bob:pw-1"), all=True)])
    assert clients(server, auth=[("digest", "bob:pw-1")]).get(other)[0] == b"y"
    with pytest.raises(NoAuthError):
        clients(server, auth=[("digest", "bob:pw-2")]).get(other)
    # superDigest is compared under the same algorithm.
    su = clients(server, auth=[("digest", "super:" + SUPER_PW)])
    assert su.get(path)[0] == b"x"
    su.delete(other)
    su.delete(path)
