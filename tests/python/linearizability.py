"""A small Wing–Gong / Lowe style linearizability checker for a key-value
register (stdlib only).

An operation is (client, kind, key, arg, result, invoke_t, complete_t):
  kind "put" arg=value           result: True
  kind "get" arg=None            result: value or None
  kind "cas" arg=(expect, new)   result: True (applied) / False (expectation failed)
An operation whose outcome is unknown (timed out) has complete_t = inf and
result None: it may have taken effect at any point after its invocation, or
never.

check(history) searches for a total order consistent with real time in which
every completed operation returns what the register would return. Keys are
independent, so each key is checked on its own. The search memoises
(linearized set, register value) pairs, which keeps it fast for the few
hundred operations a test records.
"""
import math
from collections import defaultdict, namedtuple

Op = namedtuple("Op", "client kind key arg result invoke complete")


def _apply(kind, arg, state):
    """Returns (result, new_state) of running an operation on the register."""
    if kind == "put":
        return True, arg
    if kind == "get":
        return state, state
    if kind == "cas":
        expect, new = arg
        return (True, new) if state == expect else (False, state)
    raise ValueError(kind)


def check_key(ops):
    """True if the operations on one key are linearizable."""
    ops = sorted(ops, key=lambda o: o.invoke)
    n = len(ops)
    full = (1 << n) - 1
    seen = set()
    stack = [(0, None)]
    while stack:
        done, state = stack.pop()
        if done == full:
            return True
        if (done, state) in seen:
            continue
        seen.add((done, state))
        # The earliest completion among pending ops bounds which ops may go next.
        horizon = min((o.complete for i, o in enumerate(ops) if not done >> i & 1), default=math.inf)
        for i, o in enumerate(ops):
            if done >> i & 1 or o.invoke > horizon:
                continue
            result, new_state = _apply(o.kind, o.arg, state)
            if math.isinf(o.complete):
                # Unknown outcome: it took effect here, or it never did.
                stack.append((done | 1 << i, new_state))
                stack.append((done | 1 << i, state))
            elif result == o.result:
                stack.append((done | 1 << i, new_state))
    return False


def check(history):
    """Returns (ok, bad_key) over a whole history."""
    by_key = defaultdict(list)
    for op in history:
        by_key[op.key].append(op)
    for key, ops in sorted(by_key.items()):
        if not check_key(ops):
            return False, key
    return True, None
