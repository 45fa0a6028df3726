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
    # zxid -1: ZooKeeper answers from its UnimplementedRequestProcessor with the
    # request's zxid, which nothing has set (data-model review: rzk sent its last zxid)
    assert (rep.xid, rep.zxid, rep.err, rep.body) == (xid, -1, -6, b"")
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


NULL = zkraw.i32(-1)          # a null string, buffer or vector


@pytest.mark.parametrize("opcode,rest,err", [
    (zkraw.OP_CREATE, zkraw.buffer(b"x") + zkraw.acl_vector(zkraw.OPEN_ACL) + zkraw.i32(0), -5),
    (zkraw.OP_CREATE2, zkraw.buffer(b"x") + zkraw.acl_vector(zkraw.OPEN_ACL) + zkraw.i32(0), -5),
    (zkraw.OP_CREATECONTAINER, zkraw.buffer(b"x") + zkraw.acl_vector(zkraw.OPEN_ACL)
     + zkraw.i32(4), -5),
    (zkraw.OP_DELETE, zkraw.i32(-1), -5),
    (zkraw.OP_EXISTS, zkraw.boolean(False), -5),
    (zkraw.OP_GETDATA, zkraw.boolean(False), -5),
    (zkraw.OP_GETCHILDREN, zkraw.boolean(False), -5),
    (zkraw.OP_GETCHILDREN2, zkraw.boolean(False), -5),
    (zkraw.OP_GETACL, b"", -5),
    (zkraw.OP_GETALLCHILDRENNUMBER, b"", -5),
    (zkraw.OP_CHECKWATCHES, zkraw.i32(1), -5),
    # these check the path before using it, as they check ""
    (zkraw.OP_SETDATA, zkraw.buffer(b"x") + zkraw.i32(-1), -8),
    (zkraw.OP_SETACL, zkraw.acl_vector(zkraw.OPEN_ACL) + zkraw.i32(-1), -8),
    (zkraw.OP_REMOVEWATCHES, zkraw.i32(1), -121),
], ids=lambda v: str(v) if isinstance(v, int) else "")
def test_null_path_is_not_the_root(zk_hosts, healthy, opcode, rest, err):
    """A null path (length -1) is not "" (which reads serve as the root): the
    request fails and the connection stays usable."""
    s = fresh(zk_hosts)
    try:
        rep = s.call(opcode, NULL + rest)
        assert (rep.err, rep.body) == (err, b"")
        assert s.call(zkraw.OP_EXISTS, zkraw.path_watch_body("/")).err == 0
    finally:
        s.close_session()


def null_id_acl(scheme):
    """An ACL list of one entry, all permissions, `scheme` and a null id."""
    return zkraw.i32(1) + zkraw.i32(31) + zkraw.ustring(scheme) + NULL


@pytest.mark.parametrize("scheme,err", [
    ("world", -5), ("digest", -5), ("ip", -5),     # ZooKeeper's ACL check fails on null
    ("auth", -114), ("x509", -114), ("nosuch", -114),
])
@pytest.mark.parametrize("where", ["create", "setACL", "multi"])
def test_null_acl_id(zk_hosts, zk, healthy, base, scheme, err, where):
    """An ACL entry with a null id (data-model review: rzk answered INVALIDACL for all):
    MARSHALLINGERROR under world, digest and ip (ZooKeeper's check dereferences the id;
    a multi fails as a whole), INVALIDACL under other schemes."""
    s = fresh(zk_hosts)
    path = f"{base}/n-{where}-{scheme}"
    create = zkraw.ustring(path) + zkraw.buffer(b"x") + null_id_acl(scheme) + zkraw.i32(0)
    try:
        if where == "create":
            rep = s.call(zkraw.OP_CREATE, create)
            assert (rep.err, rep.body) == (err, b"")
        elif where == "setACL":
            zk.create(path)
            rep = s.call(zkraw.OP_SETACL, zkraw.ustring(path) + null_id_acl(scheme) + zkraw.i32(-1))
            assert (rep.err, rep.body) == (err, b"")
            assert zk.get_acls(path)[1].version == 0
        else:
            op = zkraw.i32(zkraw.OP_CREATE) + zkraw.boolean(False) + zkraw.i32(-1)
            end = zkraw.i32(-1) + zkraw.boolean(True) + zkraw.i32(-1)
            rep = s.call(zkraw.OP_MULTI, op + zkraw.create_body(base + "/m") + op + create + end)
            if err == -5:
                assert rep.err == -5
            else:  # a failed multi: the first create rolled back, the second INVALIDACL
                r = zkraw.Reader(rep.body)
                assert rep.err == 0
                assert [(r.i32(), r.boolean(), r.i32(), r.i32()) for _ in range(2)] == \
                    [(-1, False, 0, 0), (-1, False, -114, -114)], rep.body
            assert zk.exists(base + "/m") is None
        assert s.call(zkraw.OP_EXISTS, zkraw.path_watch_body("/")).err == 0
    finally:
        s.close_session()
    if where != "setACL":
        assert zk.exists(path) is None


@pytest.mark.parametrize("opcode,op", [
    (zkraw.OP_MULTI, zkraw.i32(zkraw.OP_CREATE) + zkraw.boolean(False) + zkraw.i32(-1)
     + NULL + zkraw.buffer(b"x") + zkraw.acl_vector(zkraw.OPEN_ACL) + zkraw.i32(0)),
    (zkraw.OP_MULTI, zkraw.i32(zkraw.OP_CHECK) + zkraw.boolean(False) + zkraw.i32(-1)
     + NULL + zkraw.i32(-1)),
    (zkraw.OP_MULTIREAD, zkraw.i32(zkraw.OP_GETDATA) + zkraw.boolean(False) + zkraw.i32(-1)
     + NULL + zkraw.boolean(False)),
], ids=["multi-create", "multi-check", "multiRead-getData"])
def test_null_path_in_a_multi_fails_the_whole_multi(zk_hosts, zk, healthy, base, opcode, op):
    s = fresh(zk_hosts)
    end = zkraw.i32(-1) + zkraw.boolean(True) + zkraw.i32(-1)
    first = zkraw.i32(zkraw.OP_CREATE) + zkraw.boolean(False) + zkraw.i32(-1) + \
        zkraw.create_body(base + "/m")
    if opcode == zkraw.OP_MULTIREAD:
        first = zkraw.i32(zkraw.OP_GETDATA) + zkraw.boolean(False) + zkraw.i32(-1) + \
            zkraw.path_watch_body("/")
    try:
        rep = s.call(opcode, first + op + end)
        assert rep.err == -5
        # (ZooKeeper sends an empty multi response after the header, rzk nothing:
        # clients read no body from a reply with an error.)
        assert s.call(zkraw.OP_EXISTS, zkraw.path_watch_body("/")).err == 0
    finally:
        s.close_session()
    assert zk.exists(base + "/m") is None


@pytest.mark.parametrize("path", [None, "", "/", "/no/such/node", "not a path"])
def test_sync_echoes_its_path_null_included(zk_hosts, healthy, path):
    """sync reads no path: it answers OK and echoes what it was sent, a null path
    as null (length -1), not as ""."""
    s = fresh(zk_hosts)
    try:
        body = NULL if path is None else zkraw.ustring(path)
        rep = s.call(zkraw.OP_SYNC, body)
        assert (rep.err, rep.body) == (0, body)
        assert s.call(zkraw.OP_EXISTS, zkraw.path_watch_body("/")).err == 0
    finally:
        s.close_session()


@pytest.mark.parametrize("count", [-5, -100, -2147483648])
def test_negative_acl_count_is_an_empty_acl(zk_hosts, healthy, base, count):
    """A vector count below -1 holds no element, as in Java's archive: an
    empty ACL, INVALIDACL."""
    s = fresh(zk_hosts)
    try:
        body = zkraw.ustring(base + "/n") + zkraw.buffer(b"x") + zkraw.i32(count) + zkraw.i32(0)
        assert s.call(zkraw.OP_CREATE, body).err == -114
        body = zkraw.ustring(base) + zkraw.i32(count) + zkraw.i32(-1)
        assert s.call(zkraw.OP_SETACL, body).err == -114
    finally:
        s.close_session()


@pytest.mark.parametrize("opcode,lists", [
    (zkraw.OP_SETWATCHES, [-5, -5, -5]),
    (zkraw.OP_SETWATCHES, [None, 0, 0]),
    (zkraw.OP_SETWATCHES, [0, 0, None]),
    (zkraw.OP_SETWATCHES, [["/", None], 0, 0]),
    (zkraw.OP_SETWATCHES2, [-5, -5, -5, -5, -5]),
    (zkraw.OP_SETWATCHES2, [0, 0, 0, 0, None]),
    (zkraw.OP_SETWATCHES2, [None] * 5),
], ids=["101-neg", "101-null-first", "101-null-last", "101-null-path", "105-neg",
        "105-null-last", "105-all-null"])
def test_set_watches_null_lists(zk_hosts, healthy, opcode, lists):
    """A null list, or a null path in a list, is MARSHALLINGERROR; a count
    below -1 is an empty list."""
    def enc(v):
        if v is None:
            return NULL
        if isinstance(v, int):
            return zkraw.i32(v)
        return zkraw.i32(len(v)) + b"".join(NULL if p is None else zkraw.ustring(p) for p in v)
    s = fresh(zk_hosts)
    try:
        body = zkraw.i64(0) + b"".join(enc(v) for v in lists)
        rep = s.call(opcode, body, xid=zkraw.SETWATCHES_XID)
        bad = any(v is None or (isinstance(v, list) and None in v) for v in lists)
        assert (rep.xid, rep.err) == (zkraw.SETWATCHES_XID, -5 if bad else 0)
        assert s.call(zkraw.OP_EXISTS, zkraw.path_watch_body("/")).err == 0
    finally:
        s.close_session()


def test_null_sasl_token_closes(zk_hosts, healthy):
    s = fresh(zk_hosts)
    s.send(102, NULL)
    assert_closed_without_reply(s)


@pytest.mark.parametrize("body", [b"", b"\x00\x00", zkraw.i32(64) + b"short"])
def test_undecodable_sasl_token_closes(zk_hosts, healthy, body):
    """A token that does not decode (none, a cut length, a length past the end) fails
    ZooKeeper's processSasl with an IOException: closed without a reply."""
    s = fresh(zk_hosts)
    s.send(102, body)
    assert_closed_without_reply(s)


def test_all_children_number_of_empty_path_counts_the_root(zk_hosts, zk, healthy, base):
    """"" counts every path under "" + "/", the root itself included: one more than "/"."""
    zk.create(base + "/c1")
    s = fresh(zk_hosts)
    try:
        n = [s.call(zkraw.OP_GETALLCHILDRENNUMBER, zkraw.ustring(p)).reader().i32()
             for p in ("", "/", "")]
        assert n[0] == n[2] == n[1] + 1, n
    finally:
        s.close_session()


def test_delete_container_from_a_client_is_refused(zk_hosts, zk, healthy, base):
    """deleteContainer (20) is the server's own reaper's request and checks no ACL. From a
    client ZooKeeper answers BADARGUMENTS whatever the body (its prep reads the path from
    the whole request buffer, headers included) and deletes nothing; rzk deleted any empty
    node this way, ACLs unchecked (found by a review)."""
    from kazoo.security import make_digest_acl
    locked = [make_digest_acl("alice", "secret", all=True)]
    zk.create(base + "/locked", b"", acl=locked)
    zk.create(base + "/plain", b"")
    s = fresh(zk_hosts)
    assert s.call(zkraw.OP_CREATECONTAINER, zkraw.create_body(base + "/box")).err == 0
    try:
        for path in (base + "/locked", base + "/plain", base + "/box", base + "/missing"):
            for body in (path.encode(), zkraw.ustring(path)):
                rep = s.call(zkraw.OP_DELETE_CONTAINER, body)
                assert (rep.err, rep.body) == (-8, b""), (path, body)
        # the connection stays open
        assert s.call(zkraw.OP_EXISTS, zkraw.path_watch_body("/")).err == 0
    finally:
        s.close_session()
    for name in ("locked", "plain", "box"):
        assert zk.exists(base + "/" + name) is not None, name
