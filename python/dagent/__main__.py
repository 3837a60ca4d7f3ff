"""``python -m dagent send|request|tree ...``: one-shot use of dagent from a shell.

    python -m dagent request --via tcp://127.0.0.1:7000 --to echo1 [--type 1] [--timeout 5] 'hello'
    python -m dagent send    --via msgq:///run/dagent/agent.q --to ep2 --type 7 'hi'
    python -m dagent tree    --via msgq:///run/dagent/agent.q [--json] [--timeout 3]
    python -m dagent tree    --via tcp://127.0.0.1:7000 --secret-file S [--tls-cert C --tls-key K --tls-ca CA] [--name N]

``send`` and ``request`` join the tree as a short-lived node; ``tree`` only asks
the node at the address what it sees (the same output as ``dagent tree``).
The payload is literal text, ``-`` for stdin, or ``@FILE``. Exit status 1 with
"dagent: <error>" on stderr when the tree reports a failure or nothing answers.
"""

import argparse
import os
import sys

import dagent
from dagent._standalone import tree_report

VIA_HELP = "address: tcp://HOST:PORT[,...] or msgq://PATH (the local agent serving PATH)"


def payload(text):
    if text is None:
        return b""
    if text == "-":
        return sys.stdin.buffer.read()
    if text.startswith("@"):
        with open(text[1:], "rb") as f:
            return f.read()
    return text.encode()


def parser():
    ap = argparse.ArgumentParser(prog="python -m dagent", description="one-shot dagent node")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for cmd in ("send", "request"):
        p = sub.add_parser(cmd, help=f"join as a short-lived node and {cmd} one message")
        p.add_argument("--via", required=True, help=f"{VIA_HELP} to join through")
        p.add_argument("--to", required=True, help="destination node name")
        p.add_argument("--type", type=int, default=1, help="message type (default 1)")
        p.add_argument("--name", default=f"py-cli-{os.getpid()}", help="this node's name")
        p.add_argument("--timeout", type=float, default=5.0, help="seconds (join, and the request)")
        p.add_argument("payload", nargs="?", help="text, - for stdin, @FILE")
    p = sub.add_parser("push", help="push service tools (docs/push.md)")
    psub = p.add_subparsers(dest="push_cmd", required=True)
    t = psub.add_parser("token", help="print a JWT (HS256) for a browser client of the push service")
    t.add_argument("--secret-file", required=True, help="file holding the HS256 secret (the push plugin's secret_file)")
    t.add_argument("--sub", required=True, help="the user (claim sub)")
    t.add_argument("--topics", action="append", default=[], help="patterns it may subscribe to (repeatable or comma-separated)")
    t.add_argument("--pub", action="append", default=[], help="topics it may publish to (repeatable or comma-separated)")
    t.add_argument("--ttl", type=int, default=3600, help="seconds it is valid (default 3600)")
    t.add_argument("--json", action="store_true", help="print the claims and the token as JSON")
    p = sub.add_parser("tree", help="show the live tree as the node at --via sees it")
    p.add_argument("--via", required=True, help=f"{VIA_HELP} to ask")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer (default 3)")
    p.add_argument("--name", help="name to register the query with (default: the certificate's, else tree-RANDOM)")
    p.add_argument("--secret-file", help="file holding the cluster secret (mode 0600), for a tree in secret mode")
    p.add_argument("--tls-cert", help="TLS certificate (PEM), for a tree with mutual TLS")
    p.add_argument("--tls-key", help="TLS private key (PEM) of --tls-cert")
    p.add_argument("--tls-ca", help="the cluster CA certificate (PEM)")
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    if args.cmd == "push":
        return push_token(args)
    try:
        if args.cmd == "tree":
            print(tree_report(args.via, json=args.json, timeout=args.timeout, name=args.name, secret_file=args.secret_file,
                              tls_cert=args.tls_cert, tls_key=args.tls_key, tls_ca=args.tls_ca), flush=True)
            return 0
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


def push_token(args):
    import json as _json
    from . import push
    split = lambda items: [p for item in items for p in item.split(",") if p]  # noqa: E731
    try:
        with open(args.secret_file, "rb") as f:
            secret = f.read().strip()
        token = push.token(secret, sub=args.sub, topics=split(args.topics), pub=split(args.pub), ttl=args.ttl)
    except OSError as exc:
        print(f"dagent: cannot read --secret-file {args.secret_file!r}: {exc.strerror}", file=sys.stderr)
        return 1
    except (ValueError, push.TokenError) as exc:
        print(f"dagent: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(_json.dumps({"token": token, "claims": push.verify(secret, token)}))
    else:
        print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
