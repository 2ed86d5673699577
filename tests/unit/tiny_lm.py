"""The tiny local causal LM of :mod:`rlthf_plugin.models.tiny`, on a fixed small corpus."""

from __future__ import annotations

from pathlib import Path

from rlthf_plugin.models.tiny import build_tiny_causal_lm as _build

CORPUS = [
    "The cat sat on the mat and looked at the garden.",
    "Quarterly tax filings are due at the end of the month.",
    "Write a short poem about the sea, the wind and the night.",
    "def add(a, b): return a + b  # a tiny Python function",
    "Hawaii has beaches, volcanoes, and a rich cultural history.",
    "Photosynthesis turns light, water and carbon dioxide into sugar.",
] * 20


def build_tiny_causal_lm(folder: Path, *, seed: int = 0) -> Path:
    return _build(folder, CORPUS, vocab_size=300, hidden_size=32, layers=2, heads=4, max_positions=256, seed=seed)
