"""The message a handler receives."""

try:  # the C accessor namedtuple uses; a plain property elsewhere
    from _collections import _tuplegetter
except ImportError:  # pragma: no cover - other Python implementations
    from operator import itemgetter

    def _tuplegetter(index, doc):
        return property(itemgetter(index), doc=doc)

__all__ = ["Message", "as_bytes"]


def as_bytes(data):
    """``data`` as bytes: bytes-like objects as they are, ``str`` encoded as UTF-8."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    if data is None:
        return b""
    raise TypeError(f"message data must be bytes or str, not {type(data).__name__}")


class Message(tuple):
    """One DATA or REQUEST message delivered to a handler.

    Fields: ``src`` (the sender's name), ``dst`` (this node), ``type`` (int),
    ``data`` (bytes) and ``cookie`` (non-zero for a request). ``reply(data)``
    answers a request; ``refuse(reason)`` answers it with an error that the
    requester sees as ``dagent.Refused``.

    A Message is a tuple so that the native backend can build one per message
    cheaply; the last item is the runtime that delivered it.
    """

    # No __slots__: an instance dict is created only when a reply is recorded.
    src = _tuplegetter(0, "Name of the node that sent the message.")
    dst = _tuplegetter(1, "Name of this node.")
    type = _tuplegetter(2, "Message type (int).")
    data = _tuplegetter(3, "Payload (bytes).")
    cookie = _tuplegetter(4, "Request cookie; 0 for a one-way message.")

    def __new__(cls, src, dst, type, data=b"", cookie=0, runtime=None):
        return tuple.__new__(cls, (src, dst, type, bytes(as_bytes(data)), cookie, runtime))

    @property
    def is_request(self):
        """True if the sender waits for a reply."""
        return self[4] != 0

    @property
    def text(self):
        """The payload decoded as UTF-8 (invalid bytes replaced)."""
        return self[3].decode("utf-8", "replace")

    @property
    def replied(self):
        """True once ``reply`` or ``refuse`` was called."""
        return self.__dict__.get("_replied", False)

    def reply(self, data=b""):
        """Answers this request with ``data`` (bytes or str)."""
        self._answer(True, as_bytes(data))

    def refuse(self, reason):
        """Answers this request with an error; the requester gets ``dagent.Refused(reason)``."""
        self._answer(False, str(reason).encode("utf-8"))

    def _answer(self, ok, payload):
        if not self[4]:
            raise ValueError(f"message type {self[2]} from '{self[0]}' is not a request: "
                             "use dagent.send() to answer a one-way message")
        if self.__dict__.get("_replied"):
            raise RuntimeError(f"request type {self[2]} from '{self[0]}' was already answered")
        runtime = self[5]
        if runtime is None:
            raise RuntimeError("this message was not delivered by dagent; it cannot be answered")
        self._replied = True
        runtime.backend.respond(self[0], self[2], self[4], ok, payload)

    def __repr__(self):
        kind = "request" if self[4] else "message"
        data = self[3]
        shown = data[:40] + (b"..." if len(data) > 40 else b"")
        return f"<dagent {kind} type={self[2]} from '{self[0]}' {len(data)}B {shown!r}>"
