"""How right, and how consistent, are the ML backend's predictions on pairs it never saw?

Label Studio shows the ML backend's prediction on every task of a connected project, so
the prediction must be the reward model's honest preference: right more often than
chance on pairs outside the workspace, and the same answer whichever side each response
is shown on. Measured on the shipped dev data (MT-bench + PandaLM pairs with a real LLM
judge's label and human votes, ``rlthf_plugin/data``), never the holdout:

* the pairs are split by prompt: a workspace gets the pairs of 2/3 of the prompts with
  their AI (LLM-judge) labels only, as before the first human label; the other prompts'
  pairs, with a human answer A or B, are the unseen test pairs;
* each test pair goes through ``POST /ml/predict`` of the service app (the same code
  Label Studio calls), with the pairwise template's label config, in both orders;
* accuracy: the share of test pairs whose predicted answer is the human answer;
  both-orders agreement: the share whose prediction for (B, A) is the mirror of the one
  for (A, B); "predicts A": the share of all predictions (both orders) that say A.

Run (writes docs/benchmarks.md section ``ml_backend_accuracy``)::

    PYTHONPATH=. HF_HUB_OFFLINE=1 nice python -m benchmarks.ml_backend_accuracy --max-lengths 64,256
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from rlthf_plugin.data import DEV_PAIRS
from rlthf_plugin.pairs import A, B

from ._report import write_section

TEXTS = ("prompt", "response_a", "response_b")


def dev_split(*, test_every: int = 3, limit_train: int | None = None,
              limit_test: int | None = None) -> tuple[list[dict], list[dict]]:
    """``(train, test)`` rows of the shipped dev pairs, split by prompt.

    train: rows with an AI label A or B (human votes removed); test: rows of the other
    prompts with a human answer A or B. ``limit_*`` keep the first rows of each (a fixed,
    prompt-hash order, so smaller runs are subsets of larger ones).
    """
    train, test = [], []
    with gzip.open(DEV_PAIRS, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if not all(isinstance(r.get(k), str) and r[k].strip() for k in TEXTS) or r["response_a"] == r["response_b"]:
                continue
            held_out = int(hashlib.sha256(r["prompt"].encode()).hexdigest(), 16) % test_every == 0
            if held_out and r.get("human_label") in (A, B):
                test.append(r)
            elif not held_out and r.get("ai_label") in (A, B):
                train.append({k: v for k, v in r.items() if k not in ("human_label", "human_votes", "votes")})
    return train[:limit_train], test[:limit_test]


def measure(train: list[dict], test: list[dict], root: Path, *, batch: int = 64) -> dict[str, Any]:
    """Accuracy, both-orders agreement and share of A of ``/ml/predict`` on ``test``,
    with a workspace at ``root`` holding ``train`` (see the module docstring)."""
    from fastapi.testclient import TestClient

    from rlthf_plugin.backends.label_studio import TEMPLATE
    from rlthf_plugin.io.importer import import_files
    from rlthf_plugin.service.app import create_app
    from rlthf_plugin.workspace import Workspace

    sample = root.parent / f"{root.name}-train.jsonl"
    sample.write_text("".join(json.dumps(r) + "\n" for r in train), encoding="utf-8")
    with Workspace.init(root) as ws:
        import_files(ws.ledger, [str(sample)])
    config = TEMPLATE.read_text(encoding="utf-8")

    def tasks(rows: list[dict], swap: bool) -> list[dict]:
        return [{"id": i, "data": {"prompt": r["prompt"], "response_a": r["response_b" if swap else "response_a"],
                                   "response_b": r["response_a" if swap else "response_b"]}}
                for i, r in enumerate(rows)]

    started = time.perf_counter()
    picks: dict[bool, list[str]] = {False: [], True: []}
    scored = 0
    with TestClient(create_app(root, ml_backend=True)) as client:
        for swap in (False, True):
            for lo in range(0, len(test), batch):
                r = client.post("/ml/predict", json={"tasks": tasks(test[lo:lo + batch], swap), "label_config": config})
                r.raise_for_status()
                for pred in r.json()["results"]:
                    picks[swap].append(pred["result"][0]["value"]["choices"][0])
                    scored += "score" in pred
    seconds = time.perf_counter() - started
    forward, backward = np.array(picks[False]), np.array(picks[True])
    truth = np.array([r["human_label"] for r in test])
    mirrored = np.where(backward == A, B, A)
    if not test:
        return {"train_pairs": len(train), "test_pairs": 0, "scored": 0, "seconds": round(seconds, 1)}
    return {"train_pairs": len(train), "test_pairs": len(test),
            "accuracy": float(np.mean(forward == truth)),
            "accuracy_swapped": float(np.mean(mirrored == truth)),
            "both_orders_agreement": float(np.mean(forward == mirrored)),
            "predicts_a": float(np.mean(np.concatenate([forward, backward]) == A)),
            "ai_label_accuracy": float(np.mean([r["ai_label"] == r["human_label"] for r in test])),
            "scored": scored, "seconds": round(seconds, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=int, default=None, help="at most this many workspace pairs")
    ap.add_argument("--test", type=int, default=None, help="at most this many unseen test pairs")
    ap.add_argument("--max-lengths", default="64,256",
                    help="embedding max_length values (tokens) to measure, comma-separated")
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = ap.parse_args()
    train, test = dev_split(limit_train=args.train, limit_test=args.test)
    lengths = [int(x) for x in args.max_lengths.split(",") if x.strip()]
    runs = {}
    for tokens in lengths:
        os.environ["RLTHF_EMBEDDING_MAX_LENGTH"] = str(tokens)
        with tempfile.TemporaryDirectory() as tmp:
            runs[tokens] = measure(train, test, Path(tmp) / "ws")
        print(json.dumps({"max_length": tokens, **runs[tokens]}, indent=2), flush=True)
    if args.no_write:
        return
    first = runs[lengths[0]]
    flags = "".join(f" --{k} {v}" for k, v in (("train", args.train), ("test", args.test)) if v)
    rows = [("accuracy against the human answer (A, B order)", "accuracy", ".3f"),
            ("accuracy (B, A order, mirrored back)", "accuracy_swapped", ".3f"),
            ("both-orders agreement (the (B, A) prediction mirrors (A, B))", "both_orders_agreement", ".3f"),
            ("share of predictions saying A (both orders)", "predicts_a", ".3f"),
            ("the LLM judge's AI label on the same pairs", "ai_label_accuracy", ".3f"),
            ("predictions with a score (no human labels: none)", "scored", "d"),
            (f"seconds (fit + {2 * first['test_pairs']} predictions)", "seconds", "")]
    table = "\n".join(f"| {name} | " + " | ".join(format(runs[t][key], fmt) for t in lengths) + " |"
                      for name, key, fmt in rows)
    write_section("ml_backend_accuracy", f"""## ML backend: accuracy and both-orders agreement on unseen pairs

`PYTHONPATH=. HF_HUB_OFFLINE=1 nice python -m benchmarks.ml_backend_accuracy --max-lengths {args.max_lengths}{flags}`

The workspace holds {first['train_pairs']} dev pairs with their AI labels only; {first['test_pairs']} pairs of other
prompts, with a human answer A or B, go through `POST /ml/predict` in both orders (embedding reward model,
all-MiniLM-L6-v2, the texts cut at each max_length). The choice does not depend on the calibration (it has
no position term: the answer is the sign of the reward model's margin), so these numbers hold with human
labels too; only the score is added.

| measure | {" | ".join(f"{t} tokens" for t in lengths)} |
|---|{"---|" * len(lengths)}
{table}
""")


if __name__ == "__main__":
    main()
