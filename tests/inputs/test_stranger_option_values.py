"""Option values a CI owner may write (the stranger test), parsed where they are declared (inputs/options.py)."""

from __future__ import annotations

import pytest

from pytest_aiotbench.inputs.options import parse_cooldown


@pytest.mark.parametrize("raw", ["until=50,max=5,max=600", "until=50,until=40", "until=50,max=5,until=50"])
def test_a_cooldown_key_given_twice_is_refused(raw):
    # the last one silently won: `max=5,max=600` waited up to 600 s
    with pytest.raises(ValueError, match="until=TEMP"):
        parse_cooldown(raw)


@pytest.mark.parametrize("raw, parsed", [
    ("until=50,max=5", {"until_c": 50.0, "max_s": 5.0}),
    ("until=45", {"until_c": 45.0, "max_s": 600.0}),
    ("30", {"seconds": 30.0}),
])
def test_cooldown_values_still_parse(raw, parsed):
    assert parse_cooldown(raw) == parsed
