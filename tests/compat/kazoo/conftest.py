"""Shared fixtures for the kazoo compatibility suite.

Server under test: env ZK_HOSTS (default 127.0.0.1:2181). Every test works
below its own unique base path, so tests are independent of each other and of
whatever else is in the tree.

Optional env knobs (for servers configured differently from the reference
set-up in scripts/start-apache-zk.sh):
  ZK_TICK_TIME       server tickTime in ms (default 2000)
  ZK_REAPER_WAIT     seconds to wait for the container/TTL reaper (default 15)
  ZK_TEST_TIMEOUT    seconds after which a single test is failed (default 60),
                     so that a server that never answers cannot hang the run
"""

import os
import re
import signal
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import NoNodeError, KazooException  # noqa: E402
from compat_helpers import EventCollector  # noqa: E402

ZK_HOSTS = os.environ.get("ZK_HOSTS", "127.0.0.1:2181")
TICK_TIME = int(os.environ.get("ZK_TICK_TIME", "2000"))
REAPER_WAIT = float(os.environ.get("ZK_REAPER_WAIT", "15"))
TEST_TIMEOUT = int(os.environ.get("ZK_TEST_TIMEOUT", "60"))

RUN_ID = "%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
ROOT = "/kazoo-compat-" + RUN_ID


@pytest.fixture(autouse=True)
def _per_test_timeout():
    """Fail (rather than hang) a test whose server never answers. kazoo's
    blocking calls wait on threading.Event, which a SIGALRM interrupts."""
    def expired(signum, frame):
        raise TimeoutError("test exceeded %d s (ZK_TEST_TIMEOUT)" % TEST_TIMEOUT)
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_TIMEOUT)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="session")
def zk_hosts():
    return ZK_HOSTS


def _server_info(hosts):
    """(is_rzk, (major, minor, patch)) from the `srvr` four-letter word."""
    from zkraw import four_letter
    text = four_letter(hosts, "srvr")
    m = re.search(r"Zookeeper version: (\d+)\.(\d+)\.(\d+)([^,\s]*)", text)
    if not m:
        return False, (0, 0, 0)
    return "-rzk-" in m.group(4), tuple(int(x) for x in m.group(1, 2, 3))


@pytest.fixture(scope="session")
def upstream_since(zk_hosts):
    """upstream_since((3, 9, 0)): whether the server under test has the
    behaviour an upstream ZooKeeper change brought in that release. rzk answers
    True: it follows the newer release line where upstream changed behaviour on
    purpose (docs/COMPATIBILITY.md); an Apache server answers by its version."""
    is_rzk, version = _server_info(zk_hosts)

    def since(release):
        return is_rzk or version >= tuple(release)
    since.is_rzk = is_rzk
    since.version = version
    return since


class ClientFactory(object):
    def __init__(self, hosts):
        self.hosts = hosts
        self.clients = []

    def __call__(self, hosts=None, timeout=10.0, start=True, **kw):
        c = KazooClient(hosts=hosts or self.hosts, timeout=timeout, **kw)
        self.clients.append(c)
        if start:
            c.start(timeout=15)
        return c

    def close_all(self):
        for c in self.clients:
            try:
                c.stop()
            except Exception:
                pass
            try:
                c.close()
            except Exception:
                pass


@pytest.fixture
def make_client(zk_hosts):
    f = ClientFactory(zk_hosts)
    yield f
    f.close_all()


@pytest.fixture
def zk(make_client):
    return make_client()


def _delete_tree(client, path):
    """Best-effort recursive delete that copes with nodes we may not list
    (no READ) by trying to delete them as leaves."""
    try:
        children = client.get_children(path)
    except NoNodeError:
        return
    except KazooException:
        children = []
    for ch in children:
        _delete_tree(client, path.rstrip("/") + "/" + ch)
    try:
        client.delete(path)
    except KazooException:
        pass


@pytest.fixture(scope="session")
def _admin(zk_hosts):
    """Session-wide client used to create and clean up test base paths."""
    c = KazooClient(hosts=zk_hosts, timeout=10.0)
    c.start(timeout=15)
    c.ensure_path(ROOT)
    yield c
    _delete_tree(c, ROOT)
    c.stop()
    c.close()


@pytest.fixture
def base(request, _admin):
    """A fresh, empty, persistent node unique to this test."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:80]
    path = "%s/%s-%s" % (ROOT, name, uuid.uuid4().hex[:6])
    _admin.create(path)
    yield path
    _delete_tree(_admin, path)


@pytest.fixture
def events():
    return EventCollector
