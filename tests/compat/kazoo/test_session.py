"""Sessions: handshake fields, timeout negotiation, close, expiry making
ephemerals vanish, reconnect keeping the session, resume by id/password."""

import os
import socket
import time

import pytest
from kazoo.client import KazooState
from kazoo.protocol.states import EventType

import zkext
import zkraw
from compat_helpers import EventCollector, wait_until

TICK = int(os.environ.get("ZK_TICK_TIME", "2000"))


def java_random_bytes(seed, n):
    """java.util.Random(seed).nextBytes(n)."""
    mask = (1 << 48) - 1
    s = (seed ^ 0x5DEECE66D) & mask
    out = bytearray()
    while len(out) < n:
        s = (s * 0x5DEECE66D + 0xB) & mask
        r = s >> 16
        if r & 0x80000000:
            r -= 1 << 32
        for _ in range(min(4, n - len(out))):
            out.append(r & 0xFF)
            r >>= 8
    return bytes(out)


def test_java_random_vectors():
    # test vectors from docs/CLIENT-PROTOCOL.md §3
    assert java_random_bytes(0x0100000000000000 ^ 0xB3415C00, 16).hex() == \
        "f22acd4a97e69d6d20a49bb638eadb38"
    assert java_random_bytes(0x1 ^ 0xB3415C00, 16).hex() == "054cc74a37327db215e702e20c73f005"


def test_handshake_fields(zk_hosts):
    s = zkraw.RawSession(zk_hosts, timeout_ms=10000)
    try:
        assert s.protocol_version == 0
        assert s.negotiated_timeout == 10000
        assert s.session_id != 0
        assert len(s.passwd) == 16
        # old-style ConnectRequest (no readOnly byte) -> no readOnly byte back
        assert s.read_only is None
        # the password is derived from the session id (needed so that any
        # ensemble member can validate a resumed session)
        assert s.passwd == java_random_bytes(s.session_id ^ 0xB3415C00, 16)
        # standalone: server id 1 in the top byte of the session id
        assert (s.session_id >> 56) == 1
    finally:
        s.close_session()
    s = zkraw.RawSession(zk_hosts, timeout_ms=10000, read_only=False)
    try:
        assert s.read_only is False
    finally:
        s.close_session()
    s = zkraw.RawSession(zk_hosts, timeout_ms=10000, read_only=True)
    try:
        assert s.read_only is False       # a read-write server says so
    finally:
        s.close_session()


def test_session_ids_are_consecutive(zk_hosts):
    a = zkraw.RawSession(zk_hosts, timeout_ms=4000)
    b = zkraw.RawSession(zk_hosts, timeout_ms=4000)
    try:
        assert b.session_id - a.session_id >= 1
        assert (b.session_id >> 56) == (a.session_id >> 56)
    finally:
        a.close_session()
        b.close_session()


@pytest.mark.parametrize("requested,expected", [
    (1, 2 * TICK), (2 * TICK - 1, 2 * TICK), (2 * TICK, 2 * TICK),
    (5 * TICK + 123, 5 * TICK + 123), (20 * TICK, 20 * TICK), (10 ** 7, 20 * TICK),
])
def test_timeout_negotiation(zk_hosts, requested, expected):
    s = zkraw.RawSession(zk_hosts, timeout_ms=requested)
    try:
        assert s.negotiated_timeout == expected
    finally:
        s.close_session()


def test_ping(zk_hosts):
    s = zkraw.RawSession(zk_hosts, timeout_ms=4000)
    try:
        rep = s.ping()
        assert (rep.xid, rep.err, rep.body) == (-2, 0, b"")
        assert rep.zxid > 0
    finally:
        s.close_session()


def test_close_session_raw(zk_hosts, zk, base):
    s = zkraw.RawSession(zk_hosts, timeout_ms=30000)
    rep = s.call(zkraw.OP_CREATE, zkraw.create_body(base + "/eph", flags=1))
    assert rep.err == 0
    rep = s.call(zkraw.OP_CLOSE, b"")
    assert rep.err == 0 and rep.body == b""
    closed, _ = s.expect_closed(5)
    assert closed
    s.close()
    assert zk.exists(base + "/eph") is None
    # the session is gone: resuming it fails
    r = zkraw.RawSession(zk_hosts, timeout_ms=30000, session_id=s.session_id, passwd=s.passwd)
    assert (r.negotiated_timeout, r.session_id, r.passwd) == (0, 0, b"\0" * 16)
    assert r.expect_closed(5)[0]
    r.close()


def test_writes_pipelined_after_close_session_do_not_run(zk_hosts, zk, base):
    """closeSession, then writes of the same session sent before its reply (one send):
    the session is closing when they reach the server's prep, so none of them runs
    (ZooKeeper's checkSession: SESSIONEXPIRED), above all no ephemeral that nothing would
    ever delete. What the client sees after closeSession's reply: at most SESSIONEXPIRED
    replies, then the connection closes."""
    s = zkraw.RawSession(zk_hosts, timeout_ms=30000)
    assert s.call(zkraw.OP_CREATE, zkraw.create_body(base + "/before")).err == 0
    frames = [zkraw.i32(s.next_xid()) + zkraw.i32(zkraw.OP_CLOSE)]
    for name, flags in (("eph", 1), ("pers", 0), ("eph2", 1)):
        frames.append(zkraw.i32(s.next_xid()) + zkraw.i32(zkraw.OP_CREATE)
                      + zkraw.create_body(f"{base}/{name}", flags=flags))
    frames.append(zkraw.i32(s.next_xid()) + zkraw.i32(zkraw.OP_SETDATA)
                  + zkraw.ustring(base + "/before") + zkraw.buffer(b"after") + zkraw.i32(-1))
    s.send_raw(b"".join(zkraw.i32(len(f)) + f for f in frames))
    closed, replies = s.expect_closed(10)
    s.close()
    assert closed
    assert replies and replies[0].err == 0, replies  # closeSession's own reply
    assert all(r.err == -112 for r in replies[1:]), replies
    for name in ("eph", "pers", "eph2"):
        assert zk.exists(f"{base}/{name}") is None, name
    assert zk.get(base + "/before")[0] == b""


@pytest.mark.parametrize("round_", range(3))
def test_writes_pipelined_before_close_session_all_run(zk_hosts, zk, base, round_):
    """Writes, then closeSession, in one send without waiting for replies (an async
    client's writes followed by close()): every write runs and is answered OK before
    closeSession's reply, then the connection closes (break-it review: rzk marked the
    session closing when it queued the close, and refused the writes still queued
    before it with SESSIONEXPIRED)."""
    s = zkraw.RawSession(zk_hosts, timeout_ms=30000)
    assert s.call(zkraw.OP_CREATE, zkraw.create_body(base + "/before")).err == 0
    frames = []
    for i in range(20):
        frames.append(zkraw.i32(s.next_xid()) + zkraw.i32(zkraw.OP_CREATE)
                      + zkraw.create_body(f"{base}/p{i}"))
    frames.append(zkraw.i32(s.next_xid()) + zkraw.i32(zkraw.OP_SETDATA)
                  + zkraw.ustring(base + "/before") + zkraw.buffer(b"set") + zkraw.i32(-1))
    frames.append(zkraw.i32(s.next_xid()) + zkraw.i32(zkraw.OP_CLOSE))
    s.send_raw(b"".join(zkraw.i32(len(f)) + f for f in frames))
    closed, replies = s.expect_closed(10)
    s.close()
    assert closed
    assert [r.err for r in replies] == [0] * len(frames), replies
    assert len(zk.get_children(base)) == 21
    assert zk.get(base + "/before")[0] == b"set"


def test_close_removes_ephemerals_immediately(zk, make_client, base):
    a = make_client()
    a.create(base + "/e1", ephemeral=True)
    a.create(base + "/e2", b"x", ephemeral=True, sequence=True)
    ev = EventCollector()
    assert zk.exists(base + "/e1", watch=ev) is not None
    kids = EventCollector()
    zk.get_children(base, watch=kids)
    before = zk.exists(base)
    a.stop()
    a.close()
    # closeSession is a synchronous transaction: gone as soon as close returns
    assert zk.exists(base + "/e1") is None
    assert zk.get_children(base) == []
    assert [(e.type, e.path) for e in ev.wait(1)] == [(EventType.DELETED, base + "/e1")]
    assert [(e.type, e.path) for e in kids.wait(1)] == [(EventType.CHILD, base)]
    after = zk.exists(base)
    assert after.cversion == before.cversion + 2
    assert after.pzxid > before.pzxid


def test_expiry_by_silence_removes_ephemerals(zk_hosts, zk, base):
    """A client that stops talking (no pings, socket left open) is expired
    after its session timeout; its ephemerals are deleted and watchers told. The
    expired session's own connection is closed with nothing sent on it, though it
    watched its ephemeral too."""
    s = zkraw.RawSession(zk_hosts, timeout_ms=2 * TICK)   # minimum timeout
    timeout_s = s.negotiated_timeout / 1000.0
    assert s.call(zkraw.OP_CREATE, zkraw.create_body(base + "/eph", flags=1)).err == 0
    assert s.call(zkraw.OP_EXISTS, zkraw.path_watch_body(base + "/eph", True)).err == 0
    t0 = time.monotonic()
    ev = EventCollector()
    assert zk.exists(base + "/eph", watch=ev).ephemeralOwner == s.session_id
    try:
        # Still there well before the timeout
        time.sleep(timeout_s * 0.5)
        assert zk.exists(base + "/eph") is not None
        # Expiry happens at the next tick boundary after the timeout
        events = ev.wait(1, timeout=timeout_s + 2 * TICK / 1000.0 + 3)
        elapsed = time.monotonic() - t0
        assert [(e.type, e.path) for e in events] == [(EventType.DELETED, base + "/eph")]
        assert elapsed >= timeout_s * 0.9
        assert zk.exists(base + "/eph") is None
        # the server closes the expired session's connection, sending nothing
        closed, frames = s.expect_closed(3)
        assert closed
        assert frames == [], frames
    finally:
        s.close()
    # resuming an expired session fails with timeout 0
    r = zkraw.RawSession(zk_hosts, timeout_ms=4000, session_id=s.session_id, passwd=s.passwd)
    assert r.negotiated_timeout == 0 and r.session_id == 0
    r.close()


def test_session_survives_connection_loss(zk_hosts, zk, base):
    """Dropping the TCP connection does not end the session: a new
    connection can resume it by id + password within the timeout."""
    s = zkraw.RawSession(zk_hosts, timeout_ms=10000)
    assert s.call(zkraw.OP_CREATE, zkraw.create_body(base + "/eph", flags=1)).err == 0
    sid, pw = s.session_id, s.passwd
    s.close()                         # no closeSession
    time.sleep(0.2)
    assert zk.exists(base + "/eph").ephemeralOwner == sid
    r = zkraw.RawSession(zk_hosts, timeout_ms=10000, session_id=sid, passwd=pw)
    try:
        assert r.session_id == sid and r.passwd == pw and r.negotiated_timeout == 10000
        rep = r.call(zkraw.OP_GETEPHEMERALS, zkraw.ustring(base))
        assert rep.err == 0 and rep.reader().string_vector() == [base + "/eph"]
    finally:
        r.close_session()
    assert zk.exists(base + "/eph") is None


def test_resume_with_wrong_password_is_rejected(zk_hosts):
    s = zkraw.RawSession(zk_hosts, timeout_ms=10000)
    try:
        bad = bytes(b ^ 0xFF for b in s.passwd)
        r = zkraw.RawSession(zk_hosts, timeout_ms=10000, session_id=s.session_id, passwd=bad)
        assert (r.negotiated_timeout, r.session_id, r.passwd) == (0, 0, b"\0" * 16)
        assert r.expect_closed(5)[0]
        r.close()
        # Quirk: ZooKeeper closes the connections already bound to that
        # session *before* it checks the password, so the legitimate
        # connection is dropped too. The session itself survives.
        assert s.expect_closed(5)[0]
        s.close()
        ok = zkraw.RawSession(zk_hosts, timeout_ms=10000, session_id=s.session_id,
                              passwd=s.passwd)
        assert ok.session_id == s.session_id
        s = ok
        assert s.ping().err == 0
    finally:
        s.close_session()


def test_resume_moves_session_and_closes_old_connection(zk_hosts):
    a = zkraw.RawSession(zk_hosts, timeout_ms=10000)
    b = zkraw.RawSession(zk_hosts, timeout_ms=10000, session_id=a.session_id, passwd=a.passwd)
    try:
        assert b.session_id == a.session_id
        closed, _ = a.expect_closed(5)
        assert closed
        assert b.ping().err == 0
    finally:
        a.close()
        b.close_session()


def test_client_ahead_of_server_is_refused(zk_hosts):
    # lastZxidSeen greater than the server's: closed without a response
    s = zkraw.RawSession(zk_hosts, handshake=False)
    body = (zkraw.i32(0) + zkraw.i64(0x7FFFFFFF00000000) + zkraw.i32(10000)
            + zkraw.i64(0) + zkraw.buffer(b"\0" * 16))
    s.send_frame(body)
    with pytest.raises((zkraw.ConnectionClosed, socket.timeout)):
        s.recv_frame(5)
    s.close()


# ------------------------------------------------------------ through kazoo

def test_kazoo_reconnect_keeps_session(zk, make_client, base):
    """Sever kazoo's TCP connection: it reconnects with the same session id
    (ephemerals survive) and re-sends its auth (auth is per connection).
    kazoo itself drops its watches on disconnect (it tells each watcher with
    an EventType.NONE event and never sends setWatches; see
    test_raw_set_watches_on_reconnect for the server side of that)."""
    from kazoo.security import make_digest_acl
    c = make_client(auth_data=[("digest", "bob:secret")])
    states = []
    c.add_listener(lambda st: states.append(st))
    sid = c.client_id[0]
    c.create(base + "/eph", ephemeral=True)
    c.create(base + "/secret", b"s", acl=[make_digest_acl("bob", "secret", all=True)])
    ev = EventCollector()
    zk.create(base + "/watched", b"0")
    c.get(base + "/watched", watch=ev)
    c._connection._socket.shutdown(socket.SHUT_RDWR)
    assert wait_until(lambda: KazooState.SUSPENDED in states, 10)
    assert wait_until(lambda: states and states[-1] == KazooState.CONNECTED, 10)
    assert c.client_id[0] == sid
    assert zk.exists(base + "/eph").ephemeralOwner == sid
    assert c.get(base + "/secret")[0] == b"s"        # auth re-sent
    assert [e.type for e in ev.wait(1)] == [EventType.NONE]   # kazoo-local
    assert KazooState.LOST not in states
    ev2 = EventCollector()
    c.get(base + "/watched", watch=ev2)
    zk.set(base + "/watched", b"1")
    assert [(e.type, e.path) for e in ev2.wait(1)] == [(EventType.CHANGED, base + "/watched")]


def test_kazoo_session_expiry(zk, make_client, base, zk_hosts):
    """Expire a kazoo session the way kazoo's own test-suite does: attach a
    second connection to the same session (id + password) and close the
    session there. The first client sees LOST (expired) when it reconnects,
    its ephemerals are gone, and kazoo starts a new session."""
    c = make_client()
    states = []
    c.add_listener(lambda st: states.append(st))
    c.create(base + "/eph", ephemeral=True)
    old_sid = c.client_id[0]
    ev = EventCollector()
    zk.exists(base + "/eph", watch=ev)

    # Attach to the session from a raw connection (this moves the session
    # and drops kazoo's connection) and close it right away, before kazoo
    # reconnects. Retry in the unlikely case kazoo won the race.
    for _ in range(3):
        sid, pw = c.client_id
        if sid != old_sid:
            break
        hijack = zkraw.RawSession(zk_hosts, timeout_ms=10000, session_id=sid, passwd=pw)
        if hijack.session_id == old_sid:
            hijack.close_session()
        else:
            hijack.close()
        if wait_until(lambda: zk.exists(base + "/eph") is None, 2):
            break

    assert [(e.type, e.path) for e in ev.wait(1)] == [(EventType.DELETED, base + "/eph")]
    assert wait_until(lambda: KazooState.LOST in states, 15), states
    assert wait_until(lambda: c.connected and c.client_id[0] != old_sid, 15)
    assert c.exists(base + "/eph") is None
    c.create(base + "/eph2", ephemeral=True)
    assert zk.exists(base + "/eph2").ephemeralOwner == c.client_id[0]


def test_kazoo_four_letter_command(zk):
    assert zk.command(b"ruok") == "imok"
    version = zk.server_version()
    assert isinstance(version, tuple) and len(version) >= 3 and version[0] == 3


def test_ephemerals_of_other_sessions_are_not_touched(zk, make_client, base):
    a, b = make_client(), make_client()
    a.create(base + "/a", ephemeral=True)
    b.create(base + "/b", ephemeral=True)
    a.stop()
    assert zk.exists(base + "/a") is None
    assert zk.exists(base + "/b").ephemeralOwner == b.client_id[0]
    assert zkext.get_ephemerals(b, base) == [base + "/b"]
