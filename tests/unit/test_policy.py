"""DPO on a tiny local causal LM: the loss goes down, the model saves and reloads."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlthf_plugin.models.policy import DPOTrainingConfig, build_dataset, train_policy

from ._training_fixtures import dev_rows, tiny_policy


@pytest.fixture(scope="module")
def sample():
    return dev_rows(24, seed=5)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, sample):
    return tiny_policy(tmp_path_factory.mktemp("tiny"), sample)


def test_config_checks():
    with pytest.raises(ValueError, match="max_prompt_length"):
        DPOTrainingConfig(max_length=64, max_prompt_length=64)
    assert DPOTrainingConfig().learning_rate == 1e-6 and DPOTrainingConfig().beta == 0.1


def test_dataset_uses_the_chat_template_and_left_truncates_prompts(tiny, sample):
    tok = AutoTokenizer.from_pretrained(tiny)
    long_prompt = "old context " * 200 + "the actual question?"
    config = DPOTrainingConfig(max_length=128, max_prompt_length=32)
    data, truncated = build_dataset(tok, [long_prompt, "hi"], ["a", "b"], ["c", "d"], config)
    assert truncated == 1
    first = data[0]["prompt"]
    assert first[0]["role"] == "user" and first[0]["content"].endswith("the actual question?")
    assert len(tok(first[0]["content"], add_special_tokens=False)["input_ids"]) <= 32
    plain, _ = build_dataset(tok, ["p"], ["a"], ["b"], DPOTrainingConfig(use_chat_template=False))
    assert plain[0]["prompt"] == "p"


def test_dpo_lowers_the_loss_and_saves_a_model_that_reloads(tiny, sample, tmp_path):
    prompts = [r["prompt"] for r in sample[:16]]
    chosen = [r["response_a"] for r in sample[:16]]
    rejected = [r["response_b"] for r in sample[:16]]
    config = DPOTrainingConfig(learning_rate=5e-3, max_length=128, max_prompt_length=64, max_steps=4,
                               per_device_train_batch_size=4, logging_steps=1, progress=False)
    out = tmp_path / "policy"
    metrics = train_policy(str(tiny), prompts, chosen, rejected, out=out, eval_data=(prompts, chosen, rejected),
                           config=config)
    assert metrics["eval_loss_before"] == pytest.approx(0.6931, abs=1e-3)  # policy == reference
    assert metrics["eval_loss"] < metrics["eval_loss_before"] - 0.05
    assert metrics["train_pairs"] == 16 and metrics["dropped"] == 0 and metrics["prompts_truncated"] > 0
    before = AutoModelForCausalLM.from_pretrained(tiny)
    after = AutoModelForCausalLM.from_pretrained(out)
    changed = [n for (n, a), (_, b) in zip(before.named_parameters(), after.named_parameters()) if not torch.equal(a, b)]
    assert changed
    assert AutoTokenizer.from_pretrained(out).chat_template
    meta = json.loads((out / "rlthf_policy.json").read_text())
    assert meta["config"]["beta"] == 0.1 and meta["metrics"]["steps"] == 4


def test_dpo_with_lora_saves_an_adapter(tiny, sample, tmp_path):
    from peft import AutoPeftModelForCausalLM

    prompts = [r["prompt"] for r in sample[:4]]
    config = DPOTrainingConfig(max_length=64, max_prompt_length=32, max_steps=1, per_device_train_batch_size=4,
                               lora=True, lora_r=4, lora_alpha=8, progress=False)
    out = tmp_path / "lora"
    train_policy(str(tiny), prompts, [r["response_a"] for r in sample[:4]], [r["response_b"] for r in sample[:4]],
                 out=out, config=config)
    assert (out / "adapter_config.json").exists()
    AutoPeftModelForCausalLM.from_pretrained(out)
