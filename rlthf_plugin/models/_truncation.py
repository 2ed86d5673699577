"""Fit (prompt, response) into ``max_length`` tokens by truncating, never by dropping.

TRL's RewardTrainer drops every pair whose chosen or rejected text is longer than
``max_length``, and DPOTrainer drops every pair whose prompt alone fills it. On real data
(long multi-turn prompts) that silently removes exactly the long pairs. Here the prompt is
truncated from the LEFT (the end of the conversation, next to the response, is what the
response answers) and the response is kept whole; only a response that alone exceeds the
budget is cut at its end, and then the prompt keeps its last ``budget // 4`` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

#: Share of the token budget kept for the prompt's tail when the response alone is too long.
MIN_PROMPT_SHARE = 0.25


def fit_lengths(n_prompt: int, n_response: int, budget: int) -> tuple[int, int]:
    """How many prompt tokens (from the end) and response tokens (from the start) to keep.

    Parameters
    ----------
    n_prompt, n_response : int >= 0
        Token counts of the prompt and the response.
    budget : int >= 1
        Tokens available for both together.

    Returns
    -------
    (keep_prompt, keep_response) : tuple of int
        ``keep_prompt + keep_response <= budget``; equal to the inputs when they fit.
    """
    if budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    if n_prompt + n_response <= budget:
        return n_prompt, n_response
    reserve = min(n_prompt, int(budget * MIN_PROMPT_SHARE))
    if n_response <= budget - reserve:  # the usual case: the prompt loses its start
        return budget - n_response, n_response
    return reserve, budget - reserve


@dataclass
class PairEncoder:
    """Token ids ``prefix + prompt_tail + response + [eos] + suffix`` of at most ``max_length``.

    ``prefix``/``suffix`` are the tokenizer's own special tokens (``[CLS]`` / ``[SEP]`` for
    BERT, ``<s>`` for Llama); ``eos`` is appended unless the suffix already ends with it
    (BERT with ``eos_token="[SEP]"``), as TRL appends the eos token to every text.
    """

    tokenizer: object
    max_length: int
    prefix: list[int]
    suffix: list[int]
    eos: list[int]

    @classmethod
    def for_tokenizer(cls, tokenizer, max_length: int) -> "PairEncoder":
        probe = "hello world"
        bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
        full = tokenizer(probe, add_special_tokens=True)["input_ids"]
        start = next((i for i in range(len(full) - len(bare) + 1) if full[i:i + len(bare)] == bare), None)
        if start is None:  # a tokenizer that rewrites the text when adding specials: no specials
            prefix, suffix = [], []
        else:
            prefix, suffix = full[:start], full[start + len(bare):]
        eos_id = tokenizer.eos_token_id
        eos = [] if eos_id is None or (suffix and suffix[-1] == eos_id) else [eos_id]
        overhead = len(prefix) + len(suffix) + len(eos)
        if max_length <= overhead + 1:
            raise ValueError(f"max_length={max_length} leaves no room for text after {overhead} special tokens")
        return cls(tokenizer, max_length, list(prefix), list(suffix), eos)

    @property
    def budget(self) -> int:
        return self.max_length - len(self.prefix) - len(self.suffix) - len(self.eos)

    def encode(self, prompts: Sequence[str], responses: Sequence[str]) -> tuple[list[list[int]], list[bool]]:
        """Ids of each (prompt, response), shape (N,) lists, and whether each one was truncated."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        tok = self.tokenizer
        p_ids = tok(list(prompts), add_special_tokens=False)["input_ids"] if len(prompts) else []
        r_ids = tok(list(responses), add_special_tokens=False)["input_ids"] if len(responses) else []
        out, truncated = [], []
        for p, r in zip(p_ids, r_ids):
            keep_p, keep_r = fit_lengths(len(p), len(r), self.budget)
            truncated.append(keep_p < len(p) or keep_r < len(r))
            out.append(self.prefix + p[len(p) - keep_p:] + r[:keep_r] + self.eos + self.suffix)
        return out, truncated


def left_truncate_text(tokenizer, text: str, max_tokens: int) -> tuple[str, bool]:
    """The tail of ``text`` that tokenizes to at most ``max_tokens`` tokens (cut on a token start).

    Used for DPO, where TRL tokenizes the text itself: the cut is made at the character
    offset where a kept token begins, so re-tokenizing gives the same tail.
    """
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = enc["input_ids"]
    if len(ids) <= max_tokens:
        return text, False
    if max_tokens <= 0:
        return "", True
    offsets = enc["offset_mapping"]
    start = offsets[len(ids) - max_tokens][0]
    return text[start:], True
