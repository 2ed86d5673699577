"""The ONNX Runtime path of the packaged MiniLM: export once, agree with torch, fall back."""

import gzip
import json
import logging
import shutil
import sys

import numpy as np
import pytest

from rlthf_plugin.models import onnx_embedder as ox
from rlthf_plugin.models.embedder import SentenceEmbedder, resolve_model_path

DEV = "/work/shared/data/dev/human_vs_ai_pairs.jsonl.gz"


def dev_texts(n=40):
    """Real prompts and responses of varied length (dev data when present, else a fixed set)."""
    try:
        with gzip.open(DEV, "rt") as fh:
            rows = [json.loads(line) for _, line in zip(range(n), fh)]
        texts = [t for r in rows for t in (r["prompt"], r["response_a"]) if isinstance(t, str) and t]
    except OSError:
        texts = []
    return (texts or [f"text number {i} " * (i % 37 + 1) for i in range(n)])[:n]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def exported(onnx_cache):
    return ox.exported_model(resolve_model_path("packaged:all-MiniLM-L6-v2"), max_length=256, cache_dir=onnx_cache)


def test_onnx_agrees_with_torch_and_keeps_the_order(exported, monkeypatch, onnx_cache):
    monkeypatch.setattr(ox, "default_cache_dir", lambda: onnx_cache)
    texts = dev_texts()
    fast = SentenceEmbedder(backend="onnx")
    torch_ = SentenceEmbedder(backend="torch")
    v, ref = fast.encode(texts), torch_.encode(texts)
    assert fast.resolved_backend == "onnx" and torch_.resolved_backend == "torch"
    assert v.shape == ref.shape == (len(texts), 384) and v.dtype == np.float32
    assert np.min(np.sum(v * ref, axis=1)) >= 0.999
    assert fast.name == torch_.name  # same vectors up to rounding: one ledger cache
    perm = np.random.default_rng(0).permutation(len(texts))
    assert np.allclose(fast.encode([texts[i] for i in perm]), v[perm], atol=1e-5)
    assert fast.encode([]).shape == (0, 384)


def test_export_is_cached_and_recorded(exported, onnx_cache):
    again = ox.exported_model(resolve_model_path("packaged:all-MiniLM-L6-v2"), max_length=256, cache_dir=onnx_cache)
    assert again == exported and again.stat().st_mtime_ns == exported.stat().st_mtime_ns
    meta = json.loads((exported.parent / "meta.json").read_text())
    assert meta["probe_min_cosine"] >= ox.MIN_COSINE and meta["max_length"] == 256
    other = ox.model_key(exported.parent.parent, 256)  # a different folder, a different key
    assert other != exported.parent.name


def test_unsupported_model_falls_back_to_torch_with_a_warning(tmp_path, caplog):
    model = tmp_path / "cls-pooled"
    shutil.copytree(resolve_model_path("packaged:all-MiniLM-L6-v2"), model)
    cfg = model / "1_Pooling" / "config.json"
    pooling = json.loads(cfg.read_text())
    pooling.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    cfg.write_text(json.dumps(pooling))
    with pytest.raises(ox.OnnxUnavailable, match="only mean pooling"):
        SentenceEmbedder(str(model), backend="onnx").encode(["x"])
    auto = SentenceEmbedder(str(model), backend="auto")
    with caplog.at_level(logging.WARNING):
        v = auto.encode(["a cat sat on the mat"])
    assert auto.resolved_backend == "torch" and v.shape == (1, 384)
    assert "torch, not ONNX Runtime" in caplog.text and "only mean pooling" in caplog.text


def test_missing_onnxruntime_names_the_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ox.OnnxUnavailable, match="pip install onnxruntime"):
        ox.exported_model(resolve_model_path("packaged:all-MiniLM-L6-v2"), max_length=256, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="known: auto, onnx, torch"):
        SentenceEmbedder(backend="openvino")
