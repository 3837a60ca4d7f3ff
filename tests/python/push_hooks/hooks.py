"""Test hooks for the push service: a denying connect hook, a denying subscribe
hook and a transforming publish hook."""
from dagent import push


@push.on_connect
def no_mallory(client):
    if client.user == "mallory":
        return push.deny("mallory is banned by the hooks plugin")


@push.on_subscribe
def no_secret(client, pattern):
    if pattern.startswith("news.secret"):
        return push.deny(f"{pattern} is closed by the hooks plugin")


@push.on_publish
def stamp(client, topic, data):
    if topic.startswith("chat."):
        who = client.user if client is not None else "server"
        return push.transform(data=f"[{who}] ".encode() + data)
    if topic == "chat-blocked":
        return push.deny("no")
