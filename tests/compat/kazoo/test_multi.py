"""multi / transactions (kazoo client.transaction()) and multiRead."""

import pytest
from kazoo.exceptions import (BadVersionError, NoNodeError, NodeExistsError,
                              NotEmptyError, RolledBackError,
                              RuntimeInconsistency, NoAuthError)
from kazoo.protocol.states import ZnodeStat
from kazoo.security import READ_ACL_UNSAFE

import zkext
import zkraw


def test_transaction_success_results(zk, base):
    zk.create(base + "/existing", b"old")
    t = zk.transaction()
    t.create(base + "/new", b"n")
    t.create(base + "/seq-", b"s", sequence=True)
    t.set_data(base + "/existing", b"changed")
    t.check(base + "/existing", 1)
    t.delete(base + "/new")
    t.create(base + "/eph", b"e", ephemeral=True)
    results = t.commit()
    assert len(results) == 6
    assert results[0] == base + "/new"
    assert results[1] == base + "/seq-0000000002"
    assert isinstance(results[2], ZnodeStat) and results[2].version == 1
    assert results[3] is True
    assert results[4] is True
    assert results[5] == base + "/eph"
    assert zk.get(base + "/existing")[0] == b"changed"
    assert zk.exists(base + "/new") is None
    assert zk.exists(base + "/eph").ephemeralOwner == zk.client_id[0]


def test_transaction_ops_share_one_zxid(zk, base):
    t = zk.transaction()
    t.create(base + "/a")
    t.create(base + "/b")
    t.create(base + "/a/c")
    t.commit()
    za = zk.exists(base + "/a").czxid
    assert zk.exists(base + "/b").czxid == za
    assert zk.exists(base + "/a/c").czxid == za
    # the set result stat carries the same zxid as mzxid
    t = zk.transaction()
    t.set_data(base + "/a", b"1")
    t.set_data(base + "/b", b"2")
    r = t.commit()
    assert r[0].mzxid == r[1].mzxid > za
    # parent's cversion counts each child op
    st = zk.exists(base)
    assert st.cversion == 2 and st.numChildren == 2


def test_transaction_failure_is_all_or_nothing(zk, base):
    zk.create(base + "/keep", b"v0")
    before = zk.exists(base)
    t = zk.transaction()
    t.create(base + "/t1")
    t.set_data(base + "/keep", b"v1")
    t.delete(base + "/missing")          # fails: NoNode
    t.create(base + "/t2")
    t.check(base + "/keep", 7)
    results = t.commit()
    # ops before the failing one: RolledBack (err 0); the failing op: its
    # real error; ops after it: RuntimeInconsistency (err -2)
    assert [type(r) for r in results] == [RolledBackError, RolledBackError, NoNodeError,
                                          RuntimeInconsistency, RuntimeInconsistency]
    assert zk.exists(base + "/t1") is None
    assert zk.exists(base + "/t2") is None
    assert zk.get(base + "/keep")[0] == b"v0"
    after = zk.exists(base)
    assert after.cversion == before.cversion
    assert after.pzxid == before.pzxid


@pytest.mark.parametrize("failing,exc", [
    ("check", BadVersionError),
    ("exists", NodeExistsError),
    ("notempty", NotEmptyError),
    ("setversion", BadVersionError),
    ("noparent", NoNodeError),
])
def test_transaction_reports_real_error(zk, base, failing, exc):
    zk.create(base + "/n/child", b"x", makepath=True)
    t = zk.transaction()
    t.create(base + "/first")
    if failing == "check":
        t.check(base + "/n", 5)
    elif failing == "exists":
        t.create(base + "/n")
    elif failing == "notempty":
        t.delete(base + "/n")
    elif failing == "setversion":
        t.set_data(base + "/n", b"", version=3)
    elif failing == "noparent":
        t.create(base + "/nope/x")
    results = t.commit()
    assert len(results) == 2
    assert isinstance(results[0], RolledBackError)
    assert type(results[1]) is exc
    assert zk.exists(base + "/first") is None


def test_transaction_sees_its_own_earlier_ops(zk, base):
    t = zk.transaction()
    t.create(base + "/p")
    t.create(base + "/p/c", b"1")
    t.set_data(base + "/p/c", b"2")
    t.check(base + "/p/c", 1)
    t.delete(base + "/p/c")
    t.delete(base + "/p")
    res = t.commit()
    assert res[0] == base + "/p" and res[-1] is True
    assert zk.exists(base + "/p") is None


def test_transaction_noauth(zk, base):
    zk.create(base + "/ro", acl=READ_ACL_UNSAFE)
    t = zk.transaction()
    t.create(base + "/ok")
    t.set_data(base + "/ro", b"x")
    res = t.commit()
    assert [type(r) for r in res] == [RolledBackError, NoAuthError]


def test_failed_multi_consumes_one_zxid(zk, base):
    zk.create(base + "/x")
    gaps = []
    for i in range(4):
        _, s1 = zk.create(base + "/m%da" % i, include_data=True)
        t = zk.transaction()
        t.create(base + "/m%dz" % i)
        t.create(base + "/x")
        t.commit()
        _, s2 = zk.create(base + "/m%db" % i, include_data=True)
        gaps.append(s2.czxid - s1.czxid)
        if gaps[-1] == 2:
            break
    assert 2 in gaps, gaps


def test_multi_wire_format(zk_hosts, base):
    """Raw multi: reply header err is 0 even on failure; result headers."""
    s = zkraw.RawSession(zk_hosts, timeout_ms=4000)
    try:
        def op(t, body):
            return zkraw.i32(t) + b"\x00" + zkraw.i32(-1) + body
        end = zkraw.i32(-1) + b"\x01" + zkraw.i32(-1)
        body = (op(zkraw.OP_CREATE, zkraw.create_body(base + "/a", b"x"))
                + op(zkraw.OP_CREATE2, zkraw.create_body(base + "/b", b"yy"))
                + op(zkraw.OP_SETDATA, zkraw.ustring(base + "/a") + zkraw.buffer(b"z") + zkraw.i32(0))
                + op(zkraw.OP_CHECK, zkraw.ustring(base + "/b") + zkraw.i32(0))
                + op(zkraw.OP_DELETE, zkraw.ustring(base + "/b") + zkraw.i32(-1))
                + end)
        rep = s.call(zkraw.OP_MULTI, body)
        assert rep.err == 0
        r = rep.reader()
        seen = []
        while True:
            t, done, err = r.i32(), r.boolean(), r.i32()
            if done:
                assert (t, err) == (-1, -1)
                break
            seen.append((t, err))
            if len(seen) == 1:
                assert t == zkraw.OP_CREATE
                assert r.ustring() == base + "/a"
            elif len(seen) == 2:
                # create2 inside multi: 3.9 (and 3.8.1+) answer with a
                # create2 result (path + stat); Apache 3.8.0 has a bug
                # (ZOOKEEPER-4026) and answers a plain create result (path).
                assert t in (zkraw.OP_CREATE2, zkraw.OP_CREATE)
                assert r.ustring() == base + "/b"
                if t == zkraw.OP_CREATE2:
                    st = r.stat()
                    assert st["czxid"] == rep.zxid and st["dataLength"] == 2
            elif t == zkraw.OP_SETDATA:
                assert r.stat()["version"] == 1
        assert [x[1] for x in seen] == [0] * 5
        assert [x[0] for x in seen][2:] == [5, 13, 2]
        assert r.remaining() == 0

        # failing multi: header err 0, per-op error results (type -1)
        body = (op(zkraw.OP_CREATE, zkraw.create_body(base + "/c"))
                + op(zkraw.OP_DELETE, zkraw.ustring(base + "/none") + zkraw.i32(-1))
                + op(zkraw.OP_CREATE, zkraw.create_body(base + "/d"))
                + end)
        rep = s.call(zkraw.OP_MULTI, body)
        assert rep.err == 0
        r = rep.reader()
        results = []
        while True:
            t, done, err = r.i32(), r.boolean(), r.i32()
            if done:
                break
            assert t == -1
            results.append((err, r.i32()))
        assert results == [(0, 0), (-101, -101), (-2, -2)]
        # an empty multi is valid too (the Java client never sends one)
        rep = s.call(zkraw.OP_MULTI, end)
        assert rep.err == 0
        r = rep.reader()
        assert (r.i32(), r.boolean(), r.i32()) == (-1, True, -1)
        # a read op inside a write multi is a marshalling error
        body = op(zkraw.OP_GETDATA, zkraw.path_watch_body(base)) + end
        rep = s.call(zkraw.OP_MULTI, body)
        assert rep.err == -5
    finally:
        s.close_session()


def test_multi_read(zk, base):
    zk.create(base + "/a", b"A")
    zk.create(base + "/a/x")
    res = zkext.multi_read(zk, [("get_children", base + "/a"),
                                ("get", base + "/missing"),
                                ("get", base + "/a"),
                                ("get_children", base + "/missing")])
    assert res[0] == ["x"]
    assert res[1] == -101
    data, st = res[2]
    assert data == b"A" and st == zk.exists(base + "/a")
    assert res[3] == -101
