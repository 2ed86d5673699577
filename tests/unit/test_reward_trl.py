"""TransformerRewardModel on the packaged MiniLM: truncation, amplification, training, save/load."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import AutoTokenizer

from rlthf_plugin.models.embedder import resolve_model_path
from rlthf_plugin.models.reward import RewardModel
from rlthf_plugin.models.reward_trl import RewardTrainingConfig, TransformerRewardModel, amplify
from rlthf_plugin.models._truncation import PairEncoder, fit_lengths, left_truncate_text

from ._training_fixtures import dev_rows, easy_split

MINILM = resolve_model_path("packaged:all-MiniLM-L6-v2")


@pytest.mark.parametrize("n_p,n_r,budget,expected", [
    (10, 10, 30, (10, 10)),      # fits
    (50, 10, 30, (20, 10)),      # prompt loses its start, response whole
    (50, 40, 30, (7, 23)),       # response alone too long: prompt keeps 25% of the budget
    (0, 40, 30, (0, 30)),
    (3, 40, 30, (3, 27)),
])
def test_fit_lengths(n_p, n_r, budget, expected):
    assert fit_lengths(n_p, n_r, budget) == expected


def test_pair_encoder_keeps_the_response_and_the_prompt_tail():
    tok = AutoTokenizer.from_pretrained(MINILM)
    tok.eos_token = "[SEP]"
    enc = PairEncoder.for_tokenizer(tok, 32)
    assert enc.prefix == [tok.cls_token_id] and enc.suffix == [tok.sep_token_id] and enc.eos == []
    prompt = " ".join(f"word{i}" for i in range(100)) + " final question"
    response = "a short answer"
    (ids,), (truncated,) = enc.encode([prompt], [response])
    assert truncated and len(ids) == 32
    text = tok.decode(ids, skip_special_tokens=True)
    assert text.endswith("final question a short answer") and "word0 " not in text
    (ids,), (truncated,) = enc.encode(["short prompt"], ["short answer"])
    assert not truncated and tok.decode(ids, skip_special_tokens=True) == "short prompt short answer"


def test_left_truncate_text_cuts_on_a_token_start():
    tok = AutoTokenizer.from_pretrained(MINILM)
    text = " ".join(f"token{i}" for i in range(50))
    tail, cut = left_truncate_text(tok, text, 10)
    assert cut and text.endswith(tail) and len(tok(tail, add_special_tokens=False)["input_ids"]) <= 10
    assert left_truncate_text(tok, "short", 10) == ("short", False)


def test_amplify_repeats_rows_and_rejects_fractions():
    assert amplify(3, [1, 0, 3]).tolist() == [0, 2, 2, 2]
    assert amplify(2, None).tolist() == [0, 1]
    with pytest.raises(ValueError, match="row 1 has 2.5"):
        amplify(2, [1, 2.5])
    with pytest.raises(ValueError, match="shape"):
        amplify(3, [1, 1])


def test_config_checks():
    with pytest.raises(ValueError, match="metric_for_best_model"):
        RewardTrainingConfig(metric_for_best_model="f1")
    with pytest.raises(ValueError, match="unknown reward training option"):
        RewardTrainingConfig.from_dict({"lr": 1})


def test_trained_rm_beats_chance_truncates_instead_of_dropping_and_reloads(tmp_path):
    rows = dev_rows(88, seed=1)
    train, held_out = easy_split(rows[:56], seed=1), easy_split(rows[56:], seed=2)
    config = RewardTrainingConfig(max_length=64, num_train_epochs=1, per_device_train_batch_size=8,
                                  learning_rate=1e-4, logging_steps=2, progress=False, score_batch_size=32)
    rm = TransformerRewardModel(config)
    assert isinstance(rm, RewardModel)
    weights = [2] * 8 + [1] * 48  # amplification: the first 8 pairs twice
    rm.fit(*train, weights=weights, eval_data=held_out)
    m = rm.metrics
    # every pair was trained on, over-long ones truncated (real MT-bench answers exceed 64 tokens)
    assert m["train_pairs"] == 64 and m["distinct_pairs"] == 56 and m["dropped"] == 0
    assert m["truncated"] > 20
    assert m["steps"] == 8 and m["best_checkpoint"]
    accuracy = float(np.mean(rm.margins(*held_out) > 0))
    assert accuracy == pytest.approx(m["eval_accuracy"])
    assert accuracy >= 0.75, accuracy  # chance is 0.5
    rm.save(tmp_path / "rm")
    again = TransformerRewardModel.load(tmp_path / "rm")
    np.testing.assert_allclose(again.score(held_out[0], held_out[1]), rm.score(held_out[0], held_out[1]),
                               rtol=1e-5, atol=1e-5)
    assert again.config.max_length == 64 and again.metrics["train_pairs"] == 64


def test_trl_alone_would_drop_the_long_pairs():
    """The reason for our own tokenization: TRL filters pairs longer than max_length."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    rows = dev_rows(16, seed=3)
    prompts, chosen, rejected = easy_split(rows, seed=3)
    tok = AutoTokenizer.from_pretrained(MINILM)
    model = AutoModelForSequenceClassification.from_pretrained(MINILM, num_labels=1)
    data = Dataset.from_dict({"prompt": prompts, "chosen": chosen, "rejected": rejected})
    args = RewardConfig(output_dir="unused", max_length=64, eos_token="[SEP]", bf16=False,
                        gradient_checkpointing=False, use_cpu=True, report_to="none", disable_tqdm=True)
    trainer = RewardTrainer(model=model, args=args, train_dataset=data, processing_class=tok)
    assert len(trainer.train_dataset) < 16
    ours = TransformerRewardModel(max_length=64)
    ours._attach(model, tok)
    dataset, truncated = ours._dataset(prompts, chosen, rejected)
    assert len(dataset) == 16 and truncated >= 16 - len(trainer.train_dataset)
    assert max(len(x) for x in list(dataset["chosen_ids"]) + list(dataset["rejected_ids"])) <= 64


def test_lora_reward_model_saves_the_adapter_and_reloads(tmp_path):
    prompts, chosen, rejected = easy_split(dev_rows(8, seed=4), seed=4)
    rm = TransformerRewardModel(max_length=32, max_steps=1, per_device_train_batch_size=8, lora=True, lora_r=4,
                                lora_alpha=8, progress=False)
    rm.fit(prompts, chosen, rejected)
    rm.save(tmp_path / "lora")
    assert (tmp_path / "lora" / "adapter_config.json").exists()
    again = TransformerRewardModel.load(tmp_path / "lora")
    np.testing.assert_allclose(again.margins(prompts, chosen, rejected), rm.margins(prompts, chosen, rejected),
                               rtol=1e-5, atol=1e-5)
