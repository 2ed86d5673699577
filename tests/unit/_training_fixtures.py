"""Small real samples for the training tests (from the shipped dev pairs)."""

from __future__ import annotations

import gzip
import json

import numpy as np

from rlthf_plugin.data import DEV_PAIRS


def dev_rows(n: int, *, seed: int = 0) -> list[dict]:
    """``n`` dev pairs with two non-empty string responses, shuffled with ``seed``."""
    with gzip.open(DEV_PAIRS, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    rows = [r for r in rows if all(isinstance(r.get(k), str) and r[k].strip() for k in ("response_a", "response_b"))]
    rng = np.random.default_rng(seed)
    return [rows[i] for i in rng.permutation(len(rows))[:n]]


def easy_split(rows: list[dict], *, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """An easy constructed preference: chosen = the real answer to the prompt, rejected = a
    short fragment (6 words) of an answer to another prompt."""
    rng = np.random.default_rng(seed)
    prompts = [r["prompt"] for r in rows]
    chosen = [r["response_a"] for r in rows]
    rejected = []
    for i in range(len(rows)):
        other = rows[(i + 1 + int(rng.integers(len(rows) - 1))) % len(rows)]["response_b"].split()
        start = int(rng.integers(max(len(other) - 6, 1)))
        rejected.append(" ".join(other[start:start + 6]))
    return prompts, chosen, rejected


def tiny_policy(directory, rows: list[dict]):
    """A tiny Llama with a tokenizer trained on the sample's texts (see rlthf_plugin.models.tiny)."""
    from rlthf_plugin.models.tiny import build_tiny_causal_lm

    texts = [r[k] for r in rows for k in ("prompt", "response_a", "response_b")]
    return build_tiny_causal_lm(directory, texts, vocab_size=400)
