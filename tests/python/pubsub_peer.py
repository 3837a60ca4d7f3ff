"""A standalone Python program for tests/python/test_pubsub.py.

    pubsub_peer.py NAME VIA sub PATTERN COUNT [QUEUE]   prints "ready", then one JSON line per
                                                        message (async for node.topic), exits after COUNT
    pubsub_peer.py NAME VIA pub TOPIC N                 publishes N messages "0".."N-1", prints "done"
    pubsub_peer.py NAME VIA aio PATTERN COUNT           the docs' worked example: asyncio.run, `async with
                                                        dagent.Node`, `async with node.topic(...)`
"""
import asyncio
import json
import sys

import dagent


async def aio(name, via, pattern, count):
    async with dagent.Node(name=name, via=via, ready_timeout=20) as node:
        async with node.topic(pattern) as stream:
            print("ready", flush=True)
            n = 0
            async for msg in stream:
                print(json.dumps({"topic": msg.topic, "data": msg.text, "src": msg.src}), flush=True)
                n += 1
                if n == count:
                    break


def main():
    name, via, mode = sys.argv[1:4]
    if mode == "aio":
        asyncio.run(aio(name, via, sys.argv[4], int(sys.argv[5])))
        return
    node = dagent.Node(name=name, via=via, ready_timeout=20)
    if mode == "pub":
        topic, n = sys.argv[4], int(sys.argv[5])
        for i in range(n):
            dagent.publish(topic, str(i))      # the module-level API acts on the installed node
        node.update(100)
        print("done", flush=True)
        node.close()
        return
    pattern, count = sys.argv[4], int(sys.argv[5])
    queue = sys.argv[6] if len(sys.argv) > 6 else None

    async def consume():
        async with node.topic(pattern, queue=queue) as stream:
            print("ready", flush=True)
            n = 0
            async for msg in stream:
                print(json.dumps({"topic": msg.topic, "data": msg.text, "src": msg.src}), flush=True)
                n += 1
                if n == count:
                    break
        assert not stream.subscription.active, "leaving `async with` cancels the subscription"

    node.run(consume())
    node.close()


if __name__ == "__main__":
    main()
