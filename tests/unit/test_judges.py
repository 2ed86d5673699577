"""AI votes keep their judge and order: merged rows with ai_judge / ai_order, the llmbar format,
the primary judge (by name or by labeled pairs), the audited label of each pair and its judge
(the primary's where it voted, else the best-covered judge's)."""

from __future__ import annotations

import gzip
import json
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from rlthf_plugin.cli import main
from rlthf_plugin.config import Config
from rlthf_plugin.errors import ConfigError, InvalidInputError
from rlthf_plugin.io.export import curated_rows
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.pairs import pair_id
from rlthf_plugin.store.votes import agreement, audited_labels, judge_summary, read_votes, resolve_primary


def write_jsonl(path: Path, rows: list) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def merged(pid, judge, label, order=None, a="good", b="bad", human="A"):
    row = {"id": pid, "prompt": f"p{pid}", "response_a": a, "response_b": b, "human_label": human,
           "ai_judge": judge, "ai_label": label}
    if order:
        row["ai_order"] = order
    return row


def test_merged_rows_keep_judge_and_order(workspace, tmp_path):
    rows = [
        merged("1", "big", "A", "ab"), merged("1", "big", "A", "ba"), merged("1", "small", "B"),
        merged("2", "big", "A", "ab"), merged("2", "big", "B", "ba"), merged("2", "small", "A"),
        # Pair 3 given the other way round: its label and its order are in the row's own terms.
        merged("3", "big", "B", "ab", a="bad", b="good", human="B"), merged("3", "big", "B", "ba", a="bad", b="good"),
        merged("4", "small", "tie_inconsistent"),
    ]
    rep = import_files(workspace.ledger, [write_jsonl(tmp_path / "m.jsonl", rows)])
    assert rep.new_pairs == 4 and rep.new_ai_labels == 9
    # The human votes of a pair repeated for another judge are stored once.
    humans = workspace.ledger.human_votes()
    assert len(humans[pair_id("p1", "good", "bad")]) == 1
    t = read_votes(workspace.ledger)
    assert t.judges == ["big", "small"] and t.labeled == {"big": 3, "small": 3}
    i = {pid: k for k, pid in enumerate(t.pair_ids)}
    p3 = pair_id("p3", "good", "bad")
    stored = workspace.ledger.get_pairs([p3])[0]
    # Whatever order the ledger stored pair 3 in, "good" is preferred in both orders.
    want = 1.0 if stored.response_a == "good" else -1.0
    assert t.votes[i[p3], 0].tolist() == [want, want]
    big = audited_labels(workspace.ledger, "big")
    labels = big.labels
    assert big.primary == "big"
    assert labels[pair_id("p1", "good", "bad")] == ("A" if workspace.ledger.get_pairs([pair_id("p1", "good", "bad")])[0].response_a == "good" else "B")
    assert labels[pair_id("p2", "good", "bad")] == "tie_inconsistent"
    # Pair 4 only "small" judged: audited under its label, which contradicts itself.
    p4 = pair_id("p4", "good", "bad")
    assert labels[p4] == "tie_inconsistent" and big.judges[p4] == "small"
    assert big.per_judge() == {"big": 3, "small": 1}
    small = audited_labels(workspace.ledger, "small")
    assert small.labels[p4] == "tie_inconsistent" and small.judges[p4] == "small"
    assert small.judges[p3] == "big" and small.per_judge() == {"small": 3, "big": 1}
    # A subset is ranked as the whole workspace is, and names every judge.
    sub = read_votes(workspace.ledger, [p3])
    assert sub.judges == ["big", "small"] and sub.labeled == {"big": 3, "small": 3}
    table = agreement(t)
    assert table["big"]["small"] == (0, 1) and table["big"]["big"] == (2, 2)
    # Re-importing adds nothing.
    again = import_files(workspace.ledger, [write_jsonl(tmp_path / "m.jsonl", rows)])
    assert again.new_ai_labels == 0 and again.new_human_labels == 0


def test_bad_ai_order_is_a_clear_error(workspace, tmp_path):
    f = write_jsonl(tmp_path / "bad.jsonl", [merged("1", "j", "A", "xy"), merged("2", "j", "tie_inconsistent", "ab")])
    with pytest.raises(InvalidInputError) as e:
        import_files(workspace.ledger, [f])
    fields = {(p.line, p.field) for p in e.value.problems}
    assert fields == {(1, "ai_order"), (2, "ai_label")}
    assert workspace.ledger.status()["pairs"] == 0


def test_primary_judge_default_and_unknown_name(workspace, tmp_path):
    rows = [merged(str(k), "many", "A") for k in range(3)] + [merged("0", "few", "B")]
    import_files(workspace.ledger, [write_jsonl(tmp_path / "m.jsonl", rows)])
    t = read_votes(workspace.ledger)
    assert t.judges[resolve_primary(t)] == "many"
    with pytest.raises(ConfigError, match=r"matches no AI votes; judges present: 'few' \(1 pairs\), 'many' \(3 pairs\)"):
        resolve_primary(t, "gpt-5")
    # The export uses the configured primary judge's labels where it voted, and the best-covered
    # other judge's elsewhere; each row names its judge (imported human labels are ground truth).
    cfg = Config()
    cfg.selection.primary_judge = "few"
    rows_few = curated_rows(workspace.ledger, config=cfg)
    assert sorted((r["label_source"], r["chosen"], r["label_judge"]) for r in rows_few) == [
        ("ai", "bad", "few"), ("ai", "good", "many"), ("ai", "good", "many")]
    rows_many = curated_rows(workspace.ledger, config=Config())
    assert sorted((r["label_source"], r["chosen"], r["label_judge"]) for r in rows_many) == [("ai", "good", "many")] * 3
    summary = judge_summary(workspace.ledger, "few")
    assert summary["audited_per_judge"] == {"few": 1, "many": 2}
    assert {j: v["audited"] for j, v in summary["judges"].items()} == {"few": 1, "many": 2}


def test_unknown_primary_judge_from_the_environment_fails_the_run(workspace, tmp_path, runner):
    import_files(workspace.ledger, [write_jsonl(tmp_path / "m.jsonl", [merged("1", "j", "A")])])
    result = runner.invoke(main, ["-w", str(workspace.root), "select"], env={"RLTHF_SELECTION_PRIMARY_JUDGE": "nope"})
    assert result.exit_code != 0 and "judges present: 'j' (1 pairs)" in result.output


def test_llmbar_format_votes_per_protocol_and_order(workspace, shared_dev, tmp_path):
    with gzip.open(shared_dev / "llmbar_processed_with_llm_judges.jsonl.gz", "rt") as f:
        records = [json.loads(line) for line in islice(f, 20)]
    rep = import_files(workspace.ledger, [write_jsonl(tmp_path / "llmbar.jsonl", records)])
    assert rep.new_pairs == 20
    t = read_votes(workspace.ledger)
    assert t.judges == sorted(records[0]["judges"])
    n_votes = sum(1 for r in records for v in r["judges"].values() for x in v.values() if str(x) in ("1", "2"))
    assert int(np.isfinite(t.votes).sum()) == n_votes
    humans = workspace.ledger.human_votes()
    assert sum(len(v) for v in humans.values()) == 20
    # The first record: every protocol said output_1 first, then output_2 first: inconsistent.
    labels = audited_labels(workspace.ledger, "GPT-4/Vanilla_NoRules").labels
    first = records[0]
    assert labels[pair_id(first["input"], first["output_1"], first["output_2"])] == "tie_inconsistent"
