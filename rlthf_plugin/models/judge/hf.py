"""A local causal LM as a judge: the probability of answering A vs B, batched.

The chat prompt is the template's, followed by the start of the assistant's answer
(``score_prefix``, by default ``preference: "Response``); one forward pass gives the
next-token probabilities of the two ``choices`` (`` A`` and `` B``). The larger wins; its
share of the two is the confidence. No rationale is generated (that would cost a full
generation per call); a flip between the two orders is still a tie, as for any judge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ...errors import ConfigError
from .base import Call, Reply
from .prompt import JudgeTemplate


@dataclass
class HFJudge:
    """A transformers causal LM (hub name or local folder) as a judge.

    Parameters
    ----------
    model : str
        Name or path for ``AutoModelForCausalLM.from_pretrained`` (offline: a folder).
    template : JudgeTemplate
        Gives ``score_prefix`` and ``choices``.
    batch_size : int, default 8
        Calls per forward pass (sorted by length, left-padded).
    device : str or None, default None
        None picks ``cuda`` when a GPU is present (bf16 there), else CPU (float32).
    max_length : int or None, default None
        Tokens kept per prompt (from the left end cut); None = the model's limit.
    """

    model: str
    template: JudgeTemplate
    batch_size: int = 8
    device: str | None = None
    max_length: int | None = None
    prices: tuple[float, float] | None = None
    _loaded: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    @property
    def name(self) -> str:
        return f"hf:{self.model}"

    def load(self) -> tuple[Any, Any, list[int]]:
        """(model, tokenizer, [token id of choice A, of choice B]); loaded once."""
        if self._loaded is not None:
            return self._loaded
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ..embedder import torch_device

        device = torch_device(self.device)
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.model)
            model = AutoModelForCausalLM.from_pretrained(self.model, dtype=dtype).to(device).eval()
        except OSError as e:
            raise ConfigError(f"--judge hf:{self.model}: cannot load the model ({e})") from e
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        ids = []
        for choice in self.template.choices:
            tokens = tokenizer.encode(choice, add_special_tokens=False)
            if not tokens:
                raise ConfigError(f"{self.template.path}: choice {choice!r} is no token for {self.model}")
            ids.append(tokens[0])
        if ids[0] == ids[1]:
            raise ConfigError(f"{self.template.path}: choices {self.template.choices} start with the same token "
                              f"for {self.model}; pick choices whose first tokens differ")
        self._loaded = (model, tokenizer, ids)
        return self._loaded

    def prompt_text(self, call: Call, tokenizer: Any) -> str:
        """The chat prompt of ``call`` with the assistant's answer begun (``score_prefix``)."""
        messages = call.messages
        if not getattr(tokenizer, "chat_template", None):
            text = "\n\n".join(m["content"] for m in messages) + "\n\n"
        else:
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text + self.template.score_prefix

    def run(self, calls: Sequence[Call], on_reply: Callable[[Call, Reply], None]) -> None:
        """Score ``calls`` in batches of similar length; ``on_reply`` runs for each one."""
        import torch

        model, tokenizer, (id_a, id_b) = self.load()
        texts = [self.prompt_text(c, tokenizer) for c in calls]
        limit = self.max_length or getattr(model.config, "max_position_embeddings", None)
        encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        if limit:
            encoded = [ids[-limit:] for ids in encoded]
        order = sorted(range(len(calls)), key=lambda i: len(encoded[i]))
        device = next(model.parameters()).device
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            batch = tokenizer.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="pt")
            with torch.inference_mode():
                logits = model(input_ids=batch["input_ids"].to(device),
                               attention_mask=batch["attention_mask"].to(device)).logits[:, -1, :]
            logp = torch.log_softmax(logits.float(), dim=-1)
            pair = torch.softmax(logp[:, [id_a, id_b]], dim=-1)
            for row, i in enumerate(idx):
                p_a, p_b = float(pair[row, 0]), float(pair[row, 1])
                label = "A" if p_a > p_b else "B" if p_b > p_a else "tie"
                raw = (f"P(A)={p_a:.4f} P(B)={p_b:.4f} "
                       f"logp(A)={float(logp[row, id_a]):.3f} logp(B)={float(logp[row, id_b]):.3f}")
                on_reply(calls[i], Reply(label, raw, max(p_a, p_b), prompt_tokens=len(encoded[i])))
