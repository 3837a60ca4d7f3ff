"""The checker itself must reject what is not linearizable."""
import math
from linearizability import Op, check_key


def op(kind, arg, result, t0, t1, client=0):
    return Op(client, kind, "k", arg, result, t0, t1)


def test_sequential_history_is_linearizable():
    assert check_key([op("put", "a", True, 0, 1), op("get", None, "a", 2, 3)])


def test_stale_read_after_completed_write_is_rejected():
    assert not check_key([op("put", "a", True, 0, 1), op("put", "b", True, 2, 3), op("get", None, "a", 4, 5)])


def test_concurrent_write_may_be_seen_or_not():
    h = [op("put", "a", True, 0, 1), op("put", "b", True, 2, 6), op("get", None, "a", 3, 4, client=1)]
    assert check_key(h)


def test_cas_results_must_match_the_order():
    assert check_key([op("put", "a", True, 0, 1), op("cas", ("a", "b"), True, 2, 3), op("cas", ("a", "c"), False, 4, 5)])
    assert not check_key([op("put", "a", True, 0, 1), op("cas", ("a", "b"), True, 2, 3), op("cas", ("a", "c"), True, 4, 5)])


def test_timed_out_write_may_take_effect_late_or_never():
    h = [op("put", "a", True, 0, 1), op("put", "b", None, 2, math.inf), op("get", None, "a", 3, 4), op("get", None, "b", 5, 6)]
    assert check_key(h)
    assert check_key(h[:3])
