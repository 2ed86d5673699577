"""The quality from the ledger: status --json, the worker's stop on target, the settings."""

import json

import pytest

from rlthf_plugin.config import Config
from rlthf_plugin.errors import ConfigError
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.loop.quality import quality_summary
from rlthf_plugin.loop.strategy_signals import check_quality_settings


def _import(workspace, tmp_path, n=40):
    rows = [{"prompt": f"What is {i} + {i}?", "response_a": f"{i} + {i} equals {2 * i}.",
             "response_b": f"I think it is {2 * i + 1}, or maybe not.", "ai_label": "A" if i % 5 else "B"}
            for i in range(n)]
    f = tmp_path / "pairs.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    import_files(workspace.ledger, [str(f)])


@pytest.mark.parametrize("section,key,value,match", [
    ("selection", "trust_alpha", 0.0, "selection.trust_alpha must be in \\(0, 1\\), got 0.0"),
    ("selection", "trust_delta", 1.0, "selection.trust_delta must be in \\(0, 1\\), got 1.0"),
    ("selection", "target_accuracy", 1.5, "selection.target_accuracy must be in \\[0, 1\\], got 1.5"),
    ("serve", "stop_when", "soon", "serve.stop_when must be one of never, target")])
def test_bad_quality_settings_are_refused_in_one_line(section, key, value, match):
    cfg = Config()
    setattr(getattr(cfg, section), key, value)
    with pytest.raises(ConfigError, match=match) as e:
        check_quality_settings(cfg)
    assert "\n" not in str(e.value)


def test_no_iteration_no_quality(workspace, tmp_path):
    _import(workspace, tmp_path)
    q = quality_summary(workspace.ledger, workspace.config)
    assert q == {"available": False, "reason": "no finished iteration of the signals strategy yet"}


@pytest.mark.parametrize("stop_when,stops", [("target", True), ("never", False)])
def test_worker_stops_pushing_when_the_target_is_reached(workspace, tmp_path, stop_when, stops):
    from rlthf_plugin.backends.local import LocalBackend
    from rlthf_plugin.models.embedder import SentenceEmbedder
    from rlthf_plugin.models.reward import EmbeddingRewardModel
    from rlthf_plugin.service.worker import Worker
    from rlthf_plugin.store.iterations import asked_pair_ids, latest_row

    _import(workspace, tmp_path)
    workspace.config.selection.budget = 0.1
    workspace.config.selection.target_accuracy = 0.05
    workspace.config.serve.stop_when = stop_when
    local = LocalBackend()
    embedder = SentenceEmbedder(max_length=32)
    worker = Worker(workspace, ["local"], adapters={"local": local},
                    factory=lambda: EmbeddingRewardModel(embedder, ledger=workspace.ledger))
    worker.advance()
    for pid in asked_pair_ids(workspace.ledger, 0):
        local.answer(pid, "A", annotator="ann")
    worker.reconcile(["local"])
    worker.advance()  # closes the batch, then decides whether to go on
    q = quality_summary(workspace.ledger, workspace.config)
    assert q["available"] and q["stop"]["target_reached"] and q["curated_accuracy"]["low"] >= 0.05
    assert worker.metrics.value("rlthf_curated_accuracy", bound="low") == pytest.approx(
        q["curated_accuracy"]["low"])
    if stops:
        from rlthf_plugin.loop.quality import untrusted_pairs

        untrusted = untrusted_pairs(workspace.ledger, workspace.config)
        assert len(untrusted) == q["split"]["untrusted_ai"] > 0
        assert not set(untrusted) & set(asked_pair_ids(workspace.ledger, 0))
        assert worker.state.startswith("finished: [serve] stop_when = target")
        assert latest_row(workspace.ledger)["id"] == 0 and latest_row(workspace.ledger)["state"] == "labeled"
    else:
        assert latest_row(workspace.ledger)["id"] == 1
    # /health says it (a code, status still ok); the detail goes to the ledger for `rlthf status`.
    from rlthf_plugin.service.health import HEALTH_KEY, Health

    from types import SimpleNamespace

    # The worker as /health reads it (its thread is not started here: the steps ran in this one).
    seen = SimpleNamespace(alive=True, error=None, error_code=None, last_reconcile={}, last_success=None,
                           finished=worker.finished, state=worker.state)
    health = Health(workspace.ledger, seen)
    status, body = health.answer()
    assert status == 200 and body["status"] == "ok"
    assert body["loop"] == ("target_reached" if stops else "running") == (worker.finished or "running")
    kept = workspace.ledger.get_state(HEALTH_KEY)
    assert kept["loop"] == body["loop"]
    assert ("reached the target 0.05" in kept["loop_detail"]) == stops


def test_the_first_batch_has_a_measured_or_unknown_yield_never_no_pair_left(workspace, tmp_path, runner):
    """The first batch is chosen before any human label (no calibrated P(wrong)): its verdict
    is unknown while open, then the share of its suspects humans found wrong; it never says
    "no pair left to ask" with the pool still full (it did: an all-NaN batch looked empty)."""
    from rlthf_plugin.backends.local import LocalBackend
    from rlthf_plugin.cli import main
    from rlthf_plugin.models.embedder import SentenceEmbedder
    from rlthf_plugin.models.reward import EmbeddingRewardModel
    from rlthf_plugin.service.worker import Worker
    from rlthf_plugin.store.iterations import asked_pair_ids, decisions

    _import(workspace, tmp_path, n=80)
    workspace.config.selection.budget = 0.1
    workspace.config.serve.max_iterations = 1  # stop after the first batch: its verdict is the latest
    local = LocalBackend()
    embedder = SentenceEmbedder(max_length=32)
    worker = Worker(workspace, ["local"], adapters={"local": local},
                    factory=lambda: EmbeddingRewardModel(embedder, ledger=workspace.ledger))
    worker.advance()  # selected and pushed, no answer yet
    suspects = [r for r in decisions(workspace.ledger, 0)
                if r["action"] == "ask" and (r["reason"] or {}).get("kind") == "suspect"]
    assert suspects and all((r["reason"] or {}).get("calibrated") is None for r in suspects)
    v = quality_summary(workspace.ledger, workspace.config)["stop"]
    assert v["errors_fixed_per_100_labels"] is None and v["stop"] is False and "not known yet" in v["reason"]
    shown = runner.invoke(main, ["-w", str(workspace.root), "status"])
    assert shown.exit_code == 0 and "next batch         ? AI errors" in shown.output, shown.output
    made = runner.invoke(main, ["-w", str(workspace.root), "report", "--out", str(tmp_path / "report")])
    assert made.exit_code == 0, made.output
    assert "Next batch: yield not known yet" in (tmp_path / "report" / "index.html").read_text(encoding="utf-8")

    ai = {pid: m.label for pid, m in workspace.ledger.ai_majority().items()}
    asked = asked_pair_ids(workspace.ledger, 0)
    answers = {pid: ("B" if ai.get(pid) == "A" else "A") if k % 2 else ai.get(pid, "A") for k, pid in enumerate(asked)}
    for pid, label in answers.items():
        local.answer(pid, label, annotator="ann")
    worker.reconcile(["local"])
    worker.advance()
    assert worker.finished == "max_iterations"
    v = quality_summary(workspace.ledger, workspace.config)["stop"]
    ids = [r["pair_id"] for r in suspects]
    expected = 100 * sum(answers[p] != ai[p] for p in ids) / len(ids)
    assert v["errors_fixed_per_100_labels"] == pytest.approx(expected, abs=0.01) and v["stop"] is False
    assert "no pair left" not in v["reason"] and "measured" in v["reason"]
    assert worker.metrics.value("rlthf_errors_fixed_per_100_labels") == pytest.approx(expected, abs=0.01)
