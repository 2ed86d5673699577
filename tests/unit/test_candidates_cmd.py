"""`rlthf candidates` end to end on a small real MT-bench sample."""

from __future__ import annotations

import gzip
import itertools
import json

import numpy as np
import pytest
import sqlalchemy as sa
from .tiny_lm import build_tiny_causal_lm

from rlthf_plugin.store import ledger as L
from rlthf_plugin.cli import main
from rlthf_plugin.data import MTBENCH_VOTES
from rlthf_plugin.models.embedder import SentenceEmbedder
from rlthf_plugin.models.vectors import EmbeddingCache


@pytest.fixture(scope="module")
def mtbench_sample(tmp_path_factory):
    """Every vote row of MT-bench questions 81 and 82 (both turns): 4 prompts x 6 answers."""
    rows = [json.loads(line) for line in gzip.open(MTBENCH_VOTES, "rt", encoding="utf-8")]
    path = tmp_path_factory.mktemp("mtbench") / "mtbench_81_82.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows if r["question_id"] in (81, 82)), encoding="utf-8")
    return path


def candidate_rows(ledger):
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(L.pairs).where(L.pairs.c.origin == "candidates")).mappings().all()


def test_easy_candidates_are_the_least_similar_pairs_and_rerun_adds_nothing(workspace, runner, mtbench_sample):
    ws = str(workspace.root)
    assert runner.invoke(main, ["-w", ws, "import", str(mtbench_sample)]).exit_code == 0
    imported = workspace.ledger.count(L.pairs)
    result = runner.invoke(main, ["-w", ws, "candidates", "--strategy", "easy", "--per-prompt", "2"])
    assert result.exit_code == 0, result.output
    assert "4 prompt(s) with 2+ responses, 24 response(s)" in result.output
    assert "easy: 8 pair(s) chosen" in result.output
    new = candidate_rows(workspace.ledger)
    assert workspace.ledger.count(L.pairs) == imported + len(new)
    assert f"added {len(new)} new pair(s); {8 - len(new)} already in the ledger" in result.output

    # Recompute independently: per prompt, the two least similar of the 15 pairs.
    with workspace.ledger.engine.connect() as conn:
        responses = conn.execute(sa.select(L.responses).order_by(L.responses.c.id)).mappings().all()
    vectors = EmbeddingCache(SentenceEmbedder(), workspace.ledger, progress=False).embed(r["text"] for r in responses)
    expected = {}
    for prompt_id in {r["prompt_id"] for r in responses}:
        rows = [i for i, r in enumerate(responses) if r["prompt_id"] == prompt_id]
        assert len(rows) == 6
        pairs = sorted(itertools.combinations(rows, 2), key=lambda p: vectors[p[0]] @ vectors[p[1]])[:2]
        expected.update({frozenset((responses[a]["text"], responses[b]["text"])): float(vectors[a] @ vectors[b])
                         for a, b in pairs})
    for row in new:
        meta = row["metadata"]
        assert meta["strategy"] == "easy" and meta["embedder"] == "st:packaged:all-MiniLM-L6-v2:256"
        assert meta["similarity"] == pytest.approx(expected[frozenset((row["response_a"], row["response_b"]))],
                                                   abs=1e-5)
        assert {meta["model_a"], meta["model_b"]} <= {"alpaca-13b", "claude-v1", "gpt-3.5-turbo", "gpt-4",
                                                      "llama-13b", "vicuna-13b-v1.2"}
    chosen = {frozenset((p.response_a, p.response_b)) for p in workspace.ledger.get_pairs()}
    assert set(expected) <= chosen  # the already-imported ones are there too

    again = runner.invoke(main, ["-w", ws, "candidates", "--strategy", "easy", "--per-prompt", "2"])
    assert "added 0 new pair(s); 8 already in the ledger" in again.output
    assert len(candidate_rows(workspace.ledger)) == len(new)


def test_multi_response_prompts_with_the_causal_lm_embedder(workspace, runner, mtbench_sample, tmp_path):
    # Turn-1 answers of the sample as multi-response rows: no pair exists before `candidates`.
    answers: dict[str, dict[str, str]] = {}
    for line in mtbench_sample.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r["turn"] == 1:
            for side in "ab":
                conv = r[f"conversation_{side}"]
                answers.setdefault(conv[0]["content"], {})[r[f"model_{side}"]] = conv[1]["content"]
    multi = tmp_path / "multi.jsonl"
    multi.write_text("".join(json.dumps({"prompt": p, "responses": [{"text": t, "model": m} for m, t in a.items()]})
                             + "\n" for p, a in answers.items()), encoding="utf-8")
    lm = build_tiny_causal_lm(tmp_path / "tiny-llama")
    ws = str(workspace.root)
    assert runner.invoke(main, ["-w", ws, "import", str(multi)]).exit_code == 0
    args = ["-w", ws, "candidates", "--strategy", "random", "--per-prompt", "3", "--seed", "4",
            "--embedder", f"hf:{lm}", "--max-length", "128"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "added 6 new pair(s); 0 already in the ledger" in result.output
    rows = candidate_rows(workspace.ledger)
    assert {r["metadata"]["embedder"] for r in rows} == {f"lm-mean:{lm}:128"}
    assert all(-1 <= r["metadata"]["similarity"] <= 1 for r in rows)
    assert "added 0 new pair(s); 6 already in the ledger" in runner.invoke(main, args).output
    bad = runner.invoke(main, ["-w", ws, "candidates", "--strategy", "dissimilar"])
    assert bad.exit_code == 2 and "'easy', 'hard', 'centroid', 'random'" in bad.output
    assert np.isfinite([r["metadata"]["similarity"] for r in rows]).all()
