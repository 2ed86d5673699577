"""Targeted human feedback on real data: which pairs should humans label?

On the dev merged file (real LLM-judge labels and real human votes on the same pairs;
non-tie rows: both a human and an AI winner), for human budgets of 2-10% of the pool and
several seeds, in one run and with the same reward model for every method:

- ``random``: a uniform sample;
- ``uncertainty``: the smallest |margin| of a cross-fitted RM trained on AI labels;
- ``confident_learning``: cleanlab's ``find_label_issues`` on the same cross-fitted RM's
  probabilities, ranked by self-confidence (more than the budget found: the top ones;
  fewer: filled up by the lowest self-confidence);
- ``lowest_margin``: one shot, the most negative AI-label margins;
- ``rlthf``: the iterative loop (:func:`rlthf_plugin.loop.strategy_margin_curve.plan_iteration`, the code the
  CLI runs), 2% of the pool per iteration, the paper's alpha/beta schedule, flips gated
  by evidence; ``rlthf_ungated`` flips right of the reflection point without evidence
  (the paper's rule), to show what the gate prevents.

Metrics: share of the AI-label errors fixed; accuracy of the curated labels against the
human labels; AI-error precision of the human-labeled pairs; flips and their precision;
accuracy on a held-out split (20% of the prompts, never curated) of an RM trained on the
curated set, next to RMs trained on all human labels and on AI labels only; wall time.

    python -m benchmarks.targeted_feedback --workspace /tmp/rlthf-dev --seeds 3

The workspace caches the embeddings (created and filled on first use).

``--per-set`` runs instead the per-dev-set comparison of issue 12 (PandaLM with two
judges, LLMBar Processed with five protocols x two orders, MT-bench with one judge): the
``signals`` strategy and its ablations side by side with random, uncertainty, confident
learning and margin-curve RLTHF (:mod:`benchmarks.signals_dev`, the same seeds and budgets):

    python -m benchmarks.targeted_feedback --per-set --seeds 3
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from rlthf_plugin.loop.pool import read_pool
from rlthf_plugin.loop.strategy_margin_curve import plan_iteration
from rlthf_plugin.models.embedder import SentenceEmbedder
from rlthf_plugin.loop.cross_fit import cross_fit_margins
from rlthf_plugin.models.reward import EmbeddingRewardModel
from rlthf_plugin.selection.rlthf import ai_margins, flip_gate, schedule
from rlthf_plugin.workspace import Workspace

from ._report import DOC, write_section

DEV_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev" / "human_vs_ai_pairs.jsonl.gz"
METHODS = ("random", "uncertainty", "confident_learning", "lowest_margin", "rlthf", "rlthf_ungated")


def open_data(workspace: Path, data: Path):
    if not (workspace / "rlthf.toml").exists():
        from rlthf_plugin.io.importer import import_files

        ws = Workspace.init(workspace)
        import_files(ws.ledger, [str(data)], skip_invalid=True)
    else:
        ws = Workspace.open(workspace)
    pool = read_pool(ws.ledger, ws.config)
    keep = np.flatnonzero(np.isin(pool.ai, ["A", "B"]) & np.isin(pool.truth, ["A", "B"]))
    pairs = [pool.pairs[i] for i in keep]
    return ws, pairs, pool.ai[keep], pool.truth[keep]


def swap(labels: np.ndarray) -> np.ndarray:
    return np.where(labels == "A", "B", "A")


class Bench:
    def __init__(self, ws, pairs, ai, truth, *, head: str, folds: int):
        self.pairs, self.ai, self.truth = pairs, ai, truth
        self.prompts = [p.prompt for p in pairs]
        self.a = [p.response_a for p in pairs]
        self.b = [p.response_b for p in pairs]
        emb = ws.config.embedding
        self.base = EmbeddingRewardModel(SentenceEmbedder(emb.model, max_length=emb.max_length), ledger=ws.ledger,
                                         head=head, progress=True)
        self.folds = folds
        self.base.table.index(sorted(set(self.prompts) | set(self.a) | set(self.b)))  # embed (cached) once

    def take(self, idx, arr):
        return [arr[i] for i in idx]

    def rm_accuracy(self, train_idx, labels, weights, test_idx) -> float:
        """Held-out accuracy against human labels of an RM trained on ``labels`` of ``train_idx``."""
        ok = np.isin(labels, ["A", "B"])
        tr = train_idx[ok]
        lab = labels[ok]
        ch = [self.a[i] if x == "A" else self.b[i] for i, x in zip(tr, lab)]
        rj = [self.b[i] if x == "A" else self.a[i] for i, x in zip(tr, lab)]
        model = self.base.spawn(seed=0).fit(self.take(tr, self.prompts), ch, rj, weights=weights[ok])
        m = model.margins(self.take(test_idx, self.prompts), self.take(test_idx, self.a), self.take(test_idx, self.b))
        return float((np.where(m > 0, "A", "B") == self.truth[test_idx]).mean())


def split(pairs, seed: int, test: float = 0.2):
    """Train / test indices, split by prompt so no prompt is on both sides."""
    from rlthf_plugin.pairs import prompt_id

    pids = sorted({prompt_id(p.prompt) for p in pairs})
    rng = np.random.default_rng(seed)
    test_ids = set(rng.choice(pids, size=int(test * len(pids)), replace=False))
    is_test = np.array([prompt_id(p.prompt) in test_ids for p in pairs])
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def run_seed(bench: Bench, seed: int, budgets: list[float], step: float) -> list[dict]:
    tr, te = split(bench.pairs, seed)
    n = tr.size
    ai, truth = bench.ai[tr], bench.truth[tr]
    err = ai != truth
    prompts, a, b = bench.take(tr, bench.prompts), bench.take(tr, bench.a), bench.take(tr, bench.b)
    out: list[dict] = []

    def record(method, budget, curated, asked, weights, seconds, flipped=None):
        fixed = int((err & (curated == truth)).sum())
        row = {"method": method, "budget": budget, "seed": seed, "asked": int(asked.size),
               "fixed_share": fixed / int(err.sum()), "curated_accuracy": float((curated == truth).mean()),
               "precision": float(err[asked].mean()) if asked.size else float("nan"),
               "flips": 0 if flipped is None else int(flipped.size),
               "flip_precision": float(err[flipped].mean()) if flipped is not None and flipped.size else float("nan"),
               "seconds": seconds}
        row["rm_accuracy"] = bench.rm_accuracy(tr, curated, weights, te)
        out.append(row)

    # One cross-fitted RM on AI labels serves the one-shot methods.
    t0 = time.perf_counter()
    raw = cross_fit_margins(lambda: bench.base.spawn(seed=seed), prompts, a, b, ai, train=np.ones(n, bool),
                            folds=bench.folds, seed=seed)
    margins = ai_margins(raw, np.zeros(n), ai)
    t_rm = time.perf_counter() - t0
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    p_a = 1 / (1 + np.exp(-raw))
    probs = np.stack([p_a, 1 - p_a], axis=1)
    labels01 = (ai == "B").astype(int)
    t0 = time.perf_counter()
    issues = find_label_issues(labels01, probs, return_indices_ranked_by="self_confidence")
    quality = get_label_quality_scores(labels01, probs, method="self_confidence")
    rest = [i for i in np.argsort(quality, kind="stable") if i not in set(issues)]
    cl_order = np.concatenate([issues, rest]).astype(int)
    t_cl = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    random_order = rng.permutation(n)
    orders = {"random": (random_order, 0.0), "uncertainty": (np.argsort(np.abs(margins), kind="stable"), t_rm),
              "confident_learning": (cl_order, t_rm + t_cl), "lowest_margin": (np.argsort(margins, kind="stable"), t_rm)}
    ones = np.ones(n)
    for method, (order, seconds) in orders.items():
        for budget in budgets:
            asked = order[: int(round(budget * n))]
            curated = ai.copy()
            curated[asked] = truth[asked]
            record(method, budget, curated, asked, ones, seconds)

    # RLTHF: one run of len(budgets) iterations of `step` each gives every budget.
    for method, mode in (("rlthf", "gated"), ("rlthf_ungated", "always")):
        human = np.full(n, "", dtype=object).astype(str)
        human_it = np.full(n, -1)
        prev = None
        flip_region_asked: list[int] = []
        t0 = time.perf_counter()
        for it in range(int(round(max(budgets) / step))):
            alpha, beta = schedule(it)
            errors = int(err[flip_region_asked].sum())
            gate = flip_gate(errors, len(flip_region_asked), mode=mode)
            alphas = np.array([schedule(max(h, 0))[0] for h in human_it])
            plan = plan_iteration(prompts, a, b, ai, human, alphas, prev, factory=lambda: bench.base.spawn(seed=seed),
                                  budget=int(round(step * n)), back_off=beta, candidates=human == "", gate=gate,
                                  folds=bench.folds, seed=seed + it)
            s, cand = plan.selection, plan.candidates
            asked_now = cand[s.action == "ask"]
            flip_region_asked += cand[(s.action == "ask") & (s.region == "flip")].tolist()
            human[asked_now] = truth[asked_now]
            human_it[asked_now] = it
            prev = np.full(n, "", dtype=object)
            prev[cand] = s.action
            prev = prev.astype(str)
            flipped = cand[s.action == "flip"]
            curated = ai.copy()
            curated[flipped] = swap(ai[flipped])
            asked = np.flatnonzero(human != "")
            curated[asked] = human[asked]
            weights = np.where(human != "", np.array([schedule(max(h, 0))[0] for h in human_it]), 1.0)
            budget = round((it + 1) * step, 4)
            if any(abs(budget - x) < 1e-9 for x in budgets):
                record(method, budget, curated, asked, weights, time.perf_counter() - t0, flipped)
    # Reference RMs: all human labels, AI labels only.
    out.append({"method": "rm_all_human", "budget": 1.0, "seed": seed, "rm_accuracy": bench.rm_accuracy(tr, truth, ones, te)})
    out.append({"method": "rm_ai_only", "budget": 0.0, "seed": seed, "rm_accuracy": bench.rm_accuracy(tr, ai, ones, te)})
    return out


def summarize(rows: list[dict]) -> dict:
    groups: dict = defaultdict(list)
    for r in rows:
        groups[(r["method"], r["budget"])].append(r)
    return groups


def mean_sd(values) -> str:
    v = np.array([x for x in values if x == x], dtype=float)
    if not v.size:
        return "-"
    return f"{v.mean():.3f} ± {v.std():.3f}" if v.size > 1 else f"{v.mean():.3f}"


def markdown(rows: list[dict], args, n_pairs: int, n_errors: int, plot: str, wall: float) -> str:
    g = summarize(rows)
    lines = [
        "## Targeted feedback (RLTHF vs baselines)",
        "",
        f"Command: `{args.command}` ({wall / 60:.1f} min on this machine, 2 CPU cores).",
        "",
        f"Data: `dev/human_vs_ai_pairs.jsonl.gz`, pairs with both a human and an AI winner: {n_pairs} pairs, "
        f"{n_errors} AI-label errors. Per seed, 20% of the prompts are held out (never curated) to measure "
        f"RMs; the rest is the pool. Reward model for every method: `EmbeddingRewardModel` "
        f"(head `{args.head}`, frozen packaged MiniLM, {args.folds}-fold cross-fitted margins). "
        f"RLTHF: {args.step:.0%} of the pool per iteration, paper schedule (alpha 4,4,4,2,1; beta .6,.6,.6,.4,.2), "
        f"flip gate: Wilson lower bound of the measured flip-region error rate >= 0.5 over >= 10 labels. "
        f"Seeds: {args.seeds}; mean ± sd.",
        "",
        "| method | human budget | AI errors fixed | curated accuracy | batch AI-error precision | flips | flip precision | held-out RM accuracy | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    budgets = sorted({r["budget"] for r in rows if r["method"] in METHODS})
    for budget in budgets:
        for method in METHODS:
            rs = g.get((method, budget))
            if not rs:
                continue
            lines.append(f"| {method} | {budget:.0%} | {mean_sd(r['fixed_share'] for r in rs)} | "
                         f"{mean_sd(r['curated_accuracy'] for r in rs)} | {mean_sd(r['precision'] for r in rs)} | "
                         f"{np.mean([r['flips'] for r in rs]):.0f} | {mean_sd(r['flip_precision'] for r in rs)} | "
                         f"{mean_sd(r['rm_accuracy'] for r in rs)} | {np.mean([r['seconds'] for r in rs]):.1f} |")
    ai_acc = mean_sd(r["curated_accuracy"] for r in rows if r["method"] == "random" and r["budget"] == budgets[0])
    lines += [
        "",
        f"Reference RMs on the same held-out split: all human labels {mean_sd(r['rm_accuracy'] for r in g[('rm_all_human', 1.0)])}, "
        f"AI labels only {mean_sd(r['rm_accuracy'] for r in g[('rm_ai_only', 0.0)])} "
        f"(AI labels themselves agree with the humans on {ai_acc} of the pool after the 2% random batch).",
        "",
        f"![targeted feedback]({plot})",
    ]
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = summarize(rows)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for method in METHODS:
        budgets = sorted(b for (m, b) in g if m == method)
        if not budgets:
            continue
        for ax, key in zip(axes, ("fixed_share", "curated_accuracy", "rm_accuracy")):
            ax.plot([100 * b for b in budgets], [np.mean([r[key] for r in g[(method, b)]]) for b in budgets],
                    marker="o", label=method)
    for ax, title in zip(axes, ("share of AI errors fixed", "curated-label accuracy", "held-out RM accuracy")):
        ax.set_xlabel("human budget (% of pool)")
        ax.set_title(title)
    for key, style in (("rm_all_human", "--"), ("rm_ai_only", ":")):
        axes[2].axhline(np.mean([r["rm_accuracy"] for r in g[(key, 1.0 if key == "rm_all_human" else 0.0)]]),
                        color="0.4", ls=style, label=key)
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workspace", type=Path, default=Path(__file__).resolve().parent / ".cache" / "dev-workspace")
    ap.add_argument("--data", type=Path, default=DEV_FILE)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budgets", default="0.02,0.04,0.06,0.08,0.10")
    ap.add_argument("--step", type=float, default=0.02, help="RLTHF budget per iteration.")
    ap.add_argument("--head", default="linear", choices=["linear", "mlp"])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--no-write", action="store_true", help="Print, do not write docs/benchmarks.md.")
    ap.add_argument("--per-set", action="store_true",
                    help="Per dev set: the signals strategy, its ablations and the baselines (benchmarks.signals_dev).")
    args = ap.parse_args(argv)
    if args.per_set:
        from . import signals_dev

        signals_dev.main(["--seeds", str(args.seeds), "--budgets", args.budgets, "--step", str(args.step)]
                         + ([] if args.no_write else ["--write"]))
        return
    args.command = "python -m benchmarks.targeted_feedback " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    budgets = [float(x) for x in args.budgets.split(",")]
    start = time.perf_counter()
    ws, pairs, ai, truth = open_data(args.workspace, args.data)
    bench = Bench(ws, pairs, ai, truth, head=args.head, folds=args.folds)
    rows = []
    for seed in range(args.seeds):
        rows += run_seed(bench, seed, budgets, args.step)
        print(f"seed {seed} done ({time.perf_counter() - start:.0f}s)", flush=True)
    wall = time.perf_counter() - start
    png = DOC.parent / "targeted_feedback.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    plot(rows, png)
    md = markdown(rows, args, len(pairs), int((ai != truth).sum()), png.name, wall)
    print(md)
    if not args.no_write:
        write_section("targeted_feedback", md)
    ws.close()


if __name__ == "__main__":
    main()
