"""The plugin host over a fake backend: loading, isolation, config, reload, status."""

import json
import os
import textwrap

import pytest

from dagent import _host, _runtime
from conftest import run_until


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))


@pytest.fixture
def plugin_dir(tmp_path):
    return tmp_path / "plugins"


@pytest.fixture
def make_host(backend, loop):
    hosts = []

    def make(dirs, config=None, budget=2.0):
        h = _host.Host(backend, {"dirs": [str(d) for d in dirs], "config": config or {}, "handler_budget": budget},
                       loop=loop)
        hosts.append(h)
        return h
    yield make
    for h in hosts:
        h.unload_all()
    _runtime.install(None)


def deliver(host, backend, src, type, data=b"", request=False):
    cookie = backend.deliver(src, type, data, request)
    host.pump()
    return cookie


ECHO = """
    import dagent
    PREFIX = "echo:"
    @dagent.on(1)
    def echo(msg):
        return PREFIX.encode() + msg.data
"""


def test_loads_plugins_and_skips_a_syntax_error(plugin_dir, make_host, backend):
    write(plugin_dir / "echo.py", ECHO)
    write(plugin_dir / "broken.py", "import dagent\n\ndef oops(:\n    pass\n")
    write(plugin_dir / "_private.py", "raise SystemExit('never imported')")
    write(plugin_dir / "notes.txt", "not a plugin")
    host = make_host([plugin_dir])
    ok, summary = host.reload(initial=True)
    assert not ok
    assert "echo: loaded" in summary
    assert "broken: FAILED: import failed at" in summary and "broken.py:3" in summary and "SyntaxError" in summary
    assert host.plugins["echo"].state == "loaded"
    assert set(host.plugins) == {"echo", "broken"}
    assert any("plugin 'broken' skipped" in t and "broken.py:3" in t for t in backend.errors())
    cookie = deliver(host, backend, "cli", 1, b"hi", request=True)
    assert backend.responses == [("cli", 1, cookie, True, b"echo:hi")]


def test_runtime_error_at_import_names_file_and_line(plugin_dir, make_host):
    write(plugin_dir / "bad.py", "import dagent\nx = 1\nraise KeyError('missing')\n")
    host = make_host([plugin_dir])
    host.reload(initial=True)
    p = host.plugins["bad"]
    assert p.state == "failed"
    assert p.error.startswith("import failed at ") and "bad.py:3: KeyError" in p.error


def test_plugins_have_separate_globals(plugin_dir, make_host, backend):
    for name, t, value in (("a", 1, "from a"), ("b", 2, "from b")):
        write(plugin_dir / f"{name}.py", f"""
            import dagent
            VALUE = {value!r}
            @dagent.on({t})
            def h(msg):
                return VALUE
        """)
    host = make_host([plugin_dir])
    host.reload(initial=True)
    deliver(host, backend, "c", 1, request=True)
    deliver(host, backend, "c", 2, request=True)
    assert [r[4] for r in backend.responses] == [b"from a", b"from b"]
    assert host.plugins["a"].module.VALUE != host.plugins["b"].module.VALUE


def test_config_is_validated_and_passed_to_setup(plugin_dir, make_host, backend):
    write(plugin_dir / "counter.py", """
        import dagent
        CONFIG = dagent.Config(start=dagent.Option(int, default=0), step=dagent.Option(int, default=1, min=1))
        value = None
        def setup(config):
            global value
            value = config.start
        @dagent.on(5)
        def inc(msg):
            global value
            value += 1
            return str(value)
    """)
    write(plugin_dir / "strict.py", """
        import dagent
        CONFIG = dagent.Config(port=dagent.Option(int))
        @dagent.on(6)
        def h(msg):
            return b""
    """)
    host = make_host([plugin_dir], config={"counter": {"start": 41}, "strict": {"port": "eighty"}, "ghost": {}})
    host.reload(initial=True)
    assert host.plugins["counter"].state == "loaded"
    deliver(host, backend, "c", 5, request=True)
    assert backend.responses[-1][4] == b"42"
    strict = host.plugins["strict"]
    assert strict.state == "stopped"
    assert strict.error == "bad config: plugin 'strict': option 'port' must be an integer (got str 'eighty')"
    assert 6 not in host.rt.handlers   # its handlers were removed
    assert any("config section for plugin 'ghost'" in t for _, _, t in backend.logs)


def test_setup_raising_config_error_stops_the_plugin(plugin_dir, make_host):
    write(plugin_dir / "p.py", """
        import dagent
        def setup(config):
            if "url" not in config:
                raise dagent.ConfigError("plugin 'p': option 'url' is required")
    """)
    host = make_host([plugin_dir])
    host.reload(initial=True)
    assert host.plugins["p"].state == "stopped"
    assert "option 'url' is required" in host.plugins["p"].error


def test_reload_picks_up_changed_code_and_calls_teardown(plugin_dir, make_host, backend, tmp_path):
    marker = tmp_path / "teardown.log"
    code = """
        import dagent
        @dagent.on(21)
        def h(msg):
            return "version {v}"
        def teardown():
            with open({marker!r}, "a") as f:
                f.write("down {v}\\n")
    """
    write(plugin_dir / "v.py", code.format(v=1, marker=str(marker)))
    write(plugin_dir / "other.py", ECHO)
    host = make_host([plugin_dir])
    host.reload(initial=True)
    deliver(host, backend, "c", 21, request=True)
    # same size, same second: a stale .pyc or an mtime check alone would miss this
    write(plugin_dir / "v.py", code.format(v=2, marker=str(marker)))
    st = os.stat(plugin_dir / "v.py")
    os.utime(plugin_dir / "v.py", ns=(st.st_atime_ns, st.st_mtime_ns + 1000))
    ok, summary = host.reload()
    assert ok, summary
    assert "v: reloaded" in summary and "other: unchanged (loaded)" in summary
    deliver(host, backend, "c", 21, request=True)
    assert [r[4] for r in backend.responses] == [b"version 1", b"version 2"]
    assert marker.read_text() == "down 1\n"


def test_reload_named_plugin_new_and_removed(plugin_dir, make_host, backend):
    write(plugin_dir / "a.py", ECHO)
    host = make_host([plugin_dir])
    host.reload(initial=True)
    ok, summary = host.reload("a")
    assert ok and summary.startswith("a: reloaded")
    assert host.rt.owner(host.plugins["a"].slot).loads == 2
    write(plugin_dir / "b.py", "import dagent\n")
    os.remove(plugin_dir / "a.py")
    ok, summary = host.reload()
    assert "a: removed" in summary and "b: loaded" in summary
    assert 1 not in host.rt.handlers
    ok, summary = host.reload("nope")
    assert not ok and "no plugin named 'nope'" in summary


def test_reload_retries_a_fixed_plugin(plugin_dir, make_host):
    write(plugin_dir / "p.py", "def broken(:\n")
    host = make_host([plugin_dir])
    host.reload(initial=True)
    assert host.plugins["p"].state == "failed"
    write(plugin_dir / "p.py", "import dagent\n# fixed now\n")
    ok, summary = host.reload()
    assert ok and host.plugins["p"].state == "loaded"


def test_package_plugin_with_relative_import(plugin_dir, make_host, backend):
    write(plugin_dir / "calc" / "__init__.py", """
        import dagent
        from .ops import evaluate
        @dagent.on(3)
        def h(msg):
            return str(evaluate(msg.text))
    """)
    write(plugin_dir / "calc" / "ops.py", """
        def evaluate(text):
            a, op, b = text.split()
            return {"+": int(a) + int(b), "*": int(a) * int(b)}[op]
    """)
    host = make_host([plugin_dir])
    host.reload(initial=True)
    deliver(host, backend, "c", 3, b"6 * 7", request=True)
    assert backend.responses[-1][4] == b"42"


def test_duplicate_names_across_dirs(tmp_path, make_host, backend):
    write(tmp_path / "d1" / "p.py", ECHO)
    write(tmp_path / "d2" / "p.py", "raise RuntimeError('must not load')")
    host = make_host([tmp_path / "d1", tmp_path / "d2"])
    ok, summary = host.reload(initial=True)
    assert host.plugins["p"].path.endswith("d1/p.py")
    assert "already found" in summary


def test_errors_are_counted_per_plugin_and_type_in_status(plugin_dir, make_host, backend):
    write(plugin_dir / "flaky.py", """
        import dagent
        @dagent.on(4)
        def h(msg):
            raise ValueError("bad input " + msg.text)
    """)
    host = make_host([plugin_dir])
    host.reload(initial=True)
    for i in range(3):
        deliver(host, backend, "c", 4, str(i).encode())
    host.flush_status()
    op, text = backend.controls[-1]
    status = json.loads(text)
    p = next(p for p in status["plugins"] if p["name"] == "flaky")
    assert op == "status"
    assert p["errors"] == 3 and p["errors_by"] == {"4": 3} and p["types"] == [4]
    assert "ValueError: bad input 2" in p["last_error"]


def test_timers_of_a_plugin_fire_and_stop_at_unload(plugin_dir, make_host, loop):
    write(plugin_dir / "ticker.py", """
        import dagent
        ticks = []
        def setup():
            dagent.every(0.01, ticks.append, 1)
    """)
    host = make_host([plugin_dir])
    host.reload(initial=True)
    module = host.plugins["ticker"].module
    run_until(loop, lambda: len(module.ticks) >= 3)
    host.unload(host.plugins["ticker"])
    assert not host.rt.owner(host.plugins["ticker"].slot).timers


def test_host_commands(plugin_dir, make_host, backend):
    write(plugin_dir / "a.py", ECHO)
    host = make_host([plugin_dir])
    host.reload(initial=True)
    host._command(7, json.dumps({"op": "reload", "plugin": "a"}))
    op, text = backend.controls[-1]
    assert op == "command_done" and json.loads(text) == {"token": 7, "ok": True, "text": "a: reloaded"}
    host._command(8, json.dumps({"op": "dance"}))
    assert json.loads(backend.controls[-1][1])["ok"] is False


def test_two_plugins_cannot_share_a_type(plugin_dir, make_host, backend):
    write(plugin_dir / "first.py", ECHO)
    write(plugin_dir / "second.py", "import dagent\n\n@dagent.on(1)\ndef h(msg):\n    return b'second'\n")
    host = make_host([plugin_dir])
    host.reload(initial=True)
    second = host.plugins["second"]
    assert second.state == "failed"
    assert "second.py:3" in second.error
    assert "message type 1 is already handled by plugin 'first'" in second.error
    deliver(host, backend, "c", 1, b"x", request=True)
    assert backend.responses[-1][4] == b"echo:x"
