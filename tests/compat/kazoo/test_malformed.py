"""Malformed input over raw sockets. The server must drop (or answer) the
offending connection exactly as ZooKeeper does, and stay healthy for other
clients (checked with a kazoo client after every case)."""

import struct

import pytest

import zkraw


@pytest.fixture
def healthy(zk_hosts, zk, base):
    """After the test, a normal kazoo client must still work."""
    yield
    zk.create(base + "/still-alive", b"ok")
    assert zk.get(base + "/still-alive")[0] == b"ok"
    assert zkraw.four_letter(zk_hosts, "ruok") == "imok"


def fresh(zk_hosts):
    return zkraw.RawSession(zk_hosts, timeout_ms=4000)


def assert_closed_without_reply(s, timeout=5):
    closed, frames = s.expect_closed(timeout)
    s.close()
    assert closed, "server did not close the connection"
    assert frames == [], frames


@pytest.mark.parametrize("opcode", [999, 0, 10, -3, 200])
def test_unknown_opcode_unimplemented_then_close(zk_hosts, healthy, opcode):
    s = fresh(zk_hosts)
    xid = s.send(opcode, b"\x00" * 8)
    closed, frames = s.expect_closed(5)
    s.close()
    assert len(frames) == 1, frames
    rep = frames[0]
    assert (rep.xid, rep.err, rep.body) == (xid, -6, b"")
    assert closed


def test_check_alone_is_not_a_request(zk_hosts, healthy):
    """check (13) is only valid inside multi. 3.9 / 3.8.6: UNIMPLEMENTED
    then close. Apache 3.8.0 fails internally and sends nothing (the
    connection stays open); accepted here, but rzk should follow 3.9."""
    s = fresh(zk_hosts)
    xid = s.send(zkraw.OP_CHECK, zkraw.ustring("/") + zkraw.i32(-1))
    closed, frames = s.expect_closed(2)
    s.close()
    if frames or closed:
        assert len(frames) == 1 and frames[0].xid == xid and frames[0].err == -6, frames
        assert closed


@pytest.mark.parametrize("length", [0x7FFFFFFF, -1, -100, 1048576, 0x10000000])
def test_bad_frame_length_closes(zk_hosts, healthy, length):
    s = fresh(zk_hosts)
    s.send_raw(struct.pack("!i", length) + b"\x00" * 16)
    assert_closed_without_reply(s)


def test_max_frame_length_is_accepted(zk_hosts, zk, healthy, base):
    """jute.maxbuffer (1048575) is the largest frame accepted: a setData
    whose frame is exactly that long succeeds."""
    zk.create(base + "/big")
    s = fresh(zk_hosts)
    try:
        path = zkraw.ustring(base + "/big")
        overhead = 8 + len(path) + 4 + 4          # header, path, data len, version
        data = b"x" * (1048575 - overhead)
        body = path + zkraw.buffer(data) + zkraw.i32(-1)
        assert 8 + len(body) == 1048575
        rep = s.call(zkraw.OP_SETDATA, body, timeout=20)
        assert rep.err == 0
        assert rep.reader().stat()["dataLength"] == len(data)
    finally:
        s.close_session()


def test_frame_one_byte_too_long_closes(zk_hosts, zk, healthy, base):
    zk.create(base + "/big")
    s = fresh(zk_hosts)
    path = zkraw.ustring(base + "/big")
    overhead = 8 + len(path) + 4 + 4
    data = b"x" * (1048576 - overhead)
    body = path + zkraw.buffer(data) + zkraw.i32(-1)
    try:
        s.send(zkraw.OP_SETDATA, body)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert_closed_without_reply(s)
    assert zk.get(base + "/big")[0] == b""


def test_kazoo_oversized_set_survives(zk, healthy, base):
    """Through kazoo: a too-large setData drops the connection (ConnectionLoss)
    but the session survives and kazoo reconnects."""
    from kazoo.exceptions import ConnectionLoss
    zk.create(base + "/huge")
    sid = zk.client_id[0]
    with pytest.raises(ConnectionLoss):
        zk.set(base + "/huge", b"y" * (1024 * 1024 + 10))
    assert zk.get(base + "/huge")[0] == b""
    assert zk.client_id[0] == sid


def test_frame_shorter_than_header_closes(zk_hosts, healthy):
    s = fresh(zk_hosts)
    s.send_frame(b"\x01\x02")
    assert_closed_without_reply(s)


def test_truncated_read_body_is_marshalling_error(zk_hosts, healthy):
    s = fresh(zk_hosts)
    try:
        rep = s.call(zkraw.OP_GETDATA, b"")                  # no path at all
        assert (rep.err, rep.body) == (-5, b"")
        rep = s.call(zkraw.OP_GETDATA, zkraw.i32(0x7FFFFFF0))  # bogus string length
        assert rep.err == -5
        # the connection is still usable
        rep = s.call(zkraw.OP_EXISTS, zkraw.path_watch_body("/"))
        assert rep.err == 0
    finally:
        s.close_session()


def test_truncated_write_body_is_marshalling_error(zk_hosts, zk, healthy, base):
    s = fresh(zk_hosts)
    try:
        rep = s.call(zkraw.OP_CREATE, zkraw.ustring(base + "/t") + zkraw.i32(5))
        assert (rep.err, rep.body) == (-5, b"")
        rep = s.call(zkraw.OP_SETDATA, zkraw.ustring(base))
        assert rep.err == -5
        assert s.call(zkraw.OP_EXISTS, zkraw.path_watch_body("/")).err == 0
    finally:
        s.close_session()
    assert zk.exists(base + "/t") is None


def test_trailing_bytes_are_ignored(zk_hosts, healthy):
    s = fresh(zk_hosts)
    try:
        rep = s.call(zkraw.OP_EXISTS, zkraw.path_watch_body("/") + b"garbage!")
        assert rep.err == 0
    finally:
        s.close_session()


def test_xid_is_echoed(zk_hosts, healthy):
    s = fresh(zk_hosts)
    try:
        for xid in (12345, 7, 0x7FFFFFFF):
            rep = s.call(zkraw.OP_EXISTS, zkraw.path_watch_body("/"), xid=xid)
            assert rep.xid == xid and rep.err == 0
    finally:
        s.close_session()


def test_garbage_connect_request_closes(zk_hosts, healthy):
    s = zkraw.RawSession(zk_hosts, handshake=False)
    s.send_frame(b"hello")
    assert_closed_without_reply(s)


@pytest.mark.parametrize("first", [b"abcd", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff",
                                   b"\x00\x00\x00\x00"])
def test_garbage_before_handshake_closes(zk_hosts, healthy, first):
    s = zkraw.RawSession(zk_hosts, handshake=False)
    s.send_raw(first + b"\x00" * 4)
    closed, frames = s.expect_closed(5)
    s.close()
    assert closed
    assert frames == []


def test_disconnect_mid_frame(zk_hosts, healthy):
    s = fresh(zk_hosts)
    s.send_raw(struct.pack("!i", 100) + b"\x00" * 10)
    s.close()


def test_many_bad_connections_then_healthy(zk_hosts, make_client, base):
    for i in range(20):
        s = zkraw.RawSession(zk_hosts, handshake=False)
        s.send_raw(struct.pack("!i", 0x7FFFFFFF))
        s.close()
    c = make_client()
    c.create(base + "/fine", b"1")
    assert c.get(base + "/fine")[0] == b"1"
    assert zkraw.four_letter(zk_hosts, "ruok") == "imok"
