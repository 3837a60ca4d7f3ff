"""Exceptions of the dagent API.

Every failure reported by the tree is a :class:`DAgentError` carrying the wire
error code (``proto/dagent.proto``, ``ErrorCode``) and a sentence that says what
went wrong. The common ones have their own class so that callers can write
``except dagent.NoRoute``.
"""

__all__ = [
    "DAgentError", "NoRoute", "NameTaken", "TooLarge", "HopLimit", "NotReady", "QueueFull",
    "Timeout", "BadFrame", "Refused", "UnknownKind", "HandlerTimeout", "ConfigError", "error_for",
]


class DAgentError(Exception):
    """A failure reported by dagent: ``code`` (int, the wire ErrorCode) and ``reason``."""

    code = -1
    code_name = "error"

    def __init__(self, reason="", code=None):
        super().__init__(reason)
        if code is not None:
            self.code = code
        self.reason = reason

    def __str__(self):
        return f"{self.code_name}: {self.reason}" if self.reason else self.code_name


class NoRoute(DAgentError):
    """Nobody in the tree holds the destination name."""
    code, code_name = 1, "no route"


class NameTaken(DAgentError):
    """A live node already holds the name."""
    code, code_name = 2, "name taken"


class TooLarge(DAgentError):
    """The message is over max_message_bytes."""
    code, code_name = 3, "too large"


class HopLimit(DAgentError):
    """The hop limit ran out (a routing loop or a very deep tree)."""
    code, code_name = 4, "hop limit"


class NotReady(DAgentError):
    """The route did not become ready before queue_timeout."""
    code, code_name = 5, "not ready"


class QueueFull(DAgentError):
    """A bounded queue (send queue, plugin queue) is full."""
    code, code_name = 6, "queue full"


class Timeout(DAgentError):
    """A request got no answer within its timeout."""
    code, code_name = 7, "timeout"


class BadFrame(DAgentError):
    """Malformed input on a link."""
    code, code_name = 8, "bad frame"


class Refused(DAgentError):
    """The destination refused: no handler, a handler error, shutting down, ..."""
    code, code_name = 9, "refused"


class UnknownKind(DAgentError):
    """An envelope kind the destination does not understand."""
    code, code_name = 10, "unknown kind"


_BY_CODE = {cls.code: cls for cls in (NoRoute, NameTaken, TooLarge, HopLimit, NotReady, QueueFull,
                                       Timeout, BadFrame, Refused, UnknownKind)}


def error_for(code, reason):
    """The exception instance for a wire error ``code`` (used by the backends)."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return DAgentError(reason, code=code)
    return cls(reason)


class HandlerTimeout(BaseException):
    """Raised inside a handler (or timer, or task) that ran past ``handler_budget``.

    It derives from BaseException, like KeyboardInterrupt, so that a plugin's
    ``except Exception:`` does not swallow it.
    """


class ConfigError(ValueError):
    """A plugin's config section is invalid (raised at load; the plugin is stopped)."""
