"""orders: an order workflow kept in the root group's replicated store.

An example of business logic on RPC and ``dagent.state``: every order is a
JSON record under ``orders/o/ID`` and moves through

    created --pay--> paid --ship--> shipped        (created or paid --cancel--> cancelled)

Each step is a compare-and-set on the record the step read, so two agents
running this plugin against the same root group never lose or double an update:
the loser re-reads and is refused if the order has moved on. Order ids come
from a counter (``orders/seq``) advanced the same way. Every committed step is
a change under ``orders/o/`` that any node can watch (``plugins/order_stats.py``
counts them).

Message type ``120`` carries text commands; the reply is the order as JSON:

=================  ==========================================================
``new ITEM [QTY]``  creates an order (QTY an integer in 1 .. ``max_qty``)
``pay ID``          created -> paid
``ship ID``         paid -> shipped
``cancel ID``       created or paid -> cancelled
``get ID``          the order
``list``            every order (a JSON list, oldest first)
=================  ==========================================================

A bad command, an unknown order or a step the order's status does not allow is
refused with a message that says why (``dagent: refused: order 3 is shipped:
pay needs created``). Needs a root group (``dagent run --raft ...``) above the
node; without one the commands are refused with the store's error.

Metrics (``dagent.report``, on the node's ``/metrics`` and at a collector):
``orders_commands_total{command}`` and ``orders_refused_total{command}``
(command: new, pay, ship, cancel, get, list or other), and the histogram
``orders_command_seconds`` of the commands that succeeded.

Config (``plugins: config: orders:``):

* ``max_qty`` (int, default 1000, >= 1): the largest quantity of one order.
* ``retries`` (int, default 20, >= 1): compare-and-set attempts per step
  before the step is refused as contended.

Try it::

    dagent request --via tcp://127.0.0.1:7401 --to a1 --type 120 'new book 2'   # {"id": 1, ...}
    dagent request --via tcp://127.0.0.1:7401 --to a1 --type 120 'pay 1'
"""

import json
import time

import dagent

CONFIG = dagent.Config(
    max_qty=dagent.Option(int, default=1000, min=1, help="the largest quantity of one order"),
    retries=dagent.Option(int, default=20, min=1, help="compare-and-set attempts per step"),
)

COMMAND = 120
PREFIX = "orders/o/"
SEQ = "orders/seq"
#: step -> (the statuses it starts from, the status it leaves)
STEPS = {"pay": (("created",), "paid"), "ship": (("paid",), "shipped"), "cancel": (("created", "paid"), "cancelled")}

max_qty = 1000
retries = 20


def setup(config):
    global max_qty, retries
    max_qty, retries = config.max_qty, config.retries


class Refusal(Exception):
    """A command the workflow refuses (the message goes back to the requester)."""


def key(order_id):
    return f"{PREFIX}{order_id:08d}"


def parse_id(text):
    try:
        value = int(text)
    except ValueError:
        raise Refusal(f"order id must be an integer (got {text!r})") from None
    if value < 1:
        raise Refusal(f"order id must be >= 1 (got {value})")
    return value


async def next_id():
    for _ in range(retries):
        current = await dagent.state.aget(SEQ)
        following = int(current or "0") + 1
        if current is None:
            won = await dagent.state.acas(SEQ, str(following), expect_absent=True)
        else:
            won = await dagent.state.acas(SEQ, str(following), expect=current)
        if won:
            return following
    raise Refusal(f"order ids contended: no id after retries={retries}")


async def create(args, requester):
    if not 1 <= len(args) <= 2:
        raise Refusal("usage: new ITEM [QTY]")
    item = args[0]
    try:
        qty = int(args[1]) if len(args) == 2 else 1
    except ValueError:
        raise Refusal(f"QTY must be an integer (got {args[1]!r})") from None
    if not 1 <= qty <= max_qty:
        raise Refusal(f"QTY must be in 1 .. max_qty={max_qty} (got {qty})")
    order = {"id": await next_id(), "item": item, "qty": qty, "status": "created", "by": requester}
    if not await dagent.state.acas(key(order["id"]), json.dumps(order, sort_keys=True), expect_absent=True):
        raise Refusal(f"order {order['id']} already exists")  # only if someone wrote under orders/o/ by hand
    return order


async def load(order_id):
    raw = await dagent.state.aget(key(order_id))
    if raw is None:
        raise Refusal(f"no such order: {order_id}")
    return raw, json.loads(raw)


async def step(name, order_id):
    allowed, target = STEPS[name]
    for _ in range(retries):
        raw, order = await load(order_id)
        if order["status"] not in allowed:
            raise Refusal(f"order {order_id} is {order['status']}: {name} needs {' or '.join(allowed)}")
        order["status"] = target
        if await dagent.state.acas(key(order_id), json.dumps(order, sort_keys=True), expect=raw):
            return order
    raise Refusal(f"order {order_id} contended: {name} not applied after retries={retries}")


async def execute(line, requester="?"):
    """Runs one command; returns the JSON-able result or raises Refusal."""
    parts = line.split()
    if not parts:
        raise Refusal("empty command (new, pay, ship, cancel, get, list)")
    op, args = parts[0].lower(), parts[1:]
    if op == "new":
        return await create(args, requester)
    if op in STEPS and len(args) == 1:
        return await step(op, parse_id(args[0]))
    if op == "get" and len(args) == 1:
        return (await load(parse_id(args[0])))[1]
    if op == "list" and not args:
        return [json.loads(v) for _, v in await dagent.state.arange(PREFIX)]
    raise Refusal(f"unknown command {line.strip()!r} (new ITEM [QTY], pay ID, ship ID, cancel ID, get ID, list)")


def command_name(line):
    op = (line.split() or [""])[0].lower()
    return op if op in ("new", "get", "list", *STEPS) else "other"


@dagent.on(COMMAND)
async def command(msg):
    started, op = time.monotonic(), command_name(msg.text)
    try:
        reply = json.dumps(await execute(msg.text, msg.src), sort_keys=True)
        dagent.report.inc("orders_commands_total", command=op)
        dagent.report.observe("orders_command_seconds", time.monotonic() - started)
        return reply
    except Refusal as e:
        dagent.report.inc("orders_refused_total", command=op)
        msg.refuse(str(e))
    except dagent.state.StateError as e:
        dagent.report.inc("orders_refused_total", command=op)
        msg.refuse(f"the replicated store refused: {e}")
