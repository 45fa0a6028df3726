"""Watches: one-shot data/exists/child watches (kazoo), persistent and
persistent-recursive watches (addWatch, via zkext), checkWatches /
removeWatches, and wire-level details (exactly one notification, setWatches
on reconnect) via the raw client."""

import time

import pytest
from kazoo.exceptions import NoWatcherError
from kazoo.protocol.states import EventType
from kazoo.security import make_digest_acl

import zkext
import zkraw
from compat_helpers import EventCollector


def kinds(events):
    return [(e.type, e.path) for e in events]


def test_data_watch_fires_once_on_set(zk, make_client, base):
    other = make_client()
    zk.create(base + "/n", b"a")
    ev = EventCollector()
    zk.get(base + "/n", watch=ev)
    other.set(base + "/n", b"b")
    assert kinds(ev.wait(1)) == [(EventType.CHANGED, base + "/n")]
    assert ev.events[0].state == "CONNECTED"
    other.set(base + "/n", b"c")          # not re-armed: no second event
    assert len(ev.settle()) == 1


def test_data_watch_fires_for_own_change_and_identical_data(zk, base):
    zk.create(base + "/n", b"same")
    ev = EventCollector()
    zk.get(base + "/n", watch=ev)
    zk.set(base + "/n", b"same")
    assert kinds(ev.wait(1)) == [(EventType.CHANGED, base + "/n")]


def test_data_watch_on_delete(zk, make_client, base):
    zk.create(base + "/n")
    ev = EventCollector()
    zk.get(base + "/n", watch=ev)
    make_client().delete(base + "/n")
    assert kinds(ev.wait(1)) == [(EventType.DELETED, base + "/n")]
    assert len(ev.settle()) == 1


def test_exists_watch_on_missing_node_fires_on_create(zk, make_client, base):
    ev = EventCollector()
    assert zk.exists(base + "/later", watch=ev) is None
    other = make_client()
    other.create(base + "/later")
    assert kinds(ev.wait(1)) == [(EventType.CREATED, base + "/later")]
    other.delete(base + "/later")
    assert len(ev.settle()) == 1


def test_exists_watch_on_existing_node(zk, make_client, base):
    zk.create(base + "/n")
    ev = EventCollector()
    assert zk.exists(base + "/n", watch=ev) is not None
    other = make_client()
    other.set(base + "/n", b"x")
    assert kinds(ev.wait(1)) == [(EventType.CHANGED, base + "/n")]
    ev2 = EventCollector()
    zk.exists(base + "/n", watch=ev2)
    other.delete(base + "/n")
    assert kinds(ev2.wait(1)) == [(EventType.DELETED, base + "/n")]


def test_child_watch_on_create_and_delete(zk, make_client, base):
    other = make_client()
    ev = EventCollector()
    assert zk.get_children(base, watch=ev) == []
    other.create(base + "/c1")
    assert kinds(ev.wait(1)) == [(EventType.CHILD, base)]
    other.create(base + "/c2")      # one-shot
    assert len(ev.settle()) == 1

    ev2 = EventCollector()
    zk.get_children(base, watch=ev2)
    other.delete(base + "/c1")
    assert kinds(ev2.wait(1)) == [(EventType.CHILD, base)]


def test_child_watch_not_fired_by_child_data_or_grandchildren(zk, make_client, base):
    zk.create(base + "/c/g", makepath=True)
    ev = EventCollector()
    zk.get_children(base, watch=ev)
    other = make_client()
    other.set(base + "/c", b"data")
    other.create(base + "/c/g2")
    other.set(base, b"parent data")      # data change of the watched node
    assert ev.settle() == []


def test_child_watch_with_include_data(zk, make_client, base):
    ev = EventCollector()
    children, st = zk.get_children(base, watch=ev, include_data=True)
    assert children == [] and st.numChildren == 0
    make_client().create(base + "/x")
    assert kinds(ev.wait(1)) == [(EventType.CHILD, base)]


def test_delete_fires_data_and_child_watches(zk, make_client, base):
    zk.create(base + "/n")
    data_ev, child_ev, parent_ev = EventCollector(), EventCollector(), EventCollector()
    zk.get(base + "/n", watch=data_ev)
    zk.get_children(base + "/n", watch=child_ev)
    zk.get_children(base, watch=parent_ev)
    make_client().delete(base + "/n")
    assert kinds(data_ev.wait(1)) == [(EventType.DELETED, base + "/n")]
    assert kinds(child_ev.wait(1)) == [(EventType.DELETED, base + "/n")]
    assert kinds(parent_ev.wait(1)) == [(EventType.CHILD, base)]


def test_set_acl_fires_no_watch(zk, base):
    zk.create(base + "/n")
    ev = EventCollector()
    zk.get(base + "/n", watch=ev)
    zk.set_acls(base + "/n", [make_digest_acl("u", "p", all=True)])
    assert ev.settle() == []


def test_watches_across_clients(zk, make_client, base):
    zk.create(base + "/n")
    a, b = make_client(), make_client()
    ea, eb = EventCollector(), EventCollector()
    a.get(base + "/n", watch=ea)
    b.exists(base + "/n", watch=eb)
    zk.set(base + "/n", b"1")
    assert kinds(ea.wait(1)) == [(EventType.CHANGED, base + "/n")]
    assert kinds(eb.wait(1)) == [(EventType.CHANGED, base + "/n")]


def test_failed_write_does_not_fire(zk, base):
    zk.create(base + "/n")
    ev = EventCollector()
    zk.get(base + "/n", watch=ev)
    from kazoo.exceptions import BadVersionError
    with pytest.raises(BadVersionError):
        zk.set(base + "/n", b"x", version=42)
    assert ev.settle() == []


def test_multi_fires_watches(zk, make_client, base):
    zk.create(base + "/a")
    ev_a, ev_kids = EventCollector(), EventCollector()
    zk.get(base + "/a", watch=ev_a)
    zk.get_children(base, watch=ev_kids)
    t = make_client().transaction()
    t.set_data(base + "/a", b"1")
    t.create(base + "/b")
    t.commit()
    assert kinds(ev_a.wait(1)) == [(EventType.CHANGED, base + "/a")]
    assert kinds(ev_kids.wait(1)) == [(EventType.CHILD, base)]


def test_failed_multi_fires_nothing(zk, make_client, base):
    zk.create(base + "/a")
    ev = EventCollector()
    zk.get(base + "/a", watch=ev)
    t = make_client().transaction()
    t.set_data(base + "/a", b"1")
    t.delete(base + "/missing")
    t.commit()
    assert ev.settle() == []


# ---------------------------------------------------------------- raw checks

def raw(zk_hosts):
    return zkraw.RawSession(zk_hosts, timeout_ms=6000)


def test_raw_one_notification_per_event(zk_hosts, zk, base):
    """Data + child + exists watch on the same node, node deleted: the server
    sends exactly one NodeDeleted notification to that connection."""
    zk.create(base + "/n")
    s = raw(zk_hosts)
    try:
        assert s.call(zkraw.OP_GETDATA, zkraw.path_watch_body(base + "/n", True)).err == 0
        assert s.call(zkraw.OP_GETCHILDREN, zkraw.path_watch_body(base + "/n", True)).err == 0
        assert s.call(zkraw.OP_EXISTS, zkraw.path_watch_body(base + "/n", True)).err == 0
        zk.delete(base + "/n")
        ev = s.wait_event(5)
        assert ev is not None
        t, state, path, zxid = ev
        assert (t, state, path) == (zkraw.EV_DELETED, zkraw.STATE_SYNC_CONNECTED, base + "/n")
        # 3.8 sends zxid -1 in the notification header; 3.9 the txn zxid
        assert zxid == -1 or zxid == zk.last_zxid
        assert s.wait_event(0.5) is None
        # and the watches are gone: recreate + delete sends nothing
        zk.create(base + "/n")
        zk.delete(base + "/n")
        assert s.wait_event(0.5) is None
    finally:
        s.close_session()


def test_raw_exists_watch_registered_on_nonode(zk_hosts, zk, base):
    s = raw(zk_hosts)
    try:
        rep = s.call(zkraw.OP_EXISTS, zkraw.path_watch_body(base + "/x", True))
        assert rep.err == -101 and rep.body == b""
        zk.create(base + "/x")
        ev = s.wait_event(5)
        assert ev[:3] == (zkraw.EV_CREATED, 3, base + "/x")
        # getData on a missing node does NOT leave a watch behind
        assert s.call(zkraw.OP_GETDATA, zkraw.path_watch_body(base + "/y", True)).err == -101
        zk.create(base + "/y")
        assert s.wait_event(0.5) is None
    finally:
        s.close_session()


def test_raw_set_watches_on_reconnect(zk_hosts, zk, base):
    """setWatches (101) with relativeZxid: the server fires immediately for
    changes the client missed, otherwise registers the watch."""
    zk.create(base + "/changed", b"0")
    zk.create(base + "/same", b"0")
    zk.create(base + "/kids")
    zk.create(base + "/quiet")
    old_zxid = zk.exists(base + "/quiet").mzxid
    zk.set(base + "/changed", b"1")
    zk.create(base + "/kids/new")
    zk.create(base + "/appeared")
    s = raw(zk_hosts)
    try:
        body = (zkraw.i64(old_zxid)
                + zkraw.string_vector([base + "/changed", base + "/same", base + "/gone"])
                + zkraw.string_vector([base + "/appeared", base + "/absent"])
                + zkraw.string_vector([base + "/kids", base + "/quiet", base + "/gone2"]))
        rep = s.call(zkraw.OP_SETWATCHES, body, xid=zkraw.SETWATCHES_XID)
        assert rep.err == 0
        got = set()
        while True:
            ev = s.wait_event(0.5)
            if ev is None:
                break
            got.add(ev[:3])
        assert got == {
            (zkraw.EV_DATA_CHANGED, 3, base + "/changed"),
            (zkraw.EV_DELETED, 3, base + "/gone"),
            (zkraw.EV_CREATED, 3, base + "/appeared"),
            (zkraw.EV_CHILDREN_CHANGED, 3, base + "/kids"),
            (zkraw.EV_DELETED, 3, base + "/gone2"),
        }
        # the others were registered
        zk.set(base + "/same", b"x")
        assert s.wait_event(5)[:3] == (zkraw.EV_DATA_CHANGED, 3, base + "/same")
        zk.create(base + "/absent")
        assert s.wait_event(5)[:3] == (zkraw.EV_CREATED, 3, base + "/absent")
        zk.create(base + "/quiet/c")
        assert s.wait_event(5)[:3] == (zkraw.EV_CHILDREN_CHANGED, 3, base + "/quiet")
    finally:
        s.close_session()


# ------------------------------------------------- check / remove watches

def test_check_and_remove_watches(zk, make_client, base):
    zk.create(base + "/n")
    with pytest.raises(NoWatcherError):
        zkext.check_watches(zk, base + "/n", zkext.WATCHER_DATA)
    ev = EventCollector()
    zk.get(base + "/n", watch=ev)
    assert zkext.check_watches(zk, base + "/n", zkext.WATCHER_DATA) is True
    assert zkext.check_watches(zk, base + "/n", zkext.WATCHER_ANY) is True
    with pytest.raises(NoWatcherError):
        zkext.check_watches(zk, base + "/n", zkext.WATCHER_CHILDREN)
    assert zkext.remove_watches(zk, base + "/n", zkext.WATCHER_DATA) is True
    with pytest.raises(NoWatcherError):
        zkext.remove_watches(zk, base + "/n", zkext.WATCHER_DATA)
    with pytest.raises(NoWatcherError):
        zkext.check_watches(zk, base + "/n", zkext.WATCHER_ANY)
    # a removed watch no longer fires (server side)
    zk._data_watchers.pop(base + "/n", None)    # kazoo's local copy
    make_client().set(base + "/n", b"x")
    assert ev.settle() == []

    zk.get_children(base + "/n", watch=EventCollector())
    assert zkext.check_watches(zk, base + "/n", zkext.WATCHER_CHILDREN) is True
    assert zkext.remove_watches(zk, base + "/n", zkext.WATCHER_ANY) is True
    with pytest.raises(NoWatcherError):
        zkext.check_watches(zk, base + "/n", zkext.WATCHER_ANY)


# ------------------------------------------------------ persistent watches

CREATED, DELETED, CHANGED, CHILD = 1, 2, 3, 4


def test_persistent_watch(zk, make_client, base):
    pw = zkext.PersistentWatches(zk)
    p = base + "/p"
    assert pw.add(p, zkext.ADD_WATCH_PERSISTENT) == 0
    other = make_client()
    other.create(p)
    other.set(p, b"1")
    other.set(p, b"2")
    other.create(p + "/c")
    other.create(p + "/c/g")           # grandchild: nothing for a non-recursive watch
    other.set(p + "/c", b"x")          # child data: nothing
    other.delete(p + "/c/g")
    other.delete(p + "/c")
    other.delete(p)
    other.create(p)                    # still registered after the delete
    expected = [(CREATED, p), (CHANGED, p), (CHANGED, p), (CHILD, p), (CHILD, p),
                (DELETED, p), (CREATED, p)]
    assert pw.wait_for(len(expected)) == expected
    time.sleep(0.3)
    assert pw.take() == expected


def test_persistent_recursive_watch(zk, make_client, base):
    pw = zkext.PersistentWatches(zk)
    r = base + "/r"
    zk.create(r)
    assert pw.add(r, zkext.ADD_WATCH_PERSISTENT_RECURSIVE) == 0
    other = make_client()
    other.create(r + "/a")
    other.create(r + "/a/b")
    other.set(r + "/a/b", b"1")
    other.set(r, b"top")
    other.delete(r + "/a/b")
    other.create(base + "/r-sibling")    # not below /r
    other.delete(r + "/a")
    expected = [(CREATED, r + "/a"), (CREATED, r + "/a/b"), (CHANGED, r + "/a/b"),
                (CHANGED, r), (DELETED, r + "/a/b"), (DELETED, r + "/a")]
    # no NodeChildrenChanged for recursive watches
    assert pw.wait_for(len(expected)) == expected
    time.sleep(0.3)
    assert pw.take() == expected


def test_persistent_watch_removed_with_remove_watches_any(zk, make_client, base,
                                                        upstream_since):
    """Data / Children name one-shot watches only from ZooKeeper 3.9 on
    (ZOOKEEPER-4471), which rzk follows: NOWATCHER for a persistent watch.
    3.8 matched a watch of any mode there. Any matches it on every release."""
    pw = zkext.PersistentWatches(zk)
    p = base + "/p"
    zk.create(p)
    pw.add(p, zkext.ADD_WATCH_PERSISTENT)
    for wtype in (zkext.WATCHER_DATA, zkext.WATCHER_CHILDREN):
        if upstream_since((3, 9, 0)):
            with pytest.raises(NoWatcherError):
                zkext.check_watches(zk, p, wtype)
        else:
            assert zkext.check_watches(zk, p, wtype) is True
    assert zkext.check_watches(zk, p, zkext.WATCHER_ANY) is True
    assert zkext.remove_watches(zk, p, zkext.WATCHER_ANY) is True
    with pytest.raises(NoWatcherError):
        zkext.check_watches(zk, p, zkext.WATCHER_ANY)
    make_client().set(p, b"x")
    time.sleep(0.3)
    assert pw.take() == []


def test_persistent_and_one_shot_watch_on_same_path(zk_hosts, zk, base):
    """A persistent and a one-shot data watch on the same path and
    connection: the change is notified exactly once.

    What happens to the persistent watch afterwards differs by version:
    Apache 3.8.0 keeps one watch mode per (path, connection), so the later
    one-shot registration *replaces* the persistent watch and nothing fires
    on the next change; 3.9 (ZOOKEEPER-4466) keeps both, so the persistent
    watch fires again. Both are accepted here."""
    p = base + "/p"
    zk.create(p)
    s = zkraw.RawSession(zk_hosts, timeout_ms=6000)
    try:
        assert s.call(zkraw.OP_ADDWATCH, zkraw.ustring(p) + zkraw.i32(0)).err == 0
        assert s.call(zkraw.OP_GETDATA, zkraw.path_watch_body(p, True)).err == 0
        zk.set(p, b"1")
        assert s.wait_event(5)[:3] == (zkraw.EV_DATA_CHANGED, 3, p)
        assert s.wait_event(0.3) is None
        zk.set(p, b"2")
        ev = s.wait_event(1.0)
        assert ev is None or ev[:3] == (zkraw.EV_DATA_CHANGED, 3, p)
        assert s.wait_event(0.2) is None
    finally:
        s.close_session()


def test_add_watch_reply_body(zk_hosts, base):
    s = zkraw.RawSession(zk_hosts, timeout_ms=6000)
    try:
        rep = s.call(zkraw.OP_ADDWATCH, zkraw.ustring(base + "/none") + zkraw.i32(1))
        assert rep.err == 0
        assert rep.body == zkraw.i32(0)      # ErrorResponse{err=0}
    finally:
        s.close_session()


def _watch_count(zk_hosts):
    for line in zkraw.four_letter(zk_hosts, "mntr").splitlines():
        key, _, value = line.partition("\t")
        if key == "zk_watch_count":
            return int(value)
    raise AssertionError("mntr has no zk_watch_count")


def test_mntr_watch_count_counts_watches_as_zookeeper(zk_hosts, zk, base):
    """zk_watch_count is the entries of ZooKeeper 3.8's data and child tables: a
    persistent or recursive watch is in both (2), merged with a one-shot watch of the
    same session on the same path; found by a break-it review (rzk counted a recursive
    watch once)."""
    zk.create(base + "/r", b"")
    zk.create(base + "/p", b"")
    a = zkraw.RawSession(zk_hosts, timeout_ms=6000)
    b = zkraw.RawSession(zk_hosts, timeout_ms=6000)
    try:
        start = _watch_count(zk_hosts)
        steps = [
            (a, zkraw.OP_ADDWATCH, zkraw.ustring(base + "/r") + zkraw.i32(1), 2),
            (a, zkraw.OP_GETDATA, zkraw.path_watch_body(base + "/r", True), 2),
            (a, zkraw.OP_GETCHILDREN, zkraw.path_watch_body(base + "/r", True), 2),
            (b, zkraw.OP_ADDWATCH, zkraw.ustring(base + "/r") + zkraw.i32(0), 4),
            (b, zkraw.OP_ADDWATCH, zkraw.ustring(base + "/p") + zkraw.i32(1), 6),
            (b, zkraw.OP_EXISTS, zkraw.path_watch_body(base + "/p/none", True), 7),
        ]
        for session, op, body, want in steps:
            assert session.call(op, body).err in (0, -101)  # exists: NONODE
            assert _watch_count(zk_hosts) - start == want, (op, want)
    finally:
        a.close()
        b.close()
