"""One vote per annotator per pair (issue 13, fault 6): an annotator who labels the same
pair in two projects or datasets counts once (their latest answer); pushing a pair to a
second target warns and needs --allow-duplicate-targets; status lists such pairs."""

from __future__ import annotations

import datetime as dt
import json

from rlthf_plugin.backends.base import HumanLabel
from rlthf_plugin.loop.sync import store_labels

T0 = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.timezone.utc)


def _pair(workspace, tmp_path) -> str:
    from rlthf_plugin.io.importer import import_files

    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"prompt": "p", "response_a": "x", "response_b": "y", "ai_label": "A"}) + "\n",
                 encoding="utf-8")
    import_files(workspace.ledger, [str(f)])
    return workspace.ledger.pair_ids()[0]


def test_an_annotator_on_two_targets_counts_once(workspace, tmp_path):
    pid = _pair(workspace, tmp_path)
    store_labels(workspace.ledger, [
        HumanLabel(pid, "A", "ann@x", "label-studio", "11", labeled_at=T0),            # project 1
        HumanLabel(pid, "A", "ann@x", "label-studio", "97", labeled_at=T0 + dt.timedelta(hours=1)),  # project 2
        HumanLabel(pid, "B", "other@x", "label-studio", "12", labeled_at=T0),
    ])
    assert sorted(workspace.ledger.human_votes()[pid]) == [("ann@x", "A"), ("other@x", "B")]
    m = workspace.ledger.human_majority()[pid]
    assert m.label not in ("A", "B")  # 1:1, not 2:1

    from rlthf_plugin.io.export import curated_rows

    assert pid not in {r["pair_id"] for r in curated_rows(workspace.ledger, config=workspace.config)
                       if r["label_source"] == "human"}


def test_the_latest_answer_of_an_annotator_is_their_vote(workspace, tmp_path):
    pid = _pair(workspace, tmp_path)
    store_labels(workspace.ledger, [
        HumanLabel(pid, "B", "ann@x", "label-studio", "97", labeled_at=T0 + dt.timedelta(hours=1)),
        HumanLabel(pid, "A", "ann@x", "label-studio", "11", labeled_at=T0),
    ])
    assert workspace.ledger.human_votes()[pid] == [("ann@x", "B")]


def test_pushing_a_pair_to_a_second_target_needs_allow_duplicate_targets(workspace, tmp_path, caplog):
    import pytest

    from rlthf_plugin.backends.base import Task
    from rlthf_plugin.backends.local import LocalBackend
    from rlthf_plugin.errors import DuplicateTargetError
    from rlthf_plugin.loop import sync

    pid = _pair(workspace, tmp_path)
    (pair,) = workspace.ledger.get_pairs([pid])
    first, second = LocalBackend("project-1"), LocalBackend("project-2")
    sync.push(workspace.ledger, first, [Task(pair)])
    with pytest.raises(DuplicateTargetError, match="--allow-duplicate-targets"):
        sync.push(workspace.ledger, second, [Task(pair)])
    assert not second.tasks and workspace.ledger.pushed("local", "project-2") == {}  # nothing written
    sync.push(workspace.ledger, first, [Task(pair)])  # the same target again is fine
    with caplog.at_level("WARNING"):
        sync.push(workspace.ledger, second, [Task(pair)], allow_duplicate_targets=True)
    assert "already on local project-1" in caplog.text
    assert workspace.ledger.status()["pairs_on_several_targets"] == {pid: ["local project-1", "local project-2"]}
