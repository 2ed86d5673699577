"""TransformerRewardModel: a sequence-classification backbone fine-tuned with TRL's RewardTrainer.

The backbone (``num_labels=1``) reads ``prompt + response`` and outputs one reward; the
Bradley-Terry loss ``-log sigmoid(r(chosen) - r(rejected))`` trains it (TRL's own loss,
unchanged). What this module adds around TRL:

- pairs are tokenized here, prompt left-truncated to ``max_length`` (see
  :mod:`._truncation`), and handed to TRL pre-tokenized, so TRL's length filter has
  nothing to drop; the trainer's dataset size is checked after construction;
- ``weights`` are the amplification alpha: a pair of weight k is repeated k times;
- bf16 and gradient checkpointing on a GPU, fp32 on CPU; LoRA (peft) optional;
- several GPUs: inside ``accelerate launch`` the Trainer uses them all; a plain process
  that sees more than one GPU launches ``accelerate launch ... rlthf train reward`` on
  them and loads the result;
- ``save(dir)`` / ``TransformerRewardModel.load(dir)``; scoring in length-sorted batches.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
from tqdm.auto import tqdm

from ..config import PACKAGED_EMBEDDER
from . import _hardware as hw
from ._training import TrainingConfig, amplify, check_triples, jsonable
from ._truncation import PairEncoder
from .embedder import resolve_model_path

log = logging.getLogger(__name__)

#: File beside the weights that makes a folder loadable by :meth:`TransformerRewardModel.load`.
META_FILE = "rlthf_reward.json"
METRICS = {"accuracy": True, "loss": False}  # metric name -> greater is better


@dataclass
class RewardTrainingConfig(TrainingConfig):
    """How :class:`TransformerRewardModel` trains. Mapped onto TRL's ``RewardConfig``.

    The shared options are :class:`~rlthf_plugin.models._training.TrainingConfig`'s. Defaults
    that differ from TRL's ``RewardConfig``: ``bf16`` and ``gradient_checkpointing`` are
    automatic (on with a GPU, off on CPU; TRL turns both on everywhere); ``max_length`` is 512
    and truncates instead of dropping; ``num_train_epochs`` 2 and ``warmup_ratio`` 0.1 as in
    the RLTHF paper; ``report_to`` is ``none``.
    """

    what: ClassVar[str] = "reward training"

    #: Backbone: any HF name or local path; ``packaged:all-MiniLM-L6-v2`` is the bundled MiniLM.
    model: str = PACKAGED_EMBEDDER
    #: TRL's and the paper's 1e-4.
    learning_rate: float = 1e-4
    #: The paper trains 2 epochs.
    num_train_epochs: float = 2.0
    #: Tokens per (prompt + response); longer pairs are truncated (prompt from the left).
    max_length: int = 512
    weight_decay: float = 0.0
    #: Mean-zero reward regulariser (TRL ``center_rewards_coefficient``); None = off.
    center_rewards_coefficient: float | None = None
    #: LoRA r/alpha default to the paper's 32/64.
    lora_r: int = 32
    lora_alpha: int = 64
    #: Eos appended to each text; None = the tokenizer's eos, else its sep token (BERT).
    eos_token: str | None = None
    #: Checkpoint choice when an eval split is given: ``accuracy`` (higher) or ``loss`` (lower).
    metric_for_best_model: str = "accuracy"
    #: Pairs per forward pass when scoring.
    score_batch_size: int = 64
    #: Processes for a multi-GPU launch from a plain process; None = every visible GPU.
    num_processes: int | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.metric_for_best_model not in METRICS:
            raise ValueError(f"metric_for_best_model must be one of {sorted(METRICS)}, got {self.metric_for_best_model!r}")
        if self.max_length < 8:
            raise ValueError(f"max_length must be >= 8, got {self.max_length}")
        if self.score_batch_size < 1:
            raise ValueError(f"score_batch_size must be >= 1, got {self.score_batch_size}")

    def to_trl(self, output_dir: str, *, has_eval: bool):
        """The TRL ``RewardConfig`` for this run."""
        from trl import RewardConfig

        on_gpu = hw.cuda_count() > 0
        bf16 = hw.resolve_auto(self.bf16, hw.bf16_supported())
        strategy = "no" if not has_eval else ("steps" if self.eval_steps else "epoch")
        return RewardConfig(
            output_dir=output_dir,
            learning_rate=self.learning_rate,
            num_train_epochs=self.num_train_epochs,
            max_steps=self.max_steps,
            warmup_steps=self.warmup_ratio,  # transformers 5: a float < 1 is a ratio
            per_device_train_batch_size=self.per_device_train_batch_size,
            per_device_eval_batch_size=self.per_device_eval_batch_size,
            gradient_accumulation_steps=self.gradient_accumulation_steps,
            weight_decay=self.weight_decay,
            center_rewards_coefficient=self.center_rewards_coefficient,
            bf16=bf16,
            fp16=False,
            gradient_checkpointing=hw.resolve_auto(self.gradient_checkpointing, on_gpu),
            use_cpu=not on_gpu,
            max_length=self.max_length,
            eval_strategy=strategy,
            save_strategy=strategy,
            eval_steps=self.eval_steps,
            save_steps=self.eval_steps,
            save_total_limit=2 if has_eval else None,
            load_best_model_at_end=has_eval,
            metric_for_best_model=f"eval_{self.metric_for_best_model}" if has_eval else None,
            greater_is_better=METRICS[self.metric_for_best_model] if has_eval else None,
            logging_steps=self.logging_steps,
            report_to=hw.report_to(self.report_to),
            seed=self.seed,
            disable_tqdm=not self.progress,
            save_only_model=True,
        )


class TransformerRewardModel:
    """A reward model fine-tuned with TRL's RewardTrainer; implements :class:`RewardModel`.

    Parameters
    ----------
    config : RewardTrainingConfig, optional
        Training options; keyword overrides (``TransformerRewardModel(max_length=256)``)
        replace single fields.

    Attributes
    ----------
    metrics : dict
        Of the last :meth:`fit`: ``train_pairs`` (after amplification), ``truncated``,
        ``dropped`` (always 0), TRL's train/eval metrics, ``eval_accuracy`` of the kept model.
    """

    def __init__(self, config: RewardTrainingConfig | None = None, **overrides):
        base = config or RewardTrainingConfig()
        self.config = dataclasses.replace(base, **overrides) if overrides else base
        self.model = None
        self.tokenizer = None
        self.metrics: dict = {}
        self._encoder: PairEncoder | None = None

    # -- loading ---------------------------------------------------------------------------
    def _load_backbone(self, path: str):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        dtype = getattr(torch, self.config.dtype)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=dtype)
        self._attach(model, tokenizer)

    def _attach(self, model, tokenizer) -> None:
        eos = self.config.eos_token or tokenizer.eos_token or tokenizer.sep_token
        if eos is None:
            raise ValueError(f"tokenizer of {self.config.model!r} has neither eos nor sep token: set eos_token")
        tokenizer.eos_token = eos
        if tokenizer.pad_token is None:
            tokenizer.pad_token = eos
        model.config.pad_token_id = tokenizer.pad_token_id
        model.config.eos_token_id = tokenizer.eos_token_id
        self.model, self.tokenizer = model, tokenizer
        self._encoder = PairEncoder.for_tokenizer(tokenizer, self.config.max_length)

    def _dataset(self, prompts, chosen, rejected):
        from datasets import Dataset

        chosen_ids, t1 = self._encoder.encode(prompts, chosen)
        rejected_ids, t2 = self._encoder.encode(prompts, rejected)
        truncated = sum(a or b for a, b in zip(t1, t2))
        return Dataset.from_dict({"chosen_ids": chosen_ids, "rejected_ids": rejected_ids}), truncated

    # -- training --------------------------------------------------------------------------
    def fit(self, prompts: Sequence[str], chosen: Sequence[str], rejected: Sequence[str], *,
            weights: Sequence[float] | None = None,
            eval_data: tuple[Sequence[str], Sequence[str], Sequence[str]] | None = None,
            output_dir: str | Path | None = None) -> "TransformerRewardModel":
        """Fine-tune the backbone on preference triples.

        Parameters
        ----------
        prompts, chosen, rejected : sequence of str, shape (N,)
        weights : sequence of float, shape (N,), optional
            Amplification: pair i is repeated ``weights[i]`` times (integers >= 0).
        eval_data : (prompts, chosen, rejected), optional
            A held-out split (never amplified): evaluated each epoch (or ``eval_steps``),
            and the best checkpoint by ``metric_for_best_model`` is kept.
        output_dir : path, optional
            Where TRL writes checkpoints; None = a temporary folder removed afterwards.

        Returns
        -------
        self
        """
        n = check_triples(prompts, chosen, rejected)
        idx = amplify(n, weights)
        if idx.size == 0:
            raise ValueError("no training pairs (empty input or all weights 0)")
        if eval_data is not None:
            check_triples(*eval_data)
            if len(eval_data[0]) == 0:
                eval_data = None
        processes = self.config.num_processes or hw.cuda_count()
        if processes > 1 and not hw.in_distributed_launch():
            return self._fit_launched(prompts, chosen, rejected, idx, eval_data, processes)
        self._load_backbone(resolve_model_path(self.config.model))
        take = lambda seq: [seq[i] for i in idx]  # noqa: E731
        train, n_trunc = self._dataset(take(prompts), take(chosen), take(rejected))
        evals, n_trunc_eval = self._dataset(*eval_data) if eval_data is not None else (None, 0)
        tmp = tempfile.mkdtemp(prefix="rlthf-rm-") if output_dir is None else None
        try:
            self._train(train, evals, str(output_dir or tmp))
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        self.metrics.update(train_pairs=int(idx.size), distinct_pairs=int(np.unique(idx).size),
                            truncated=n_trunc, eval_pairs=0 if eval_data is None else len(eval_data[0]),
                            eval_truncated=n_trunc_eval, dropped=0)
        if eval_data is not None:
            margins = self.margins(*eval_data)
            self.metrics["eval_accuracy"] = float(np.mean(margins > 0))
        return self

    def _peft_config(self):
        if not self.config.lora:
            return None
        from ..errors import require

        peft = require("peft", "train")
        return peft.LoraConfig(task_type="SEQ_CLS", r=self.config.lora_r, lora_alpha=self.config.lora_alpha,
                               lora_dropout=self.config.lora_dropout,
                               target_modules=self.config.lora_target_modules)

    def _train(self, train, evals, output_dir: str) -> None:
        from trl import RewardTrainer

        args = self.config.to_trl(output_dir, has_eval=evals is not None)
        trainer = RewardTrainer(model=self.model, args=args, train_dataset=train, eval_dataset=evals,
                                processing_class=self.tokenizer, peft_config=self._peft_config())
        for name, before, after in (("train", train, trainer.train_dataset), ("eval", evals, trainer.eval_dataset)):
            if before is not None and len(after) != len(before):  # TRL's length filter must find nothing to drop
                raise RuntimeError(f"TRL dropped {len(before) - len(after)} of {len(before)} {name} pairs")
        result = trainer.train()
        self.model = trainer.accelerator.unwrap_model(trainer.model)
        self.model.eval()
        self.metrics = {"train_" + k if not k.startswith("train") else k: v for k, v in result.metrics.items()}
        history = [h for h in trainer.state.log_history if "eval_loss" in h]
        if history:
            best = trainer.state.best_metric
            self.metrics.update(best_checkpoint=trainer.state.best_model_checkpoint and
                                Path(trainer.state.best_model_checkpoint).name,
                                best_metric=best, eval_history=history)
        self.metrics["steps"] = trainer.state.global_step
        self.metrics["num_tokens"] = int(getattr(trainer, "_total_train_tokens", 0))

    def _fit_launched(self, prompts, chosen, rejected, idx, eval_data, processes: int) -> "TransformerRewardModel":
        """Train on every GPU: ``accelerate launch -m rlthf_plugin train reward`` in a subprocess."""
        from ..io.curated import write_rows

        with tempfile.TemporaryDirectory(prefix="rlthf-rm-launch-") as tmp:
            tmp = Path(tmp)
            counts = np.bincount(idx, minlength=len(prompts))
            keep = np.flatnonzero(counts)
            write_rows(tmp / "train.jsonl", [prompts[i] for i in keep], [chosen[i] for i in keep],
                       [rejected[i] for i in keep], amplification=counts[keep].tolist())
            cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(processes),
                   "-m", "rlthf_plugin", "train", "reward", "--data", str(tmp / "train.jsonl"),
                   "--out", str(tmp / "model"), "--config", str(tmp / "config.json"), "--eval-fraction", "0"]
            cfg = dataclasses.replace(self.config, num_processes=1)
            (tmp / "config.json").write_text(json.dumps(dataclasses.asdict(cfg)))
            if eval_data is not None:
                write_rows(tmp / "eval.jsonl", *eval_data)
                cmd += ["--eval-data", str(tmp / "eval.jsonl")]
            log.info("launching %s", " ".join(cmd))
            subprocess.run(cmd, check=True)
            loaded = type(self).load(tmp / "model")
        self.model, self.tokenizer, self._encoder = loaded.model, loaded.tokenizer, loaded._encoder
        self.metrics = loaded.metrics
        return self

    # -- scoring ---------------------------------------------------------------------------
    def _require_model(self) -> None:
        if self.model is None:
            raise RuntimeError("the reward model is not trained: call fit() or TransformerRewardModel.load(dir)")

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Rewards ``r(prompt, response)``, shape (N,) float32, in batches of ``score_batch_size``."""
        import torch

        self._require_model()
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        out = np.zeros(len(prompts), dtype=np.float32)
        if not len(prompts):
            return out
        device = hw.inference_device()
        model = self.model.to(device).eval()
        ids, _ = self._encoder.encode(prompts, responses)
        order = np.argsort([len(x) for x in ids], kind="stable")
        pad = self.tokenizer.pad_token_id
        bs = self.config.score_batch_size
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device != "cpu" and hw.bf16_supported() \
            else torch.autocast("cpu", enabled=False)
        with torch.inference_mode(), autocast:
            for start in tqdm(range(0, len(order), bs), desc="scoring", unit=" batch",
                              disable=not self.config.progress or len(order) <= bs):
                rows = order[start:start + bs]
                width = max(len(ids[i]) for i in rows)
                input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for j, i in enumerate(rows):
                    input_ids[j, :len(ids[i])] = torch.tensor(ids[i])
                    mask[j, :len(ids[i])] = 1
                logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
                out[rows] = logits.float().squeeze(-1).cpu().numpy()
        return out

    def margins(self, prompts: Sequence[str], response_a: Sequence[str], response_b: Sequence[str]) -> np.ndarray:
        """``r(prompt, a) - r(prompt, b)``, shape (N,) float32."""
        n = check_triples(prompts, response_a, response_b)
        rewards = self.score(list(prompts) * 2, list(response_a) + list(response_b))
        return rewards[:n] - rewards[n:]

    # -- persistence -----------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Weights (or the LoRA adapter), tokenizer and ``rlthf_reward.json`` into ``directory``."""
        from accelerate import PartialState

        self._require_model()
        directory = Path(directory)
        if not PartialState().is_main_process:
            return directory
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        meta = {"format": 1, "config": dataclasses.asdict(self.config), "eos_token": self.tokenizer.eos_token,
                "lora": self.config.lora, "metrics": jsonable(self.metrics)}
        (directory / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "TransformerRewardModel":
        """A model saved by :meth:`save` (full weights or a LoRA adapter over its base)."""
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        directory = Path(directory)
        meta_path = directory / META_FILE
        if not meta_path.exists():
            from ..errors import WorkspaceError

            raise WorkspaceError(f"{directory}: no {META_FILE}; not a reward model saved by rlthf")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        config = RewardTrainingConfig.from_dict(meta["config"])
        self = cls(config)
        dtype = getattr(torch, config.dtype)
        tokenizer = AutoTokenizer.from_pretrained(directory)
        if (directory / "adapter_config.json").exists():
            from ..errors import require

            peft = require("peft", "train")
            model = peft.AutoPeftModelForSequenceClassification.from_pretrained(directory, num_labels=1, dtype=dtype)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(directory, num_labels=1, dtype=dtype)
        self.config = dataclasses.replace(config, eos_token=meta.get("eos_token") or config.eos_token)
        self._attach(model, tokenizer)
        self.model.eval()
        self.metrics = meta.get("metrics", {})
        return self

