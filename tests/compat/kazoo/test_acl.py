"""ACLs: world, digest (add_auth), auth, ip schemes; NoAuth/InvalidACL;
getACL/setACL with versions; redaction of digest ids for non-admins."""

import uuid

import pytest
from kazoo.exceptions import (AuthFailedError, BadVersionError,
                              InvalidACLError, NoAuthError, NoNodeError)
from kazoo.security import (ACL, Id, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE,
                            make_acl, make_digest_acl,
                            make_digest_acl_credential)

import zkext
import zkraw

BOB_DIGEST = "bob:fyVmFCwVbTJYrznoSu1koqYEYF0="   # bob:secret


def acl_tuples(acls):
    return [(a.perms, a.id.scheme, a.id.id) for a in acls]


def test_digest_credential_hash():
    # sanity check of the expected value (SHA1 over "user:password", base64)
    assert make_digest_acl_credential("bob", "secret") == BOB_DIGEST


def test_default_acl_is_open(zk, base):
    zk.create(base + "/o")
    acls, st = zk.get_acls(base + "/o")
    assert acl_tuples(acls) == [(31, "world", "anyone")]
    assert st == zk.exists(base + "/o")


def test_world_read_only(zk, make_client, base):
    zk.create(base + "/ro", b"r", acl=READ_ACL_UNSAFE)
    other = make_client()
    assert other.get(base + "/ro")[0] == b"r"
    with pytest.raises(NoAuthError):
        other.set(base + "/ro", b"w")
    with pytest.raises(NoAuthError):
        zk.set(base + "/ro", b"w")          # creator has no special rights
    with pytest.raises(NoAuthError):
        zk.create(base + "/ro/child")        # needs CREATE on the parent
    with pytest.raises(NoAuthError):
        zk.set_acls(base + "/ro", OPEN_ACL_UNSAFE)   # needs ADMIN
    # DELETE is checked on the parent, not on the node itself
    zk.delete(base + "/ro")
    assert zk.exists(base + "/ro") is None


def test_digest_acl_requires_auth(zk, make_client, base):
    zk.create(base + "/d", b"secret-data", acl=[make_digest_acl("bob", "secret", all=True)])
    anon = make_client()
    with pytest.raises(NoAuthError):
        anon.get(base + "/d")
    with pytest.raises(NoAuthError):
        anon.get_children(base + "/d")
    with pytest.raises(NoAuthError):
        anon.set(base + "/d", b"x")
    with pytest.raises(NoAuthError):
        anon.get_acls(base + "/d")
    with pytest.raises(NoAuthError):
        zkext.get_all_children_number(anon, base + "/d")

    wrong = make_client()
    wrong.add_auth("digest", "bob:wrong")
    with pytest.raises(NoAuthError):
        wrong.get(base + "/d")

    bob = make_client()
    bob.add_auth("digest", "bob:secret")
    assert bob.get(base + "/d")[0] == b"secret-data"
    bob.set(base + "/d", b"new")
    acls, _ = bob.get_acls(base + "/d")
    assert acl_tuples(acls) == [(31, "digest", BOB_DIGEST)]

    # auth data given at connect time works the same
    bob2 = make_client(auth_data=[("digest", "bob:secret")])
    assert bob2.get(base + "/d")[0] == b"new"


def test_exists_does_not_check_acl(zk, make_client, base):
    # ZooKeeper answers exists() without any ACL check
    zk.create(base + "/hidden", b"abc", acl=[make_digest_acl("bob", "secret", all=True)])
    anon = make_client()
    st = anon.exists(base + "/hidden")
    assert st is not None and st.dataLength == 3


def test_auth_scheme_expands_to_authenticated_ids(zk, make_client, base):
    with pytest.raises(InvalidACLError):
        # no authenticated identity yet (the ip id does not count)
        zk.create(base + "/a0", acl=[make_acl("auth", "", all=True)])
    zk.add_auth("digest", "bob:secret")
    zk.create(base + "/a1", b"1", acl=[make_acl("auth", "", all=True)])
    acls, _ = zk.get_acls(base + "/a1")
    assert acl_tuples(acls) == [(31, "digest", BOB_DIGEST)]

    zk.add_auth("digest", "alice:pw")
    # the id given with the auth scheme is ignored; duplicates are dropped
    zk.create(base + "/a2", acl=[make_acl("auth", "whatever", read=True, admin=True),
                                 make_acl("world", "anyone", read=True),
                                 make_acl("world", "anyone", read=True)])
    acls, _ = zk.get_acls(base + "/a2")
    got = acl_tuples(acls)
    assert sorted(got) == sorted([
        (17, "digest", BOB_DIGEST),
        (17, "digest", "alice:" + make_digest_acl_credential("alice", "pw").split(":", 1)[1]),
        (1, "world", "anyone"),
    ])

    anon = make_client()
    with pytest.raises(NoAuthError):
        anon.get(base + "/a1")


def test_duplicate_acl_entries_removed_only_when_identical(zk, base):
    zk.create(base + "/dup", acl=[make_acl("world", "anyone", read=True),
                                  make_acl("world", "anyone", read=True),
                                  make_acl("world", "anyone", all=True)])
    acls, _ = zk.get_acls(base + "/dup")
    assert acl_tuples(acls) == [(1, "world", "anyone"), (31, "world", "anyone")]


def test_get_acl_redacts_digest_for_non_admin(zk, make_client, base):
    zk.create(base + "/r", acl=[make_digest_acl("bob", "secret", read=True),
                                make_acl("world", "anyone", read=True)])
    anon = make_client()
    acls, _ = anon.get_acls(base + "/r")
    assert acl_tuples(acls) == [(1, "digest", "bob:x"), (1, "world", "anyone")]
    # an admin sees the real digest
    zk.create(base + "/adm", acl=[make_digest_acl("bob", "secret", read=True),
                                  make_acl("world", "anyone", admin=True)])
    acls, _ = anon.get_acls(base + "/adm")
    assert acl_tuples(acls) == [(1, "digest", BOB_DIGEST), (16, "world", "anyone")]


def test_get_acl_needs_read_or_admin(zk, make_client, base):
    zk.create(base + "/w", acl=[make_acl("world", "anyone", write=True)])
    anon = make_client()
    with pytest.raises(NoAuthError):
        anon.get_acls(base + "/w")
    anon.set(base + "/w", b"ok")   # WRITE is enough for setData


def test_ip_scheme(zk, make_client, base):
    zk.create(base + "/ip", b"i", acl=[make_acl("ip", "127.0.0.1", read=True),
                                       make_acl("ip", "10.0.0.0/8", all=True)])
    other = make_client()
    assert other.get(base + "/ip")[0] == b"i"
    with pytest.raises(NoAuthError):
        other.set(base + "/ip", b"x")
    zk.create(base + "/net", b"n", acl=[make_acl("ip", "127.0.0.0/8", all=True)])
    other.set(base + "/net", b"m")
    zk.create(base + "/host32", b"h", acl=[make_acl("ip", "127.0.0.1/32", read=True)])
    assert other.get(base + "/host32")[0] == b"h"
    zk.create(base + "/far", b"f", acl=[make_acl("ip", "192.0.2.1", all=True)])
    with pytest.raises(NoAuthError):
        other.get(base + "/far")


def test_who_am_i_reports_ids(zk, make_client):
    c = make_client()
    ids = zkext.who_am_i(c)
    assert ids == [("ip", "127.0.0.1")]
    c.add_auth("digest", "bob:secret")
    c.add_auth("digest", "alice:pw")
    # order is the server's; compare as sets
    assert sorted(zkext.who_am_i(c)) == sorted([("ip", "127.0.0.1"), ("digest", "bob"),
                                                ("digest", "alice")])


def test_who_am_i_and_auth_acls_list_ids_in_zookeepers_order(zk, make_client):
    # ZooKeeper keeps a connection's ids in a hash set: it lists them by hash, not in the
    # order they were added (carol first here).
    c = make_client()
    c.add_auth("digest", "carol:pw")
    c.add_auth("digest", "bob:pw")
    assert zkext.who_am_i(c) == [("digest", "bob"), ("digest", "carol"), ("ip", "127.0.0.1")]
    path = "/who-order-" + uuid.uuid4().hex
    c.create(path, b"", acl=[ACL(31, Id("auth", ""))])
    acl, _ = c.get_acls(path)
    assert [a.id.id.split(":")[0] for a in acl] == ["bob", "carol"], acl
    c.delete(path)


@pytest.mark.parametrize("acl", [
    ACL(31, Id("digest", "nocolon")),
    ACL(31, Id("digest", "a:b:c")),
    ACL(31, Id("foo", "bar")),
    ACL(31, Id("ip", "not-an-ip")),
    ACL(31, Id("ip", "127.0.0.1/40")),
    ACL(31, Id("world", "someone")),
    ACL(31, Id("super", "x")),
], ids=lambda a: "%s:%s" % (a.id.scheme, a.id.id))
def test_invalid_acls(zk, base, acl):
    with pytest.raises(InvalidACLError):
        zk.create(base + "/inv", acl=[acl])
    zk.create(base + "/ok")
    with pytest.raises(InvalidACLError):
        zk.set_acls(base + "/ok", [acl])


def test_perm_bits_are_not_validated(zk, base):
    # perms 0 (nothing) and bits outside ALL are accepted as given
    zk.create(base + "/p0", acl=[make_acl("world", "anyone")])
    zk.create(base + "/p32", acl=[ACL(32, Id("world", "anyone"))])
    with pytest.raises(NoAuthError):
        zk.get(base + "/p0")
    with pytest.raises(NoAuthError):
        zk.get_acls(base + "/p32")


def test_empty_acl_is_invalid(zk_hosts, base):
    # kazoo substitutes its default for an empty list, so send it raw
    s = zkraw.RawSession(zk_hosts, timeout_ms=4000)
    try:
        assert s.call(zkraw.OP_CREATE, zkraw.create_body(base + "/e", acl=[])).err == -114
        body = zkraw.ustring(base) + zkraw.acl_vector([]) + zkraw.i32(-1)
        assert s.call(zkraw.OP_SETACL, body).err == -114
    finally:
        s.close_session()


def test_set_acls_versions(zk, base):
    zk.create(base + "/s", b"data")
    st0 = zk.exists(base + "/s")
    st1 = zk.set_acls(base + "/s", [make_acl("world", "anyone", read=True, admin=True,
                                             write=True)], version=0)
    assert st1.aversion == 1
    assert st1.version == st0.version
    assert st1.mzxid == st0.mzxid       # setACL does not touch mzxid
    assert st1.cversion == st0.cversion
    with pytest.raises(BadVersionError):
        zk.set_acls(base + "/s", OPEN_ACL_UNSAFE, version=0)
    st2 = zk.set_acls(base + "/s", OPEN_ACL_UNSAFE)   # -1 = any version
    assert st2.aversion == 2
    acls, st = zk.get_acls(base + "/s")
    assert acl_tuples(acls) == [(31, "world", "anyone")]
    assert st.aversion == 2
    with pytest.raises(NoNodeError):
        zk.set_acls(base + "/missing", OPEN_ACL_UNSAFE)


def test_set_acls_with_auth_scheme(zk, make_client, base):
    zk.create(base + "/x", b"v")
    zk.add_auth("digest", "bob:secret")
    zk.set_acls(base + "/x", [make_acl("auth", "", all=True)])
    acls, _ = zk.get_acls(base + "/x")
    assert acl_tuples(acls) == [(31, "digest", BOB_DIGEST)]
    anon = make_client()
    with pytest.raises(NoAuthError):
        anon.get(base + "/x")


def test_create_needs_create_delete_needs_delete_on_parent(zk, base):
    zk.create(base + "/p", acl=[make_acl("world", "anyone", read=True, create=True,
                                         admin=True)])
    zk.create(base + "/p/c")
    with pytest.raises(NoAuthError):
        zk.delete(base + "/p/c")
    zk.set_acls(base + "/p", OPEN_ACL_UNSAFE)
    zk.delete(base + "/p/c")
    zk.create(base + "/q")
    zk.create(base + "/q/c")
    zk.set_acls(base + "/q", [make_acl("world", "anyone", read=True, delete=True)])
    with pytest.raises(NoAuthError):
        zk.create(base + "/q/c2")
    zk.delete(base + "/q/c")
    assert zk.get_children(base + "/q") == []


def test_bad_auth_scheme_fails_connection(make_client):
    other = make_client()
    c = make_client()
    with pytest.raises(AuthFailedError):
        c.add_auth("no-such-scheme", "whatever")
    # (the server closes the connection; see test_auth_failed_raw)
    assert other.exists("/") is not None


def test_auth_failed_raw(zk_hosts):
    s = zkraw.RawSession(zk_hosts, timeout_ms=4000)
    body = zkraw.i32(0) + zkraw.ustring("no-such-scheme") + zkraw.buffer(b"x")
    rep = s.call(zkraw.OP_AUTH, body, xid=zkraw.AUTH_XID)
    assert (rep.xid, rep.zxid, rep.err) == (-4, 0, -115)
    closed, _ = s.expect_closed(5)
    assert closed
    s.close()
    # a good auth reply: xid -4, zxid 0, err 0
    s = zkraw.RawSession(zk_hosts, timeout_ms=4000)
    body = zkraw.i32(0) + zkraw.ustring("digest") + zkraw.buffer(b"bob:secret")
    rep = s.call(zkraw.OP_AUTH, body, xid=zkraw.AUTH_XID)
    assert (rep.xid, rep.zxid, rep.err) == (-4, 0, 0)
    s.close_session()


def test_empty_and_null_digest_credentials_raw(zk_hosts):
    """Empty digest credentials are taken (an id with an empty user); null ones
    (length -1, which kazoo sends for "") are AUTHFAILED and the connection closes.
    Other providers never read the credentials (x509 is covered by tests/tls)."""
    s = zkraw.RawSession(zk_hosts, timeout_ms=4000)
    body = zkraw.i32(0) + zkraw.ustring("digest") + zkraw.buffer(b"")
    rep = s.call(zkraw.OP_AUTH, body, xid=zkraw.AUTH_XID)
    assert (rep.xid, rep.err) == (-4, 0)
    r = s.call(zkraw.OP_WHOAMI).reader()
    ids = [(r.ustring(), r.ustring()) for _ in range(r.i32())]
    assert sorted(ids) == [("digest", ""), ("ip", "127.0.0.1")]
    s.close_session()
    s = zkraw.RawSession(zk_hosts, timeout_ms=4000)
    body = zkraw.i32(0) + zkraw.ustring("digest") + zkraw.i32(-1)
    rep = s.call(zkraw.OP_AUTH, body, xid=zkraw.AUTH_XID)
    assert (rep.xid, rep.err) == (-4, -115)
    closed, _ = s.expect_closed(5)
    s.close()
    assert closed
    # the ip provider never reads the credentials: null ones are fine there
    s = zkraw.RawSession(zk_hosts, timeout_ms=4000)
    body = zkraw.i32(0) + zkraw.ustring("ip") + zkraw.i32(-1)
    rep = s.call(zkraw.OP_AUTH, body, xid=zkraw.AUTH_XID)
    assert (rep.xid, rep.err) == (-4, 0)
    assert s.call(zkraw.OP_EXISTS, zkraw.path_watch_body("/")).err == 0
    s.close_session()
