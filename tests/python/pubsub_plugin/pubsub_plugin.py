"""Test plugin for tests/python/test_pubsub.py: pub/sub from inside an agent.

At load it subscribes with the decorator (orders.*.created, and jobs.* in queue group
"workers"). Requests: 70 publishes a JSON list of [topic, data]; 71 subscribes to the
payload's pattern with dagent.subscribe(pattern, fn) and answers the id; 72 cancels that
id; 73 answers what was received so far (JSON); 74 tries the payload as a pattern and as a
topic and answers the exceptions' class names and texts.
"""
import json

import dagent

got = []
subs = {}


def record(kind):
    def handler(msg):
        got.append({"kind": kind, "topic": msg.topic, "data": msg.text, "src": msg.src,
                    "message": isinstance(msg, dagent.Message)})
    return handler


dagent.subscribe("orders.*.created")(record("decorator"))
dagent.subscribe("jobs.*", queue="workers")(record("queue"))


@dagent.on(70)
def publish(msg):
    for topic, data in json.loads(msg.data):
        dagent.publish(topic, data)
    return "ok"


@dagent.on(71)
def subscribe(msg):
    s = dagent.subscribe(msg.text, record("dynamic"))
    subs[s.id] = s
    return str(s.id)


@dagent.on(72)
def cancel(msg):
    subs.pop(int(msg.text)).cancel()
    return "cancelled"


@dagent.on(73)
def report(msg):
    return json.dumps(got)


@dagent.on(74)
def bad(msg):
    out = []
    for attempt in (lambda: dagent.subscribe(msg.text, record("never")), lambda: dagent.publish(msg.text, b"x")):
        try:
            attempt()
            out.append("accepted")
        except dagent.DAgentError as e:
            out.append(f"{type(e).__name__}: {e}")
    return json.dumps(out)
