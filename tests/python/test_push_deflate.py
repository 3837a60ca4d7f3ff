"""permessage-deflate (RFC 7692) on the push WebSocket: negotiated with a real client (the
`websockets` package offers it by default), checked on the wire with a raw socket client, and the
bad input a compressed frame can carry (a reserved bit without the extension, a decompression
bomb, data that does not inflate)."""
import asyncio
import base64
import json
import os
import socket
import zlib

import pytest
import websockets

from test_push import Tree, connect, recv_op, run, subscribe, tok


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    t = Tree(str(tmp_path_factory.mktemp("deflate")))
    try:
        t.agent("z1", limits={"max_frame_bytes": 65536, "deflate_min_bytes": 200})
        t.agent("z2", deflate=False)
        yield t
    finally:
        t.stop()


def extensions(ws):
    headers = getattr(ws, "response_headers", None) or ws.response.headers
    return headers.get("Sec-WebSocket-Extensions")


# ---- a raw client: the bytes on the wire --------------------------------------------------

class Raw:
    def __init__(self, port, token, offer=None):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET /ws?token={token} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if offer:
            lines.append(f"Sec-WebSocket-Extensions: {offer}")
        self.s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(4096)
            assert chunk, "closed during the handshake"
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        assert lines[0].startswith("HTTP/1.1 101"), lines[0]
        self.headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}

    def read(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self):
        """(fin, rsv1, opcode, payload) of the next server frame."""
        b0, b1 = self.read(2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(self.read(2), "big")
        elif n == 127:
            n = int.from_bytes(self.read(8), "big")
        assert not b1 & 0x80, "server frames are not masked"
        return bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F, self.read(n)

    def send(self, payload, opcode=1, rsv1=False, fin=True):
        b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
        n = len(payload)
        head = bytes([b0, 0x80 | n]) if n < 126 else (bytes([b0, 0x80 | 126]) + n.to_bytes(2, "big") if n < 65536
                                                      else bytes([b0, 0x80 | 127]) + n.to_bytes(8, "big"))
        mask = os.urandom(4)
        self.s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def json_frame(self, inflater=None):
        while True:
            fin, rsv1, opcode, payload = self.frame()
            if opcode == 8:
                raise AssertionError(f"closed: {int.from_bytes(payload[:2], 'big')} {payload[2:].decode()}")
            if opcode != 1:
                continue
            if rsv1:
                payload = inflater.decompress(payload + b"\x00\x00\xff\xff")
            return rsv1, json.loads(payload)

    def close_code(self):
        while True:
            _, _, opcode, payload = self.frame()
            if opcode == 8:
                return int.from_bytes(payload[:2], "big"), payload[2:].decode()


def deflate_raw(data, bits=15):
    c = zlib.compressobj(6, zlib.DEFLATED, -bits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


# ---- tests ---------------------------------------------------------------------------------

def test_websockets_client_negotiates_deflate_both_ways(tree):
    big = json.dumps({"rows": [{"id": i, "name": "sensor", "value": i % 7} for i in range(400)]})

    async def main():
        sub = await connect(tree.url("z1", tok("s", topics=["zz.>"])))
        assert "permessage-deflate" in extensions(sub) and "server_no_context_takeover" in extensions(sub)
        assert (await subscribe(sub, "zz.>"))["op"] == "subscribed"
        pub = await connect(tree.url("z1", tok("p", topics=[], pub=["zz.*"])))
        # The client compresses its frames too (websockets does by default): the gateway inflates them.
        for i in range(3):
            await pub.send(json.dumps({"op": "pub", "topic": "zz.big", "data": big + str(i)}))
            assert (await recv_op(pub, "published"))["topic"] == "zz.big"
        await pub.send(json.dumps({"op": "pub", "topic": "zz.small", "data": "tiny"}))
        got = [await recv_op(sub, "msg") for _ in range(4)]
        assert [m["data"] for m in got] == [big + "0", big + "1", big + "2", "tiny"]
        plain = await websockets.connect(tree.url("z1", tok("n", topics=["zz.>"])), compression=None)
        assert extensions(plain) is None, "no offer, no extension"
        await recv_op(plain, "connected")
        await plain.close()
        await sub.close()
        await pub.close()
    run(main())


def test_on_the_wire_compressed_once_per_message_and_window_bits(tree):
    big = "metric " * 2000
    raw = Raw(tree.http["z1"], tok("w", topics=["wire.>"]),
              offer="permessage-deflate; server_max_window_bits=10; client_no_context_takeover, permessage-deflate")
    ext = raw.headers.get("sec-websocket-extensions", "")
    assert ext == "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10", ext
    rsv1, hello = raw.json_frame()
    assert hello["op"] == "connected" and not rsv1, "frames under deflate_min_bytes (200) go uncompressed"
    # A compressed client frame (no context takeover: each message on its own).
    for _ in range(2):
        raw.send(deflate_raw(json.dumps({"op": "sub", "topic": "wire.>"}).encode(), bits=10), rsv1=True)
        rsv1, reply = raw.json_frame()
        assert reply["op"] == "subscribed" or (reply["op"] == "error" and "already" in reply["reason"]), reply

    async def publish():
        pub = await connect(tree.url("z1", tok("p", topics=[], pub=["wire.x"])))
        for i in range(2):
            await pub.send(json.dumps({"op": "pub", "topic": "wire.x", "data": big + str(i)}))
            await recv_op(pub, "published")
        await pub.close()
    run(publish())
    for i in range(2):
        while True:
            fin, rsv1, opcode, payload = raw.frame()
            if opcode == 1:
                break
        assert fin and rsv1, "a large message goes compressed"
        assert len(payload) < len(big) / 10, f"{len(big)} bytes compressed to {len(payload)}"
        # No context takeover from the server: each message inflates on its own, with a 10-bit window.
        msg = json.loads(zlib.decompressobj(-10).decompress(payload + b"\x00\x00\xff\xff"))
        assert msg["op"] == "msg" and msg["data"] == big + str(i)
    raw.s.close()


def test_no_deflate_when_the_config_turns_it_off(tree):
    async def main():
        ws = await connect(tree.url("z2", tok("o", topics=["x.>"])))
        assert extensions(ws) is None
        await ws.close()
    run(main())


def test_bad_compressed_input_is_closed_and_others_are_served(tree):
    async def main():
        bystander = await connect(tree.url("z1", tok("b", topics=["bb.>"], pub=["bb.x"])))
        assert (await subscribe(bystander, "bb.>"))["op"] == "subscribed"

        # RSV1 on a connection that did not negotiate deflate: 1002.
        raw = Raw(tree.http["z1"], tok("r"))
        assert "sec-websocket-extensions" not in raw.headers
        raw.json_frame()
        raw.send(deflate_raw(b'{"op":"sub","topic":"news.x"}'), rsv1=True)
        code, reason = raw.close_code()
        assert code == 1002 and "RSV1" in reason and "not negotiated" in reason, (code, reason)

        # A decompression bomb: 4 MB of zeros in a 4 KB frame, over max_frame_bytes=65536: 1009.
        raw = Raw(tree.http["z1"], tok("bomb"), offer="permessage-deflate")
        raw.json_frame()
        bomb = deflate_raw(b"{" + b" " * (4 << 20) + b"}")
        assert len(bomb) < 8192
        raw.send(bomb, rsv1=True)
        code, reason = raw.close_code()
        assert code == 1009 and "max_frame_bytes=65536" in reason, (code, reason)

        # Bytes that are not a deflate stream: 1007.
        raw = Raw(tree.http["z1"], tok("junk"), offer="permessage-deflate")
        raw.json_frame()
        raw.send(b"\xff\xff\xff\xff not deflate", rsv1=True)
        code, reason = raw.close_code()
        assert code == 1007 and "does not inflate" in reason, (code, reason)

        # RSV1 on a control frame: 1002.
        raw = Raw(tree.http["z1"], tok("ctl"), offer="permessage-deflate")
        raw.json_frame()
        raw.send(b"", opcode=9, rsv1=True)
        code, reason = raw.close_code()
        assert code == 1002 and "control frame" in reason, (code, reason)

        # An offer the gateway cannot take (an 8-bit window, an unknown parameter) goes uncompressed.
        for offer in ("permessage-deflate; server_max_window_bits=8", "permessage-deflate; x_fancy=1"):
            raw = Raw(tree.http["z1"], tok("o"), offer=offer)
            assert "sec-websocket-extensions" not in raw.headers, offer
            raw.s.close()

        # The bystander was served all along.
        pub = await connect(tree.url("z1", tok("p", topics=[], pub=["bb.x"])))
        await pub.send(json.dumps({"op": "pub", "topic": "bb.x", "data": "still here"}))
        assert (await recv_op(bystander, "msg"))["data"] == "still here"
        await pub.close()
        await bystander.close()
    run(main())
