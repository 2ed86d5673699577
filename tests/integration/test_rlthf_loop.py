"""Two RLTHF iterations end to end on a small real sample, with the oracle annotator.

No server is needed (the oracle answers from the imported human votes); it embeds ~150
real texts with the packaged MiniLM (64 tokens each) once, then reads them from the ledger.
"""

import json

import pytest
import sqlalchemy as sa

from rlthf_plugin.store import ledger as L
from rlthf_plugin.cli import main
from rlthf_plugin.io.export import LABEL_SOURCES, curated_rows

from .conftest import write_pandalm_sample

pytestmark = pytest.mark.slow


@pytest.fixture
def sample(tmp_path):
    path = write_pandalm_sample(tmp_path / "sample.jsonl", 70)
    return path


def test_two_iterations_with_oracle(runner, tmp_path, sample):
    ws = tmp_path / "ws"
    # The paper's rules (the signals strategy, the default, has its own test: test_signals_loop).
    env = {"RLTHF_EMBEDDING_MAX_LENGTH": "64", "RLTHF_SELECTION_FOLDS": "3", "RLTHF_SELECTION_STRATEGY": "margin-curve"}

    def cli(*args):
        result = runner.invoke(main, ["-w", str(ws), *args], env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    cli("init")
    cli("import", str(sample))
    out = cli("run", "--iterations", "2", "--budget", "0.1", "--annotator", "oracle:human")
    assert "iteration 0:" in out and "iteration 1:" in out and "AI-error precision" in out
    assert (ws / "plots" / "history.png").exists() and (ws / "plots" / "margin_curve_iter1.png").exists()

    from rlthf_plugin.store.iterations import shown_reason
    from rlthf_plugin.workspace import Workspace

    with Workspace.open(ws) as w:
        with w.ledger.engine.connect() as conn:
            its = conn.execute(sa.select(L.iterations).order_by(L.iterations.c.id)).mappings().all()
            asked = conn.execute(sa.select(L.decisions.c.iteration, L.decisions.c.pair_id)
                                 .where(L.decisions.c.action == "ask")).all()
            oracle = conn.execute(sa.select(L.human_labels.c.pair_id, L.human_labels.c.iteration)
                                  .where(L.human_labels.c.platform == "oracle")).all()
            decisions = conn.execute(sa.select(L.decisions)).mappings().all()
        assert [r["state"] for r in its] == ["labeled", "labeled"]
        pool = its[0]["stats"]["pool"]
        assert all(len([a for a in asked if a.iteration == i]) == round(0.1 * pool) for i in (0, 1))
        # Labeled pairs are never asked again, and each answer is stored once with its iteration.
        assert len({a.pair_id for a in asked}) == len(asked) == len(oracle)
        assert {(a.iteration, a.pair_id) for a in asked} == {(o.iteration, o.pair_id) for o in oracle}
        # a dropped pair stores no reason: the one shown comes from its code
        reasons = [shown_reason(dict(d)) for d in decisions]
        assert all({"region", "margin", "rank", "why"} <= set(r) for r in reasons)
        # Iteration 1 trained on human + kept/flipped pairs only: fewer than the whole pool.
        assert its[1]["stats"]["train"] < its[0]["stats"]["train"]
        assert its[1]["stats"]["eval"]["curated_accuracy"] >= its[1]["stats"]["eval"]["ai_accuracy"]
        rows = curated_rows(w.ledger, config=w.config)
        human = [r for r in rows if r["label_source"] == "human"]
        assert human and all(r["iteration"] in (0, 1) and r["amplification"] == 4 for r in human)
        assert {r["label_source"] for r in rows} <= set(LABEL_SOURCES)

    out = cli("export", "--out", str(tmp_path / "out"), "--only", "human,trusted_ai")
    lines = [json.loads(x) for x in (tmp_path / "out" / "curated.jsonl").read_text().splitlines()]
    assert lines and {r["label_source"] for r in lines} <= {"human", "trusted_ai"}
    from rlthf_plugin.io.curated import FIELDS

    assert set(lines[0]) == set(FIELDS)  # the curated-set schema, with its version
    bad = runner.invoke(main, ["-w", str(ws), "export", "--out", str(tmp_path / "x.jsonl"), "--only", "humans"])
    assert bad.exit_code == 1 and "unknown label source" in bad.output
