"""Basic znode operations through kazoo: create (all plain modes), delete,
exists, get, set, get_children, and the exact Stat bookkeeping."""

import re

import pytest
from kazoo.exceptions import (BadVersionError, NoNodeError, NodeExistsError,
                              NotEmptyError, NoChildrenForEphemeralsError,
                              BadArgumentsError)

import zkraw


def test_create_persistent_and_get(zk, base):
    path = zk.create(base + "/p", b"hello")
    assert path == base + "/p"
    data, st = zk.get(base + "/p")
    assert data == b"hello"
    assert st.version == 0
    assert st.cversion == 0
    assert st.aversion == 0
    assert st.ephemeralOwner == 0
    assert st.dataLength == 5
    assert st.numChildren == 0
    assert st.czxid == st.mzxid == st.pzxid
    assert st.ctime == st.mtime
    assert st.czxid > 0


def test_create_empty_data_has_zero_length(zk, base):
    zk.create(base + "/e")
    data, st = zk.get(base + "/e")
    assert data == b""
    assert st.dataLength == 0


def _raw(zk, request):
    """Sends a request through kazoo's connection as is (its public API refuses None data)."""
    result = zk.handler.async_result()
    zk._call(request, result)
    return result.get(timeout=10)


def test_null_data_is_not_empty_data(zk, base):
    # A create or setData with a null buffer (length -1, what zkCli's `create /x` sends)
    # stores null data: getData answers null (None), not an empty buffer.
    from kazoo.protocol.serialization import Create, SetData, GetData
    from kazoo.security import OPEN_ACL_UNSAFE
    _raw(zk, Create(base + "/n", None, OPEN_ACL_UNSAFE, 0))
    data, st = zk.get(base + "/n")
    assert data is None
    assert st.dataLength == 0
    zk.set(base + "/n", b"v")
    assert zk.get(base + "/n")[0] == b"v"
    _raw(zk, SetData(base + "/n", None, -1))
    data, st = zk.get(base + "/n")
    assert (data, st.version, st.dataLength) == (None, 2, 0)
    data, _ = _raw(zk, GetData(base + "/n", None))
    assert data is None
    zk.set(base + "/n", b"")
    assert zk.get(base + "/n")[0] == b""


def test_create_returns_stat_with_include_data(zk, base):
    path, st = zk.create(base + "/x", b"abc", include_data=True)
    assert path == base + "/x"
    assert st.dataLength == 3
    assert st.version == 0
    assert st == zk.exists(base + "/x")


def test_create_existing_is_node_exists(zk, base):
    zk.create(base + "/dup")
    with pytest.raises(NodeExistsError):
        zk.create(base + "/dup")


def test_create_without_parent_is_no_node(zk, base):
    with pytest.raises(NoNodeError):
        zk.create(base + "/missing/child")


def test_makepath_creates_parents(zk, base):
    p = zk.create(base + "/a/b/c", b"leaf", makepath=True)
    assert p == base + "/a/b/c"
    assert zk.get(base + "/a/b/c")[0] == b"leaf"
    assert zk.get(base + "/a")[0] == b""
    assert zk.get_children(base + "/a") == ["b"]
    zk.ensure_path(base + "/a/b/c")  # idempotent
    zk.ensure_path(base + "/q/r")
    assert zk.exists(base + "/q/r") is not None


def test_ephemeral_owner_and_no_children(zk, base):
    zk.create(base + "/eph", b"e", ephemeral=True)
    st = zk.exists(base + "/eph")
    assert st.ephemeralOwner == zk.client_id[0]
    assert st.ephemeralOwner != 0
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(base + "/eph/child")


def test_sequential_suffix_format(zk, base):
    p1 = zk.create(base + "/s-", sequence=True)
    p2 = zk.create(base + "/s-", sequence=True)
    p3 = zk.create(base + "/other", sequence=True)
    assert p1 == base + "/s-0000000000"
    assert p2 == base + "/s-0000000001"
    # the counter is per parent, shared by all names
    assert p3 == base + "/other0000000002"
    assert sorted(zk.get_children(base)) == ["other0000000002", "s-0000000000", "s-0000000001"]


def test_sequential_counter_is_parent_create_count(zk, base):
    # The suffix is the number of child *creations* the parent has seen
    # (deletes do not advance it, though they do bump the visible cversion).
    zk.create(base + "/a")
    zk.create(base + "/b")
    zk.delete(base + "/a")
    st = zk.exists(base)
    assert st.cversion == 3          # 2 creates + 1 delete
    p = zk.create(base + "/seq-", sequence=True)
    assert p == base + "/seq-0000000002"
    # a failed create does not advance the counter
    with pytest.raises(NodeExistsError):
        zk.create(base + "/b")
    p = zk.create(base + "/seq-", sequence=True)
    assert p == base + "/seq-0000000003"


def test_sequential_with_trailing_slash_names_child_by_number(zk, base):
    zk.create(base + "/dir")
    p = zk.create(base + "/dir/", b"", sequence=True)
    assert p == base + "/dir/0000000000"


def test_ephemeral_sequential(zk, base):
    p = zk.create(base + "/es-", b"v", ephemeral=True, sequence=True)
    assert re.fullmatch(re.escape(base) + r"/es-\d{10}", p)
    assert p.endswith("0000000000")
    st = zk.exists(p)
    assert st.ephemeralOwner == zk.client_id[0]


def test_delete_unconditional_and_versioned(zk, base):
    zk.create(base + "/d", b"1")
    zk.set(base + "/d", b"2")
    with pytest.raises(BadVersionError):
        zk.delete(base + "/d", version=0)
    zk.delete(base + "/d", version=1)
    assert zk.exists(base + "/d") is None
    zk.create(base + "/d2")
    zk.delete(base + "/d2")  # version -1 = any
    assert zk.exists(base + "/d2") is None


def test_delete_missing_is_no_node(zk, base):
    with pytest.raises(NoNodeError):
        zk.delete(base + "/nope")
    with pytest.raises(NoNodeError):
        zk.delete(base + "/nope", version=3)


def test_delete_not_empty(zk, base):
    zk.create(base + "/parent/child", makepath=True)
    with pytest.raises(NotEmptyError):
        zk.delete(base + "/parent")
    zk.delete(base + "/parent", recursive=True)
    assert zk.exists(base + "/parent") is None


def test_delete_recursive_tree(zk, base):
    for p in ("/t/a/1", "/t/a/2", "/t/b", "/t/c/d/e"):
        zk.create(base + p, makepath=True)
    zk.delete(base + "/t", recursive=True)
    assert zk.exists(base + "/t") is None
    assert zk.get_children(base) == []


def test_exists(zk, base):
    assert zk.exists(base + "/none") is None
    zk.create(base + "/yes", b"12")
    st = zk.exists(base + "/yes")
    assert st is not None and st.dataLength == 2


def test_get_missing_is_no_node(zk, base):
    with pytest.raises(NoNodeError):
        zk.get(base + "/none")
    with pytest.raises(NoNodeError):
        zk.get_children(base + "/none")
    with pytest.raises(NoNodeError):
        zk.set(base + "/none", b"x")


def test_set_and_versions(zk, base):
    zk.create(base + "/v", b"0")
    st0 = zk.exists(base + "/v")
    st1 = zk.set(base + "/v", b"one")
    assert st1.version == 1
    assert st1.dataLength == 3
    assert st1.czxid == st0.czxid
    assert st1.mzxid > st0.mzxid
    assert st1.pzxid == st0.pzxid
    assert st1.ctime == st0.ctime
    assert st1.mtime >= st0.mtime
    assert st1.cversion == 0 and st1.aversion == 0
    st2 = zk.set(base + "/v", b"two", version=1)
    assert st2.version == 2
    with pytest.raises(BadVersionError):
        zk.set(base + "/v", b"three", version=1)
    # setting identical data still bumps the version
    st3 = zk.set(base + "/v", b"two")
    assert st3.version == 3
    assert zk.get(base + "/v") == (b"two", st3)
    # empty data
    st4 = zk.set(base + "/v", b"")
    assert st4.dataLength == 0
    assert zk.get(base + "/v")[0] == b""


def test_set_returns_same_stat_as_exists(zk, base):
    zk.create(base + "/s")
    st = zk.set(base + "/s", b"data")
    assert zk.exists(base + "/s") == st


def test_get_children_and_include_data(zk, base):
    for n in ("c1", "c2", "c3"):
        zk.create(base + "/" + n, n.encode())
    assert sorted(zk.get_children(base)) == ["c1", "c2", "c3"]
    children, st = zk.get_children(base, include_data=True)
    assert sorted(children) == ["c1", "c2", "c3"]
    assert st.numChildren == 3
    assert st == zk.exists(base)
    assert zk.get_children(base + "/c1") == []


def test_parent_stat_tracks_children(zk, base):
    st0 = zk.exists(base)
    assert (st0.cversion, st0.numChildren) == (0, 0)
    assert st0.pzxid == st0.czxid

    _, c1 = zk.create(base + "/c1", include_data=True)
    st1 = zk.exists(base)
    assert st1.cversion == 1
    assert st1.numChildren == 1
    assert st1.pzxid == c1.czxid
    # child creation does not touch the parent's data version or mzxid
    assert st1.version == st0.version
    assert st1.mzxid == st0.mzxid

    zk.create(base + "/c2")
    zk.delete(base + "/c1")
    delete_zxid = zk.last_zxid
    st2 = zk.exists(base)
    assert st2.cversion == 3     # deletes also increment cversion
    assert st2.numChildren == 1
    assert st2.pzxid == delete_zxid
    assert st2.pzxid > c1.czxid

    # changing a child's data does not change the parent
    zk.set(base + "/c2", b"x")
    assert zk.exists(base) == st2

    zk.delete(base + "/c2")
    st3 = zk.exists(base)
    assert st3.cversion == 4
    assert st3.numChildren == 0


def test_zxids_increase_and_multi_child_pzxid(zk, base):
    _, a = zk.create(base + "/a", include_data=True)
    _, b = zk.create(base + "/b", include_data=True)
    assert b.czxid > a.czxid
    assert zk.exists(base).pzxid == b.czxid


def test_failed_write_consumes_a_zxid(zk, base):
    # ZooKeeper logs an error transaction for a failed write, which takes a
    # zxid. Another session's activity (e.g. an expiring session) can sneak in,
    # so allow a couple of attempts but require the exact gap at least once.
    zk.create(base + "/exists")
    gaps = []
    for i in range(4):
        _, s1 = zk.create(base + "/z%da" % i, include_data=True)
        with pytest.raises(NodeExistsError):
            zk.create(base + "/exists")
        _, s2 = zk.create(base + "/z%db" % i, include_data=True)
        gaps.append(s2.czxid - s1.czxid)
        if gaps[-1] == 2:
            break
    assert min(gaps) >= 2
    assert 2 in gaps, gaps


def test_reads_do_not_consume_zxids(zk, base):
    gaps = []
    for i in range(4):
        _, s1 = zk.create(base + "/r%da" % i, include_data=True)
        zk.get(base + "/r%da" % i)
        zk.exists(base + "/nothing")
        zk.get_children(base)
        _, s2 = zk.create(base + "/r%db" % i, include_data=True)
        gaps.append(s2.czxid - s1.czxid)
        if gaps[-1] == 1:
            break
    assert 1 in gaps, gaps


def test_large_data_roundtrip(zk, base):
    big = bytes(range(256)) * 3900     # 998,400 bytes, below jute.maxbuffer
    zk.create(base + "/big", big)
    data, st = zk.get(base + "/big")
    assert data == big
    assert st.dataLength == len(big)


def test_binary_and_unicode(zk, base):
    zk.create(base + "/bin", b"\x00\xff\x00\x80")
    assert zk.get(base + "/bin")[0] == b"\x00\xff\x00\x80"
    name = base + "/\u00fcnic\u00f6de-\u4e2d\u6587"
    zk.create(name, "\u2603".encode("utf-8"))
    assert "\u00fcnic\u00f6de-\u4e2d\u6587" in zk.get_children(base)
    assert zk.get(name)[0].decode("utf-8") == "\u2603"


def test_sync(zk, base):
    assert zk.sync(base) == base
    assert zk.sync("/") == "/"


def test_reserved_nodes(zk):
    assert zk.exists("/zookeeper") is not None
    assert "zookeeper" in zk.get_children("/")
    assert "quota" in zk.get_children("/zookeeper")
    # "/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config" cannot be
    # deleted: BADARGUMENTS (checked before NOTEMPTY)
    for p in ("/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"):
        with pytest.raises(BadArgumentsError):
            zk.delete(p)
    # /zookeeper/config exists (empty in standalone) with aversion -1
    assert zk.exists("/zookeeper/config").aversion == -1


# (path template, create, setData, getData, delete, exists) error codes.
# Note the order of checks in ZooKeeper: for create the *parent* is looked up
# before the path is validated, so "/a//x" is NONODE (parent "/a/" missing)
# while "/a/" is BADARGUMENTS. Reads never validate (a bad path is simply
# not found), except for an embedded NUL, and setData/setACL validate first.
OK, BADARGS, NONODE = 0, -8, -101
PATH_CASES = [
    ("noslash",        BADARGS, BADARGS, NONODE, BADARGS, NONODE),
    ("relative/x",     NONODE,  BADARGS, NONODE, NONODE,  NONODE),
    ("{b}/",           BADARGS, BADARGS, NONODE, NONODE,  NONODE),
    ("{b}//x",         NONODE,  BADARGS, NONODE, NONODE,  NONODE),
    ("{b}/./x",        NONODE,  BADARGS, NONODE, NONODE,  NONODE),
    ("{b}/../x",       NONODE,  BADARGS, NONODE, NONODE,  NONODE),
    ("{b}/.",          BADARGS, BADARGS, NONODE, NONODE,  NONODE),
    ("{b}/..",         BADARGS, BADARGS, NONODE, NONODE,  NONODE),
    ("{b}/ctrl\u0001", BADARGS, BADARGS, NONODE, NONODE,  NONODE),
    ("{b}/nul\u0000",  BADARGS, BADARGS, NONODE, BADARGS, BADARGS),
    ("{b}/del\u007f",  BADARGS, BADARGS, NONODE, NONODE,  NONODE),
    ("{b}/c1\u0085",   BADARGS, BADARGS, NONODE, NONODE,  NONODE),
    ("{b}/sur\ud800",  BADARGS, BADARGS, NONODE, NONODE,  NONODE),
    ("{b}/pua\ue000",  BADARGS, BADARGS, NONODE, NONODE,  NONODE),
    ("{b}/spec\ufff0", BADARGS, BADARGS, NONODE, NONODE,  NONODE),
]


@pytest.mark.parametrize("case", PATH_CASES, ids=lambda c: repr(c[0]))
def test_invalid_paths_rejected_by_server(zk_hosts, base, case):
    # kazoo normalises some paths client-side, so send them raw.
    tmpl, e_create, e_set, e_get, e_delete, e_exists = case
    path = tmpl.format(b=base).encode("utf-8", "surrogatepass")
    s = zkraw.RawSession(zk_hosts, timeout_ms=4000)
    try:
        got = (
            s.call(zkraw.OP_CREATE, zkraw.create_body(path)).err,
            s.call(zkraw.OP_SETDATA, zkraw.ustring(path) + zkraw.buffer(b"") + zkraw.i32(-1)).err,
            s.call(zkraw.OP_GETDATA, zkraw.path_watch_body(path)).err,
            s.call(zkraw.OP_DELETE, zkraw.ustring(path) + zkraw.i32(-1)).err,
            s.call(zkraw.OP_EXISTS, zkraw.path_watch_body(path)).err,
        )
        assert got == (e_create, e_set, e_get, e_delete, e_exists)
        # the connection stays usable
        assert s.call(zkraw.OP_EXISTS, zkraw.path_watch_body(base)).err == 0
    finally:
        s.close_session()


def test_valid_unusual_path_characters(zk, base):
    # U+00A0 and friends are fine; only the listed ranges are rejected
    for name in ("nbsp\u00a0", "dots...", ".hidden", "..x", "sp ace", "q?&=#"):
        zk.create(base + "/" + name)
    assert len(zk.get_children(base)) == 6


def test_empty_path_reads_as_root(zk_hosts):
    # The data tree keys the root as "" internally: reads of "" succeed and
    # return the root's data/stat; writes with "" are BADARGUMENTS.
    s = zkraw.RawSession(zk_hosts, timeout_ms=4000)
    try:
        assert s.call(zkraw.OP_EXISTS, zkraw.path_watch_body("")).err == 0
        assert s.call(zkraw.OP_GETDATA, zkraw.path_watch_body("")).err == 0
        assert s.call(zkraw.OP_CREATE, zkraw.create_body("")).err == -8
        assert s.call(zkraw.OP_DELETE, zkraw.ustring("") + zkraw.i32(-1)).err == -8
    finally:
        s.close_session()


def test_invalid_create_flags(zk_hosts, base):
    s = zkraw.RawSession(zk_hosts, timeout_ms=4000)
    try:
        rep = s.call(zkraw.OP_CREATE, zkraw.create_body(base + "/f", flags=7))
        assert rep.err == -8          # BADARGUMENTS
        rep = s.call(zkraw.OP_CREATE, zkraw.create_body(base + "/f", flags=-1))
        assert rep.err == -8
    finally:
        s.close_session()


def test_create_opcodes_and_replies(zk_hosts, base):
    """create (1) replies with just the path, create2 (15) with path + stat;
    flag 4 (container) on plain create yields an ordinary persistent node."""
    s = zkraw.RawSession(zk_hosts, timeout_ms=4000)
    try:
        rep = s.call(zkraw.OP_CREATE, zkraw.create_body(base + "/c1", b"ab"))
        assert rep.err == 0
        r = rep.reader()
        assert r.ustring() == base + "/c1"
        assert r.remaining() == 0
        rep = s.call(zkraw.OP_CREATE2, zkraw.create_body(base + "/c2", b"abc"))
        assert rep.err == 0
        r = rep.reader()
        assert r.ustring() == base + "/c2"
        st = r.stat()
        assert st["dataLength"] == 3 and st["version"] == 0
        assert st["czxid"] == rep.zxid           # reply zxid = txn zxid
        assert r.remaining() == 0
        # error replies carry no body
        rep = s.call(zkraw.OP_CREATE2, zkraw.create_body(base + "/c2"))
        assert rep.err == -110 and rep.body == b""
        rep = s.call(zkraw.OP_GETDATA, zkraw.path_watch_body(base + "/none"))
        assert rep.err == -101 and rep.body == b""
        # exists on a missing node: NONODE, no body
        rep = s.call(zkraw.OP_EXISTS, zkraw.path_watch_body(base + "/none"))
        assert rep.err == -101 and rep.body == b""
    finally:
        s.close_session()
