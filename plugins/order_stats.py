"""order_stats: counts the order workflow's events (``plugins/orders.py``).

It watches ``orders/o/`` in the root group's replicated store: every committed
step of any order, made by any node, is one event, delivered once and in
revision order. The plugin counts them by the status the order reached and
keeps the quantity of every live order by item.

Message type ``21``, a request (any payload), answers the counts as JSON::

    {"events": 4, "by_status": {"created": 2, "paid": 1, "shipped": 1},
     "open_qty": {"book": 2}, "watching": true}

``open_qty`` sums the quantities of orders that are neither shipped nor
cancelled. The watch starts when the plugin loads (it retries every
``retry_every`` seconds until the root group answers) and counts from then on.

Config (``plugins: config: order_stats:``):

* ``retry_every`` (float seconds, default 1.0, > 0): how often to retry
  starting the watch while the store does not answer.
"""

import json

import dagent

CONFIG = dagent.Config(
    retry_every=dagent.Option(float, default=1.0, min=0.01, help="seconds between attempts to start the watch"),
)

STATS = 21
PREFIX = "orders/o/"

events = 0
by_status = {}
orders = {}          # id key -> (item, qty, status) as last seen
watching = False
_timer = None


def on_change(event):
    global events
    events += 1
    if event.get("type") != "put":
        orders.pop(event["key"], None)
        return
    try:
        order = json.loads(event["value"])
        status, item, qty = order["status"], str(order["item"]), int(order["qty"])
    except (ValueError, KeyError, TypeError) as e:
        dagent.log.warning("order_stats: %s is not an order (%s); not counted", event["key"], e)
        return
    by_status[status] = by_status.get(status, 0) + 1
    orders[event["key"]] = (item, qty, status)


def try_watch():
    global watching
    try:
        dagent.state.watch(PREFIX, on_change)
    except (dagent.DAgentError, dagent.state.StateError) as e:
        dagent.log.debug("order_stats: watch not started yet: %s", e)
        return
    watching = True
    dagent.cancel(_timer)
    dagent.log.info("order_stats: watching %s", PREFIX)


def setup(config):
    global _timer
    _timer = dagent.every(config.retry_every, try_watch)


def snapshot():
    open_qty = {}
    for item, qty, status in orders.values():
        if status not in ("shipped", "cancelled"):
            open_qty[item] = open_qty.get(item, 0) + qty
    return {"events": events, "by_status": dict(sorted(by_status.items())), "open_qty": dict(sorted(open_qty.items())),
            "watching": watching}


@dagent.on(STATS)
def stats(msg):
    return json.dumps(snapshot(), sort_keys=True)
