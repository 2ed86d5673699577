"""DPO on the curated set with TRL's DPOTrainer (the last step of RLTHF).

The policy is any causal LM (HF name or local path); TRL builds the frozen reference model
from the same weights (with LoRA: the base with adapters switched off). Texts use the
tokenizer's chat template when it has one (prompt as a user turn, responses as assistant
turns), plain text otherwise. Prompts longer than ``max_prompt_length`` tokens lose their
start, so TRL never drops a pair for a prompt that fills ``max_length``; responses that
overflow ``max_length`` lose their end (TRL's collator, ``keep_start``).

Defaults follow the RLTHF paper's DPO setting: learning rate 1e-6, beta 0.1, warmup 0.1.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np

from . import _hardware as hw
from ._truncation import left_truncate_text
from ._training import TrainingConfig, amplify, check_triples, jsonable

log = logging.getLogger(__name__)

META_FILE = "rlthf_policy.json"


@dataclass
class DPOTrainingConfig(TrainingConfig):
    """How the policy is trained. Mapped onto TRL's ``DPOConfig``.

    The shared options are :class:`~rlthf_plugin.models._training.TrainingConfig`'s. Defaults
    that differ from TRL's ``DPOConfig``: ``bf16`` and ``gradient_checkpointing`` are
    automatic (on with a GPU, off on CPU; TRL turns both on everywhere); ``warmup_ratio`` 0.1
    (TRL: 0); prompts are left-truncated to ``max_prompt_length`` instead of dropped;
    ``report_to`` is ``none``.
    """

    what: ClassVar[str] = "DPO"

    #: Paper and TRL: 1e-6.
    learning_rate: float = 1e-6
    num_train_epochs: float = 1.0
    per_device_train_batch_size: int = 4
    per_device_eval_batch_size: int = 4
    #: Responses beyond it lose their end.
    max_length: int = 1024
    lora_r: int = 16
    lora_alpha: int = 32
    #: DPO temperature: higher keeps the policy closer to the reference (paper and TRL: 0.1).
    beta: float = 0.1
    #: TRL loss type(s): ``sigmoid`` is the DPO loss; see TRL's ``DPOConfig.loss_type``.
    loss_type: str = "sigmoid"
    #: Tokens kept of each prompt (its end); must be < max_length.
    max_prompt_length: int = 512
    #: None = use the chat template when the tokenizer has one.
    use_chat_template: bool | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.max_prompt_length >= self.max_length:
            raise ValueError(f"max_prompt_length ({self.max_prompt_length}) must be < max_length ({self.max_length})")
        if self.beta <= 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")

    def to_trl(self, output_dir: str, *, has_eval: bool):
        """The TRL ``DPOConfig`` for this run."""
        import torch
        from trl import DPOConfig

        on_gpu = hw.cuda_count() > 0
        # train_policy evaluates before and after training itself; eval_steps adds periodic evals
        strategy = "steps" if has_eval and self.eval_steps else "no"
        return DPOConfig(
            output_dir=output_dir,
            learning_rate=self.learning_rate,
            beta=self.beta,
            loss_type=[t.strip() for t in self.loss_type.split(",")],
            warmup_steps=self.warmup_ratio,  # transformers 5: a float < 1 is a ratio
            num_train_epochs=self.num_train_epochs,
            max_steps=self.max_steps,
            per_device_train_batch_size=self.per_device_train_batch_size,
            per_device_eval_batch_size=self.per_device_eval_batch_size,
            gradient_accumulation_steps=self.gradient_accumulation_steps,
            max_length=self.max_length,
            bf16=hw.resolve_auto(self.bf16, hw.bf16_supported()),
            fp16=False,
            gradient_checkpointing=hw.resolve_auto(self.gradient_checkpointing, on_gpu),
            use_cpu=not on_gpu,
            model_init_kwargs={"dtype": getattr(torch, self.dtype)},
            eval_strategy=strategy,
            eval_steps=self.eval_steps,
            save_strategy="no",
            logging_steps=self.logging_steps,
            report_to=hw.report_to(self.report_to),
            seed=self.seed,
            disable_tqdm=not self.progress,
        )


def _has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def build_dataset(tokenizer, prompts, chosen, rejected, config: DPOTrainingConfig):
    """A datasets.Dataset in TRL's preference format and the number of prompts truncated."""
    from datasets import Dataset

    chat = hw.resolve_auto(config.use_chat_template, _has_chat_template(tokenizer))
    if chat and not _has_chat_template(tokenizer):
        raise ValueError("use_chat_template=True but the tokenizer has no chat template")
    cut = [left_truncate_text(tokenizer, p, config.max_prompt_length) for p in prompts]
    prompts = [p for p, _ in cut]
    if chat:
        data = {"prompt": [[{"role": "user", "content": p}] for p in prompts],
                "chosen": [[{"role": "assistant", "content": c}] for c in chosen],
                "rejected": [[{"role": "assistant", "content": r}] for r in rejected]}
    else:
        data = {"prompt": list(prompts), "chosen": list(chosen), "rejected": list(rejected)}
    return Dataset.from_dict(data), sum(t for _, t in cut)


def train_policy(model: str, prompts: Sequence[str], chosen: Sequence[str], rejected: Sequence[str], *,
                 out: str | Path, weights: Sequence[float] | None = None,
                 eval_data: tuple[Sequence[str], Sequence[str], Sequence[str]] | None = None,
                 config: DPOTrainingConfig | None = None) -> dict:
    """Train a policy with DPO and save it (weights or LoRA adapter + tokenizer) to ``out``.

    Parameters
    ----------
    model : str
        HF name or local path of a causal LM (the reference model is the same weights).
    prompts, chosen, rejected : sequence of str, shape (N,)
    out : path
        Output folder; TRL's logs go to ``out/runs`` when a tracker is on.
    weights : sequence of float, shape (N,), optional
        Amplification: pair i is repeated ``weights[i]`` times (integers >= 0).
    eval_data : (prompts, chosen, rejected), optional
        Evaluated before and after training (``eval_loss_before`` / ``eval_loss``).
    config : DPOTrainingConfig, optional

    Returns
    -------
    dict
        Metrics: TRL's train metrics, ``train_pairs``, ``prompts_truncated``, ``dropped``
        (always 0), ``eval_loss_before``/``eval_loss`` when eval_data is given.
    """
    from transformers import AutoTokenizer
    from trl import DPOTrainer

    config = config or DPOTrainingConfig()
    n = check_triples(prompts, chosen, rejected)
    idx = amplify(n, weights)
    if idx.size == 0:
        raise ValueError("no training pairs (empty input or all weights 0)")
    out = Path(out)
    tokenizer = AutoTokenizer.from_pretrained(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    take = lambda seq: [seq[i] for i in idx]  # noqa: E731
    train, n_trunc = build_dataset(tokenizer, take(prompts), take(chosen), take(rejected), config)
    evals = None
    if eval_data is not None and len(eval_data[0]):
        check_triples(*eval_data)
        evals, _ = build_dataset(tokenizer, *eval_data, config)
    peft_config = None
    if config.lora:
        from ..errors import require

        peft = require("peft", "train")
        peft_config = peft.LoraConfig(task_type="CAUSAL_LM", r=config.lora_r, lora_alpha=config.lora_alpha,
                                      lora_dropout=config.lora_dropout, target_modules=config.lora_target_modules)
    args = config.to_trl(str(out), has_eval=evals is not None)
    trainer = DPOTrainer(model=model, args=args, train_dataset=train, eval_dataset=evals,
                         processing_class=tokenizer, peft_config=peft_config)
    for name, before, after in (("train", train, trainer.train_dataset), ("eval", evals, trainer.eval_dataset)):
        if before is not None and len(after) != len(before):
            raise RuntimeError(f"TRL dropped {len(before) - len(after)} of {len(before)} {name} pairs; "
                               "lower max_prompt_length")
    metrics: dict = {}
    if evals is not None:
        metrics["eval_loss_before"] = float(trainer.evaluate()["eval_loss"])
    result = trainer.train()
    metrics.update(result.metrics)
    if evals is not None:
        metrics.update({k: v for k, v in trainer.evaluate().items() if k.startswith("eval_")})
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    metrics.update(train_pairs=int(idx.size), distinct_pairs=int(np.unique(idx).size), prompts_truncated=n_trunc,
                   dropped=0, steps=trainer.state.global_step, first_logged_loss=losses[0] if losses else None,
                   last_logged_loss=losses[-1] if losses else None,
                   num_tokens=int(getattr(trainer, "_total_train_tokens", 0)))
    trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(out)
        meta = {"format": 1, "base_model": model, "config": dataclasses.asdict(config), "metrics": jsonable(metrics)}
        (out / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return metrics
