"""A small real TCP proxy in front of a root replica, for partition tests.

Each replica listens on a private port; the cluster file names the proxy's port instead, so
every peer link to the replica runs through its proxy. The proxy reads the first frame the
dialing replica sends (a length-prefixed `Frame` with a `PeerHello`) to learn who is calling,
and then obeys a shared `Faults` table, per direction of each pair of replicas:

- ``cut``: the pair's connections are closed, and new ones are closed at once (a partition
  the peers notice);
- ``blackhole``: bytes stop moving in that direction (nothing is read, so TCP holds them: a
  partition the peers only notice by silence); the bytes flow again when healed.

A one-way fault is a blackhole of one direction only. Clients (not replicas) connect to the
replicas' private ports directly, so a partitioned replica can still be asked (and must not
answer with stale data).
"""
import select
import socket
import struct
import threading


def _varint(b, i):
    shift = value = 0
    while True:
        if i >= len(b) or shift > 63:
            raise ValueError("truncated varint")
        byte = b[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def _fields(b):
    """(field number, wire type, value) of a protobuf message (varints and byte strings only)."""
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(b, i)
        elif wire == 2:
            n, i = _varint(b, i)
            value, i = b[i:i + n], i + n
        elif wire == 1:
            value, i = b[i:i + 8], i + 8
        elif wire == 5:
            value, i = b[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield number, wire, value


def hello_node_id(frame):
    """The node id of a `Frame` carrying a `PeerHello` (proto/dagent.proto: Frame.peer_hello = 12,
    PeerHello.node_id = 3), else 0."""
    for number, wire, value in _fields(frame):
        if number == 12 and wire == 2:
            for n, w, v in _fields(value):
                if n == 3 and w == 0:
                    return v
    return 0


class Faults:
    """The fault table shared by the proxies: {(from_id, to_id): "cut" | "blackhole"}."""

    def __init__(self):
        self.lock = threading.Lock()
        self.table = {}
        self.changed = threading.Condition(self.lock)

    def set(self, a, b, what, both=True):
        with self.lock:
            self.table[(a, b)] = what
            if both:
                self.table[(b, a)] = what
            self.changed.notify_all()

    def isolate(self, node, others, what="blackhole"):
        for o in others:
            if o != node:
                self.set(node, o, what)

    def heal(self):
        with self.lock:
            self.table.clear()
            self.changed.notify_all()

    def get(self, a, b):
        with self.lock:
            return self.table.get((a, b))


def _read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed during the hello")
        buf += chunk
    return buf


class ReplicaProxy:
    """Listens on ``port`` and forwards to replica ``node_id`` at ``target_port``."""

    def __init__(self, node_id, port, target_port, faults):
        self.node_id, self.port, self.target_port, self.faults = node_id, port, target_port, faults
        self.stopping = False
        self.conns = []
        self.lock = threading.Lock()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(16)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        upstream = None
        try:
            client.settimeout(10)
            head = _read_exact(client, 4)
            (length,) = struct.unpack(">I", head)
            if length > 1 << 20:
                raise ConnectionError(f"first frame of {length} bytes is not a hello")
            body = _read_exact(client, length)
            caller = hello_node_id(body)
            if self.faults.get(caller, self.node_id) == "cut":
                raise ConnectionError("cut")
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            upstream.sendall(head + body)
            client.settimeout(None)
            upstream.settimeout(None)
            with self.lock:
                self.conns.append((client, upstream))
            self._pump(client, upstream, caller)
        except (OSError, ConnectionError, ValueError):
            pass
        finally:
            for s in (client, upstream):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass
            with self.lock:
                self.conns = [c for c in self.conns if c[0] is not client]

    def _pump(self, client, upstream, caller):
        """Moves bytes both ways, obeying the fault table (checked every 20 ms)."""
        pending = {client: b"", upstream: b""}   # bytes read from the key, not yet written to the other side
        other = {client: upstream, upstream: client}
        direction = {client: (caller, self.node_id), upstream: (self.node_id, caller)}
        while not self.stopping:
            f_in, f_out = self.faults.get(*direction[client]), self.faults.get(*direction[upstream])
            if "cut" in (f_in, f_out):
                return
            readable = [s for s in (client, upstream)
                        if self.faults.get(*direction[s]) != "blackhole" and len(pending[s]) < 1 << 20]
            writable = [other[s] for s in (client, upstream)
                        if pending[s] and self.faults.get(*direction[s]) != "blackhole"]
            r, w, _ = select.select(readable, writable, [], 0.02)
            for s in r:
                data = s.recv(1 << 16)
                if not data:
                    return
                pending[s] += data
            for t in w:
                src = other[t]
                n = t.send(pending[src])
                pending[src] = pending[src][n:]

    def close(self):
        self.stopping = True
        try:
            self.listener.close()
        except OSError:
            pass
        with self.lock:
            for c, u in self.conns:
                for s in (c, u):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
