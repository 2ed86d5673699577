"""One curated-set schema shared by `rlthf export`, `rlthf train reward` and `rlthf train policy`.

Issue 13, fault 1: export wrote ``iteration: null`` on ``ai`` rows and training refused
them; training from the ledger ignored ``selection.ground_truth``.
"""

from __future__ import annotations

import json

import pytest

from rlthf_plugin.backends.base import HumanLabel
from rlthf_plugin.cli import main
from rlthf_plugin.config import load_config, update_config_file
from rlthf_plugin.errors import InvalidInputError
from rlthf_plugin.io import curated


def _workspace_with_ai_and_human(workspace, tmp_path):
    from rlthf_plugin.io.importer import import_files
    from rlthf_plugin.loop.sync import store_labels

    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps({"prompt": f"p{i}", "response_a": f"a{i}", "response_b": f"b{i}",
                                     "ai_label": "A"}) + "\n" for i in range(4)), encoding="utf-8")
    import_files(workspace.ledger, [str(f)])
    ids = workspace.ledger.pair_ids()
    # pair 0: a platform label (trains); pair 1: a ground-truth label only (must not train)
    store_labels(workspace.ledger, [HumanLabel(ids[0], "B", "u1", "label-studio", "1"),
                                    HumanLabel(ids[1], "B", "u2", "gold", "g1")])
    return ids


def test_exported_ai_rows_are_valid_training_rows(workspace, tmp_path, runner):
    ids = _workspace_with_ai_and_human(workspace, tmp_path)
    out = tmp_path / "curated.jsonl"
    result = runner.invoke(main, ["-w", str(workspace.root), "export", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["label_source"] for r in rows} >= {"ai", "human"}
    assert all(r["schema_version"] == curated.SCHEMA_VERSION for r in rows)
    data = curated.read_curated(out)  # what `rlthf train reward --data` reads
    assert len(data) == len(rows) and set(data.pair_id) == set(ids)
    assert data.iteration[data.pair_id.index(ids[2])] is None  # an AI row was asked in no iteration


def test_training_from_the_ledger_honours_ground_truth(workspace, tmp_path):
    ids = _workspace_with_ai_and_human(workspace, tmp_path)
    update_config_file(workspace.root, "selection", ground_truth="gold")
    workspace.config = load_config(workspace.root)
    from rlthf_plugin.io.export import curated_from_workspace

    data = curated_from_workspace(workspace.ledger, config=workspace.config)
    sources = dict(zip(data.pair_id, data.label_source))
    assert sources[ids[0]] == "human"
    assert sources[ids[1]] == "ai"  # the gold label is ground truth, never a training label


def test_schema_rejects_what_it_should_and_names_line_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = {"pair_id": "p", "prompt": "q", "chosen": "c", "rejected": "r", "label_source": "ai",
            "iteration": None, "amplification": 1}
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "iteration": -1}) + "\n"
                    + json.dumps({**good, "schema_version": 99}) + "\n", encoding="utf-8")
    with pytest.raises(InvalidInputError) as e:
        curated.read_curated(path)
    text = str(e.value.message)
    assert f"{path}:2: field 'iteration'" in text and f"{path}:3: field 'schema_version'" in text
    assert f"{path}:1" not in text


def test_the_schema_is_documented():
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "curated-set.md"
    text = doc.read_text(encoding="utf-8")
    for field in curated.FIELDS:
        assert f"`{field}`" in text, field
    assert f"version {curated.SCHEMA_VERSION}" in text
