"""Per-plugin config validation (dagent.Config / dagent.Option)."""

import pytest

import dagent

SCHEMA = dagent.Config(
    prefix=dagent.Option(str, default="> "),
    limit=dagent.Option(int, default=10, min=1, max=100),
    ratio=dagent.Option(float, default=0.5),
    mode=dagent.Option(str, default="fast", choices=["fast", "safe"]),
    token=dagent.Option(str, help="API token"),
    verbose=dagent.Option(bool, default=False),
)


def test_defaults_and_attribute_access():
    cfg = SCHEMA.validate("p", {"token": "t"})
    assert cfg.prefix == "> " and cfg.limit == 10 and cfg["token"] == "t" and cfg.verbose is False


def test_int_is_accepted_for_float():
    assert SCHEMA.validate("p", {"token": "t", "ratio": 2}).ratio == 2.0


@pytest.mark.parametrize("raw, message", [
    ({}, "option 'token' is required (API token)"),
    ({"token": "t", "limit": "10"}, "option 'limit' must be an integer (got str '10')"),
    ({"token": "t", "limit": True}, "option 'limit' must be an integer (got bool True)"),
    ({"token": "t", "limit": 0}, "option 'limit' must be >= 1 (got 0)"),
    ({"token": "t", "limit": 101}, "option 'limit' must be <= 100"),
    ({"token": "t", "mode": "slow"}, "option 'mode' must be one of 'fast', 'safe'"),
    ({"token": "t", "colour": "red"}, "unknown option 'colour' (known options: limit, mode, prefix, ratio, token, verbose)"),
])
def test_errors_name_plugin_option_and_value(raw, message):
    with pytest.raises(dagent.ConfigError) as e:
        SCHEMA.validate("myplugin", raw)
    assert "plugin 'myplugin'" in str(e.value)
    assert message in str(e.value)


def test_section_must_be_a_mapping():
    with pytest.raises(dagent.ConfigError, match="must be a mapping"):
        SCHEMA.validate("p", ["a"])


def test_option_types_are_checked_at_declaration():
    with pytest.raises(TypeError):
        dagent.Option(set)
    with pytest.raises(TypeError):
        dagent.Config(x=3)
