"""The embedded plugin host: what the agent's plugin thread runs.

The agent (Sources/DAgentPython) starts CPython on its plugin thread and calls
``main(settings_json)``, which

* creates the asyncio loop of the plugin thread and a Runtime over the
  built-in backend ``_dagent_host``;
* loads every plugin of the plugin directories (a ``NAME.py`` file or a
  ``NAME/`` package), each as its own module ``_dagent_plugins.NAME``:
  import, config validation against ``CONFIG``, ``setup(config)``;
* runs the loop until the agent asks it to stop, handing each batch of
  messages to ``backend.pump`` and answering host commands (reload, stop).

A plugin that fails to import, has a bad config or raises in ``setup`` is
reported (file, line, exception) and skipped; the others load.
"""

import asyncio
import base64
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import os
import selectors
import shutil
import sys
import time
import traceback
import types

from . import _runtime
from . import http as _http
from .config import Config, PluginConfig
from .errors import ConfigError

PACKAGE = "_dagent_plugins"
BATCH = 2048

_LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO, "notice": logging.INFO,
           "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}


def main(settings_json):
    """Entry point called by the agent on the plugin thread; returns when told to stop."""
    import _dagent_host
    Host(_dagent_host, json.loads(settings_json)).run()


# ---- importing plugins ----------------------------------------------------------------


class _SourceLoader(importlib.machinery.SourceFileLoader):
    """Always compiles from source: a reload never runs a stale .pyc."""

    def get_code(self, fullname):
        path = self.get_filename(fullname)
        return compile(self.get_data(path), path, "exec", dont_inherit=True)


class _PluginFinder(importlib.abc.MetaPathFinder):
    """Finds the submodules of package plugins (``_dagent_plugins.NAME.sub``)."""

    def find_spec(self, fullname, path, target=None):
        if not fullname.startswith(PACKAGE + ".") or path is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec
        return importlib.util.spec_from_file_location(
            fullname, spec.origin, loader=_SourceLoader(fullname, spec.origin),
            submodule_search_locations=spec.submodule_search_locations)


def _install_import_hooks():
    if PACKAGE not in sys.modules:
        pkg = types.ModuleType(PACKAGE, "Namespace of the agent's plugins (one submodule per plugin).")
        pkg.__path__ = []
        sys.modules[PACKAGE] = pkg
    if not any(isinstance(f, _PluginFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PluginFinder())


def _where(exc, root):
    """'file:line' of an exception: the syntax error's position, else the deepest frame in the plugin."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if f.filename.startswith(root)]
    f = (inside or frames or [None])[-1]
    return f"{f.filename}:{f.lineno}" if f else root


def _fingerprint(path, is_package):
    """A digest of the plugin's source files (content, not mtime: an edit within
    the same clock tick is still a change)."""
    digest = hashlib.sha256()
    files = [path]
    if is_package:
        files = []
        for d, dirs, names in os.walk(path):
            dirs[:] = sorted(x for x in dirs if x != "__pycache__" and not x.startswith("."))
            files += [os.path.join(d, f) for f in sorted(names) if f.endswith(".py")]
    for f in files:
        digest.update(os.path.relpath(f, path).encode() + b"\0")
        with open(f, "rb") as fh:
            digest.update(fh.read())
        digest.update(b"\0")
    return digest.hexdigest()


class Plugin:
    """One plugin found in a plugin directory."""

    def __init__(self, name, path, is_package, slot):
        self.name, self.path, self.is_package, self.slot = name, path, is_package, slot
        self.module = None
        self.state = "new"          # loaded, failed, stopped (bad config), unloaded
        self.error = ""
        self.fingerprint = None
        self.config_key = None

    @property
    def file(self):
        return os.path.join(self.path, "__init__.py") if self.is_package else self.path


# ---- the host ---------------------------------------------------------------------------


class _Selector(selectors.DefaultSelector):
    """Tells the watchdog when the plugin thread waits and when it runs code."""

    def __init__(self, idle, busy):
        super().__init__()
        self._idle, self._busy = idle, busy

    def select(self, timeout=None):
        self._idle()
        try:
            return super().select(timeout)
        finally:
            self._busy()


class _BackendLogHandler(logging.Handler):
    """Python logging -> the agent's log, with the plugin's name."""

    def __init__(self, rt):
        super().__init__()
        self.rt = rt
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record):
        try:
            text = self.format(record)
            if record.name not in ("dagent", "root") and not record.name.startswith(PACKAGE):
                text = f"[{record.name}] {text}"
            self.rt.backend.log(record.levelno, self.rt.current_name(), text)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


class Host:
    def __init__(self, backend, settings, loop=None):
        self.backend = backend
        self.settings = settings
        self.plugins = {}           # name -> Plugin
        self._slots = {}            # name -> slot, stable across reloads
        self.stopping = False
        self._status_scheduled = False
        if loop is None:
            if hasattr(backend, "idle"):
                loop = asyncio.SelectorEventLoop(_Selector(backend.idle, backend.busy))
            else:
                loop = asyncio.new_event_loop()
        self.loop = loop
        self.rt = _runtime.Runtime(backend, loop)
        self.rt.budget = settings.get("handler_budget")
        self.rt.on_command = self._command
        self.rt.on_change = self._changed
        _runtime.install(self.rt)
        _install_import_hooks()
        self._setup_logging()
        self._fix_executable()

    def _setup_logging(self):
        root = logging.getLogger()
        for h in list(root.handlers):
            if isinstance(h, _BackendLogHandler):
                root.removeHandler(h)
        root.addHandler(_BackendLogHandler(self.rt))
        root.setLevel(_LEVELS.get(str(self.settings.get("log_level", "info")).lower(), logging.INFO))

    @staticmethod
    def _fix_executable():
        # Embedded, sys.executable would be the agent; subprocess users want a Python.
        exe = shutil.which(f"python{sys.version_info[0]}.{sys.version_info[1]}",
                           path=os.path.join(sys.base_prefix, "bin"))
        if exe:
            sys.executable = exe

    # ---- the loop ------------------------------------------------------------------

    def run(self):
        asyncio.set_event_loop(self.loop)
        summary = self.reload(initial=True)[1]
        self.flush_status()
        self._control("started", json.dumps({"summary": summary}))
        fd = self.backend.wakeup_fd()
        self.loop.add_reader(fd, self.pump)
        self.loop.call_soon(self.pump)
        while not self.stopping:
            try:
                self.loop.run_forever()
            except BaseException as exc:  # noqa: B036 - e.g. SystemExit from a plugin's task
                self.rt.backend.log(40, "", f"{type(exc).__name__} escaped into the plugin loop and was ignored:\n"
                                    + "".join(traceback.format_exception(exc)))
        self.loop.remove_reader(fd)
        self.unload_all()
        self.flush_status()

    def pump(self):
        """Hands one batch of messages to the handlers and processes events."""
        rt = self.rt
        if hasattr(self.backend, "pump"):
            n, events, more = self.backend.pump(rt.handlers, rt.on_unhandled, rt.on_error, rt.on_async,
                                                rt.on_result, BATCH)
        else:
            msgs, events, more = self.backend.take(BATCH)
            rt.dispatch([self._message(m) for m in msgs])
        if events:
            rt.handle_events(events)
        if more:
            self.loop.call_soon(self.pump)

    def _message(self, raw):
        src, type_, data, cookie = raw
        return tuple.__new__(_runtime.Message, (src, self.backend.name(), type_, data, cookie, self.rt))

    def _control(self, op, text):
        control = getattr(self.backend, "control", None)
        return control(op, text) if control else None

    # ---- commands from the agent --------------------------------------------------

    def _command(self, token, text):
        try:
            cmd = json.loads(text)
            op = cmd.get("op")
            if op == "reload":
                if cmd.get("settings"):
                    self.settings = cmd["settings"]
                    self.rt.budget = self.settings.get("handler_budget")
                    self._setup_logging()
                ok, summary = self.reload(cmd.get("plugin"), force=bool(cmd.get("force")))
            elif op == "http":
                answer = getattr(self.backend, "command_answer", None)

                def done(meta, body, token=token):
                    if answer is not None:   # the body's bytes as they are
                        answer(token, json.dumps(meta), body)
                    else:
                        meta["body"] = base64.b64encode(body).decode()
                        self._control("command_done", json.dumps({"token": token, "ok": True, "text": json.dumps(meta)}))
                _http.handle(self.rt, cmd, done)
                return
            elif op == "stop":
                self.stopping = True
                self.loop.stop()
                ok, summary = True, "stopping"
            else:
                ok, summary = False, f"unknown host command {op!r}"
        except Exception as exc:  # a bug here must not kill the host
            ok, summary = False, f"host command failed: {type(exc).__name__}: {exc}"
            self.rt.backend.log(40, "", traceback.format_exc())
        self._control("command_done", json.dumps({"token": token, "ok": ok, "text": summary}))

    # ---- discovery -------------------------------------------------------------------

    def scan(self):
        """name -> (path, is_package) over the plugin dirs in order, plus duplicate notes."""
        found, notes = {}, []
        for d in self.settings.get("dirs", []):
            try:
                entries = sorted(os.listdir(d))
            except OSError as exc:
                notes.append(f"plugin directory {d}: {exc.strerror}")
                continue
            for entry in entries:
                if entry.startswith(("_", ".")):
                    continue
                path = os.path.join(d, entry)
                if entry.endswith(".py") and os.path.isfile(path):
                    name, pkg = entry[:-3], False
                elif os.path.isfile(os.path.join(path, "__init__.py")):
                    name, pkg = entry, True
                else:
                    continue
                if not name.isidentifier():
                    notes.append(f"{path}: '{name}' is not a valid plugin name (must be a Python identifier); skipped")
                    continue
                if name in found:
                    notes.append(f"{path}: a plugin named '{name}' was already found at {found[name][0]}; skipped")
                    continue
                found[name] = (os.path.abspath(path), pkg)
        return found, notes

    def _slot(self, name):
        if name not in self._slots:
            self._slots[name] = len(self._slots) + 1
        return self._slots[name]

    # ---- load / unload / reload -------------------------------------------------------

    def reload(self, only=None, force=False, initial=False):
        """Loads new plugins, reloads changed (or ``only``/forced) ones, unloads removed ones.
        Returns (ok, summary)."""
        found, notes = self.scan()
        for note in notes:
            self.rt.backend.log(40 if initial else 30, "", note)
        configs = self.settings.get("config") or {}
        for cname in sorted(set(configs) - set(found)):
            notes.append(f"config section for plugin '{cname}' but no such plugin in {', '.join(self.settings.get('dirs', []))}")
            self.rt.backend.log(30, "", notes[-1])
        lines, ok = [], True
        if only is not None:
            if only not in found:
                return False, f"no plugin named '{only}' in {', '.join(self.settings.get('dirs', []))}"
            targets = {only: found[only]}
        else:
            targets = found
            for name in sorted(set(self.plugins) - set(found)):
                self.unload(self.plugins.pop(name))
                lines.append(f"{name}: removed")
        for name, (path, pkg) in targets.items():
            p = self.plugins.get(name)
            config_key = json.dumps(configs.get(name), sort_keys=True, default=str)
            try:
                fp = _fingerprint(path, pkg)
            except OSError as exc:
                fp = ("unreadable", str(exc))
            if p is not None and not (force or only is not None) and p.path == path \
                    and p.fingerprint == fp and p.config_key == config_key:
                lines.append(f"{name}: unchanged ({p.state})")
                continue
            verb = "loaded" if p is None else "reloaded"
            if p is not None:
                self.unload(p)
            p = self.plugins[name] = Plugin(name, path, pkg, self._slot(name))
            p.fingerprint, p.config_key = fp, config_key
            self.load(p, configs.get(name))
            if p.state == "loaded":
                lines.append(f"{name}: {verb}")
            else:
                ok = False
                lines.append(f"{name}: {p.state.upper()}: {p.error}")
        self.flush_status()
        return ok, "\n".join(lines + [f"note: {n}" for n in notes]) or "no plugins found"

    def load(self, p, raw_config):
        rt = self.rt
        owner = rt.owner(p.slot, p.name)
        owner.loads += 1
        modname = f"{PACKAGE}.{p.name}"
        self._drop_modules(modname)
        try:
            module = rt.call_as(p.slot, self._import, modname, p)
        except BaseException as exc:  # noqa: B036 - SyntaxError, ImportError, anything at module level
            self._fail(p, "failed", f"import failed at {_where(exc, p.path)}: {type(exc).__name__}: {exc}", exc)
            self._drop_modules(modname)
            return
        try:
            schema = getattr(module, "CONFIG", None)
            if schema is not None:
                if not isinstance(schema, Config):
                    raise ConfigError(f"plugin '{p.name}': CONFIG must be a dagent.Config (got {type(schema).__name__})")
                config = schema.validate(p.name, raw_config)
            elif raw_config is None or isinstance(raw_config, dict):
                config = PluginConfig(raw_config or {})
            else:
                raise ConfigError(f"plugin '{p.name}': its config section must be a mapping (got {raw_config!r})")
        except ConfigError as exc:
            self._fail(p, "stopped", f"bad config: {exc}")
            self._drop_modules(modname)
            return
        setup = getattr(module, "setup", None)
        if callable(setup):
            try:
                takes_config = _accepts_argument(setup)
                r = rt.call_as(p.slot, setup, config) if takes_config else rt.call_as(p.slot, setup)
                if r is not None and hasattr(r, "__await__"):
                    rt.spawn(p.slot, "setup", r)
            except ConfigError as exc:
                self._fail(p, "stopped", f"bad config: {exc}")
                self._drop_modules(modname)
                return
            except BaseException as exc:  # noqa: B036
                self._fail(p, "failed", f"setup raised at {_where(exc, p.path)}: {type(exc).__name__}: {exc}", exc)
                self._drop_modules(modname)
                return
        p.module, p.state, p.error = module, "loaded", ""
        types_ = rt.types_of(p.slot)
        rt.backend.log(20, p.name, f"plugin '{p.name}' loaded from {p.path}"
                       + (f"; handles types {', '.join(map(str, types_))}" if types_ else "; no handlers"))

    def _import(self, modname, p):
        file = p.file
        spec = importlib.util.spec_from_file_location(
            modname, file, loader=_SourceLoader(modname, file),
            submodule_search_locations=[p.path] if p.is_package else None)
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        spec.loader.exec_module(module)
        return module

    def _fail(self, p, state, error, exc=None):
        p.state, p.error, p.module = state, error, None
        owner = self.rt.owner(p.slot, p.name)
        owner.last_error = error
        self.rt.remove_owner(p.slot)
        text = f"plugin '{p.name}' {'skipped' if state == 'failed' else 'stopped'}: {error}"
        if exc is not None and not isinstance(exc, SyntaxError):
            text += "\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
        self.rt.backend.log(40, p.name, text)

    def unload(self, p):
        rt = self.rt
        if p.state == "loaded" and p.module is not None:
            teardown = getattr(p.module, "teardown", None)
            if callable(teardown):
                rt.call_guarded(p.slot, "teardown", teardown)
        rt.remove_owner(p.slot)
        self._drop_modules(f"{PACKAGE}.{p.name}")
        if p.state == "loaded":
            rt.backend.log(20, p.name, f"plugin '{p.name}' unloaded")
        p.module, p.state = None, "unloaded"

    def unload_all(self):
        for name in list(self.plugins):
            self.unload(self.plugins[name])

    @staticmethod
    def _drop_modules(modname):
        for key in [k for k in sys.modules if k == modname or k.startswith(modname + ".")]:
            del sys.modules[key]

    # ---- status for `dagent tree` --------------------------------------------------

    def _changed(self):
        if not self._status_scheduled and not self.stopping:
            self._status_scheduled = True
            self.loop.call_later(0.1, self.flush_status)

    def status(self):
        rt = self.rt
        plugins = []
        for p in self.plugins.values():
            o = rt.owner(p.slot, p.name)
            plugins.append({
                "slot": p.slot, "name": p.name, "path": p.path, "state": p.state, "error": p.error,
                "types": rt.types_of(p.slot), "errors": o.errors, "errors_by": dict(o.errors_by),
                "interrupts": o.interrupts, "last_error": o.last_error, "loads": o.loads,
                "timers": len(o.timers), "tasks": len(o.tasks), "handled": o.handled,
            })
        return {"python": sys.version.split()[0], "plugins": plugins, "unhandled": rt.unhandled,
                "time": time.time()}

    def flush_status(self):
        self._status_scheduled = False
        self._control("status", json.dumps(self.status()))


def _accepts_argument(fn):
    import inspect
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    except (TypeError, ValueError):
        return True
    return bool(params)
