"""Training throughput and peak memory: our TRL configs against TRL's own defaults.

Same model, same data, same number of optimizer steps, in one run; each training runs in
its own process so its peak memory is its own (CPU: peak RSS; GPU: peak allocated).

- Reward model: the packaged all-MiniLM-L6-v2 on real dev pairs (MT-bench / PandaLM);
  ours = :class:`TransformerRewardModel` (pre-tokenized, prompt left-truncated to
  ``max_length``); TRL = ``RewardTrainer`` on the raw texts with ``RewardConfig`` defaults
  (bf16 and gradient checkpointing on, pairs over ``max_length`` dropped), except
  ``max_length=512`` (MiniLM has 512 positions; TRL's 1024 would overflow them) and
  ``eos_token="[SEP]"`` (BERT has no eos), and ``use_cpu=True`` on a CPU machine (TRL's
  default bf16 refuses to start on CPU without it).
- DPO: a tiny Llama built locally; ours = :func:`train_policy` defaults; TRL = ``DPOConfig``
  defaults (bf16, gradient checkpointing, ``max_length`` 1024).

tokens/s = non-padding tokens trained on / training wall time (TRL's own token counter).

Run: ``PYTHONPATH=. HF_HUB_OFFLINE=1 python -m benchmarks.training [--steps 6] [--pairs 64]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import platform
import resource
import tempfile
import time
from pathlib import Path

from benchmarks._report import write_section


def _rows(n: int) -> list[dict]:
    from rlthf_plugin.data import DEV_PAIRS

    with gzip.open(DEV_PAIRS, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    rows = [r for r in rows if all(isinstance(r.get(k), str) and r[k].strip() for k in ("response_a", "response_b"))
            and r.get("human_label") in ("A", "B")]
    out = []
    for r in rows[:n]:
        a_wins = r["human_label"] == "A"
        out.append({"prompt": r["prompt"], "chosen": r["response_a"] if a_wins else r["response_b"],
                    "rejected": r["response_b"] if a_wins else r["response_a"]})
    return out


def _peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _rm_ours(rows, steps, batch, tmp):
    from rlthf_plugin.models.reward_trl import RewardTrainingConfig, TransformerRewardModel

    rm = TransformerRewardModel(RewardTrainingConfig(max_steps=steps, per_device_train_batch_size=batch,
                                                     progress=False, logging_steps=steps))
    t = time.perf_counter()
    rm.fit([r["prompt"] for r in rows], [r["chosen"] for r in rows], [r["rejected"] for r in rows])
    wall = time.perf_counter() - t
    m = rm.metrics
    return {"pairs_kept": m["train_pairs"], "truncated": m["truncated"], "tokens": m["num_tokens"],
            "train_s": m["train_runtime"], "total_s": wall}


def _rm_trl(rows, steps, batch, tmp):
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    from rlthf_plugin.models.embedder import resolve_model_path

    t = time.perf_counter()
    args = RewardConfig(output_dir=tmp, max_steps=steps, per_device_train_batch_size=batch, max_length=512,
                        eos_token="[SEP]", report_to="none", disable_tqdm=True, save_strategy="no",
                        logging_steps=steps, use_cpu=not _gpu())
    trainer = RewardTrainer(model=resolve_model_path("packaged:all-MiniLM-L6-v2"), args=args,
                            train_dataset=Dataset.from_list(rows))
    result = trainer.train()
    return {"pairs_kept": len(trainer.train_dataset), "truncated": 0, "tokens": trainer._total_train_tokens,
            "train_s": result.metrics["train_runtime"], "total_s": time.perf_counter() - t,
            "bf16": args.bf16, "gradient_checkpointing": args.gradient_checkpointing}


def _dpo_ours(rows, steps, batch, tmp):
    from rlthf_plugin.models.policy import DPOTrainingConfig, train_policy

    t = time.perf_counter()
    m = train_policy(str(Path(tmp).parent / "tiny"), [r["prompt"] for r in rows], [r["chosen"] for r in rows],
                     [r["rejected"] for r in rows], out=tmp,
                     config=DPOTrainingConfig(max_steps=steps, per_device_train_batch_size=batch, progress=False,
                                              logging_steps=steps))
    return {"pairs_kept": m["train_pairs"], "truncated": m["prompts_truncated"], "tokens": m["num_tokens"],
            "train_s": m["train_runtime"], "total_s": time.perf_counter() - t}


def _dpo_trl(rows, steps, batch, tmp):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    t = time.perf_counter()
    args = DPOConfig(output_dir=tmp, max_steps=steps, per_device_train_batch_size=batch, report_to="none",
                     disable_tqdm=True, save_strategy="no", logging_steps=steps, use_cpu=not _gpu())
    trainer = DPOTrainer(model=str(Path(tmp).parent / "tiny"), args=args, train_dataset=Dataset.from_list(rows))
    result = trainer.train()
    return {"pairs_kept": len(trainer.train_dataset), "truncated": 0, "tokens": trainer._total_train_tokens,
            "train_s": result.metrics["train_runtime"], "total_s": time.perf_counter() - t,
            "bf16": args.bf16, "gradient_checkpointing": args.gradient_checkpointing}


RUNS = {"rm_ours": _rm_ours, "rm_trl": _rm_trl, "dpo_ours": _dpo_ours, "dpo_trl": _dpo_trl}


def _child(name, rows, steps, batch, tmp, queue):
    out = RUNS[name](rows, steps, batch, tmp)
    out["peak_mb"] = _peak_memory_mb()
    queue.put(out)


def run_isolated(name, rows, steps, batch, tmp) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(name, rows, steps, batch, tmp, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"{name} exited with {proc.exitcode}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    a = parser.parse_args()
    import torch

    from rlthf_plugin.models.tiny import build_tiny_causal_lm

    rows = _rows(a.pairs)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_causal_lm(Path(tmp) / "tiny", [r[k] for r in rows for k in ("prompt", "chosen", "rejected")])
        for name in RUNS:
            (Path(tmp) / name).mkdir()
            results[name] = run_isolated(name, rows, a.steps, a.batch, str(Path(tmp) / name))
            print(name, results[name], flush=True)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else \
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    lines = ["## Training throughput: our TRL configs vs TRL defaults", "",
             f"Command: `PYTHONPATH=. HF_HUB_OFFLINE=1 python -m benchmarks.training --steps {a.steps} "
             f"--pairs {a.pairs} --batch {a.batch}`. Device: {device}. {a.pairs} real dev pairs "
             f"(human label), {a.steps} optimizer steps of {a.batch} pairs; each run in its own process.", "",
             "| run | model | config | pairs kept | truncated | tokens | train s | tokens/s | peak MB |",
             "|---|---|---|---|---|---|---|---|---|"]
    labels = {"rm_ours": ("reward", "MiniLM-L6", "ours (fp32, no GC, truncate 512)"),
              "rm_trl": ("reward", "MiniLM-L6", "TRL defaults (bf16, GC, drop > 512)"),
              "dpo_ours": ("DPO", "tiny Llama", "ours (fp32, no GC, prompt <= 512)"),
              "dpo_trl": ("DPO", "tiny Llama", "TRL defaults (bf16, GC, 1024)")}
    for name, r in results.items():
        kind, model, config = labels[name]
        lines.append(f"| {kind} | {model} | {config} | {r['pairs_kept']}/{a.pairs} | {r['truncated']} | "
                     f"{r['tokens']} | {r['train_s']:.1f} | {r['tokens'] / r['train_s']:.0f} | {r['peak_mb']:.0f} |")
    lines += ["", "GPU: not measured. No GPU was lent to this task, so the bf16 / multi-GPU paths "
                  "(`accelerate launch`, docs/training.md) have not been timed; on a GPU the same script "
                  "reports peak allocated CUDA memory instead of peak RSS.",
              "CPU timings come from a shared 2-core machine and vary with its load; compare rows of one run only."]
    md = "\n".join(lines)
    print(md)
    if not a.no_write:
        write_section("training", md)


if __name__ == "__main__":
    main()
