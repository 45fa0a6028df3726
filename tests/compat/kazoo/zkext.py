"""Operations that kazoo (2.11) has no public API for, sent through kazoo's
own connection machinery (KazooClient._call), so they travel on a real kazoo
session with its auth, pings, reconnects and xids.

kazoo lacks: createContainer (19), createTTL (21), getEphemerals (103),
getAllChildrenNumber (104), whoAmI (107), addWatch (106, persistent and
persistent-recursive watches), checkWatches (17), removeWatches (18) and
multiRead (22). Each request class below has the attributes kazoo's
connection code needs: `type`, `serialize()` and `deserialize(buf, off)`.
"""

import threading
from collections import namedtuple

from kazoo.protocol.states import ZnodeStat
from kazoo.protocol.serialization import Watch, stat_struct

from zkraw import (Reader, ustring, buffer, i32, i64, acl_vector,
                   OP_CREATECONTAINER, OP_CREATETTL, OP_GETEPHEMERALS,
                   OP_GETALLCHILDRENNUMBER, OP_WHOAMI, OP_ADDWATCH,
                   OP_CHECKWATCHES, OP_REMOVEWATCHES, OP_MULTIREAD,
                   OP_GETCHILDREN, OP_GETDATA)

ADD_WATCH_PERSISTENT = 0
ADD_WATCH_PERSISTENT_RECURSIVE = 1

WATCHER_CHILDREN = 1
WATCHER_DATA = 2
WATCHER_ANY = 3

MODE_CONTAINER = 4
MODE_PERSISTENT_WITH_TTL = 5
MODE_PERSISTENT_SEQUENTIAL_WITH_TTL = 6


def _acls(acl):
    return [(a.perms, a.id.scheme, a.id.id) for a in acl]


def _create2_response(buf, offset):
    r = Reader(buf, offset)
    path = r.ustring()
    stat = ZnodeStat._make(stat_struct.unpack_from(buf, r.off))
    return path, stat


class CreateContainer(namedtuple("CreateContainer", "path data acl")):
    type = OP_CREATECONTAINER

    def serialize(self):
        return ustring(self.path) + buffer(self.data) + acl_vector(_acls(self.acl)) + i32(MODE_CONTAINER)

    @classmethod
    def deserialize(cls, buf, offset):
        return _create2_response(buf, offset)


class CreateTTL(namedtuple("CreateTTL", "path data acl flags ttl")):
    type = OP_CREATETTL

    def serialize(self):
        return (ustring(self.path) + buffer(self.data) + acl_vector(_acls(self.acl))
                + i32(self.flags) + i64(self.ttl))

    @classmethod
    def deserialize(cls, buf, offset):
        return _create2_response(buf, offset)


class GetEphemerals(namedtuple("GetEphemerals", "prefix")):
    type = OP_GETEPHEMERALS

    def serialize(self):
        return ustring(self.prefix)

    @classmethod
    def deserialize(cls, buf, offset):
        return Reader(buf, offset).string_vector()


class GetAllChildrenNumber(namedtuple("GetAllChildrenNumber", "path")):
    type = OP_GETALLCHILDRENNUMBER

    def serialize(self):
        return ustring(self.path)

    @classmethod
    def deserialize(cls, buf, offset):
        return Reader(buf, offset).i32()


class WhoAmI(namedtuple("WhoAmI", "unused")):
    # (a field is needed: kazoo skips result delivery for a falsy request,
    # and an empty namedtuple is falsy)
    type = OP_WHOAMI

    def serialize(self):
        return b""

    @classmethod
    def deserialize(cls, buf, offset):
        r = Reader(buf, offset)
        n = r.i32()
        return [(r.ustring(), r.ustring()) for _ in range(max(n, 0))]


class AddWatch(namedtuple("AddWatch", "path mode")):
    type = OP_ADDWATCH

    def serialize(self):
        return ustring(self.path) + i32(self.mode)

    @classmethod
    def deserialize(cls, buf, offset):
        # ErrorResponse{int err}
        return Reader(buf, offset).i32()


class CheckWatches(namedtuple("CheckWatches", "path wtype")):
    type = OP_CHECKWATCHES

    def serialize(self):
        return ustring(self.path) + i32(self.wtype)

    @classmethod
    def deserialize(cls, buf, offset):
        return True


class RemoveWatches(namedtuple("RemoveWatches", "path wtype")):
    type = OP_REMOVEWATCHES

    def serialize(self):
        return ustring(self.path) + i32(self.wtype)

    @classmethod
    def deserialize(cls, buf, offset):
        return True


class MultiRead(namedtuple("MultiRead", "ops")):
    """ops: list of ("get_children", path) / ("get", path), optionally with a
    third element, the op's watch flag (default False).
    Result: list of either a list of children, a (data, ZnodeStat) tuple,
    or an int error code."""
    type = OP_MULTIREAD

    def serialize(self):
        out = b""
        for item in self.ops:
            kind, path = item[0], item[1]
            watch = b"\x01" if len(item) > 2 and item[2] else b"\x00"
            op = OP_GETCHILDREN if kind == "get_children" else OP_GETDATA
            out += i32(op) + b"\x00" + i32(-1) + ustring(path) + watch
        out += i32(-1) + b"\x01" + i32(-1)
        return out

    @classmethod
    def deserialize(cls, buf, offset):
        r = Reader(buf, offset)
        results = []
        while True:
            t, done, err = r.i32(), r.boolean(), r.i32()
            if done:
                break
            if t == OP_GETCHILDREN:
                results.append(r.string_vector())
            elif t == OP_GETDATA:
                data = r.buffer()
                st = ZnodeStat._make(stat_struct.unpack_from(buf, r.off))
                r.off += stat_struct.size
                results.append((data, st))
            elif t == -1:
                results.append(r.i32())
            else:
                raise ValueError("unexpected multiRead result type %d" % t)
        return results


def call(client, request, timeout=10):
    """Send `request` on kazoo client `client` and wait for the result
    (raises the kazoo exception for a non-zero reply error)."""
    async_result = client.handler.async_result()
    client._call(request, async_result)
    return async_result.get(timeout=timeout)


def _full(client, path):
    # honour a chroot, as kazoo's own calls do
    return client.chroot + path if client.chroot else path


def create_container(client, path, data=b"", acl=None):
    from kazoo.security import OPEN_ACL_UNSAFE
    return call(client, CreateContainer(_full(client, path), data, acl or OPEN_ACL_UNSAFE))


def create_ttl(client, path, ttl, data=b"", acl=None, sequential=False):
    from kazoo.security import OPEN_ACL_UNSAFE
    flags = MODE_PERSISTENT_SEQUENTIAL_WITH_TTL if sequential else MODE_PERSISTENT_WITH_TTL
    return call(client, CreateTTL(_full(client, path), data, acl or OPEN_ACL_UNSAFE, flags, ttl))


def get_ephemerals(client, prefix="/"):
    return call(client, GetEphemerals(_full(client, prefix)))


def get_all_children_number(client, path):
    return call(client, GetAllChildrenNumber(_full(client, path)))


def who_am_i(client):
    return call(client, WhoAmI(None))


def check_watches(client, path, wtype):
    return call(client, CheckWatches(_full(client, path), wtype))


def remove_watches(client, path, wtype):
    return call(client, RemoveWatches(_full(client, path), wtype))


def multi_read(client, ops):
    return call(client, MultiRead([(o[0], _full(client, o[1])) + tuple(o[2:]) for o in ops]))


class PersistentWatches(object):
    """Receive notifications for persistent / persistent-recursive watches on
    a kazoo client.

    kazoo only knows one-shot watches: it dispatches a notification to the
    watchers registered for exactly that path and forgets them. We hook the
    connection's notification reader so that every notification for a path
    covered by a persistent registration is recorded (in arrival order),
    before kazoo's own handling runs.
    """

    def __init__(self, client):
        self.client = client
        self.lock = threading.Condition()
        self.events = []          # (EventType, path) in arrival order
        self.raw = []             # every notification seen: (type int, path)
        self.registrations = {}   # path -> mode
        conn = client._connection
        original = conn._read_watch_event

        def hooked(buf, offset):
            watch, _ = Watch.deserialize(buf, offset)
            with self.lock:
                self.raw.append((watch.type, watch.path))
                if self._covered(watch.path):
                    self.events.append((watch.type, client.unchroot(watch.path)))
                    self.lock.notify_all()
            return original(buf, offset)

        conn._read_watch_event = hooked

    def _covered(self, path):
        for p, mode in self.registrations.items():
            if path == p:
                return True
            if mode == ADD_WATCH_PERSISTENT_RECURSIVE:
                prefix = p if p.endswith("/") else p + "/"
                if path.startswith(prefix):
                    return True
        return False

    def add(self, path, mode):
        full = _full(self.client, path)
        with self.lock:
            self.registrations[full] = mode
        return call(self.client, AddWatch(full, mode))

    def wait_for(self, n, timeout=5.0):
        """Wait until at least n events were recorded; return a copy."""
        with self.lock:
            self.lock.wait_for(lambda: len(self.events) >= n, timeout)
            return list(self.events)

    def take(self):
        with self.lock:
            ev = list(self.events)
            self.events.clear()
            return ev
