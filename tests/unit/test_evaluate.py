"""`rlthf evaluate`: accuracy with a Wilson interval against human labels the model never saw."""

from __future__ import annotations

import gzip
import hashlib
import json

import numpy as np
import pytest

from rlthf_plugin.cli import main
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.loop.evaluate import EvalPairs, score
from rlthf_plugin.models.evaluation import evaluate_margins, split_mask, wilson_interval
from rlthf_plugin.models.reward import EmbeddingRewardModel

from ._training_fixtures import dev_rows, easy_split


# -- a tiny reward model on a known signal --------------------------------------------------------


class QualityEmbedder:
    """Texts ``q=0.123|n`` -> [q, 7 dims of noise fixed by the text]: the signal is dimension 0."""

    name = "toy-quality"

    def encode(self, texts):
        out = []
        for t in texts:
            q = float(t.split("|")[0].split("=")[1]) if t.startswith("q=") else 1.0
            rng = np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:8], 16))
            out.append(np.concatenate([[q], 0.5 * rng.standard_normal(7)]))
        return np.asarray(out, dtype=np.float32)


def _known_signal(n: int, rng: np.random.Generator, k: float = 6.0):
    """Pairs whose human label is A with probability sigmoid(k (q_a - q_b)): the known truth."""
    qa, qb = rng.uniform(size=n), rng.uniform(size=n)
    p_a = 1 / (1 + np.exp(-k * (qa - qb)))
    labels = np.where(rng.uniform(size=n) < p_a, "A", "B")
    a = [f"q={x:.6f}|{i:05d}" for i, x in enumerate(qa)]
    b = [f"q={x:.6f}|{i:05d}" for i, x in enumerate(qb)]
    return ["prompt"] * n, a, b, labels, p_a


def test_a_tiny_rm_on_a_known_signal_is_found_above_chance_and_the_interval_holds_the_truth():
    rng = np.random.default_rng(0)
    prompts, a, b, labels, _ = _known_signal(300, rng)
    chosen = [x if y == "A" else z for x, z, y in zip(a, b, labels)]
    rejected = [z if y == "A" else x for x, z, y in zip(a, b, labels)]
    rm = EmbeddingRewardModel(QualityEmbedder()).fit(prompts, chosen, rejected)

    tp, ta, tb, tlabels, p_a = _known_signal(1500, np.random.default_rng(1))
    test = EvalPairs()
    for i in range(len(tp)):
        test.add(f"p{i}", tp[i], ta[i], tb[i], str(tlabels[i]), "toy", "odd" if i % 2 else "even")
    result = score(rm, test)
    # The truth: this model's expected accuracy under the known label distribution.
    m = rm.margins(tp, ta, tb)
    truth = float(np.mean(np.where(m > 0, p_a, 1 - p_a)))
    assert truth > 0.7  # the model learned the signal
    acc = result.overall
    assert acc.n == 1500 and acc.low > 0.5  # above chance
    assert acc.low <= truth <= acc.high  # the 95% interval contains the truth
    assert set(result.by_category) == {"even", "odd"} and sum(v.n for v in result.by_category.values()) == 1500
    # A model trained on labels without signal is not found above chance.
    noise = np.random.default_rng(2).permutation(labels)
    ch = [x if y == "A" else z for x, z, y in zip(a, b, noise)]
    rj = [z if y == "A" else x for x, z, y in zip(a, b, noise)]
    flat = score(EmbeddingRewardModel(QualityEmbedder()).fit(prompts, ch, rj), test).overall
    assert flat.low < 0.6


def test_ties_are_counted_apart_and_the_interval_is_wilsons():
    margins = [1.0, -2.0, 0.5, 0.0, 3.0, -1.0, 0.2]
    labels = ["A", "B", "B", "A", "tie", "no_majority", ""]
    r = evaluate_margins(margins, labels, sources=["s1", "s1", "s2", "s2", "s1", "s2", "s2"])
    assert (r.overall.correct, r.overall.n) == (2, 4)  # 0.0 on a human winner: not ordered, wrong
    assert r.human_ties == 1 and r.unlabeled == 2 and r.model_ties == 1 and r.pairs == 7
    assert (r.by_source["s1"].correct, r.by_source["s1"].n, r.by_source["s2"].n) == (2, 2, 2)
    lo, hi = wilson_interval(2, 4)
    z = 1.959963984540054  # Wilson by hand
    centre, half = (0.5 + z * z / 8) / (1 + z * z / 4), z / (1 + z * z / 4) * np.sqrt(0.25 / 4 + z * z / 64)
    assert abs(lo - (centre - half)) < 1e-9 and abs(hi - (centre + half)) < 1e-9
    assert (r.overall.low, r.overall.high) == (lo, hi)
    only_ties = evaluate_margins([1.0], ["tie"]).to_dict()
    assert only_ties["overall"]["accuracy"] is None and only_ties["human_ties"] == 1
    json.dumps(only_ties, allow_nan=False)
    with pytest.raises(ValueError, match="NaN"):
        evaluate_margins([np.nan], ["A"])


def test_the_split_is_by_pair_stable_and_nested():
    ids = [f"pair-{i}" for i in range(4000)]
    small, large = split_mask(ids, 0.1), split_mask(ids, 0.3)
    assert 300 < small.sum() < 500 and 1050 < large.sum() < 1350
    assert not (small & ~large).any()  # a larger split holds out a superset
    assert (split_mask(list(reversed(ids)), 0.1)[::-1] == small).all()  # by id, not by position
    with pytest.raises(ValueError):
        split_mask(ids, 1.0)


# -- the command ------------------------------------------------------------------------------------


def _one_line_error(output: str) -> None:
    """One ``Error:`` line and no traceback (progress bars of model loading aside)."""
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in output, output
    assert output.rstrip().splitlines()[-1] == errors[0]


def _merged_file(path, rows, *, ai_right: float = 0.8, seed: int = 0, human: bool = True):
    """Merged rows: the real answer (A) beats a 6-word fragment of another answer (B); the
    humans say so, the AI label is right on ``ai_right`` of the pairs."""
    prompts, chosen, rejected = easy_split(rows, seed=seed)
    rng = np.random.default_rng(seed)
    with gzip.open(path, "wt") as f:
        for i, (p, c, r) in enumerate(zip(prompts, chosen, rejected)):
            row = {"source": "toy", "id": f"toy-{i}", "category": "even" if i % 2 == 0 else "odd", "prompt": p,
                   "response_a": c, "response_b": r, "ai_judge": "judge",
                   "ai_label": "A" if rng.uniform() < ai_right else "B"}
            if human:
                row["human_votes"] = ["A", "A", "tie"] if i % 5 else ["tie"]
            f.write(json.dumps(row) + "\n")
    return path


def test_evaluate_the_workspace_rm_on_its_held_out_split(runner, workspace, tmp_path):
    data = _merged_file(tmp_path / "pairs.jsonl.gz", dev_rows(80, seed=3))
    import_files(workspace.ledger, [str(data)])
    w = ["-w", str(workspace.root)]
    result = runner.invoke(main, [*w, "evaluate", "--rm", "workspace", "--split", "0.4", "--json"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    acc = out["overall"]
    held = split_mask(sorted(p.id for p in workspace.ledger.get_pairs()), 0.4).sum()
    assert out["pairs"] == held and acc["n"] + out["human_ties"] == held and out["human_ties"] > 0
    assert acc["low"] > 0.5 and acc["low"] <= acc["accuracy"] <= acc["high"]
    assert set(out["by_category"]) == {"even", "odd"} and out["by_source"]["toy"]["n"] == acc["n"]
    # trained here on the curated set without any held-out pair
    assert out["trained_on"]["train"]["pairs"] == 80 - held and out["trained_on"]["left_out"] == held

    text = runner.invoke(main, [*w, "evaluate", "--rm", "workspace", "--data", str(data)], catch_exceptions=False)
    assert text.exit_code == 1 and "no curated pair left to train on" in text.output  # every pair is scored


def test_trl_rm_from_train_reward_is_scored_and_the_card_gets_the_result(runner, workspace, tmp_path):
    rows = dev_rows(40, seed=5)
    data = _merged_file(tmp_path / "pairs.jsonl.gz", rows, ai_right=1.0)
    import_files(workspace.ledger, [str(data)])
    w = ["-w", str(workspace.root)]
    rm = tmp_path / "rm"
    result = runner.invoke(main, [*w, "train", "reward", "--out", str(rm), "--max-length", "48", "--max-steps", "2",
                                  "--batch-size", "8", "--eval-fraction", "0", "--exclude-split", "0.3"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "--exclude-split 0.3:" in result.output
    result = runner.invoke(main, [*w, "evaluate", "--rm", str(rm), "--split", "0.3", "--json"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out, _ = json.JSONDecoder().raw_decode(result.output, result.output.index("{"))
    assert out["overall"]["n"] > 0 and 0 <= out["overall"]["low"] <= out["overall"]["high"] <= 1
    card = (rm / "README.md").read_text()
    assert "## Evaluation: --split 0.3" in card and "Wilson" in card and "rlthf train reward" in card
    # a larger split than the model left out is refused: it may have trained on those pairs
    result = runner.invoke(main, [*w, "evaluate", "--rm", str(rm), "--split", "0.5"])
    assert result.exit_code == 1 and "--exclude-split 0.3" in result.output
    _one_line_error(result.output)
    # a file in another import format (TRL rows: chosen is the human's pick)
    trl = tmp_path / "test.jsonl"
    prompts, chosen, rejected = easy_split(dev_rows(20, seed=9), seed=9)
    trl.write_text("".join(json.dumps({"prompt": p, "chosen": c, "rejected": r}) + "\n"
                           for p, c, r in zip(prompts, chosen, rejected))
                   + json.dumps({"prompt": "p", "chosen": "same", "rejected": "same"}) + "\n")
    result = runner.invoke(main, ["evaluate", "--rm", str(rm), "--data", str(trl), "--no-card"])
    assert result.exit_code == 1 and "test.jsonl:21: field 'rejected'" in result.output
    assert "--skip-invalid" in result.output
    result = runner.invoke(main, ["evaluate", "--rm", str(rm), "--data", str(trl), "--no-card", "--skip-invalid"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "1 invalid row(s) left out" in result.output
    assert "accuracy" in result.output and "(20 pairs" not in result.output and "/20)" in result.output


def test_clear_errors_on_a_file_without_human_labels_or_a_model_that_does_not_load(runner, tmp_path):
    data = _merged_file(tmp_path / "ai_only.jsonl.gz", dev_rows(10, seed=1), human=False)
    broken = tmp_path / "broken_rm"
    broken.mkdir()
    (broken / "rlthf_reward.json").write_text(json.dumps({"format": 1, "config": {}}))
    result = runner.invoke(main, ["evaluate", "--rm", str(broken), "--data", str(data)])
    assert result.exit_code == 1
    assert "ai_only.jsonl.gz: no human labels" in result.output
    _one_line_error(result.output)

    curated = tmp_path / "curated.jsonl"  # a curated export: only its human rows are human labels
    curated.write_text(json.dumps({"pair_id": "x", "prompt": "p", "chosen": "c", "rejected": "r",
                                   "label_source": "ai", "iteration": None, "amplification": 1}) + "\n")
    result = runner.invoke(main, ["evaluate", "--rm", str(broken), "--data", str(curated)])
    assert result.exit_code == 1 and "no human labels" in result.output

    labeled = _merged_file(tmp_path / "labeled.jsonl.gz", dev_rows(10, seed=1))
    result = runner.invoke(main, ["evaluate", "--rm", str(broken), "--data", str(labeled)])
    assert result.exit_code == 1
    assert "the reward model does not load" in result.output and str(broken) in result.output
    _one_line_error(result.output)
    result = runner.invoke(main, ["evaluate", "--rm", str(tmp_path / "nowhere"), "--data", str(labeled)])
    assert result.exit_code == 1 and "not a folder" in result.output
    result = runner.invoke(main, ["evaluate", "--rm", str(broken)])
    assert result.exit_code == 2 and "either --data" in result.output
