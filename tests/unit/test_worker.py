"""The worker's pure parts and ledger queries (the loop itself is tested on a real
Label Studio in tests/integration/test_service.py)."""

import pytest

from rlthf_plugin.store import ledger as L
from rlthf_plugin.backends.base import HumanLabel
from rlthf_plugin.config import Config
from rlthf_plugin.errors import ConfigError
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.loop.sync import store_labels
from rlthf_plugin.service.worker import Worker, parse_platforms, required_labels
from rlthf_plugin.store.labels import label_counts


def test_parse_platforms_splits_dedups_and_names_unknown():
    assert parse_platforms(["label-studio", "argilla,label-studio"]) == ["label-studio", "argilla"]
    assert parse_platforms("") == []
    with pytest.raises(ConfigError, match="known: argilla, label-studio"):
        parse_platforms("labelstudio")


def test_required_labels_follow_argilla_min_submitted():
    cfg = Config()
    cfg.argilla.min_submitted = 3
    assert required_labels("argilla", cfg) == 3 and required_labels("label-studio", cfg) == 1


def test_label_counts_ignore_deleted_and_other_platforms(workspace, tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text("".join(f'{{"prompt": "p{i}", "response_a": "x", "response_b": "y"}}\n' for i in range(3)))
    import_files(workspace.ledger, [str(f)])
    a, b, c = workspace.ledger.pair_ids()
    store_labels(workspace.ledger, [
        HumanLabel(a, "A", "u1", "argilla", "r1"), HumanLabel(a, "B", "u2", "argilla", "r2"),
        HumanLabel(b, "A", "u1", "argilla", "r3", deleted=True), HumanLabel(c, "A", "u1", "label-studio", "7")])
    assert label_counts(workspace.ledger, "argilla", [a, b, c]) == {a: 2}


def test_worker_without_platforms_is_refused(workspace):
    with pytest.raises(ConfigError, match="--backend"):
        Worker(workspace, [])


def test_a_second_worker_waits_for_the_lease(workspace):
    from rlthf_plugin.store import lock

    assert lock.acquire(workspace.ledger, "iteration", "someone-else", ttl=60)
    worker = Worker(workspace, ["label-studio"])
    worker.advance()
    assert worker.state.startswith("waiting for the iteration lease (held by someone-else)")
    assert workspace.ledger.count(L.iterations) == 0


def test_worker_runs_an_iteration_on_the_local_backend(workspace, tmp_path):
    """Select, push, wait for labels, pull them, close the batch: no server involved."""
    import json

    from rlthf_plugin.backends.local import LocalBackend
    from rlthf_plugin.models.embedder import SentenceEmbedder
    from rlthf_plugin.models.reward import EmbeddingRewardModel
    from rlthf_plugin.store.iterations import asked_pair_ids, latest_row

    rows = [{"prompt": f"What is {i} + {i}?", "response_a": f"{i} + {i} equals {2 * i}.",
             "response_b": f"I think it is {2 * i + 1}, or maybe not.", "ai_label": "A" if i % 5 else "B"}
            for i in range(40)]
    f = tmp_path / "pairs.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    import_files(workspace.ledger, [str(f)])
    workspace.config.selection.budget = 0.1
    workspace.config.serve.max_iterations = 1
    local = LocalBackend()
    embedder = SentenceEmbedder(max_length=32)
    worker = Worker(workspace, ["local"], adapters={"local": local},
                    factory=lambda: EmbeddingRewardModel(embedder, ledger=workspace.ledger))

    worker.advance()
    asked = asked_pair_ids(workspace.ledger, 0)
    assert latest_row(workspace.ledger)["state"] == "pushed" and len(asked) == 4
    assert sorted(local.tasks) == asked and worker.pending == 4

    for pid in asked:
        local.answer(pid, "A", annotator="ann")
    assert worker.reconcile(["local"]) == {"local": (4, 4)}
    worker.advance()
    row = latest_row(workspace.ledger)
    assert row["state"] == "labeled" and row["stats"]["batch"]["answered"] == 4
    assert worker.state == "finished: [serve] max_iterations = 1 reached"
    assert label_counts(workspace.ledger, "local", asked) == {pid: 1 for pid in asked}
