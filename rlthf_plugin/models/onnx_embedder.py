"""A sentence-transformers BERT-family model run by ONNX Runtime on CPU.

The model is exported once from its own weights (torch's exporter, eager attention so
ONNX Runtime's transformer optimizer can fuse attention, GELU and layer norms), checked
against the torch model on probe texts, and cached under the user's cache directory by
the hash of the model files; later runs load the cached file. Encoding tokenizes all
texts once, sorts them by token count into batches (little padding), runs the graph,
mean-pools over the attention mask, L2-normalises, and restores the input order.

Only models of the shape Transformer -> mean Pooling [-> Normalize] are exported (the
packaged all-MiniLM-L6-v2 among them); anything else raises :class:`OnnxUnavailable`,
on which :class:`~rlthf_plugin.models.embedder.SentenceEmbedder` falls back to torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

#: Bumped when the export recipe changes, so old cached files are not reused.
EXPORT_FORMAT = 1
#: Vectors from the exported graph must agree with torch's this well on the probe texts.
MIN_COSINE = 0.999
INSTALL_HINT = "pip install onnxruntime onnx  (both are dependencies of rlthf_plugin)"
_PROBES = ("a cat sat on the mat", "Quarterly tax filing deadlines for small businesses in 2024.",
           "def f(x):\n    return x * 2  # doubles", "Ünïcödé, emoji 🙂 and numbers 3.14159 " * 20, "ok")
_MODULES = ("sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
            "sentence_transformers.models.Normalize")


class OnnxUnavailable(RuntimeError):
    """The ONNX path cannot serve this model here (missing package, unsupported model,
    failed export or a failed agreement check); the message says which."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rlthf_plugin/onnx`` (``~/.cache/rlthf_plugin/onnx`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rlthf_plugin" / "onnx"


def _check_supported(model_dir: Path) -> None:
    modules_file = model_dir / "modules.json"
    if not modules_file.is_file():
        raise OnnxUnavailable(f"{model_dir} has no modules.json: not a sentence-transformers folder")
    modules = json.loads(modules_file.read_text())
    types = [m["type"] for m in modules]
    if types[:2] != list(_MODULES[:2]) or any(t != _MODULES[2] for t in types[2:]):
        raise OnnxUnavailable(f"{model_dir}: modules {types} are not Transformer -> Pooling [-> Normalize]")
    pooling = json.loads((model_dir / modules[1]["path"] / "config.json").read_text())
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v]
    if modes != ["pooling_mode_mean_tokens"]:
        raise OnnxUnavailable(f"{model_dir}: pooling {modes}; only mean pooling is exported")


def model_key(model_dir: Path, max_length: int) -> str:
    """Hash of the model files (names and contents), the export recipe and ``max_length``."""
    h = hashlib.sha256(f"format={EXPORT_FORMAT};max_length={max_length}".encode())
    for f in sorted(p for p in model_dir.rglob("*") if p.is_file() and p.suffix in (".json", ".txt", ".safetensors", ".bin")):
        h.update(str(f.relative_to(model_dir)).encode())
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:24]


def exported_model(model_dir: str | Path, *, max_length: int, cache_dir: Path | None = None) -> Path:
    """The cached ONNX file of ``model_dir``, exported and checked first when missing.

    Raises
    ------
    OnnxUnavailable
        onnxruntime/onnx missing, the model not supported, or the export failing or
        disagreeing with torch (cosine below ``MIN_COSINE`` on the probe texts).
    """
    model_dir = Path(model_dir)
    try:
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise OnnxUnavailable(f"onnxruntime is not installed ({INSTALL_HINT})") from e
    _check_supported(model_dir)
    target = (cache_dir or default_cache_dir()) / model_key(model_dir, max_length) / "model.onnx"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("exporting %s to ONNX (once; cached at %s)", model_dir, target)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        raw, fused = Path(tmp) / "raw.onnx", Path(tmp) / "model.onnx"
        try:
            st_model = _export(model_dir, raw, max_length)
            _optimize(raw, fused, st_model)
        except OnnxUnavailable:
            raise
        except Exception as e:  # the exporter and optimizer raise many types; keep the cause
            raise OnnxUnavailable(f"ONNX export of {model_dir} failed: {type(e).__name__}: {e}") from e
        cos = _agreement(fused, model_dir, st_model, max_length)
        if cos < MIN_COSINE:
            raise OnnxUnavailable(f"ONNX export of {model_dir} disagrees with torch: min cosine {cos:.5f} < {MIN_COSINE}")
        os.replace(fused, target)  # atomic: a concurrent or crashed export never leaves half a file
    (target.parent / "meta.json").write_text(json.dumps(
        {"model": str(model_dir), "max_length": max_length, "format": EXPORT_FORMAT, "probe_min_cosine": cos}))
    return target


def _export(model_dir: Path, out: Path, max_length: int):
    import torch
    from sentence_transformers import SentenceTransformer

    st_model = SentenceTransformer(str(model_dir), device="cpu")
    st_model.max_seq_length = max_length
    bert = st_model[0].auto_model.eval()
    # Eager attention exports as plain MatMul/Softmax, which the optimizer fuses; SDPA does not.
    bert.set_attn_implementation("eager")
    names = _input_names(st_model.tokenizer)
    enc = st_model.tokenizer(["hello world", "a slightly longer probe text"], padding=True, return_tensors="pt")

    class LastHidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return self.inner(**dict(zip(names, inputs))).last_hidden_state

    axes = {n: {0: "batch", 1: "tokens"} for n in (*names, "last_hidden_state")}
    # The tracer warns about shape checks it freezes; the probe agreement check below is
    # what shows the graph is right for other batch sizes and lengths.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(LastHidden(bert), tuple(enc[n] for n in names), str(out), input_names=list(names),
                          output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False)
    bert.set_attn_implementation("sdpa")
    return st_model


def _optimize(raw: Path, out: Path, st_model) -> None:
    """Fuse attention, GELU and layer norms for BERT; other model types keep the plain graph."""
    config = st_model[0].auto_model.config
    if config.model_type != "bert":
        os.replace(raw, out)
        return
    from onnxruntime.transformers.optimizer import optimize_model

    opt = optimize_model(str(raw), model_type="bert", num_heads=config.num_attention_heads,
                         hidden_size=config.hidden_size, opt_level=1)
    opt.save_model_to_file(str(out))


def _agreement(path: Path, model_dir: Path, st_model, max_length: int) -> float:
    """Smallest cosine between the ONNX and the torch vectors of the probe texts."""
    ref = st_model.encode(list(_PROBES), normalize_embeddings=True, convert_to_numpy=True)
    got = OnnxEncoder(path, model_dir, max_length=max_length).encode(list(_PROBES), batch_size=2)
    return float(np.min(np.sum(ref * got, axis=1)))


def _input_names(tokenizer) -> tuple[str, ...]:
    return tuple(n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names)


class OnnxEncoder:
    """Texts -> L2-normalised mean-pooled vectors ``(N, d)`` float32 with ONNX Runtime (CPU).

    Parameters
    ----------
    onnx_path : path
        From :func:`exported_model`.
    model_dir : path
        The model folder (its tokenizer is used).
    max_length : int
        Tokens per text; longer texts are truncated (as sentence-transformers does).
    threads : int or None, default None
        ONNX Runtime intra-op threads; None = its default (the physical cores).
    """

    def __init__(self, onnx_path: str | Path, model_dir: str | Path, *, max_length: int, threads: int | None = None):
        import onnxruntime as ort
        from transformers import AutoTokenizer

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.max_length = max_length
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.dimension = int(self.session.get_outputs()[0].shape[-1])

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """``(N, d)`` float32, one unit-norm row per text, in the order of ``texts``."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not len(texts):
            return out
        ids = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        # Length buckets: batches of similar token counts waste little work on padding.
        order = np.argsort([-len(x) for x in ids["input_ids"]], kind="stable")
        pad = self.tokenizer.pad_token_id or 0
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            width = len(ids["input_ids"][rows[0]])
            feeds = {}
            for name in self.inputs:
                arr = np.full((len(rows), width), pad if name == "input_ids" else 0, dtype=np.int64)
                for j, r in enumerate(rows):
                    seq = ids[name][r]
                    arr[j, :len(seq)] = seq
                feeds[name] = arr
            hidden = self.session.run(None, feeds)[0]
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            out[rows] = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return out
