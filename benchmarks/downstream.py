"""What the labels buy downstream: reward models trained on each curated set, scored on human
labels they never saw (issue 25).

Per dev set (PandaLM, LLMBar Processed, MT-bench: the pools of :mod:`benchmarks.signals_dev`,
pairs where the primary judge and the humans both name a winner), seed and fold (folds by
prompt, so no prompt is on both sides), on the training folds:

- ``ai``: the primary judge's labels alone;
- ``signals``: the curated set of the ``signals`` strategy (simulated loop, the human labels
  as the oracle, 2% a step): human labels where asked (amplified by the asking iteration's
  alpha, as the export does), flipped AI labels where it flipped, the AI label elsewhere;
- ``margin_curve``: the same for the RLTHF margin-curve strategy;
- ``random``: human labels of a uniform sample of the same size over the AI labels, amplified
  on the same schedule;
- ``human``: every human label.

Every arm trains the same model with the same settings and seed: the project's embedding
reward model (:class:`~rlthf_plugin.models.reward.EmbeddingRewardModel`, linear head, one
Newton step, packaged MiniLM embeddings, CPU). It is scored on the held-out fold's human
labels; every pair is scored once per seed. Accuracy is averaged over seeds; the 95%
intervals (of the accuracy and of each arm's difference to ``ai``, paired on the same test
pairs) are percentile bootstraps that resample prompts.

With ``--trl`` the TRL reward model (``rlthf train reward``'s class; packaged MiniLM
backbone unless ``--trl-model``) is trained for every arm on the sets, budgets and seeds of
``--trl-sets``, ``--trl-budgets``, ``--trl-seeds``, ``--trl-folds`` (default: LLMBar at 6%,
seed 0, the first fold: on 2 shared CPU cores a fit takes minutes) to check that the embedding head's ranking of the arms holds for a fine-tuned model.
``benchmarks/gpu.sh`` runs it on every set and budget with a larger backbone in bf16.

REAL (``--real-seeds``): on MT-bench's multi-response prompts (160 question-turns x 6
answers), the human labels of one pair per prompt chosen ``easy`` (least similar
responses), ``random`` or ``hard`` (most similar), the same count each, train the same
embedding reward model on a random half of the questions; it is scored on every
human-labeled pair of the other half. Intervals: t over seeds of the paired difference.

    nice -n 10 python -m benchmarks.downstream --seeds 3 --folds 5 --trl --write

Embeddings are cached in ``benchmarks/.cache/signals_embeddings.npz``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import defaultdict

import numpy as np

from rlthf_plugin.models.reward import EmbeddingRewardModel
from rlthf_plugin.models.vectors import TextTable

from .signals_dev import DEFAULTS, LOADERS, RM, VARIANTS, Embeddings, Pool, make_pool, run_margin_curve, run_signals

ARMS = ("ai", "signals", "margin_curve", "random", "human")
ARM_NAMES = {"ai": "AI labels only", "signals": "curated: signals", "margin_curve": "curated: margin-curve",
             "random": "random human over AI", "human": "all human"}
STEP = 0.02


def sub_pool(pool: Pool, idx: np.ndarray) -> Pool:
    """The pool restricted to the pairs ``idx`` (same judges)."""
    out = {}
    for f in dataclasses.fields(pool):
        v = getattr(pool, f.name)
        if isinstance(v, np.ndarray) and v.ndim >= 1 and v.shape[0] == pool.truth.size:
            out[f.name] = v[idx]
        elif isinstance(v, list) and len(v) == pool.truth.size:
            out[f.name] = [v[i] for i in idx]
        else:
            out[f.name] = v
    return Pool(**out)


def fold_of(pool: Pool, folds: int, seed: int) -> np.ndarray:
    """(N,) fold of each pair, by prompt (a prompt's pairs share a fold)."""
    groups = np.unique(pool.group)
    fold = np.random.default_rng(10_000 + seed).permutation(groups.size) % folds
    return fold[np.searchsorted(groups, pool.group)]


def random_arm(sub: Pool, seed: int, budgets, salt: int) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Human labels of a uniform sample (nested over budgets), amplified as if asked 2% a step."""
    n = sub.truth.size
    order = np.random.default_rng(seed * 1000 + salt).permutation(n)
    alpha = np.asarray(DEFAULTS.amplification, dtype=float)
    out = {}
    for b in budgets:
        k = int(round(b * n))
        labels, weights = sub.ai.copy(), np.ones(n)
        asked = order[:k]
        labels[asked] = sub.truth[asked]
        step_n = max(int(round(STEP * n)), 1)
        weights[asked] = alpha[np.minimum(np.arange(k) // step_n, alpha.size - 1)]
        out[b] = (labels, weights)
    return out


def arm_labels(sub: Pool, rm: RM, seed: int, budgets, salt: int) -> dict[tuple[str, float], tuple]:
    """(arm, budget) -> (labels (n,), weights (n,)) on the training pool ``sub``."""
    n = sub.truth.size
    out = {("ai", b): (sub.ai.copy(), np.ones(n)) for b in budgets}
    out.update({("human", b): (sub.truth.copy(), np.ones(n)) for b in budgets})
    out.update({("random", b): lw for b, lw in random_arm(sub, seed, budgets, salt).items()})
    for r in run_signals(sub, rm, VARIANTS["signals"], seed, budgets, STEP, {}):
        out[("signals", _budget(r["budget"], budgets))] = (r["labels"], r["weights"])
    for r in run_margin_curve(sub, rm, seed, budgets, STEP):
        out[("margin_curve", _budget(r["budget"], budgets))] = (r["labels"], r["weights"])
    return out


def _budget(b: float, budgets) -> float:
    return min(budgets, key=lambda x: abs(x - b))


def texts(pool: Pool, idx: np.ndarray, labels: np.ndarray):
    """(prompts, chosen, rejected) of pairs ``idx`` under ``labels`` (aligned with ``idx``)."""
    ch = [pool.a[i] if y == "A" else pool.b[i] for i, y in zip(idx, labels)]
    rj = [pool.b[i] if y == "A" else pool.a[i] for i, y in zip(idx, labels)]
    return [pool.prompts[i] for i in idx], ch, rj


def correct(pool: Pool, test: np.ndarray, margins: np.ndarray) -> np.ndarray:
    """(len(test),) 1.0 where the margin orders the pair as the humans did (0 margin: wrong)."""
    return ((margins > 0) & (pool.truth[test] == "A") | (margins < 0) & (pool.truth[test] == "B")).astype(float)


def run_set(pool: Pool, emb: Embeddings, seeds: int, folds: int, budgets, trl: dict | None) -> dict:
    """(arm, budget, seed) -> (N,) correctness of each pair when it was in the test fold;
    with ``trl``: ("trl:" + arm, budget, 0) too."""
    table = TextTable(emb)
    table.index(sorted(set(pool.prompts) | set(pool.a) | set(pool.b)))
    base = EmbeddingRewardModel(table=table, head="linear")
    res: dict = defaultdict(lambda: np.full(pool.truth.size, np.nan))
    for seed in range(seeds):
        fold = fold_of(pool, folds, seed)
        for k in range(folds):
            tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
            sub = sub_pool(pool, tr)
            labels = arm_labels(sub, RM(emb, sub), seed, budgets, salt=k)
            test_texts = ([pool.prompts[i] for i in te], [pool.a[i] for i in te], [pool.b[i] for i in te])
            done: dict = {}  # ai and human train on the same labels at every budget: fit once
            for (arm, b), (lab, w) in labels.items():
                key = arm if arm in ("ai", "human") else (arm, b)
                if key not in done:
                    model = base.spawn(seed=seed).fit(*texts(pool, tr, lab), weights=w)
                    done[key] = correct(pool, te, model.margins(*test_texts))
                res[(arm, b, seed)][te] = done[key]
                if trl and seed in trl["seeds"] and k < trl["folds"] and any(abs(b - x) < 1e-9 for x in trl["budgets"]):
                    tkey = ("trl", key)
                    if tkey not in done:
                        done[tkey] = correct(pool, te, _trl_margins(trl, pool, tr, lab, w, test_texts))
                    res[("trl:" + arm, b, seed)][te] = done[tkey]
        print(f"  {pool.name} seed {seed} done", flush=True)
    return dict(res)


def _trl_margins(trl: dict, pool: Pool, tr, labels, weights, test_texts) -> np.ndarray:
    from rlthf_plugin.models.reward_trl import RewardTrainingConfig, TransformerRewardModel

    cfg = RewardTrainingConfig(max_length=trl["max_length"], num_train_epochs=trl["epochs"],
                               per_device_train_batch_size=16, seed=0, logging_steps=1000,
                               model=trl.get("model") or RewardTrainingConfig.model)
    for k, v in (trl.get("config") or {}).items():
        cfg = dataclasses.replace(cfg, **{k: v})
    rm = TransformerRewardModel(cfg).fit(*texts(pool, tr, labels), weights=np.rint(weights).astype(int))
    return np.asarray(rm.margins(*test_texts), dtype=float)


# -- intervals -------------------------------------------------------------------------------------


def cluster_bootstrap(groups: np.ndarray, x: np.ndarray, *, rounds: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of mean(x), resampling the groups (prompts) with replacement."""
    ug, inv = np.unique(groups, return_inverse=True)
    sums = np.bincount(inv, weights=x, minlength=ug.size)
    counts = np.bincount(inv, minlength=ug.size).astype(float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, ug.size, size=(rounds, ug.size))
    means = sums[draws].sum(1) / counts[draws].sum(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def seed_mean(res: dict, arm: str, b: float, seeds: list[int]) -> np.ndarray:
    """(N,) per-pair correctness averaged over ``seeds``."""
    return np.mean([res[(arm, b, s)] for s in seeds], axis=0)


# -- REAL: easy vs random vs hard pairs ------------------------------------------------------------


def run_real(emb: Embeddings, seeds: int, per_prompt: int) -> dict:
    """strategy -> per-seed accuracy on the held-out half; plus the counts."""
    from rlthf_plugin.data import MTBENCH_VOTES
    from rlthf_plugin.pairs import A, B, majority
    from rlthf_plugin.selection.real import select_pairs

    from .dissimilar_pairs import load_mtbench

    corpus = load_mtbench(MTBENCH_VOTES)
    X = emb(corpus.texts)
    table = TextTable(emb)
    table.index(sorted(set(corpus.texts) | set(corpus.prompts)))
    base = EmbeddingRewardModel(table=table, head="linear")
    labeled = [p for p in corpus.pairs if majority(p.human).label in (A, B)]
    label = {id(p): majority(p.human).label for p in labeled}
    question = np.array(corpus.question)
    questions = np.unique(question)
    out: dict = defaultdict(list)

    def triple(pairs):
        ch = [corpus.texts[p.a] if label[id(p)] == A else corpus.texts[p.b] for p in pairs]
        rj = [corpus.texts[p.b] if label[id(p)] == A else corpus.texts[p.a] for p in pairs]
        return [corpus.prompts[p.prompt] for p in pairs], ch, rj

    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        train_q = set(rng.choice(questions, size=questions.size // 2, replace=False).tolist())
        in_train = np.isin(question, list(train_q))
        pool = [p for p in labeled if in_train[p.prompt]]
        test = [p for p in labeled if not in_train[p.prompt]]
        by_rows = {(min(p.a, p.b), max(p.a, p.b)): p for p in pool}
        allowed = np.array([[p.a, p.b] for p in pool])
        tp, ta, tb = [corpus.prompts[p.prompt] for p in test], [corpus.texts[p.a] for p in test], \
            [corpus.texts[p.b] for p in test]
        truth = np.array([label[id(p)] for p in test])
        for strategy in ("easy", "random", "hard", "all"):
            if strategy == "all":
                chosen = pool
            else:
                sel = select_pairs(X, corpus.response_prompt, strategy=strategy, per_prompt=per_prompt, seed=seed,
                                   allowed=allowed)
                chosen = [by_rows[(min(a, b), max(a, b))] for a, b in zip(sel.first, sel.second)]
            m = base.spawn(seed=seed).fit(*triple(chosen)).margins(tp, ta, tb)
            out[strategy].append(float(np.mean(np.where(m > 0, "A", "B") == truth)))
            out[strategy + ":n"].append(len(chosen))
        out["test_n"].append(len(test))
    return dict(out)


def t_interval(x) -> tuple[float, float, float]:
    from scipy.stats import t

    x = np.asarray(x, float)
    half = t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size) if x.size > 1 else float("nan")
    return float(x.mean()), float(x.mean() - half), float(x.mean() + half)


# -- report ----------------------------------------------------------------------------------------


def pct(x: float) -> str:
    return f"{100 * x:+.1f}"


def set_table(pools, results, budgets, seeds: list[int], prefix: str = "") -> tuple[list[str], list[dict]]:
    lines = ["| set | budget | " + " | ".join(ARM_NAMES[a] for a in ARMS) + " |",
             "|---|---|" + "---|" * len(ARMS)]
    findings = []
    for pool in pools:
        res = results[pool.name]
        for b in budgets:
            if (prefix + "ai", b, seeds[0]) not in res:
                continue
            ai = seed_mean(res, prefix + "ai", b, seeds)
            tested = np.isfinite(ai)  # every pair, or the folds the TRL model was fit on
            ai, group = ai[tested], pool.group[tested]
            cells = []
            for arm in ARMS:
                x = seed_mean(res, prefix + arm, b, seeds)[tested]
                lo, hi = cluster_bootstrap(group, x)
                cell = f"{x.mean():.3f} [{lo:.3f}, {hi:.3f}]"
                if arm != "ai":
                    d = x - ai
                    dlo, dhi = cluster_bootstrap(group, d)
                    cell += f"<br>Δ {pct(d.mean())} [{pct(dlo)}, {pct(dhi)}]"
                    findings.append({"set": pool.name, "budget": b, "arm": arm, "diff": d.mean(), "lo": dlo,
                                     "hi": dhi})
                cells.append(cell)
            lines.append(f"| {pool.name}{'' if tested.all() else f' ({tested.sum()} test pairs)'} | {b:.0%} | "
                         + " | ".join(cells) + " |")
    return lines, findings


def verdict(findings) -> list[str]:
    out = []
    for arm in ("signals", "margin_curve", "random", "human"):
        rows = [f for f in findings if f["arm"] == arm]
        if not rows:
            continue
        above = [f for f in rows if f["lo"] > 0]
        below = [f for f in rows if f["hi"] < 0]
        zero = len(rows) - len(above) - len(below)
        where = lambda fs: ", ".join(f"{f['set']} {f['budget']:.0%} ({pct(f['diff'])})" for f in fs) or "none"  # noqa: E731
        out.append(f"- **{ARM_NAMES[arm]}** vs AI labels only: beats it (interval above zero) in {len(above)} of "
                   f"{len(rows)} cells: {where(above)}; worse (interval below zero) in {len(below)}: {where(below)}; "
                   f"the interval includes zero in {zero}.")
    return out


def markdown(pools, results, budgets, seeds, folds, real, trl, command, wall) -> str:
    s = list(range(seeds))
    lines = ["## Downstream: reward models trained on each curated set, scored on held-out human labels "
             "(`benchmarks/downstream.py`, issue 25)", "",
             f"Dev sets only. Per set, {seeds} seed(s) x {folds} folds by prompt: the arms are built on the "
             "training folds (the `signals` and `margin-curve` loops simulated with the human labels as the "
             "oracle, 2% of the pool a step, the product defaults), the same embedding reward model (linear "
             "Bradley-Terry head on frozen packaged MiniLM embeddings, one Newton step, CPU) is trained on each "
             "arm and scored on the held-out fold's human labels (pairs where humans and the primary judge both "
             "name a winner). Human labels in the mixed arms weigh the asking iteration's alpha (4, 4, 4, 2, 1) "
             "as the export amplifies them; `random` uses the same schedule.", "",
             "Cells: held-out accuracy (mean over seeds) [95% bootstrap interval, resampling prompts]; Δ = "
             "the arm minus `AI labels only` in accuracy points, paired on the same test pairs [95% interval].",
             ""]
    for pool in pools:
        lines.append(f"- {pool.name}: {pool.truth.size} pairs, {len(set(pool.group.tolist()))} prompts, "
                     f"AI-label accuracy {np.mean(pool.ai == pool.truth):.3f} (primary judge "
                     f"`{pool.judges[pool.primary]}`)")
    lines.append("")
    table, findings = set_table(pools, results, budgets, s)
    lines += table + ["", "**Where the curated set beats AI labels alone, and where the interval includes zero:**",
                      "", *verdict(findings), ""]
    if trl:
        tlines, tfind = set_table([p for p in pools if p.name in trl["sets"]], results, trl["budgets"],
                                  trl["seeds"], prefix="trl:")
        lines += [f"### TRL reward model (`TransformerRewardModel`, {trl['model'] or 'packaged MiniLM'} backbone "
                  f"fine-tuned): {', '.join(trl['sets'])} at {', '.join(f'{b:.0%}' for b in trl['budgets'])}, "
                  f"seed(s) {', '.join(map(str, trl['seeds']))}, fit in {min(trl['folds'], folds)} of the {folds} "
                  "folds (its test pairs only)",
                  "", f"max_length {trl['max_length']}, {trl['epochs']:g} epoch(s), batch 16, lr 1e-4, "
                  f"{json.dumps(trl['config']) if trl['config'] else 'defaults otherwise'}; {trl['device']}; "
                  f"{trl['seconds']:.0f} s for the set(s) with TRL fits.", "", *tlines, "", *verdict(tfind), ""]
    if real:
        lines += ["### REAL: easy vs random vs hard pairs, the same count, MT-bench (multi-response prompts)", "",
                  f"{len(real['easy'])} seeds; per seed a random half of the 80 questions trains (one pair per "
                  f"question-turn chosen among its human-labeled pairs, {int(np.mean(real['easy:n']))} pairs per "
                  f"strategy), every human-labeled pair of the other half tests ({int(np.mean(real['test_n']))} "
                  "pairs on average). Same embedding reward model as above. Interval: t over seeds.", "",
                  "| strategy | train pairs | held-out accuracy | Δ vs random [95% interval] |", "|---|---|---|---|"]
        for strategy in ("easy", "random", "hard", "all"):
            acc = t_interval(real[strategy])
            d = "-" if strategy == "random" else \
                "{} [{}, {}]".format(*map(pct, t_interval(np.subtract(real[strategy], real["random"]))))
            lines.append(f"| {strategy} | {int(np.mean(real[strategy + ':n']))} | {acc[0]:.3f} "
                         f"[{acc[1]:.3f}, {acc[2]:.3f}] | {d} |")
        lines.append("")
    lines += [f"Wall time {wall / 60:.1f} min on 2 shared CPU cores (nice 10). Reproduce: `{command}`"]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default="pandalm,llmbar,mtbench")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--budgets", default="0.02,0.06,0.1")
    ap.add_argument("--trl", action="store_true", help="Also the TRL MiniLM reward model on one set and budget.")
    ap.add_argument("--trl-sets", default="llmbar", help="Sets with TRL fits (comma list).")
    ap.add_argument("--trl-budgets", default="0.06", help="Budgets with TRL fits (comma list).")
    ap.add_argument("--trl-seeds", type=int, default=1, help="Seeds with TRL fits (the first N).")
    ap.add_argument("--trl-folds", type=int, default=1, help="Folds with TRL fits (the first N; CPU: keep it small).")
    ap.add_argument("--trl-max-length", type=int, default=128)
    ap.add_argument("--trl-epochs", type=float, default=1.0)
    ap.add_argument("--trl-model", default=None, help="Backbone of the TRL arm (default: the packaged MiniLM).")
    ap.add_argument("--trl-config", default="{}", help="JSON: more RewardTrainingConfig fields (e.g. bf16).")
    ap.add_argument("--real-seeds", type=int, default=20, help="0 = skip the REAL comparison.")
    ap.add_argument("--real-per-prompt", type=int, default=1)
    ap.add_argument("--write", action="store_true", help="Write the section into docs/benchmarks.md.")
    ap.add_argument("--md-out", default=None, help="Also write the markdown to this file.")
    ap.add_argument("--section", default="downstream", help="Section name in docs/benchmarks.md.")
    args = ap.parse_args(argv)
    command = "nice -n 10 python -m benchmarks.downstream " + " ".join(argv if argv is not None else sys.argv[1:])
    start = time.perf_counter()
    budgets = [float(x) for x in args.budgets.split(",")]
    emb = Embeddings()
    trl = None
    if args.trl:
        import torch

        trl = {"sets": args.trl_sets.split(","), "budgets": [_budget(float(b), budgets) for b in args.trl_budgets.split(",")],
               "seeds": list(range(args.trl_seeds)), "folds": args.trl_folds, "max_length": args.trl_max_length, "epochs": args.trl_epochs,
               "model": args.trl_model, "config": json.loads(args.trl_config), "seconds": 0.0,
               "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"}
    pools, results = [], {}
    for name in args.sets.split(","):
        pool = make_pool(LOADERS[name]())
        pools.append(pool)
        print(f"{name}: {pool.truth.size} pairs, {(pool.ai != pool.truth).sum()} AI errors", flush=True)
        t0 = time.perf_counter()
        with_trl = trl if trl and name in trl["sets"] else None
        results[name] = run_set(pool, emb, args.seeds, args.folds, budgets, with_trl)
        if with_trl:
            trl["seconds"] += time.perf_counter() - t0  # includes the embedding arms of the set (seconds)
    real = run_real(emb, args.real_seeds, args.real_per_prompt) if args.real_seeds else None
    md = markdown(pools, results, budgets, args.seeds, args.folds, real, trl, command, time.perf_counter() - start)
    print(md)
    if args.md_out:
        from pathlib import Path

        Path(args.md_out).write_text(md + "\n", encoding="utf-8")
    if args.write:
        from ._report import write_section

        write_section(args.section, md)
    return md


if __name__ == "__main__":
    main()
