"""Operations kazoo has no API for, sent through kazoo's connection
(zkext): container and TTL nodes, getEphemerals, getAllChildrenNumber.

Container / TTL tests skip (with the reason) if the server answers
UNIMPLEMENTED; the TTL ones need zookeeper.extendedTypesEnabled=true and the
reaper ones a short znode.container.checkIntervalMs (the reference set-up in
scripts/start-apache-zk.sh uses 1000 ms). Waits are bounded by ZK_REAPER_WAIT
(seconds, default 15).
"""

import os
import time

import pytest
from kazoo.exceptions import (BadArgumentsError, NoNodeError, NodeExistsError,
                              UnimplementedError)

import zkext
import zkraw
from compat_helpers import wait_until

REAPER_WAIT = float(os.environ.get("ZK_REAPER_WAIT", "15"))


def create_container_or_skip(zk, path, data=b""):
    try:
        return zkext.create_container(zk, path, data)
    except UnimplementedError:
        pytest.skip("SKIPPED(container): server replied UNIMPLEMENTED to createContainer")


def create_ttl_or_skip(zk, path, ttl, **kw):
    try:
        return zkext.create_ttl(zk, path, ttl, **kw)
    except UnimplementedError:
        pytest.skip("SKIPPED(ttl): server replied UNIMPLEMENTED to createTTL "
                    "(extendedTypesEnabled not set?)")


# ------------------------------------------------------------------ container

def test_container_create_and_stat(zk, base):
    path, st = create_container_or_skip(zk, base + "/c", b"cdata")
    assert path == base + "/c"
    assert st.ephemeralOwner == 0            # containers report owner 0
    assert st.dataLength == 5 and st.version == 0
    assert zk.get(base + "/c") == (b"cdata", st)
    with pytest.raises(NodeExistsError):
        zkext.create_container(zk, base + "/c")
    with pytest.raises(NoNodeError):
        zkext.create_container(zk, base + "/missing/c")


def test_container_deleted_after_last_child_goes(zk, base):
    create_container_or_skip(zk, base + "/c")
    create_container_or_skip(zk, base + "/never-used")
    zk.create(base + "/c/child")
    zk.create(base + "/c/child2", ephemeral=True)
    zk.delete(base + "/c/child")
    time.sleep(1.0)
    assert zk.exists(base + "/c") is not None     # still has a child
    zk.delete(base + "/c/child2")
    assert wait_until(lambda: zk.exists(base + "/c") is None, REAPER_WAIT), \
        "container not reaped within %ss" % REAPER_WAIT
    # a container that never had a child is kept (maxNeverUsedIntervalMs=0)
    assert zk.exists(base + "/never-used") is not None


def test_container_can_hold_ephemeral_and_sequential_children(zk, base):
    create_container_or_skip(zk, base + "/c")
    p = zk.create(base + "/c/lock-", ephemeral=True, sequence=True)
    assert p == base + "/c/lock-0000000000"


def test_container_in_multi(zk_hosts, base):
    s = zkraw.RawSession(zk_hosts, timeout_ms=4000)
    try:
        op = zkraw.i32(zkraw.OP_CREATECONTAINER) + b"\x00" + zkraw.i32(-1)
        end = zkraw.i32(-1) + b"\x01" + zkraw.i32(-1)
        rep = s.call(zkraw.OP_MULTI, op + zkraw.create_body(base + "/mc", flags=4) + end)
        assert rep.err == 0
        r = rep.reader()
        t, done, err = r.i32(), r.boolean(), r.i32()
        if t == -1 and err == -6:
            pytest.skip("SKIPPED(container): UNIMPLEMENTED")
        assert (t, done, err) == (zkraw.OP_CREATE2, False, 0)    # create2-style result
        assert r.ustring() == base + "/mc"
        st = r.stat()
        assert st["czxid"] == rep.zxid and st["ephemeralOwner"] == 0
    finally:
        s.close_session()


# ------------------------------------------------------------------------ TTL

def test_ttl_create_and_stat(zk, base):
    path, st = create_ttl_or_skip(zk, base + "/t", 60000, data=b"ttl")
    assert path == base + "/t"
    assert st.ephemeralOwner == 0            # TTL nodes report owner 0
    assert st.dataLength == 3
    p2, _ = zkext.create_ttl(zk, base + "/ts-", 60000, sequential=True)
    assert p2 == base + "/ts-0000000001"
    # an ordinary child can live under a TTL node
    zk.create(base + "/t/child")


@pytest.mark.parametrize("ttl", [0, -1, 1 << 40])
def test_ttl_out_of_range(zk, base, ttl):
    create_ttl_or_skip(zk, base + "/probe", 60000)
    with pytest.raises(BadArgumentsError):
        zkext.create_ttl(zk, base + "/bad", ttl)


def test_ttl_max_value_accepted(zk, base):
    create_ttl_or_skip(zk, base + "/max", (1 << 40) - 1)


def test_ttl_node_expires(zk, base):
    create_ttl_or_skip(zk, base + "/short", 300)
    create_ttl_or_skip(zk, base + "/long", 600000)
    create_ttl_or_skip(zk, base + "/busy", 300)
    zk.create(base + "/busy/child")
    assert wait_until(lambda: zk.exists(base + "/short") is None, REAPER_WAIT), \
        "TTL node not reaped within %ss" % REAPER_WAIT
    assert zk.exists(base + "/long") is not None
    # a TTL node with children is not removed
    assert zk.exists(base + "/busy") is not None


def test_ttl_non_ttl_mode_on_ttl_opcode(zk_hosts, base):
    """opcode 21 with a non-TTL mode requires ttl < 0... (else BADARGUMENTS)"""
    s = zkraw.RawSession(zk_hosts, timeout_ms=4000)
    try:
        rep = s.call(zkraw.OP_CREATETTL, zkraw.create_ttl_body(base + "/x", flags=5, ttl=1000))
        if rep.err == -6:
            pytest.skip("SKIPPED(ttl): UNIMPLEMENTED")
        assert rep.err == 0
        rep = s.call(zkraw.OP_CREATETTL, zkraw.create_ttl_body(base + "/y", flags=0, ttl=1000))
        assert rep.err == -8
    finally:
        s.close_session()


# ------------------------------------------------------------- getEphemerals

def test_get_ephemerals(zk, make_client, base):
    zk.create(base + "/e1", ephemeral=True)
    zk.create(base + "/sub/e2", ephemeral=True, makepath=True)
    zk.create(base + "/p1")
    other = make_client()
    other.create(base + "/theirs", ephemeral=True)
    assert sorted(zkext.get_ephemerals(zk, base)) == [base + "/e1", base + "/sub/e2"]
    # plain string prefix match, not a path-component match
    assert zkext.get_ephemerals(zk, base + "/e") == [base + "/e1"]
    assert zkext.get_ephemerals(zk, base + "/sub") == [base + "/sub/e2"]
    assert zkext.get_ephemerals(zk, base + "/nothing") == []
    # "/" means all of the session's ephemerals
    mine = zkext.get_ephemerals(zk, "/")
    assert base + "/e1" in mine and base + "/theirs" not in mine
    assert zkext.get_ephemerals(other, base) == [base + "/theirs"]
    fresh = make_client()
    assert zkext.get_ephemerals(fresh, "/") == []


@pytest.mark.parametrize("prefix,everything", [
    ("", True), (" ", True), ("\t", True), ("\x01", True), ("\x1f", True),
    ("\x01/", True), ("\x1c/\x1d", True), (" / ", True), ("/\x0b", True),
    ("\x7f", False), ("\u00a0", False), ("\u00a0/", False), ("\u2003", False),
    ("/\u3000", False), ("\u0085", False),
], ids=repr)
def test_get_ephemerals_blank_prefix_is_trimmed_as_java_does(zk_hosts, base, prefix, everything):
    """A prefix that is blank or "/" once trimmed lists every ephemeral of the
    session. Trimmed as Java's String.trim does: every char up to U+0020, and no
    other whitespace (U+00A0, U+2003, U+3000, U+0085 stay and match nothing)."""
    s = zkraw.RawSession(zk_hosts, timeout_ms=4000)
    try:
        assert s.call(zkraw.OP_CREATE, zkraw.create_body(base + "/eb", flags=1)).err == 0
        rep = s.call(zkraw.OP_GETEPHEMERALS, zkraw.ustring(prefix))
        assert rep.err == 0
        assert rep.reader().string_vector() == ([base + "/eb"] if everything else [])
    finally:
        s.close_session()


# ------------------------------------------------------- getAllChildrenNumber

def test_get_all_children_number(zk, base):
    assert zkext.get_all_children_number(zk, base) == 0
    for p in ("/a", "/a/b", "/a/b/c", "/d", "/d/e"):
        zk.create(base + p)
    assert zkext.get_all_children_number(zk, base) == 5
    assert zkext.get_all_children_number(zk, base + "/a") == 2
    assert zkext.get_all_children_number(zk, base + "/a/b/c") == 0
    with pytest.raises(NoNodeError):
        zkext.get_all_children_number(zk, base + "/missing")
    # /zookeeper has quota and config below it
    assert zkext.get_all_children_number(zk, "/zookeeper") >= 2
