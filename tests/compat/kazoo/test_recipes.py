"""kazoo's recipes against the server, with several clients/threads
contending: Lock, ReadLock/WriteLock, Semaphore, Election, Queue,
LockingQueue, Barrier, DoubleBarrier, Counter, ChildrenWatch/DataWatch,
Party."""

import threading
import time

import pytest
from kazoo.exceptions import LockTimeout

from compat_helpers import wait_until

N_CLIENTS = 4


def run_threads(targets, timeout=30):
    errors = []

    def wrap(fn):
        def run():
            try:
                fn()
            except BaseException as e:       # noqa: B902 - report everything
                errors.append(e)
        return run

    threads = [threading.Thread(target=wrap(t), daemon=True) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "threads did not finish"
    assert not errors, errors


def test_lock_mutual_exclusion(make_client, base):
    clients = [make_client() for _ in range(N_CLIENTS)]
    inside = []
    max_inside = [0]
    count = [0]
    guard = threading.Lock()

    def worker(c, ident):
        def run():
            lock = c.Lock(base + "/lock", ident)
            for _ in range(5):
                with lock:
                    with guard:
                        inside.append(ident)
                        max_inside[0] = max(max_inside[0], len(inside))
                        count[0] += 1
                    time.sleep(0.005)
                    with guard:
                        inside.remove(ident)
        return run

    run_threads([worker(c, "w%d" % i) for i, c in enumerate(clients)])
    assert max_inside[0] == 1
    assert count[0] == 5 * N_CLIENTS


def test_lock_contenders_and_timeout(make_client, base):
    a, b = make_client(), make_client()
    la = a.Lock(base + "/lock", "holder-a")
    lb = b.Lock(base + "/lock", "waiter-b")
    assert la.acquire(timeout=5)
    assert lb.acquire(blocking=False) is False
    with pytest.raises(LockTimeout):
        lb.acquire(timeout=0.5)
    assert la.contenders() == ["holder-a"]
    la.release()
    assert lb.acquire(timeout=5)
    assert lb.contenders() == ["waiter-b"]
    lb.release()


def test_lock_released_when_holder_session_closes(make_client, base):
    a, b = make_client(), make_client()
    assert a.Lock(base + "/lock").acquire(timeout=5)
    lb = b.Lock(base + "/lock")
    got = []
    t = threading.Thread(target=lambda: got.append(lb.acquire(timeout=10)), daemon=True)
    t.start()
    time.sleep(0.3)
    assert not got
    a.stop()                 # closes the session; its lock node vanishes
    t.join(10)
    assert got == [True]
    lb.release()


def test_read_write_lock(make_client, base):
    clients = [make_client() for _ in range(N_CLIENTS)]
    state = {"readers": 0, "writers": 0, "max_readers": 0, "bad": 0}
    guard = threading.Lock()

    def reader(c):
        def run():
            for _ in range(4):
                with c.ReadLock(base + "/rw"):
                    with guard:
                        state["readers"] += 1
                        state["max_readers"] = max(state["max_readers"], state["readers"])
                        if state["writers"]:
                            state["bad"] += 1
                    time.sleep(0.02)
                    with guard:
                        state["readers"] -= 1
        return run

    def writer(c):
        def run():
            for _ in range(3):
                with c.WriteLock(base + "/rw"):
                    with guard:
                        state["writers"] += 1
                        if state["writers"] > 1 or state["readers"]:
                            state["bad"] += 1
                    time.sleep(0.01)
                    with guard:
                        state["writers"] -= 1
        return run

    run_threads([reader(clients[0]), reader(clients[1]), reader(clients[2]),
                 writer(clients[3])])
    assert state["bad"] == 0


def test_readers_share(make_client, base):
    a, b = make_client(), make_client()
    ra, rb = a.ReadLock(base + "/rw"), b.ReadLock(base + "/rw")
    assert ra.acquire(timeout=5)
    assert rb.acquire(timeout=5)          # second reader does not wait
    w = make_client().WriteLock(base + "/rw")
    assert w.acquire(blocking=False) is False
    ra.release()
    rb.release()
    assert w.acquire(timeout=5)
    assert a.ReadLock(base + "/rw").acquire(blocking=False) is False
    w.release()


def test_semaphore(make_client, base):
    clients = [make_client() for _ in range(N_CLIENTS)]
    inside = [0]
    peak = [0]
    guard = threading.Lock()

    def worker(c, i):
        def run():
            sem = c.Semaphore(base + "/sem", "id%d" % i, max_leases=2)
            for _ in range(3):
                with sem:
                    with guard:
                        inside[0] += 1
                        peak[0] = max(peak[0], inside[0])
                    time.sleep(0.02)
                    with guard:
                        inside[0] -= 1
        return run

    run_threads([worker(c, i) for i, c in enumerate(clients)])
    assert peak[0] <= 2
    assert peak[0] >= 1
    s = clients[0].Semaphore(base + "/sem", "x", max_leases=2)
    assert s.acquire(timeout=5)
    assert s.lease_holders() == ["x"]
    s.release()


def test_election_one_leader_and_handover(make_client, base):
    clients = [make_client() for _ in range(3)]
    leader_events = []
    guard = threading.Lock()
    release = {i: threading.Event() for i in range(3)}
    elections = [c.Election(base + "/election", "cand%d" % i) for i, c in enumerate(clients)]

    def lead(i):
        with guard:
            leader_events.append(("start", i))
        release[i].wait(20)
        with guard:
            leader_events.append(("end", i))

    threads = []
    for i, e in enumerate(elections):
        t = threading.Thread(target=e.run, args=(lead, i), daemon=True)
        t.start()
        threads.append(t)
        # wait for this candidate's node: deterministic order of candidacy
        assert wait_until(lambda: len(e.contenders()) == i + 1, 10)

    order = []
    for _ in range(3):
        assert wait_until(lambda: len([x for x in leader_events if x[0] == "start"]) > len(order), 10)
        with guard:
            starts = [i for (k, i) in leader_events if k == "start"]
            ends = [i for (k, i) in leader_events if k == "end"]
        # exactly one leader at a time
        assert len(starts) - len(ends) == 1
        current = starts[-1]
        order.append(current)
        contenders = elections[current].contenders()
        assert contenders[0] == "cand%d" % current
        release[current].set()
    assert order == [0, 1, 2]
    for t in threads:
        t.join(10)


def test_queue_fifo(make_client, base):
    producer, consumer = make_client(), make_client()
    q = producer.Queue(base + "/q")
    for i in range(10):
        q.put(("item-%d" % i).encode())
    q.put(b"urgent", priority=1)
    assert len(q) == 11
    cq = consumer.Queue(base + "/q")
    got = [cq.get() for _ in range(11)]
    assert got[0] == b"urgent"
    assert got[1:] == [("item-%d" % i).encode() for i in range(10)]
    assert cq.get() is None


def test_queue_concurrent_consumers_no_duplicates(make_client, base):
    q = make_client().Queue(base + "/q")
    items = [("v%02d" % i).encode() for i in range(30)]
    for it in items:
        q.put(it)
    consumers = [make_client().Queue(base + "/q") for _ in range(3)]
    got = []
    guard = threading.Lock()

    def consume(cq):
        def run():
            while True:
                v = cq.get()
                if v is None:
                    return
                with guard:
                    got.append(v)
        return run

    run_threads([consume(c) for c in consumers])
    assert sorted(got) == items


def test_locking_queue(make_client, base):
    a, b = make_client(), make_client()
    qa = a.LockingQueue(base + "/lq")
    qa.put(b"one")
    qa.put_all([b"two", b"three"])
    qa.put(b"first", priority=10)
    assert len(qa) == 4
    qb = b.LockingQueue(base + "/lq")
    v = qb.get(timeout=5)
    assert v == b"first"
    # while b holds the item, a cannot take it and gets the next one
    assert qa.get(timeout=5) == b"one"
    assert qb.holds_lock()
    assert qb.consume() is True
    assert qa.release() is True             # put "one" back
    assert qb.get(timeout=5) == b"one"
    assert qb.consume()
    assert qb.get(timeout=5) == b"two"
    assert qb.consume()
    assert qb.get(timeout=5) == b"three"
    assert qb.consume()
    assert len(qb) == 0
    assert qb.get(timeout=0.3) is None


def test_barrier(make_client, base):
    owner, waiter = make_client(), make_client()
    bar = owner.Barrier(base + "/barrier")
    bar.create()
    wb = waiter.Barrier(base + "/barrier")
    assert wb.wait(timeout=0.3) is False
    passed = []
    t = threading.Thread(target=lambda: passed.append(wb.wait(timeout=10)), daemon=True)
    t.start()
    time.sleep(0.2)
    assert not passed
    bar.remove()
    t.join(10)
    assert passed == [True]
    assert wb.wait(timeout=0.1) is True


def test_double_barrier(make_client, base):
    n = 3
    clients = [make_client() for _ in range(n)]
    log = []
    guard = threading.Lock()

    def member(c, i):
        def run():
            db = c.DoubleBarrier(base + "/db", n, identifier="m%d" % i)
            time.sleep(0.05 * i)
            db.enter()
            with guard:
                log.append(("in", i))
            time.sleep(0.05 * (n - i))
            db.leave()
            with guard:
                log.append(("out", i))
        return run

    run_threads([member(c, i) for i, c in enumerate(clients)])
    # nobody gets in before all arrived, nobody out before all left
    kinds = [k for k, _ in log]
    assert kinds == ["in"] * n + ["out"] * n


def test_counter(make_client, base):
    clients = [make_client() for _ in range(N_CLIENTS)]

    def inc(c):
        def run():
            ctr = c.Counter(base + "/ctr")
            for _ in range(10):
                ctr += 1
        return run

    run_threads([inc(c) for c in clients])
    assert clients[0].Counter(base + "/ctr").value == 10 * N_CLIENTS
    fctr = clients[0].Counter(base + "/fctr", default=0.0)
    fctr += 2.5
    fctr -= 1.0
    assert fctr.value == 1.5


def test_children_watch_and_data_watch(zk, make_client, base):
    other = make_client()
    seen_children = []
    seen_data = []
    zk.create(base + "/dw", b"v0")
    zk.ChildrenWatch(base, lambda ch: seen_children.append(sorted(ch)))
    zk.DataWatch(base + "/dw", lambda data, stat: seen_data.append(data))
    # one change at a time: these recipes re-read after each notification,
    # so back-to-back changes could legitimately be coalesced
    assert wait_until(lambda: seen_data == [b"v0"], 5)
    other.create(base + "/a")
    assert wait_until(lambda: seen_children and seen_children[-1] == ["a", "dw"], 5)
    other.set(base + "/dw", b"v1")
    assert wait_until(lambda: seen_data[-1:] == [b"v1"], 5)
    other.create(base + "/b")
    assert wait_until(lambda: seen_children[-1] == ["a", "b", "dw"], 5)
    other.delete(base + "/dw")
    assert wait_until(lambda: seen_data[-1:] == [None], 5)
    assert wait_until(lambda: seen_children[-1] == ["a", "b"], 5)
    assert seen_data == [b"v0", b"v1", None]


def test_party(make_client, base):
    a, b = make_client(), make_client()
    pa = a.Party(base + "/party", "alice")
    pb = b.Party(base + "/party", "bob")
    pa.join()
    pb.join()
    assert sorted(pa) == ["alice", "bob"]
    assert len(pb) == 2
    pb.leave()
    assert list(pa) == ["alice"]
