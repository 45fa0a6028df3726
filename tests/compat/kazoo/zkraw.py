"""A deliberately tiny raw ZooKeeper wire-protocol client.

Used only where kazoo cannot express what we want to check: exact frames
(how many notifications, reply header fields), deliberately malformed input,
4-letter words, setWatches semantics, session expiry by silence.

Encoding follows docs/CLIENT-PROTOCOL.md §1-§2 (jute: big-endian ints,
length-prefixed strings/buffers, frames prefixed with a 4-byte length).
"""

import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
import zkproc  # noqa: E402

# opcodes
OP_CREATE = 1
OP_DELETE = 2
OP_EXISTS = 3
OP_GETDATA = 4
OP_SETDATA = 5
OP_GETACL = 6
OP_SETACL = 7
OP_GETCHILDREN = 8
OP_SYNC = 9
OP_PING = 11
OP_GETCHILDREN2 = 12
OP_CHECK = 13
OP_MULTI = 14
OP_CREATE2 = 15
OP_CHECKWATCHES = 17
OP_REMOVEWATCHES = 18
OP_CREATECONTAINER = 19
OP_DELETE_CONTAINER = 20
OP_CREATETTL = 21
OP_MULTIREAD = 22
OP_AUTH = 100
OP_SETWATCHES = 101
OP_GETEPHEMERALS = 103
OP_GETALLCHILDRENNUMBER = 104
OP_SETWATCHES2 = 105
OP_ADDWATCH = 106
OP_WHOAMI = 107
OP_CLOSE = -11

# event types
EV_NONE = -1
EV_CREATED = 1
EV_DELETED = 2
EV_DATA_CHANGED = 3
EV_CHILDREN_CHANGED = 4

STATE_SYNC_CONNECTED = 3

WATCH_XID = -1
PING_XID = -2
AUTH_XID = -4
SETWATCHES_XID = -8

OPEN_ACL = [(31, "world", "anyone")]

STAT = struct.Struct("!qqqqiiiqiiq")
STAT_FIELDS = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion",
               "aversion", "ephemeralOwner", "dataLength", "numChildren",
               "pzxid")


def parse_hosts(hosts):
    """'h1:p1,h2:p2/chroot' -> [(h1, p1), ...] (chroot dropped)."""
    hosts = hosts.split("/", 1)[0]
    out = []
    for hp in hosts.split(","):
        hp = hp.strip()
        if not hp:
            continue
        host, _, port = hp.rpartition(":")
        out.append((host or "127.0.0.1", int(port or 2181)))
    return out


# --- jute encoding -------------------------------------------------------

def i32(v):
    return struct.pack("!i", v)


def i64(v):
    return struct.pack("!q", v)


def boolean(v):
    return b"\x01" if v else b"\x00"


def ustring(s):
    if s is None:
        return i32(-1)
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return i32(len(b)) + b


def buffer(b):
    if b is None:
        return i32(-1)
    return i32(len(b)) + bytes(b)


def acl_vector(acls):
    out = i32(len(acls))
    for perms, scheme, ident in acls:
        out += i32(perms) + ustring(scheme) + ustring(ident)
    return out


def string_vector(items):
    out = i32(len(items))
    for s in items:
        out += ustring(s)
    return out


class Reader(object):
    def __init__(self, data, offset=0):
        self.data = data
        self.off = offset

    def remaining(self):
        return len(self.data) - self.off

    def i32(self):
        v = struct.unpack_from("!i", self.data, self.off)[0]
        self.off += 4
        return v

    def i64(self):
        v = struct.unpack_from("!q", self.data, self.off)[0]
        self.off += 8
        return v

    def boolean(self):
        v = self.data[self.off] != 0
        self.off += 1
        return v

    def buffer(self):
        n = self.i32()
        if n < 0:
            return None
        v = self.data[self.off:self.off + n]
        self.off += n
        return bytes(v)

    def ustring(self):
        b = self.buffer()
        return None if b is None else b.decode("utf-8")

    def stat(self):
        vals = STAT.unpack_from(self.data, self.off)
        self.off += STAT.size
        return dict(zip(STAT_FIELDS, vals))

    def string_vector(self):
        n = self.i32()
        return [self.ustring() for _ in range(max(n, 0))]


# --- requests --------------------------------------------------------------

def create_body(path, data=b"", acl=OPEN_ACL, flags=0):
    return ustring(path) + buffer(data) + acl_vector(acl) + i32(flags)


def create_ttl_body(path, data=b"", acl=OPEN_ACL, flags=5, ttl=1000):
    return create_body(path, data, acl, flags) + i64(ttl)


def path_watch_body(path, watch=False):
    return ustring(path) + boolean(watch)


class Reply(object):
    def __init__(self, xid, zxid, err, body):
        self.xid = xid
        self.zxid = zxid
        self.err = err
        self.body = body

    def reader(self):
        return Reader(self.body)

    def event(self):
        """For xid == -1: (type, state, path)."""
        r = self.reader()
        return (r.i32(), r.i32(), r.ustring())

    def __repr__(self):
        return "Reply(xid=%d, zxid=0x%x, err=%d, body=%d bytes)" % (
            self.xid, self.zxid, self.err, len(self.body))


class ConnectionClosed(Exception):
    pass


class RawSession(object):
    """One TCP connection speaking the ZooKeeper client protocol."""

    def __init__(self, hosts, timeout_ms=10000, session_id=0,
                 passwd=b"\0" * 16, last_zxid=0, read_only=None,
                 io_timeout=10.0, handshake=True, sock=None):
        """`sock`: an already connected socket (e.g. a TLS one) to speak over instead of
        a new TCP connection to the first of `hosts`."""
        if sock is None:
            host, port = parse_hosts(hosts)[0]
            sock = socket.create_connection((host, port), timeout=io_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.io_timeout = io_timeout
        self.xid = 0
        self.events = []          # (type, state, path, zxid) received while waiting
        self.session_id = None
        self.passwd = None
        self.negotiated_timeout = None
        self.read_only = None
        if handshake:
            self.handshake(timeout_ms, session_id, passwd, last_zxid, read_only)

    # -- framing
    def send_frame(self, payload):
        self.sock.sendall(i32(len(payload)) + payload)

    def send_raw(self, data):
        self.sock.sendall(data)

    def _recv_exact(self, n, deadline):
        buf = b""
        while len(buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("timed out waiting for %d bytes" % n)
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(n - len(buf))
            except (ConnectionResetError, BrokenPipeError) as e:
                raise ConnectionClosed(str(e))
            if not chunk:
                raise ConnectionClosed("EOF after %d/%d bytes" % (len(buf), n))
            buf += chunk
        return buf

    def recv_frame(self, timeout=None):
        deadline = time.monotonic() + (self.io_timeout if timeout is None else timeout)
        n = struct.unpack("!i", self._recv_exact(4, deadline))[0]
        return self._recv_exact(n, deadline)

    def handshake(self, timeout_ms, session_id=0, passwd=b"\0" * 16,
                  last_zxid=0, read_only=None):
        body = i32(0) + i64(last_zxid) + i32(timeout_ms) + i64(session_id) + buffer(passwd)
        if read_only is not None:
            body += boolean(read_only)
        self.send_frame(body)
        r = Reader(self.recv_frame())
        proto = r.i32()
        self.negotiated_timeout = r.i32()
        self.session_id = r.i64()
        self.passwd = r.buffer()
        self.read_only = r.boolean() if r.remaining() > 0 else None
        self.protocol_version = proto
        return self

    # -- requests
    def next_xid(self):
        self.xid += 1
        return self.xid

    def send(self, opcode, body=b"", xid=None):
        if xid is None:
            xid = self.next_xid()
        self.send_frame(i32(xid) + i32(opcode) + body)
        return xid

    def read_reply(self, timeout=None):
        data = self.recv_frame(timeout)
        r = Reader(data)
        xid, zxid, err = r.i32(), r.i64(), r.i32()
        return Reply(xid, zxid, err, data[16:])

    def call(self, opcode, body=b"", xid=None, timeout=None):
        """Send a request and return its reply; notifications that arrive
        in the meantime are stored in self.events."""
        xid = self.send(opcode, body, xid)
        while True:
            rep = self.read_reply(timeout)
            if rep.xid == WATCH_XID:
                t, s, p = rep.event()
                self.events.append((t, s, p, rep.zxid))
                continue
            if rep.xid != xid:
                raise AssertionError("unexpected reply xid %d (wanted %d): %r"
                                     % (rep.xid, xid, rep))
            return rep

    def wait_event(self, timeout=5.0):
        """Return the next notification (type, state, path, zxid) or None."""
        if self.events:
            return self.events.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                rep = self.read_reply(remaining)
            except socket.timeout:
                return None
            if rep.xid == WATCH_XID:
                t, s, p = rep.event()
                return (t, s, p, rep.zxid)
            # pings etc are ignored

    def ping(self):
        return self.call(OP_PING, b"", xid=PING_XID)

    def close_session(self):
        try:
            rep = self.call(OP_CLOSE, b"")
        finally:
            self.close()
        return rep

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def expect_closed(self, timeout=5.0):
        """True if the server closes the connection within timeout
        (after possibly sending some frames, which are returned)."""
        frames = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                frames.append(self.read_reply(deadline - time.monotonic()))
            except ConnectionClosed:
                return True, frames
            except socket.timeout:
                return False, frames
            except struct.error:
                return True, frames
        return False, frames


def four_letter(hosts, cmd, timeout=10.0, extra=b""):
    """zkproc.four to the first of `hosts`: the full text answer to a 4-letter
    word on a fresh connection ("" if nothing answers)."""
    host, port = parse_hosts(hosts)[0]
    return zkproc.four(port, cmd, host, timeout, extra)


def unique_suffix():
    return "%d-%s" % (os.getpid(), os.urandom(4).hex())
