"""kv: a small in-memory key-value and counter service (request/reply).

Message type ``10`` carries text commands; the reply is text:

==================  =========================================================
``get KEY``         the value (a missing key is refused: ``no such key``)
``set KEY VALUE``   ``ok`` (VALUE is the rest of the line)
``incr KEY [N]``    the new value; a missing key counts from 0
``del KEY``         ``1`` if it existed, else ``0``
``keys [PREFIX]``   the keys, one per line, sorted
==================  =========================================================

Message type ``11`` is one-way ``incr KEY [N]`` (count events from anywhere,
no reply). Bad commands are refused with a message that says why, so the
requester sees ``dagent.Refused`` / ``dagent: refused: ...`` on the CLI.

Config (``plugins: config: kv:``):

* ``max_keys`` (int, default 10000, >= 1): ``set``/``incr`` of a new key
  beyond this is refused.
* ``initial`` (mapping, default empty): keys and values to start with.
* ``log_every`` (float seconds, default 0 = never): log the number of keys
  and commands periodically (a ``dagent.every`` timer).

The data lives in the plugin's memory: it is lost on reload or restart.
Replicated state comes with ``dagent.state`` (issue 6).

Try it::

    dagent request --via tcp://127.0.0.1:7001 --to a1 --type 10 'incr visits'   # 1
    dagent request --via tcp://127.0.0.1:7001 --to a1 --type 10 'get visits'    # 1
"""

import dagent

CONFIG = dagent.Config(
    max_keys=dagent.Option(int, default=10000, min=1, help="keys the store may hold"),
    initial=dagent.Option(dict, default={}, help="keys and values to start with"),
    log_every=dagent.Option(float, default=0.0, min=0.0, help="seconds between stats log lines (0: never)"),
)

COMMAND, COUNT = 10, 11

store = {}
max_keys = 10000
commands = 0


def setup(config):
    global max_keys
    max_keys = config.max_keys
    store.clear()
    store.update({str(k): str(v) for k, v in config.initial.items()})
    if config.log_every > 0:
        dagent.every(config.log_every, lambda: dagent.log.info("kv: %d key(s), %d command(s)", len(store), commands))


def _put(key, value):
    if key not in store and len(store) >= max_keys:
        raise ValueError(f"store full: max_keys={max_keys}")
    store[key] = value


def _incr(args):
    if not 1 <= len(args) <= 2:
        raise ValueError("usage: incr KEY [N]")
    step = int(args[1]) if len(args) == 2 else 1
    value = int(store.get(args[0], "0")) + step
    _put(args[0], str(value))
    return str(value)


def execute(line):
    """Runs one command; returns the reply text or raises ValueError/KeyError."""
    global commands
    commands += 1
    parts = line.strip().split(None, 2)
    if not parts:
        raise ValueError("empty command (get, set, incr, del, keys)")
    op, args = parts[0].lower(), parts[1:]
    if op == "get" and len(args) == 1:
        if args[0] not in store:
            raise KeyError(args[0])
        return store[args[0]]
    if op == "set" and len(args) == 2:
        _put(args[0], args[1])
        return "ok"
    if op == "incr":
        return _incr(line.split()[1:])
    if op == "del" and len(args) == 1:
        return "1" if store.pop(args[0], None) is not None else "0"
    if op == "keys" and len(args) <= 1:
        return "\n".join(sorted(k for k in store if k.startswith(args[0] if args else "")))
    raise ValueError(f"unknown command {line.strip()!r} (get KEY, set KEY VALUE, incr KEY [N], del KEY, keys [PREFIX])")


@dagent.on(COMMAND)
def command(msg):
    try:
        return execute(msg.text)
    except KeyError as e:
        msg.refuse(f"no such key: {e.args[0]}")
    except ValueError as e:
        msg.refuse(str(e))


@dagent.on(COUNT)
def count(msg):
    execute("incr " + msg.text)
