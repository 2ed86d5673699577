"""An LLM judge of preference pairs: what it is asked, what it replies, how it is opened.

Two kinds of judge, named by a spec string:

- ``openai:MODEL`` (:class:`~rlthf_plugin.models.judge.openai.OpenAIJudge`): anything that
  speaks the OpenAI chat completions API (OpenAI, vLLM, Ollama, llama.cpp server, TGI,
  ``transformers serve``); it writes a rationale and a preference, parsed from the text.
- ``hf:NAME_OR_PATH`` (:class:`~rlthf_plugin.models.judge.hf.HFJudge`): a local causal LM
  through transformers; it compares the probability of answering A vs B, batched, on the
  GPU when present.

A judge is opened from its spec by :func:`rlthf_plugin.models.judge.factory.open_judge`.
The ledger workflow around a judge (which pairs to ask, caching the answers) is
:mod:`rlthf_plugin.loop.judging`; this package never touches the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from ...pairs import PreferencePair

#: Task types with criteria in the shipped template.
TASKS = ("dialogue", "summarization")


@dataclass(frozen=True)
class Call:
    """One question to a judge: a pair shown in one order."""

    pair: PreferencePair
    order: str
    messages: list[dict]


@dataclass(frozen=True)
class Reply:
    """A judge's reply to one :class:`Call`, in the order shown.

    ``raw`` is the answer text (or, for the hf judge, the two probabilities), stored with
    the label; ``label`` is A, B, tie or parse_error.
    """

    label: str
    raw: str
    confidence: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Judge(Protocol):
    """What :func:`label_pairs` needs from a judge.

    ``name`` is the ledger's ``judge`` column. ``run`` answers every call and hands each
    reply to ``on_reply`` as soon as it has it (so a crash loses at most the calls in
    flight); it raises :class:`~rlthf_plugin.errors.JudgeError` when the judge fails.
    """

    name: str
    #: (input, output) price in dollars per million tokens, for the cost estimate; None: unknown.
    prices: tuple[float, float] | None

    def run(self, calls: Sequence[Call], on_reply: Callable[[Call, Reply], None]) -> None:
        ...


#: Dollars per million (input, output) tokens of some hosted judges, for the progress
#: bar's estimate only (list prices change: override with [judge] price_input/price_output).
KNOWN_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
}


def estimate_cost(prices: tuple[float, float] | None, prompt_tokens: int, completion_tokens: int) -> float | None:
    """Dollars for these tokens at (input, output) dollars per million tokens; None when unknown."""
    if prices is None:
        return None
    return (prompt_tokens * prices[0] + completion_tokens * prices[1]) / 1e6


__all__ = ["Call", "Reply", "Judge", "estimate_cost", "KNOWN_PRICES", "TASKS"]
