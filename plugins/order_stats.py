"""order_stats: counts the order workflow's events (``plugins/orders.py``).

It watches ``orders/o/`` in the root group's replicated store: every committed
step of any order, made by any node, is one event, delivered once and in
revision order. The plugin counts them by the status the order reached and
keeps the quantity of every open order by item, and reports them as metrics.

Message type ``121``, a request (any payload), answers the counts as JSON::

    {"events": 4, "by_status": {"created": 2, "paid": 1, "shipped": 1},
     "open_qty": {"book": 2}, "watching": true}

``open_qty`` sums the quantities of orders that are neither shipped nor
cancelled. The watch starts when the plugin loads (it retries, backing off,
until the root group answers) and counts from then on.

Metrics (``dagent.report``): ``orders_events_total{status}`` (created, paid,
shipped, cancelled or other), and the gauges ``orders_open`` (orders neither
shipped nor cancelled) and ``orders_open_qty`` (their quantities summed).

Config (``plugins: config: order_stats:``):

* ``retry_every`` (float seconds, default 1.0, > 0): the first delay before
  trying again to start the watch while the store does not answer (it doubles
  on each failure, up to 30 s).
"""

import json

import dagent

CONFIG = dagent.Config(
    retry_every=dagent.Option(float, default=1.0, min=0.01, help="seconds between attempts to start the watch"),
)

STATS = 121
PREFIX = "orders/o/"
STATUSES = ("created", "paid", "shipped", "cancelled")

events = 0
by_status = {}
orders = {}          # id key -> (item, qty, status) as last seen
watching = False
_last = (0, set())   # the newest revision counted and its keys: a watch retried after a timeout
                     # may exist twice at the root, and its events are counted once


def on_change(event):
    global events, _last
    revision, key = int(event.get("revision", 0)), event["key"]
    if revision < _last[0] or (revision == _last[0] and key in _last[1]):
        return
    _last = (revision, _last[1] | {key}) if revision == _last[0] else (revision, {key})
    events += 1
    if event.get("type") != "put":
        orders.pop(key, None)
        return
    try:
        order = json.loads(event["value"])
        status, item, qty = order["status"], str(order["item"]), int(order["qty"])
    except (ValueError, KeyError, TypeError) as e:
        dagent.log.warning("order_stats: %s is not an order (%s); not counted", key, e)
        return
    by_status[status] = by_status.get(status, 0) + 1
    orders[key] = (item, qty, status)
    dagent.report.inc("orders_events_total", status=status if status in STATUSES else "other")
    live = [q for _, q, s in orders.values() if s not in ("shipped", "cancelled")]
    dagent.report.set("orders_open", len(live))
    dagent.report.set("orders_open_qty", sum(live))


def try_watch(delay):
    """Starts the watch; on failure tries again after ``delay`` (doubling, at most 30 s), so a node
    without a root group above it spends little time on it."""
    global watching
    if not dagent.ready():                 # not registered yet: no route to the store
        dagent.after(0.1, try_watch, delay)
        return
    try:
        dagent.state.watch(PREFIX, on_change)
    except (dagent.DAgentError, dagent.state.StateError) as e:
        dagent.log.debug("order_stats: watch not started (%s); next try in %.1fs", e, delay)
        dagent.after(delay, try_watch, min(delay * 2, 30.0))
        return
    watching = True
    dagent.log.info("order_stats: watching %s", PREFIX)


def setup(config):
    dagent.after(0, try_watch, config.retry_every)


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
