"""What the reward-model and DPO trainers share: the common config fields, checking
triples, amplification, JSON metadata."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np

DTYPES = ("float32", "bfloat16")


@dataclass
class TrainingConfig:
    """The options both trainers map onto TRL (``RewardConfig`` / ``DPOConfig``).

    Each subclass lists the defaults it changes (its docstring says which differ from TRL's).
    """

    #: What :meth:`from_dict` calls these options in its error message.
    what: ClassVar[str] = "training"

    #: AdamW learning rate.
    learning_rate: float = 1e-4
    #: Passes over the (amplified) training set.
    num_train_epochs: float = 1.0
    #: Stop after this many optimizer steps; -1 = run the epochs.
    max_steps: int = -1
    #: Fraction of the steps spent warming the learning rate up (paper 0.1); must be < 1.
    warmup_ratio: float = 0.1
    #: Pairs per device per step (each pair is two sequences).
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 16
    #: Steps accumulated per optimizer step (global batch = devices x batch x this; paper 128).
    gradient_accumulation_steps: int = 1
    #: Tokens of prompt + response.
    max_length: int = 512
    #: LoRA adapters instead of full fine-tuning (peft).
    lora: bool = False
    lora_r: int = 32
    lora_alpha: int = 64
    lora_dropout: float = 0.05
    #: Modules that get adapters; ``all-linear`` = every linear layer but the head.
    lora_target_modules: str = "all-linear"
    #: None = automatic (bf16 when a bf16 GPU is present).
    bf16: bool | None = None
    #: None = automatic (on with a GPU, off on CPU).
    gradient_checkpointing: bool | None = None
    #: Weights dtype when loading: ``float32`` or ``bfloat16``.
    dtype: str = "float32"
    #: Evaluate every this many steps when an eval split exists; None = the trainer's default.
    eval_steps: int | None = None
    logging_steps: int = 10
    #: ``none``, ``tensorboard``, ``wandb`` (or a comma list).
    report_to: str = "none"
    seed: int = 0
    #: Show progress bars (tqdm).
    progress: bool = True

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {self.dtype!r}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
                     "lora_r"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, values: dict) -> Any:
        """The config from a dict (a TOML table); unknown keys are an error naming the known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown {cls.what} option(s) {unknown}; known: {sorted(known)}")
        return cls(**values)


def check_triples(prompts: Sequence[str], chosen: Sequence[str], rejected: Sequence[str]) -> int:
    """The common length of the three sequences; ValueError naming the lengths when they differ."""
    n = len(prompts)
    if len(chosen) != n or len(rejected) != n:
        raise ValueError(f"prompts, chosen and rejected must have one length; got {n}, {len(chosen)}, {len(rejected)}")
    return n


def amplify(n: int, weights: Sequence[float] | None) -> np.ndarray:
    """Row indices with row i repeated ``weights[i]`` times (amplification alpha).

    Parameters
    ----------
    n : int
        Number of rows.
    weights : sequence of float, shape (n,), or None
        Non-negative integers (4.0 is fine, 2.5 is not); 0 leaves the row out. None = all 1.

    Returns
    -------
    np.ndarray of int, shape (sum(weights),)
    """
    if weights is None:
        return np.arange(n)
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), got {w.shape}")
    bad = np.flatnonzero((w < 0) | (np.abs(w - np.round(w)) > 1e-9) | ~np.isfinite(w))
    if bad.size:
        raise ValueError(f"weights are repeat counts (non-negative integers); row {int(bad[0])} has {w[bad[0]]}")
    return np.repeat(np.arange(n), np.round(w).astype(int))


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars made plain and anything else unknown made a string (for metadata JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


__all__ = ["DTYPES", "TrainingConfig", "amplify", "check_triples", "jsonable"]
