"""Import: each format, bad input (all or nothing), idempotence, stable ids."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlthf_plugin.cli import main
from rlthf_plugin.data import DEV_PAIRS
from rlthf_plugin.errors import InvalidInputError
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.store.ledger import Ledger
from rlthf_plugin.pairs import A, pair_id


def write_jsonl(path: Path, rows: list) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def counts(ledger: Ledger) -> dict:
    s = ledger.status()
    return {k: s[k] for k in ("pairs", "responses", "ai_label_votes", "human_label_votes")}


def test_shipped_dev_file_all_or_nothing(workspace, runner):
    ws = str(workspace.root)
    result = runner.invoke(main, ["-w", ws, "import", str(DEV_PAIRS)])
    assert result.exit_code == 1
    # 10 non-string responses + 13 identical pairs, each named with file:line and field.
    assert "23 invalid row(s); nothing was imported" in result.output
    assert f"{DEV_PAIRS}:1424: field 'response_b': expected a string, got NoneType" in result.output
    assert "identical to 'response_a'" in result.output
    assert counts(workspace.ledger) == {"pairs": 0, "responses": 0, "ai_label_votes": 0, "human_label_votes": 0}

    result = runner.invoke(main, ["-w", ws, "import", "--skip-invalid", str(DEV_PAIRS)])
    assert result.exit_code == 0, result.output
    first = counts(workspace.ledger)
    # 2,803 well-typed rows hold 2,645 distinct pairs; 9 of those are identical-response pairs.
    assert first["pairs"] == 2636
    assert first["ai_label_votes"] == 2790  # every row's judge label kept as a vote

    result = runner.invoke(main, ["-w", ws, "import", "--skip-invalid", str(DEV_PAIRS)])
    assert result.exit_code == 0
    assert counts(workspace.ledger) == first

    status = workspace.ledger.status()
    assert status["ai_vote_conflicts"] > 0  # repeated pairs with conflicting judge votes stay visible
    assert 0.1 < status["ai_human_disagreement"] < 0.2


def test_empty_response_is_kept(workspace, tmp_path):
    f = write_jsonl(tmp_path / "x.jsonl", [{"prompt": "p", "response_a": "", "response_b": "yes", "ai_label": "B"}])
    report = import_files(workspace.ledger, [f])
    assert report.new_pairs == 1


@pytest.mark.parametrize("row,field", [
    ({"response_a": "x", "response_b": "y"}, "prompt"),
    ({"prompt": 3, "response_a": "x", "response_b": "y"}, "prompt"),
    ({"prompt": "p", "response_a": None, "response_b": "y"}, "response_a"),
    ({"prompt": "p", "response_a": "x", "response_b": False}, "response_b"),
    ({"prompt": "p", "response_a": "x", "response_b": "y", "ai_label": "C"}, "ai_label"),
    ({"prompt": "p", "response_a": "x", "response_b": "y", "human_label": "maybe"}, "human_label"),
    ({"prompt": "p", "response_a": "x", "response_b": "x"}, "response_b"),
])
def test_bad_rows_name_file_line_field(workspace, tmp_path, row, field):
    good = {"prompt": "q", "response_a": "1", "response_b": "2", "ai_label": "A"}
    f = write_jsonl(tmp_path / "bad.jsonl", [good, row])
    with pytest.raises(InvalidInputError) as e:
        import_files(workspace.ledger, [f])
    assert f"{f}:2: field '{field}'" in str(e.value)
    assert workspace.ledger.status()["pairs"] == 0


def test_invalid_json_bad_bytes_and_empty_file(workspace, tmp_path, runner):
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"prompt": "p", "response_a": "x", "response_b": "y"}\n{"prompt": \n')
    bad_bytes = tmp_path / "bytes.jsonl"
    bad_bytes.write_bytes(b'{"prompt": "p", "response_a": "x", "response_b": "y"}\n{"prompt": "\xff\xfe"}\n')
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    for path, needle in ((bad_json, ":2: invalid JSON"), (bad_bytes, ":2: not valid UTF-8"), (empty, "empty")):
        result = runner.invoke(main, ["-w", str(workspace.root), "import", str(path)])
        assert result.exit_code == 1, result.output
        assert needle in result.output
        assert "Traceback" not in result.output
    assert workspace.ledger.status()["pairs"] == 0


def test_usage_error_exit_2(workspace, runner):
    result = runner.invoke(main, ["-w", str(workspace.root), "import", "--format", "nope", "x.jsonl"])
    assert result.exit_code == 2


def test_trl_and_swapped_order(workspace, tmp_path):
    f = write_jsonl(tmp_path / "trl.jsonl", [
        {"prompt": "p", "chosen": "good", "rejected": "bad"},
        {"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "c"}],
         "rejected": [{"role": "assistant", "content": "r"}]},
    ])
    import_files(workspace.ledger, [f])
    # The same pair given the other way round with the opposite label: both mean "good" wins.
    g = write_jsonl(tmp_path / "merged.jsonl", [{"prompt": "p", "response_a": "bad", "response_b": "good",
                                                  "human_label": "B", "id": "m1"}])
    import_files(workspace.ledger, [g])
    votes = workspace.ledger.human_votes()[pair_id("p", "good", "bad")]
    assert [label for _, label in votes] == [A, A]
    assert pair_id("q", "c", "r") in workspace.ledger.human_votes()


def test_hh_dialogues(workspace, tmp_path):
    dialogue = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: a pen prank?"
    f = write_jsonl(tmp_path / "hh.jsonl", [{"chosen": dialogue + "\n\nAssistant: no", "rejected": dialogue + "\n\nAssistant: yes"}])
    import_files(workspace.ledger, [f])
    (pair,) = workspace.ledger.get_pairs()
    assert pair.prompt == dialogue.strip() and pair.response_a == "no" and pair.response_b == "yes"


def test_multi_response_and_grouping(workspace, tmp_path):
    f = write_jsonl(tmp_path / "multi.jsonl", [{"prompt": "p", "responses": ["a", {"text": "b", "model": "m"}, "c"]}])
    import_files(workspace.ledger, [f])
    assert workspace.ledger.status()["prompts_with_3plus_responses"] == 1
    assert workspace.ledger.status()["pairs"] == 0


def test_json_parquet_and_dataset_folder(workspace, tmp_path):
    import datasets

    rows = [{"prompt": f"p{i}", "response_a": "x", "response_b": f"y{i}", "ai_label": "A"} for i in range(5)]
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "rows.parquet"))
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    with gzip.open(tmp_path / "rows.jsonl.gz", "wt") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in rows))
    for name in ("rows.json", "rows.parquet", "ds", "rows.jsonl.gz"):
        report = import_files(workspace.ledger, [str(tmp_path / name)])
        assert report.rows == 5
    assert workspace.ledger.status()["pairs"] == 5


def test_hub_name_fails_fast_offline(workspace, runner, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = runner.invoke(main, ["-w", str(workspace.root), "import", "hf://Anthropic/hh-rlhf:test"])
    assert result.exit_code == 1 and "HF_HUB_OFFLINE" in result.output


def test_every_shared_dev_file_imports_natively(workspace, shared_dev):
    # Pairs before the judge files that label them; real bad rows are skipped and listed.
    order = ["testset-v1.json", "gpt-3.5-turbo-testset-v1.json", "pandalm-7b-testset-v1.json",
             "LLMEval2_benchmark.json.zip", "harmless-base_test.jsonl.gz", "human_vs_ai_pairs.jsonl.gz",
             "mtbench_human_votes_with_gpt4.jsonl.gz", "llmbar_processed_with_llm_judges.jsonl.gz"]
    assert sorted(order) == sorted(p.name for p in shared_dev.iterdir())
    for name in order:
        report = import_files(workspace.ledger, [str(shared_dev / name)], skip_invalid=True)
        assert report.rows > 0.9 * (report.rows + len(report.skipped)), name
    status = workspace.ledger.status()
    assert status["pairs"] > 7000
    # MT-bench: 80 questions x 2 turns with 6 answers each.
    assert status["prompts_with_3plus_responses"] >= 160


rows_strategy = st.lists(
    st.fixed_dictionaries({
        "prompt": st.one_of(st.text(max_size=20), st.none(), st.integers()),
        "response_a": st.one_of(st.text(max_size=20), st.none(), st.booleans()),
        "response_b": st.one_of(st.text(max_size=20), st.none()),
        "ai_label": st.sampled_from(["A", "B", "tie", "C", "model_a"]),
    }),
    min_size=1, max_size=8,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy)
def test_property_import_is_all_or_nothing(tmp_path_factory, rows):
    from rlthf_plugin.workspace import Workspace

    ws = Workspace.init(tmp_path_factory.mktemp("ws"))
    f = write_jsonl(tmp_path_factory.mktemp("d") / "rows.jsonl", rows)
    try:
        report = import_files(ws.ledger, [f])
    except InvalidInputError as e:
        assert ws.ledger.status()["pairs"] == 0
        assert all(p.line is not None and p.field for p in e.problems)
    else:
        assert report.rows == len(rows)
        again = import_files(ws.ledger, [f])
        assert again.new_pairs == again.new_ai_labels == 0
    finally:
        ws.close()


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                           max_leaves=8)


@given(record=st.dictionaries(st.text(max_size=8).filter(lambda k: k != "id"), json_values | st.datetimes(), max_size=6))
def test_row_key_of_a_row_without_id_is_its_sorted_json_digest(record):
    # Re-importing a file adds nothing twice only while the key of every id-less row stays the same.
    import hashlib

    from rlthf_plugin.io.formats import _row_key

    digest = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:24]
    assert _row_key("src", record, "id") == f"src:sha256-{digest}"
