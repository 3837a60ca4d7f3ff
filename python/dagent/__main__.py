"""``python -m dagent send|request ...``: one-shot use of a standalone node from a shell.

    python -m dagent request --via tcp://127.0.0.1:7000 --to echo1 [--type 1] [--timeout 5] 'hello'
    python -m dagent send    --via tcp://127.0.0.1:7000 --to ep2 --type 7 'hi'

The payload is literal text, ``-`` for stdin, or ``@FILE``. Exit status 1 with
"dagent: <error>" on stderr when the tree reports a failure. (``dagent tree``
is the Swift CLI's; it is not duplicated here.)
"""

import argparse
import os
import sys

import dagent


def payload(text):
    if text is None:
        return b""
    if text == "-":
        return sys.stdin.buffer.read()
    if text.startswith("@"):
        with open(text[1:], "rb") as f:
            return f.read()
    return text.encode()


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m dagent", description="one-shot dagent node")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for cmd in ("send", "request"):
        p = sub.add_parser(cmd)
        p.add_argument("--via", required=True, help="address to join through (tcp://HOST:PORT[,...])")
        p.add_argument("--to", required=True, help="destination node name")
        p.add_argument("--type", type=int, default=1, help="message type (default 1)")
        p.add_argument("--name", default=f"py-cli-{os.getpid()}", help="this node's name")
        p.add_argument("--timeout", type=float, default=5.0, help="seconds (join, and the request)")
        p.add_argument("payload", nargs="?", help="text, - for stdin, @FILE")
    args = ap.parse_args(argv)
    try:
        with dagent.Node(name=args.name, via=args.via, ready_timeout=args.timeout, install=False) as node:
            if args.cmd == "send":
                node.send(args.to, args.type, payload(args.payload))
            else:
                sys.stdout.buffer.write(node.request(args.to, args.type, payload(args.payload), timeout=args.timeout))
                sys.stdout.buffer.write(b"\n")
                sys.stdout.flush()
    except dagent.DAgentError as exc:
        print(f"dagent: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
