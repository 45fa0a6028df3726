"""Unit tests of the checker (tests/faults/linearizability.py): known-good and known-bad
histories, including indeterminate operations. Run: .venv-tests/bin/pytest -q tests/faults"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from linearizability import Op, check, check_history  # noqa: E402


def R(val, ver, c, r):
    return Op("read", None, (val, ver), c, r)


def W(val, newver, c, r):
    return Op("write", val, newver, c, r)


def CAS(expect, val, out, c, r):
    return Op("cas", (expect, val), out, c, r)


def test_empty_and_sequential():
    assert check([]).ok is True
    h = [W(1, 1, 0, 1), R(1, 1, 2, 3), CAS(1, 5, 2, 4, 5), R(5, 2, 6, 7), CAS(1, 9, False, 8, 9)]
    assert check(h).ok is True


def test_stale_read_after_write_completed_is_bad():
    # the write returned before the read was called; the read still sees the old value
    h = [W(1, 1, 0, 1), R(0, 0, 2, 3)]
    assert check(h).ok is False


def test_concurrent_read_may_see_either():
    assert check([W(1, 1, 0, 10), R(0, 0, 1, 2)]).ok is True
    assert check([W(1, 1, 0, 10), R(1, 1, 1, 2)]).ok is True


def test_read_going_back_in_time_is_bad():
    # two reads during a long write: the first sees the new value, the later one the old
    h = [W(1, 1, 0, 10), R(1, 1, 1, 2), R(0, 0, 3, 4)]
    assert check(h).ok is False


def test_value_never_written_is_bad():
    assert check([W(1, 1, 0, 1), R(7, 1, 2, 3)]).ok is False


def test_version_must_match_the_writes():
    # two writes done; the read's value is right but its version is not
    assert check([W(1, 1, 0, 1), W(2, 2, 2, 3), R(2, 1, 4, 5)]).ok is False
    # a write's reply version must be the state's version + 1
    assert check([W(1, 1, 0, 1), W(2, 1, 2, 3)]).ok is False


def test_two_cas_with_the_same_expected_version_cannot_both_succeed():
    h = [CAS(0, 1, 1, 0, 5), CAS(0, 2, 1, 1, 6)]
    assert check(h).ok is False
    h = [CAS(0, 1, 1, 0, 5), CAS(0, 2, False, 1, 6)]
    assert check(h).ok is True


def test_failed_cas_needs_a_version_mismatch():
    # nothing wrote; a CAS on the current version reporting BadVersion is wrong
    assert check([CAS(0, 1, False, 0, 1)]).ok is False


def test_indeterminate_write_may_take_effect_or_not():
    # the timed-out write's value is read later: it took effect
    h = [W(1, None, 0, None), R(1, 1, 5, 6)]
    assert check(h).ok is True
    # ...or it never shows: also fine
    h = [W(1, None, 0, None), R(0, 0, 5, 6)]
    assert check(h).ok is True
    # but once seen it cannot be un-done
    h = [W(1, None, 0, None), R(1, 1, 5, 6), R(0, 0, 7, 8)]
    assert check(h).ok is False
    # and it cannot take effect before it was called
    h = [R(1, 1, 0, 1), W(1, None, 2, None)]
    assert check(h).ok is False


def test_indeterminate_cas():
    h = [CAS(0, 3, None, 0, None), R(3, 1, 5, 6)]
    assert check(h).ok is True
    # the version it expected was gone when it could have applied
    h = [W(1, 1, 0, 1), CAS(0, 3, None, 2, None), R(3, 2, 5, 6)]
    assert check(h).ok is False


def test_lost_acknowledged_write_is_bad():
    # w1 acknowledged, later reads never see it and the version did not move
    h = [W(1, 1, 0, 1), W(2, 2, 2, 3), R(1, 1, 4, 5)]
    assert check(h).ok is False


def test_check_history_per_key_verdicts():
    good = [W(1, 1, 0, 1), R(1, 1, 2, 3)]
    bad = [W(1, 1, 0, 1), R(0, 0, 2, 3)]
    v, res = check_history({"a": good, "b": bad})
    assert v == "NOT linearizable" and res["a"].ok and res["b"].ok is False
    assert res["b"].witness is not None
    v, _ = check_history({"a": good})
    assert v == "linearizable"


def simulate(seed, n_procs=6, n_ops=400, lose=False, info_rate=0.05):
    """A random history of a real atomic register (each op takes effect at one random
    instant inside its interval), so it is linearizable; with `lose`, one acknowledged
    write is dropped from the register afterwards, which must be detected when it is read."""
    rng = random.Random(seed)
    t = 0.0
    state = [0, 0]
    pending = []  # (effect time, proc, op)
    ops = []
    free = {p: 0.0 for p in range(n_procs)}
    events = []
    for _ in range(n_ops):
        p = rng.randrange(n_procs)
        call = max(free[p], t) + rng.random()
        t = call
        effect = call + rng.random() * 3
        ret = effect + rng.random() * 3
        free[p] = ret
        kind = rng.choice(["read", "write", "cas"])
        events.append((effect, call, ret, kind, rng.randrange(1000), rng.random() < info_rate))
    events.sort()
    lost_done = False
    for effect, call, ret, kind, v, info in events:
        if kind == "read":
            if info:
                continue
            ops.append(Op("read", None, tuple(state), call, ret))
        elif kind == "write":
            state = [v, state[1] + 1]
            out = state[1]
            if lose and not lost_done and state[1] > 5:
                # acknowledged but then rolled back: the register forgets it
                state = [state[0] - 100000, state[1] - 1]
                lost_done = True
                ops.append(Op("write", v, out, call, ret))
                continue
            ops.append(Op("write", v, None if info else out, call, None if info else ret))
        else:
            expect = state[1] if rng.random() < 0.5 else state[1] + 7
            if expect == state[1]:
                state = [v, state[1] + 1]
                out = state[1]
            else:
                out = False
            ops.append(Op("cas", (expect, v), None if info else out, call, None if info else ret))
    return ops, lost_done


def test_random_linearizable_histories_pass():
    for seed in range(30):
        ops, _ = simulate(seed)
        r = check(ops, budget_s=30)
        assert r.ok is True, (seed, r.witness)


def test_random_histories_with_a_lost_write_fail():
    failed = 0
    for seed in range(30):
        ops, lost = simulate(seed, lose=True, info_rate=0.0)
        if not lost:
            continue
        r = check(ops, budget_s=30)
        assert r.ok is not True, seed
        failed += r.ok is False
    assert failed >= 10


def test_indeterminate_write_seen_only_through_versions():
    # the timed-out write's value is never read, but the next write's version says it took effect
    assert check([W(1, None, 0, None), W(2, 2, 1, 2), R(2, 2, 3, 4)]).ok is True
    # ... or that it did not
    assert check([W(1, None, 0, None), W(2, 1, 1, 2), R(2, 1, 3, 4)]).ok is True
    # it cannot have taken version 1 when it was called after the write that returned 2
    assert check([W(2, 2, 0, 1), W(1, None, 2, None)]).ok is False
    # it may take a version after the acknowledged ones ...
    assert check([W(1, None, 0, None), W(2, 1, 1, 2), W(3, 2, 3, 4), R(1, 3, 5, 6)]).ok is True
    # ... but not one an acknowledged write returned
    assert check([W(1, None, 0, None), W(2, 1, 1, 2), W(3, 2, 3, 4), R(1, 2, 5, 6)]).ok is False


def test_many_indeterminate_writes_stay_tractable():
    ops, _ = simulate(7, n_procs=12, n_ops=3000, info_rate=0.02)
    r = check(ops, budget_s=20)
    assert r.ok is True and r.explored < 2_000_000
