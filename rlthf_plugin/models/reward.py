"""Reward models behind one small interface: fit on labeled pairs, score pairs -> margins.

A reward model r(prompt, response) -> float is trained with the Bradley-Terry loss
``-log sigmoid(r(chosen) - r(rejected))``. RLTHF only needs margins
``r(response_a) - r(response_b)`` of pairs; the selection core takes them as arrays.

Implementations: ``EmbeddingRewardModel`` (a Bradley-Terry head on frozen sentence
embeddings, this module) and ``TransformerRewardModel`` (TRL's RewardTrainer on a
sequence-classification backbone, :mod:`rlthf_plugin.models.reward_trl`).
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class RewardModel(Protocol):
    """Fit on (prompt, chosen, rejected) triples; score (prompt, response) pairs."""

    def fit(self, prompts: Sequence[str], chosen: Sequence[str], rejected: Sequence[str], *,
            weights: Sequence[float] | None = None) -> "RewardModel":
        """Train on preference triples; ``weights`` (N,) repeat/amplify pairs (alpha)."""
        ...

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Rewards, shape (N,) float."""
        ...

    def margins(self, prompts: Sequence[str], response_a: Sequence[str], response_b: Sequence[str]) -> np.ndarray:
        """``r(a) - r(b)`` per pair, shape (N,) float."""
        ...
