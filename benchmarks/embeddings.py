"""CPU embedding throughput: today's torch path beside the ONNX Runtime path, same run.

Real texts (prompts and responses of the dev pairs, ``human_vs_ai_pairs.jsonl.gz``; a
seeded sample of distinct texts), the packaged all-MiniLM-L6-v2 at ``--max-length``
tokens. Runs are interleaved (torch, onnx, onnx-int8, torch, ...) so a change of load on
the shared machine hits all alike; texts/s is the median over ``--repeats``. Agreement is
the cosine between each path's vector and torch's for the same text (min and mean).

- ``torch``: ``SentenceEmbedder(backend="torch")``, i.e. sentence-transformers' encode
  (which already sorts each call's texts by length) in the cache's chunks of 2048;
- ``onnx``: ``SentenceEmbedder(backend="onnx")``, the default on CPU: the exported and
  fused fp32 graph, batches bucketed by token count;
- ``onnx-int8``: the same graph with onnxruntime's dynamic int8 quantisation (reported to
  show why it is not the default: it must reach cosine 0.999).

    PYTHONPATH=. python -m benchmarks.embeddings [--texts 300] [--repeats 3] [--max-length 256]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks._report import write_section
from rlthf_plugin.models import onnx_embedder as ox
from rlthf_plugin.models.embedder import SentenceEmbedder, resolve_model_path

DEV = Path(os.environ.get("RLTHF_DEV_DATA", "/work/shared/data/dev")) / "human_vs_ai_pairs.jsonl.gz"
CHUNK = 2048  # EmbeddingCache's chunk


def dev_texts(n: int, seed: int = 0) -> list[str]:
    texts: list[str] = []
    with gzip.open(DEV, "rt") as fh:
        for line in fh:
            r = json.loads(line)
            texts += [t for t in (r.get("prompt"), r.get("response_a"), r.get("response_b")) if isinstance(t, str) and t]
    texts = list(dict.fromkeys(texts))
    pick = np.random.default_rng(seed).choice(len(texts), size=min(n, len(texts)), replace=False)
    return [texts[i] for i in pick]


def int8_encoder(max_length: int) -> ox.OnnxEncoder:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model_dir = resolve_model_path("packaged:all-MiniLM-L6-v2")
    fp32 = ox.exported_model(model_dir, max_length=max_length)
    q8 = fp32.with_name("model.int8.onnx")
    if not q8.exists():
        quantize_dynamic(str(fp32), str(q8), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": 1})  # 1 = FLOAT, for the fused ops
    return ox.OnnxEncoder(q8, model_dir, max_length=max_length)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    texts = dev_texts(args.texts)
    torch_emb = SentenceEmbedder(backend="torch", max_length=args.max_length)
    t0 = time.perf_counter()
    onnx_emb = SentenceEmbedder(backend="onnx", max_length=args.max_length)
    _ = onnx_emb.resolved_backend  # export (first time only) or load
    setup = time.perf_counter() - t0
    q8 = int8_encoder(args.max_length)
    runs = {
        "torch (today)": lambda: np.concatenate([torch_emb.encode(texts[i:i + CHUNK]) for i in range(0, len(texts), CHUNK)]),
        "onnx (default)": lambda: onnx_emb.encode(texts),
        "onnx-int8": lambda: q8.encode(texts, batch_size=64),
    }
    torch_emb.encode(texts[:8]), onnx_emb.encode(texts[:8]), q8.encode(texts[:8])  # loads out of the timing
    seconds: dict[str, list[float]] = {k: [] for k in runs}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, f in runs.items():
            t = time.perf_counter()
            vectors[name] = f()
            seconds[name].append(time.perf_counter() - t)
            print(name, f"{len(texts) / seconds[name][-1]:.1f} texts/s", flush=True)
    ref = vectors["torch (today)"]
    base = len(texts) / statistics.median(seconds["torch (today)"])
    rows = []
    for name in runs:
        rate = len(texts) / statistics.median(seconds[name])
        cos = np.sum(vectors[name] * ref, axis=1)
        rows.append(f"| {name} | {rate:.1f} | {rate / base:.2f}x | {cos.min():.6f} | {cos.mean():.6f} | "
                    f"{' / '.join(f'{len(texts) / s:.1f}' for s in seconds[name])} |")
    lengths = [len(ids) for ids in onnx_emb._onnx.tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"]]
    md = "\n".join([
        "## CPU embeddings: torch vs ONNX Runtime (`benchmarks/embeddings.py`)",
        "",
        f"{len(texts)} distinct real texts from the dev pairs (seeded sample), packaged all-MiniLM-L6-v2, "
        f"max {args.max_length} tokens (median {int(np.median(lengths))}, {np.mean(np.array(lengths) == args.max_length):.0%} truncated), "
        f"batch 64, {platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs "
        f"(load average {os.getloadavg()[0]:.1f} at the end). Median of {args.repeats} interleaved runs.",
        "",
        "| path | texts/s | vs torch | min cos vs torch | mean cos | runs (texts/s) |",
        "|---|---:|---:|---:|---:|---|",
        *rows,
        "",
        f"ONNX set-up this run (load, or export + fuse + check on first use; cached after): {setup:.1f} s.",
        "",
        f"Reproduce: `PYTHONPATH=. python -m benchmarks.embeddings --texts {args.texts} --repeats {args.repeats} "
        f"--max-length {args.max_length}`",
    ])
    print(md)
    if not args.no_write:
        write_section("embeddings", md)


if __name__ == "__main__":
    main()
