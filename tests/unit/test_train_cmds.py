"""`rlthf train reward` and `rlthf train policy` end to end on a small curated JSONL."""

from __future__ import annotations

import json

from rlthf_plugin.cli import main
from rlthf_plugin.models.reward_trl import TransformerRewardModel
from rlthf_plugin.io.curated import read_curated

from ._training_fixtures import dev_rows, easy_split, tiny_policy


def _write_curated(path, rows):
    prompts, chosen, rejected = easy_split(rows, seed=7)
    sources = ["human", "ai", "trusted_ai", "flipped"]
    with path.open("w") as f:
        for i, (p, c, r) in enumerate(zip(prompts, chosen, rejected)):
            source = sources[i % 4]
            f.write(json.dumps({"pair_id": f"p{i}", "prompt": p, "chosen": c, "rejected": r, "label_source": source,
                                "iteration": i % 2, "amplification": 3 if source == "human" else 1}) + "\n")


def test_train_reward_then_policy_with_relabel(runner, tmp_path):
    rows = dev_rows(24, seed=7)
    data = tmp_path / "curated.jsonl"
    _write_curated(data, rows)
    rm_dir = tmp_path / "rm"
    result = runner.invoke(main, ["train", "reward", "--data", str(data), "--out", str(rm_dir), "--max-length", "48",
                                  "--max-steps", "2", "--batch-size", "8", "--eval-fraction", "0.25"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "eval_accuracy=" in result.output
    card = (rm_dir / "README.md").read_text()
    # 24 pairs, 6 eval; the 18 train pairs hold the human ones 3 times
    assert "| train | human |" in card and "| eval | **all** | 6 | - |" in card and "Human share" in card
    assert "eval_accuracy" in card and "rlthf train reward --out" in card and "--max-length 48" in card
    assert not (rm_dir / "checkpoints").exists()
    rm = TransformerRewardModel.load(rm_dir)
    assert rm.metrics["eval_pairs"] == 6 and rm.metrics["dropped"] == 0

    tiny = tiny_policy(tmp_path / "tiny", rows)
    config = tmp_path / "dpo.json"
    config.write_text(json.dumps({"max_prompt_length": 48, "logging_steps": 1, "progress": False}))
    out = tmp_path / "policy"
    result = runner.invoke(main, ["train", "policy", "--model", str(tiny), "--data", str(data), "--out", str(out),
                                  "--config", str(config), "--max-length", "96", "--max-steps", "2",
                                  "--lr", "1e-3", "--relabel-with-rm", str(rm_dir)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "relabeled" in result.output and (out / "model.safetensors").exists()
    card = (out / "README.md").read_text()
    assert "| beta | 0.1000 |" in card and "| learning_rate | 0.0010 |" in card and "| max_prompt_length | 48 |" in card


def test_bad_rows_are_reported_with_line_and_field(runner, tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"pair_id": "a", "prompt": "p", "chosen": "c", "rejected": "r",
                                "label_source": "oracle", "iteration": 0, "amplification": 0}) + "\n{oops\n")
    result = runner.invoke(main, ["train", "reward", "--data", str(data), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "bad.jsonl:1: field 'label_source'" in result.output and "bad.jsonl:1: field 'amplification'" in result.output
    assert "bad.jsonl:2: invalid JSON" in result.output


def test_without_data_the_workspace_export_is_used_or_named(runner, workspace, tmp_path):
    result = runner.invoke(main, ["-w", str(workspace.root), "train", "reward", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "--data" in result.output or "no curated pairs" in result.output


def test_only_and_split_by_pair(tmp_path):
    data = tmp_path / "c.jsonl"
    _write_curated(data, dev_rows(12, seed=8))
    cur = read_curated(data)
    assert len(cur.only(["human"])) == 3
    train, evals = cur.split(0.25, seed=0)
    assert len(evals) == 3 and not set(train.pair_id) & set(evals.pair_id)
    s = cur.summary()
    assert s["pairs"] == 12 and s["rows_amplified"] == 18 and abs(s["human_share_rows"] - 9 / 18) < 1e-9
