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
