"""Test plugin: a plugin that calls another node (a standalone Python node in the tests).

Type 60: the payload names a node; the plugin asks it (type 1, payload
"hello from plugin on NODE") and answers with what that node replied.
"""
import dagent


@dagent.on(60)
async def call(msg):
    target = msg.data.decode()
    return await dagent.arequest(target, 1, f"hello from plugin on {dagent.name()}".encode(), timeout=3)
