"""Typed per-plugin configuration.

A plugin declares what its config section may hold::

    CONFIG = dagent.Config(
        prefix=dagent.Option(str, default="echo: ", help="put in front of every reply"),
        limit=dagent.Option(int, default=100, min=1),
    )

    def setup(config):
        PREFIX = config.prefix

The host validates the plugin's section (``plugins: config: NAME:`` in the
agent's YAML) against it before ``setup`` runs. Unknown keys, wrong types,
missing required options and values out of range are errors that stop that
plugin, with a message naming the plugin, the option and the value.
"""

from .errors import ConfigError

__all__ = ["Config", "Option", "PluginConfig", "REQUIRED"]


class _Required:
    def __repr__(self):
        return "REQUIRED"


REQUIRED = _Required()

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               list: "a list", dict: "a mapping"}


class Option:
    """One option: its type, default (``REQUIRED`` if none), help, and optional checks."""

    def __init__(self, type, default=REQUIRED, help="", choices=None, min=None, max=None):
        if type not in _TYPE_NAMES:
            raise TypeError(f"Option type must be one of int, float, str, bool, list, dict (got {type!r})")
        self.type, self.default, self.help = type, default, help
        self.choices, self.min, self.max = choices, min, max

    def check(self, plugin, key, value):
        t = self.type
        ok = isinstance(value, t) and not (t in (int, float) and isinstance(value, bool))
        if t is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise ConfigError(f"plugin '{plugin}': option '{key}' must be {_TYPE_NAMES[t]} "
                              f"(got {type(value).__name__} {value!r})")
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"plugin '{plugin}': option '{key}' must be one of "
                              f"{', '.join(map(repr, self.choices))} (got {value!r})")
        if self.min is not None and value < self.min:
            raise ConfigError(f"plugin '{plugin}': option '{key}' must be >= {self.min} (got {value!r})")
        if self.max is not None and value > self.max:
            raise ConfigError(f"plugin '{plugin}': option '{key}' must be <= {self.max} (got {value!r})")
        return value


class PluginConfig(dict):
    """A plugin's validated config: a dict whose keys are also attributes."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"no config option '{key}'") from None


class Config:
    """The options a plugin accepts (``CONFIG = dagent.Config(name=Option(...), ...)``)."""

    def __init__(self, **options):
        for key, opt in options.items():
            if not isinstance(opt, Option):
                raise TypeError(f"Config option '{key}' must be a dagent.Option")
        self.options = options

    def validate(self, plugin, raw):
        """Returns a PluginConfig for section ``raw`` (a dict or None) or raises ConfigError."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"plugin '{plugin}': its config section must be a mapping "
                              f"(got {type(raw).__name__} {raw!r})")
        unknown = sorted(set(raw) - set(self.options))
        if unknown:
            known = ", ".join(sorted(self.options)) or "none"
            raise ConfigError(f"plugin '{plugin}': unknown option '{unknown[0]}' (known options: {known})")
        out = PluginConfig()
        for key, opt in self.options.items():
            if key in raw:
                out[key] = opt.check(plugin, key, raw[key])
            elif opt.default is REQUIRED:
                raise ConfigError(f"plugin '{plugin}': option '{key}' is required"
                                  + (f" ({opt.help})" if opt.help else ""))
            else:
                out[key] = opt.default
        return out

    def describe(self):
        """One line per option, for documentation."""
        lines = []
        for key, opt in self.options.items():
            default = "required" if opt.default is REQUIRED else f"default {opt.default!r}"
            lines.append(f"{key} ({opt.type.__name__}, {default}){': ' + opt.help if opt.help else ''}")
        return "\n".join(lines)
