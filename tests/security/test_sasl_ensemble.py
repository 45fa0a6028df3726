"""SASL in a 3-voter rzk ensemble: a session authenticated on a follower creates a node
with a `sasl:` ACL (the write is forwarded; the leader judges the session's sasl id with
its own providers) and the ACL holds on every member."""
import os

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_acl

import zkproc
from conftest import (ALICE_PW, BOB_PW, JAAS_SERVER, KINDS, RZK, SASL_PROVIDER, _ports,
                      rzk_env, workdir, write_jaas)

pytestmark = pytest.mark.skipif("rzk" not in KINDS, reason="rzk not selected")


@pytest.fixture(scope="module")
def ensemble():
    ids = (1, 2, 3)
    client = {i: next(_ports) for i in ids}
    quorum = next(_ports) + 100
    election = quorum + 10
    for _ in range(4):  # keep the counter clear of the peer ports
        next(_ports)
    servers = zkproc.server_lines(ids, quorum, election)
    procs = {}
    for i in ids:
        d = workdir(f"rzk-ensemble{i}")
        jaas = write_jaas(d, JAAS_SERVER)
        cfg = zkproc.write_config(os.path.join(d, "zoo.cfg"), client[i],
                                  "authProvider.1=" + SASL_PROVIDER,
                                  "java.security.auth.login.config=" + jaas,
                                  servers=servers, myid=i)
        procs[i] = zkproc.start_rzk(RZK, cfg, client[i], env=rzk_env())
    try:
        leader = zkproc.wait_settled([client[i] for i in ids])
        yield client, leader
    finally:
        for p in procs.values():
            p.stop()


def sasl_client(port, user, pw):
    c = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10, sasl_options={
        "mechanism": "DIGEST-MD5", "username": user, "password": pw})
    c.start(timeout=15)
    return c


def test_sasl_acl_through_a_follower(ensemble):
    client, leader = ensemble
    followers = [p for p in client.values() if p != leader]
    bob = sasl_client(followers[0], "bob", BOB_PW)
    made = [bob]
    try:
        bob.create("/ens-sasl", b"bob's", acl=[make_acl("sasl", "bob", all=True)])
        for port in client.values():
            b = sasl_client(port, "bob", BOB_PW)
            a = sasl_client(port, "alice", ALICE_PW)
            made += [a, b]
            b.sync("/ens-sasl")
            assert b.get("/ens-sasl")[0] == b"bob's"
            with pytest.raises(NoAuthError):
                a.get("/ens-sasl")
        # `auth` expands to the sasl id on the leader too.
        bob.create("/ens-auth", acl=[make_acl("auth", "", all=True)])
        acl, _ = bob.get_acls("/ens-auth")
        assert [(x.id.scheme, x.id.id) for x in acl] == [("sasl", "bob")]
        bob.delete("/ens-auth")
        bob.delete("/ens-sasl")
    finally:
        for c in made:
            c.stop()
            c.close()
