"""The push benchmark's "original design" peer: a Tornado WebSocket server fed by
Redis pub/sub. One Redis subscription per topic in use; each Redis message is
written to every WebSocket client of that topic.

    /usr/bin/python3 tornado_redis.py PORT REDIS_PORT

Clients connect to ws://127.0.0.1:PORT/ws?topics=a,b and receive each message's
payload as a text frame.
"""
import asyncio
import sys

import redis.asyncio as aioredis
import tornado.web
import tornado.websocket

CLIENTS = {}   # topic -> set of handlers


class Socket(tornado.websocket.WebSocketHandler):
    def open(self):
        self.topics = [t for t in self.get_argument("topics", "").split(",") if t]
        for t in self.topics:
            first = t not in CLIENTS
            CLIENTS.setdefault(t, set()).add(self)
            if first:
                asyncio.ensure_future(PUBSUB.subscribe(t))

    def on_close(self):
        for t in self.topics:
            CLIENTS.get(t, set()).discard(self)


class Ready(tornado.web.RequestHandler):
    def get(self):
        # The number of topics Redis confirmed, so the bench knows when subscriptions are live.
        self.write(str(len(PUBSUB.channels)))


async def pump():
    while True:
        if not PUBSUB.channels:
            await asyncio.sleep(0.01)
            continue
        m = await PUBSUB.get_message(ignore_subscribe_messages=True, timeout=1.0)
        if m is None or m["type"] != "message":
            continue
        topic, data = m["channel"].decode(), m["data"].decode()
        for h in list(CLIENTS.get(topic, ())):
            try:
                h.write_message(data)
            except tornado.websocket.WebSocketClosedError:
                pass


async def main(port, redis_port):
    global PUBSUB
    PUBSUB = aioredis.Redis(port=redis_port).pubsub()
    tornado.web.Application([(r"/ws", Socket), (r"/ready", Ready)]).listen(port, "127.0.0.1")
    await pump()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
