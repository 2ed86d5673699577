"""Select decides as it did before the streaming select (issue 22): on the packaged dev pairs,
same seeds, same cached vectors, two iterations per strategy with the simulated annotator,
every decision (action, region, rank, priority, margin) equals the frozen reference
(``tests/unit/data/select_reference.json.gz``, written by ``python -m tests.unit.select_scenario
PATH``).

The reference was first written by the code before the streaming select, and the streaming
select matched it on its branch. It was written again when that work was merged with the
round's changes that alter decisions on purpose: priorities grow across batches (issue 27),
the signals strategy's tie share and certified trusted region (issues 26 and 21). Against the
first reference, margin-curve's decisions were then unchanged but for the priorities, and
signals' counts per action unchanged."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from .select_scenario import STRATEGIES, run

REFERENCE = Path(__file__).parent / "data" / "select_reference.json.gz"


@pytest.fixture(scope="module")
def reference() -> dict[str, list[dict]]:
    with gzip.open(REFERENCE, "rt", encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_select_gives_the_decisions_of_the_code_before(strategy, reference, tmp_path):
    got = run(tmp_path / "ws", strategy)
    want = reference[strategy]
    assert len(got) == len(want)
    assert [(r["iteration"], r["pair_id"]) for r in got] == [(r["iteration"], r["pair_id"]) for r in want]
    for g, w in zip(got, want):
        assert (g["action"], g["region"], g["rank"]) == (w["action"], w["region"], w["rank"]), g["pair_id"]
        assert g["priority"] == pytest.approx(w["priority"], abs=1e-5), g["pair_id"]
        assert g["margin"] == pytest.approx(w["margin"], abs=1e-4), g["pair_id"]
