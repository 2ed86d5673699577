"""LLM judges: the prompt (:mod:`.prompt`), an OpenAI-compatible server (:mod:`.openai`),
a local causal LM (:mod:`.hf`), what they share (:mod:`.base`) and opening one from its
spec (:mod:`.factory`).

Never touches the ledger: :mod:`rlthf_plugin.loop.judging` asks a judge and stores its labels.
"""

from .base import KNOWN_PRICES, TASKS, Call, Judge, Reply, estimate_cost
from .factory import open_judge

__all__ = ["Call", "Judge", "KNOWN_PRICES", "Reply", "TASKS", "estimate_cost", "open_judge"]
