"""A linearizability checker for one register with read, write and compare-and-set.

The algorithm is Wing & Gong's search with Lowe's just-in-time linearization and
memoization of (set of linearized operations, model state), the one Porcupine and Knossos'
"wgl" checker use. Keys are independent registers, so a history is checked key by key
(`check_history`); each key's search only ever sees that key's operations.

Model: a ZooKeeper znode holding an int, as the state (value, version):

  read            -> (value, version)       sync + getData; the reply must equal the state
  write(v)        -> new version            setData(version=-1): state becomes (v, version+1)
  cas(expect, v)  -> new version or False   setData(version=expect): succeeds iff the state's
                                            version is `expect` (False = BadVersion)

Operations are `Op`s with a call time and a return time (any monotonic clock, the same for
all ops). An indeterminate operation (timeout, connection loss: it may or may not have
taken effect) has `ret=None` and `out=None`: its return is at infinity, so the search may
place it anywhere after its call, or after everything (the same as "never happened").
Reads whose outcome is unknown have no effect and should be left out by the caller.
"""
import time

INF = float("inf")


class Op:
    """One operation of one key: `kind` "read" | "write" | "cas", `arg` (None, v, or
    (expected_version, v)), `out` (see the module doc; None when indeterminate), `call` and
    `ret` times (ret None = indeterminate), `desc` free text for reports."""

    __slots__ = ("kind", "arg", "out", "call", "ret", "desc", "id")

    def __init__(self, kind, arg, out, call, ret, desc=""):
        self.kind, self.arg, self.out, self.call, self.ret, self.desc = kind, arg, out, call, ret, desc
        self.id = -1

    def __repr__(self):
        r = "inf" if self.ret is None else f"{self.ret:.4f}"
        return f"{self.kind}({self.arg})->{self.out} [{self.call:.4f}, {r}] {self.desc}"


def step(state, op):
    """The model's transition: (accepted, new_state) for `op` applied to `state`."""
    value, version = state
    if op.kind == "read":
        return (tuple(op.out) == state, state)
    if op.kind == "write":
        new = (op.arg, version + 1)
        return (op.out is None or op.out == version + 1, new)
    if op.kind == "cas":
        expect, v = op.arg
        if version == expect:
            return (op.out is None or op.out == version + 1, (v, version + 1))
        return (op.out is None or op.out is False, state)
    raise ValueError(f"unknown op kind {op.kind}")


class Result:
    """`ok`: True (linearizable), False (not), None (search gave up at the time budget).
    `explored`: search steps; `witness`: on False, the ops still pending at the deepest
    point the search reached and the ops it had linearized there (last few), for the
    report."""

    def __init__(self, ok, explored, witness=None):
        self.ok, self.explored, self.witness = ok, explored, witness

    def __repr__(self):
        return f"Result(ok={self.ok}, explored={self.explored})"


class _Node:
    __slots__ = ("op", "is_call", "match", "prev", "next")

    def __init__(self, op, is_call):
        self.op, self.is_call = op, is_call
        self.match = self.prev = self.next = None


def check(ops, init=(0, 0), budget_s=60.0):
    """Checks that `ops` (one key's history) is linearizable from state `init`. Returns a
    `Result`; ok is None when the search took longer than `budget_s` seconds."""
    ops = list(ops)
    for i, op in enumerate(ops):
        op.id = i
    events = []
    for op in ops:
        c = _Node(op, True)
        r = _Node(op, False)
        c.match = r
        # calls before returns at equal times: equal times count as overlapping
        events.append((op.call, 0, op.id, c))
        events.append((INF if op.ret is None else op.ret, 1, op.id, r))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    head = _Node(None, False)
    prev = head
    for _, _, _, n in events:
        prev.next = n
        n.prev = prev
        prev = n

    def lift(n):
        n.prev.next = n.next
        if n.next is not None:
            n.next.prev = n.prev
        m = n.match
        m.prev.next = m.next
        if m.next is not None:
            m.next.prev = m.prev

    def unlift(n):
        m = n.match
        m.prev.next = m
        if m.next is not None:
            m.next.prev = m
        n.prev.next = n
        if n.next is not None:
            n.next.prev = n

    # Which op produced each version, as far as determinate ops tell: an acknowledged write
    # or CAS produced the version it returned; a read of (value, version) saw the value the
    # producer of that version wrote. Each version is produced by exactly one op of a
    # linearization (every effective write adds one), so an indeterminate op cannot take a
    # version that another op claims, nor one that a read saw with a different value. This
    # only removes branches that cannot succeed; it is what keeps timed-out writes from
    # multiplying the search.
    claims = {}
    for op in ops:
        if op.out is None:
            continue
        if op.kind in ("write", "cas") and op.out is not False:
            claims[op.out] = ("op", op.id)
        elif op.kind == "read":
            claims.setdefault(op.out[1], ("value", op.out[0]))

    def allowed(op, new):
        c = claims.get(new[1])
        return c is None or (c[0] == "value" and c[1] == new[0])

    cache = set()
    calls = []  # (call node, state before it, forced)
    state = init
    linearized = 0
    entry = head.next
    explored = 0
    deepest = (-1, None)
    t0 = time.monotonic()
    while head.next is not None:
        explored += 1
        if explored % 20000 == 0 and time.monotonic() - t0 > budget_s:
            return Result(None, explored)
        if entry.is_call:
            ok, new = step(state, entry.op)
            if ok and entry.op.out is None and new != state:
                ok = allowed(entry.op, new)
            if ok:
                lin2 = linearized | (1 << entry.op.id)
                key = (lin2, new)
                if key not in cache:
                    cache.add(key)
                    # A determinate op that leaves the state as it is (a read, a failed CAS)
                    # is linearized here for good: if any order of the pending ops works
                    # from here, one that starts with it does (its call has passed, so
                    # everything that must precede it is linearized, and it changes
                    # nothing). Backtracking pops it without trying alternatives.
                    forced = new == state and entry.op.out is not None
                    calls.append((entry, state, forced))
                    state, linearized = new, lin2
                    lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            # a return reached with its call not linearized: backtrack
            if len(calls) > deepest[0]:
                pending = []
                n = head.next
                while n is not None and len(pending) < 12:
                    if n.is_call:
                        pending.append(n.op)
                    n = n.next
                deepest = (len(calls), {"state": state, "blocked": entry.op, "pending": pending,
                                        "linearized_tail": [c[0].op for c in calls[-8:]]})
            while True:
                if not calls:
                    return Result(False, explored, deepest[1])
                entry, state, forced = calls.pop()
                linearized &= ~(1 << entry.op.id)
                unlift(entry)
                if not forced:
                    break
            entry = entry.next
    return Result(True, explored)


def check_history(by_key, init=(0, 0), budget_s=60.0):
    """Checks every key's ops (`by_key`: key -> list of Op). Returns (verdict, {key: Result})
    where verdict is "linearizable", "NOT linearizable" or "unknown (timeout)"."""
    results = {k: check(ops, init, budget_s) for k, ops in sorted(by_key.items())}
    if any(r.ok is False for r in results.values()):
        return "NOT linearizable", results
    if any(r.ok is None for r in results.values()):
        return "unknown (timeout)", results
    return "linearizable", results
