"""Routes and a static directory for tests/python/test_http.py."""
import asyncio
import os

import dagent

dagent.http.static("/www/", os.path.join(os.path.dirname(os.path.abspath(__file__)), "www"))


@dagent.http.route("/api/hello")
def hello(req):
    return {"hello": req.query.get("name", "world")}


@dagent.http.route("/api/echo", methods=["POST"])
def echo(req):
    return 201, req.body, {"X-Echo": "yes"}


@dagent.http.route("/api/boom")
def boom(req):
    raise RuntimeError("kaput")


@dagent.http.route("/api/later")
async def later(req):
    await asyncio.sleep(0.01)
    return "later"


@dagent.http.route("/api/tree/*")
def below(req):
    return req.path
