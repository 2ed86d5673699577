"""Field mapping, plain reasons and webhook URL identity: pure translation, no server."""

from __future__ import annotations

import pytest

from rlthf_plugin.backends.base import normalise_url, same_url
from rlthf_plugin.backends.mapping import FieldMap, parse_map
from rlthf_plugin.backends.reasons import DEFAULT, plain_reason
from rlthf_plugin.errors import ConfigError


def test_parse_map_defaults_round_trip_and_errors():
    assert parse_map("") == FieldMap() and parse_map(None).is_default
    fm = parse_map(" prompt=q , response_a=x,response_b=y,label=pw ")
    assert (fm.prompt, fm.response_a, fm.response_b, fm.label) == ("q", "x", "y", "pw")
    assert parse_map(fm.to_text()) == fm
    with pytest.raises(ConfigError) as err:
        parse_map("prompt=a,response_a=a,nope,colour=red", where="[argilla] map")
    assert "[argilla] map" in err.value.message and "'nope' is not KEY=NAME" in err.value.message
    with pytest.raises(ConfigError) as err:
        parse_map("prompt=a,response_a=a,colour=red")
    assert "unknown key 'colour'" in err.value.message and "three different names" in err.value.message


@pytest.mark.parametrize("reason", [
    {"action": "ask", "region": "flip", "margin": -7.512, "rank": 2146, "n": 2147, "elbow": 200, "knee": 1950,
     "reflection": 2138, "why": "from the right end leftwards (flip gate closed)"},
    {"region": "ask", "margin": -0.01, "rank": 3},
    {"region": "audit"},
    {"source": "real", "strategy": "easy", "similarity": 0.12},
    {"region": "all"},
    {},
])
def test_plain_reasons_have_no_numbers_and_no_machine_words(reason):
    text = plain_reason(reason)
    assert text and not any(ch.isdigit() for ch in text)
    assert not {"flip", "margin", "rank", "elbow", "knee", "reflection", "gate"} & set(text.lower().split())


def test_reasons_differ_by_kind():
    assert plain_reason({"region": "flip"}) != plain_reason({"region": "ask"}) != DEFAULT
    assert plain_reason({"strategy": "easy"}) == "New pair: these two answers differ the most"


def test_webhook_urls_compare_normalised():
    assert same_url("http://127.0.0.1:8765/webhooks/argilla", "HTTP://127.0.0.1:8765/webhooks/argilla/")
    assert same_url("http://Example.org:80/hook", "http://example.org/hook")
    assert not same_url("http://127.0.0.1:8765/webhooks/argilla", "http://127.0.0.1:8766/webhooks/argilla")
    assert not same_url("", "") and normalise_url("https://x.org:443/") == "https://x.org"
