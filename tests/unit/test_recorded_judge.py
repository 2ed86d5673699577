"""The recorded judge: verdicts replayed from a merged-format file, counted, checked first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from rlthf_plugin.cli import main
from rlthf_plugin.errors import ConfigError, InvalidInputError, JudgeError
from rlthf_plugin.loop.judging import label_pairs
from rlthf_plugin.models.judge import open_judge
from rlthf_plugin.models.judge.prompt import load_template
from rlthf_plugin.models.judge.recorded import RecordedJudge
from rlthf_plugin.pairs import PreferencePair
from rlthf_plugin.store import ledger as L


def _pairs(workspace, n: int) -> list[PreferencePair]:
    pairs = [PreferencePair.create(f"prompt {i}", f"short {i}", f"a much longer answer {i}") for i in range(n)]
    with workspace.ledger.engine.begin() as conn:
        L.insert_ignore(conn, L.pairs, [
            {"id": p.id, "prompt_id": p.id, "prompt": p.prompt, "response_a": p.response_a,
             "response_b": p.response_b, "source": "t", "metadata": {}, "origin": "import", "created_at": L.now()}
            for p in pairs])
    return pairs


def _rows(pairs, *, swap_rows: bool = True, judge: str | None = "gpt-4-recorded") -> list[dict]:
    """Both orders of each pair, the longer response winning; odd pairs listed the other way round."""
    out = []
    for k, p in enumerate(pairs):
        a, b, winner = (p.response_b, p.response_a, "A") if swap_rows and k % 2 else (p.response_a, p.response_b, "B")
        for order in ("ab", "ba"):
            row = {"prompt": p.prompt, "response_a": a, "response_b": b, "ai_label": winner, "ai_order": order}
            if judge:
                row["ai_judge"] = judge
            out.append(row)
    return out


def _write(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _verdicts(ledger) -> dict[str, str]:
    with ledger.engine.connect() as conn:
        q = sa.select(L.ai_labels.c.pair_id, L.ai_labels.c.label).where(L.ai_labels.c.order == "both")
        return dict(conn.execute(q).all())


def test_recorded_judge_answers_in_the_ledgers_terms_and_counts_calls(workspace, tmp_path):
    pairs = _pairs(workspace, 4)
    judge = open_judge(f"recorded:{_write(tmp_path / 'verdicts.jsonl', _rows(pairs))}")
    assert isinstance(judge, RecordedJudge) and judge.name == "gpt-4-recorded" and len(judge) == 8
    report = label_pairs(workspace.ledger, judge, load_template(), progress=False, pair_ids=[pairs[1].id, pairs[2].id])
    # Rows listing the responses the other way round are mapped to the ledger's order: B (the longer) wins.
    assert judge.calls == 4 and report.asked == 4 and report.verdicts == {"B": 2}
    assert _verdicts(workspace.ledger) == {pairs[1].id: "B", pairs[2].id: "B"}
    again = label_pairs(workspace.ledger, judge, load_template(), progress=False, pair_ids=[pairs[1].id])
    assert again.asked == 0 and judge.calls == 4  # cached: never asked twice


def test_name_is_the_file_stem_or_the_chosen_judge(tmp_path):
    pairs = [PreferencePair.create("p", "x", "y")]
    assert RecordedJudge(_write(tmp_path / "batch_out.jsonl", _rows(pairs, judge=None))).name == "batch_out"
    mixed = _write(tmp_path / "two.jsonl", _rows(pairs, judge="j1") + _rows(pairs, judge="j2")[:1])
    with pytest.raises(ConfigError, match="#JUDGE"):
        RecordedJudge(mixed)
    j2 = open_judge(f"recorded:{mixed}#j2")
    assert j2.name == "j2" and len(j2) == 1


@pytest.mark.parametrize("line, field", [
    ("{not json", None),
    (json.dumps({"prompt": "p", "response_a": "x", "response_b": "y", "ai_label": "A", "ai_order": "xy"}), "ai_order"),
    (json.dumps({"prompt": "p", "response_a": "x", "response_b": "y", "ai_label": "C", "ai_order": "ab"}), "ai_label"),
    (json.dumps({"prompt": "p", "response_a": 3, "response_b": "y", "ai_label": "A", "ai_order": "ab"}), "response_a"),
])
def test_malformed_line_is_one_line_naming_file_and_line(tmp_path, line, field):
    pairs = [PreferencePair.create("q", "u", "v")]
    path = _write(tmp_path / "bad.jsonl", _rows(pairs) + [line])
    with pytest.raises(InvalidInputError) as e:
        open_judge(f"recorded:{path}")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path}:3:") and (field is None or f"'{field}'" in msg)


def test_missing_pair_fails_before_anything_is_written(workspace, tmp_path):
    pairs = _pairs(workspace, 3)
    judge = RecordedJudge(_write(tmp_path / "partial.jsonl", _rows(pairs[:2])))
    with pytest.raises(JudgeError) as e:
        label_pairs(workspace.ledger, judge, load_template(), progress=False)
    assert "\n" not in str(e.value) and "partial.jsonl" in str(e.value) and pairs[2].id in str(e.value)
    assert judge.calls == 0
    with workspace.ledger.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(L.ai_labels)).scalar() == 0


def test_label_ai_cli_takes_a_recorded_judge(runner, workspace, tmp_path):
    pairs = _pairs(workspace, 2)
    path = _write(tmp_path / "v.jsonl", _rows(pairs))
    res = runner.invoke(main, ["--workspace", str(workspace.root), "label-ai", "--judge", f"recorded:{path}", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output[res.output.index("{"):])["asked"] == 4
    bad = _write(tmp_path / "b.jsonl", ["[1, 2]"])
    res = runner.invoke(main, ["--workspace", str(workspace.root), "label-ai", "--judge", f"recorded:{bad}"])
    assert res.exit_code == 1 and f"{bad}:1:" in res.output
