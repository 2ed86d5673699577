"""Response embeddings from a causal LM's last hidden layer (the REAL paper's embedder).

:class:`CausalLMEmbedder` runs any Hugging Face causal LM (a hub name or a local folder)
over each text alone, mean-pools the last hidden layer over the attention mask and
L2-normalises the result, as REAL (arXiv 2409.17169) does with the policy model. Padding
never changes a text's vector: padded positions are excluded from the mean.

:func:`load_embedder` turns the CLI's ``--embedder`` spec into an :class:`Embedder`.
Wrap either in :class:`~rlthf_plugin.models.vectors.EmbeddingCache` so each text is
embedded once.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from ..config import PACKAGED_EMBEDDER
from ..errors import ConfigError
from .embedder import Embedder, SentenceEmbedder, torch_device


class CausalLMEmbedder:
    """Mean-pooled last hidden layer of a causal LM, L2-normalised.

    Parameters
    ----------
    model : str
        A Hugging Face causal LM name or a local folder saved with ``save_pretrained``
        (anything ``AutoModelForCausalLM`` loads; its backbone runs, the LM head does not).
    batch_size : int, default 16
        Texts per forward pass. Texts are sorted by length first, so batches pad little.
    max_length : int, default 512
        Tokens per text; longer texts are truncated (the paper used 128-512).
    device : str or None, default None
        ``cpu``, ``cuda``, ``cuda:1``...; None picks the GPU when present.
    dtype : {"auto", "float32", "bfloat16", "float16"}, default "auto"
        ``auto`` = bfloat16 on a GPU, float32 on the CPU. Pooling and normalisation are
        done in float32 either way.
    device_map : str or None, default None
        Passed to ``from_pretrained`` (e.g. ``"auto"`` to spread a large model over
        every GPU with accelerate); ``device`` is then ignored.
    progress : bool, default True
        Show a progress bar over batches.
    """

    def __init__(self, model: str, *, batch_size: int = 16, max_length: int = 512, device: str | None = None,
                 dtype: str = "auto", device_map: str | None = None, progress: bool = True):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {max_length}")
        if dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be one of auto, float32, bfloat16, float16; got {dtype!r}")
        self.model_name = model
        self.name = f"lm-mean:{model}:{max_length}"
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self.dtype = dtype
        self.device_map = device_map
        self.progress = progress
        self._model = None
        self._tokenizer = None

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = torch_device(self.device)
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(
            self.dtype, torch.bfloat16 if device.startswith("cuda") else torch.float32)
        tok = AutoTokenizer.from_pretrained(self.model_name)
        if tok.pad_token is None:  # most causal LMs ship without one; any id works under the mask
            tok.pad_token = tok.eos_token or tok.unk_token
            if tok.pad_token is None:
                tok.add_special_tokens({"pad_token": "<pad>"})
        tok.padding_side = "right"
        kwargs = {"dtype": dtype}
        if self.device_map is not None:
            kwargs["device_map"] = self.device_map
        # The backbone without the LM head: its last_hidden_state is the last hidden layer.
        model = AutoModelForCausalLM.from_pretrained(self.model_name, **kwargs).base_model
        if self.device_map is None:
            model = model.to(device)
        model.eval()
        self._model, self._tokenizer = model, tok

    @property
    def dimension(self) -> int:
        if self._model is None:
            self._load()
        return int(self._model.config.hidden_size)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``: ``(N, hidden_size)`` float32, unit rows, in the input order."""
        import torch

        texts = list(texts)
        if self._model is None:
            self._load()
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        order = np.argsort([-len(t) for t in texts], kind="stable")
        device = next(self._model.parameters()).device
        bar = tqdm(total=len(texts), desc=f"embedding with {self.model_name}", unit=" texts",
                   disable=not self.progress, leave=False)
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                idx = order[start:start + self.batch_size]
                batch = self._tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                        max_length=self.max_length, return_tensors="pt")
                batch = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
                hidden = self._model(**batch).last_hidden_state
                out[idx] = mean_pool(hidden, batch["attention_mask"]).cpu().numpy()
                bar.update(len(idx))
        bar.close()
        return out


def mean_pool(hidden, attention_mask):
    """Mean of ``hidden`` ``(B, T, H)`` over the positions where ``attention_mask`` ``(B, T)``
    is 1, L2-normalised, in float32: ``(B, H)``. A text of zero tokens gives a zero row."""
    import torch

    mask = attention_mask.to(torch.float32).unsqueeze(-1)
    summed = (hidden.to(torch.float32) * mask).sum(dim=1)
    mean = summed / mask.sum(dim=1).clamp(min=1.0)
    return torch.nn.functional.normalize(mean, p=2, dim=-1)


def load_embedder(spec: str = "packaged", *, batch_size: int | None = None, max_length: int | None = None,
                  device: str | None = None) -> Embedder:
    """The embedder an ``--embedder`` spec names.

    ``packaged`` (the bundled all-MiniLM-L6-v2), ``st:NAME_OR_PATH`` (a sentence-transformers
    model), ``hf:NAME_OR_PATH`` (a causal LM, :class:`CausalLMEmbedder`).
    """
    kwargs = {k: v for k, v in (("batch_size", batch_size), ("max_length", max_length)) if v is not None}
    if spec in ("packaged", PACKAGED_EMBEDDER):
        return SentenceEmbedder(PACKAGED_EMBEDDER, device=device, **kwargs)
    kind, _, name = spec.partition(":")
    if kind == "st" and name:
        return SentenceEmbedder(name, device=device, **kwargs)
    if kind == "hf" and name:
        return CausalLMEmbedder(name, device=device, **kwargs)
    raise ConfigError(f"unknown embedder '{spec}': use packaged, st:NAME_OR_PATH or hf:NAME_OR_PATH")
