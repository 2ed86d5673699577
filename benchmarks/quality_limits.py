"""How narrow can a valid interval for the curated accuracy be on the dev sets? (issue 21)

Issue 21 asks for the curated accuracy's 95% interval at <= 0.75x the width of the classical
interval from a uniform sample of the same number of labels. A design-based interval (the
only kind whose coverage does not rest on the error model being right) learns about the
pairs nobody asked only from labels drawn at random among them, so its width is bounded
below by the best sampling design over the best available predictor of each pair's error.

This script measures that floor, the truth known, for two predictors:

- ``product``: the product's P(wrong) at the first select (AI labels only, no human label
  yet), and the same P(wrong) recalibrated on the truth (isotonic, in sample: generous);
- ``oracle model``: a gradient-boosted classifier fit on the TRUE error of every pair from
  every feature the product has (the signal table, the prior, the product's P(wrong), the
  raw judge votes), cross-fitted in 5 folds: what any error model on these features could
  reach with thousands of labels, far more than a 6% budget gives;
- ``oracle + text``: an L2 logistic regression, also fit on the truth and cross-fitted, on
  those features and the texts' MiniLM embeddings (the prompt's, the chosen-minus-rejected
  difference and its absolute value): the response texts themselves as evidence.

For each, at a budget of ``b`` of the pool spent entirely on random labels (no suspects:
the errors-fixed target is ignored, which only helps the width):

- ``neyman10``: stratified sampling over 10 quantile strata of the predictor with Neyman
  allocation on the strata's TRUE error variance (the design ``quality_dev`` reports);
- ``neyman_cont``: the continuous limit, inclusion probabilities proportional to
  ``sqrt(e (1 - e))`` of the calibrated predictor ``e`` with the estimator's variance
  ``(E sqrt(e (1 - e)))^2 / n`` (active inference's optimal rule, Zrnic & Candes 2024,
  taken at its best: a perfectly calibrated predictor);

each as a width ratio to the classical interval (``sqrt(p (1 - p) / n)``, finite-population
corrected alike), with the AUC of the predictor against the true error.

    RLTHF_DEV_DATA=shared/data/dev python -m benchmarks.quality_limits --seeds 5 --write

Dev sets only; never the holdout.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rlthf_plugin.selection.error_model import fit_error_model
from rlthf_plugin.selection.prior import prior_wrong
from rlthf_plugin.selection.siblings import sibling_margins
from rlthf_plugin.selection.signals import signal_table

from ._report import publish
from .signals_dev import DEFAULTS, LOADERS, RM, Embeddings, make_pool

ALPHA, DELTA = DEFAULTS.trust_alpha, DEFAULTS.trust_delta


def neyman_ratio(e: np.ndarray, err: np.ndarray, n: int, strata: int = 10) -> float:
    """Width ratio of stratified sampling (``strata`` quantile strata of ``e``, Neyman
    allocation on the strata's true error sd) to a uniform sample, both of ``n`` labels.

    e: (N,) any score of how likely each pair's AI label is wrong; err: (N,) 0/1 true error.
    Finite-population variances of the estimated total, ``(sum N_h s_h)^2 / n - sum N_h s_h^2``
    against ``N^2 s^2 / n - N s^2``.
    """
    # ties broken at random: the pool's order must not sort errors within a stratum
    o = np.lexsort((np.random.default_rng(0).random(e.size), -e))
    cuts = np.array_split(o, strata)
    size = np.array([c.size for c in cuts], float)
    sd = np.array([err[c].std() for c in cuts])
    v_opt = (size * sd).sum() ** 2 / n - (size * sd ** 2).sum()
    v_cls = err.size ** 2 * err.var() / n - err.size * err.var()
    return float(np.sqrt(max(v_opt, 0.0) / v_cls))


def continuous_ratio(e: np.ndarray, err: np.ndarray) -> float:
    """The continuous Neyman limit over a calibrated predictor ``e`` (N,) of the 0/1 errors
    ``err`` (N,): ``E sqrt(e (1 - e)) / sqrt(p (1 - p))``, p the error rate (large-N form)."""
    p = err.mean()
    return float(np.mean(np.sqrt(e * (1 - e))) / np.sqrt(p * (1 - p)))


def isotonic(score: np.ndarray, err: np.ndarray) -> np.ndarray:
    """``score`` recalibrated on the truth (in sample; monotone, so it cannot memorise)."""
    from sklearn.isotonic import IsotonicRegression

    return IsotonicRegression(y_min=1e-4, y_max=1 - 1e-4, out_of_bounds="clip").fit(score, err).predict(score)


def oracle_model(features: np.ndarray, err: np.ndarray, seed: int) -> np.ndarray:
    """Out-of-fold P(error) of a gradient-boosted classifier fit on the truth (5 folds)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold

    out = np.empty(err.size)
    for train, test in StratifiedKFold(5, shuffle=True, random_state=seed).split(features, err):
        m = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                           l2_regularization=1.0, random_state=seed)
        out[test] = m.fit(features[train], err[train]).predict_proba(features[test])[:, 1]
    return out


def oracle_text_model(features: np.ndarray, err: np.ndarray, seed: int) -> np.ndarray:
    """Out-of-fold P(error) of an L2 logistic regression (C chosen inside each fold) on the truth."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    out = np.empty(err.size)
    for train, test in StratifiedKFold(5, shuffle=True, random_state=seed).split(features, err):
        m = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=np.logspace(-4, 1, 8), max_iter=3000,
                                                                 scoring="roc_auc", l1_ratios=(0.0,)))
        out[test] = m.fit(features[train], err[train]).predict_proba(features[test])[:, 1]
    return out


def labels_to_certify(eps: float, alpha: float = ALPHA, delta: float = DELTA, most: int = 100_000) -> float:
    """The fewest random labels inside a region whose AI labels are wrong at rate ``eps`` that
    pass the product's test (:func:`rlthf_plugin.selection.guarantee.trusted_region`: the exact
    binomial p-value ``P(Binom(n, alpha) <= k) <= delta``) with the expected ``k = round(eps n)``
    errors among them; inf where ``eps >= alpha``."""
    from scipy.stats import binom

    if eps >= alpha:
        return float("inf")
    for n in range(1, most):
        if binom.cdf(int(round(eps * n)), n, alpha) <= delta:
            return float(n)
    return float("inf")


def first_select(pool, rm: RM, seed: int):
    """The product's signal table, prior and P(wrong) at the first select (AI labels only)."""
    labels = pool.ai
    ones = np.ones(labels.size)
    margin = rm.margins(labels, ones, seed)
    sib = sibling_margins(pool.group, pool.a_id, pool.b_id, np.where(labels == "A", 1.0, -1.0), weights=ones)
    table = signal_table(pool.votes, pool.primary, judge_names=pool.judges, rm_margin=margin,
                         length_a=pool.len_a, length_b=pool.len_b, sibling_margin=sib)
    prior = prior_wrong(table, pool.votes, pool.primary, rm_margin=margin, method=DEFAULTS.prior)
    p = fit_error_model(table, prior, np.full(labels.size, np.nan), prior_strength=DEFAULTS.prior_strength,
                        seed=seed).p_wrong
    return table, np.asarray(prior, float), p


def limits(pool, rm: RM, emb: Embeddings, budgets: list[float], seeds: int) -> list[dict]:
    """The floor's numbers on one pool at each budget, mean and sd over ``seeds`` (see the
    module's docstring); the predictors are fit once a seed, the budgets only change ``n``."""
    from sklearn.metrics import roc_auc_score

    err = (pool.ai != pool.truth).astype(float)
    rows: dict[float, list[dict]] = {b: [] for b in budgets}
    for seed in range(seeds):
        table, prior, p = first_select(pool, rm, seed)
        votes = np.asarray(pool.votes, float).reshape(err.size, -1)
        feats = np.nan_to_num(np.column_stack([table.values, prior, p, votes]), nan=0.0)  # a missing vote is 0
        e_or = oracle_model(feats, err, seed)
        sign = np.where(pool.ai == "A", 1.0, -1.0)[:, None]  # chosen minus rejected, by the AI label
        ea, eb = emb(pool.a), emb(pool.b)
        text = np.column_stack([feats, sign * (ea - eb), np.abs(ea - eb), emb(pool.prompts)])
        e_tx = oracle_text_model(text, err, seed)
        common = {"auc_product": roc_auc_score(err, p), "auc_oracle": roc_auc_score(err, e_or),
                  "auc_text": roc_auc_score(err, e_tx),
                  "cont_product": continuous_ratio(isotonic(p, err), err),
                  "cont_oracle": continuous_ratio(isotonic(e_or, err), err),
                  "cont_text": continuous_ratio(isotonic(e_tx, err), err)}
        for name, score in (("product", p), ("text", e_tx)):  # the trusted region an aim of 50% asks for
            half = np.argsort(score, kind="stable")[: err.size // 2]
            common[f"half_err_{name}"] = float(err[half].mean())
            common[f"half_need_{name}"] = labels_to_certify(common[f"half_err_{name}"])
        for b in budgets:
            n = max(int(round(b * err.size)), 2)
            rows[b].append({**common, "neyman10_product": neyman_ratio(p, err, n),
                            "neyman10_oracle": neyman_ratio(e_or, err, n),
                            "neyman10_text": neyman_ratio(e_tx, err, n)})
    out = []
    for b, rs in rows.items():
        # mean and sd; the labels a certificate needs (inf in some seeds) as their least and most
        stats = {k: ((float(np.min([r[k] for r in rs])), float(np.max([r[k] for r in rs]))) if k.startswith("half_need")
                     else (float(np.mean([r[k] for r in rs])), float(np.std([r[k] for r in rs])))) for k in rs[0]}
        out.append({"set": pool.name, "budget": b, "pairs": int(err.size), "error_rate": float(err.mean()),
                    "labels": max(int(round(b * err.size)), 2), **stats})
    return out


def markdown(results: list[dict], command: str, wall: float) -> str:
    f = lambda v: f"{v[0]:.2f} ± {v[1]:.2f}"  # noqa: E731
    lines = [
        f"Command: `{command}` ({wall / 60:.1f} min, 2 shared CPU cores). Every "
        "label random (no suspects). Ratios are widths against the classical interval from a uniform sample of the "
        "same size; the target is <= 0.75. Mean ± sd over seeds (the seed moves the reward model's folds and the "
        "oracle model's folds).",
        "",
        "| set | budget | pairs | AI error rate | labels | AUC, product P(wrong) | AUC, oracle model | 10 Neyman strata, "
        "product | continuous limit, product (recalibrated on truth) | 10 Neyman strata, oracle model | "
        "continuous limit, oracle model | AUC, oracle + text | 10 Neyman strata, oracle + text | "
        "continuous limit, oracle + text |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r['set']} | {r['budget']:.0%} | {r['pairs']} | {r['error_rate']:.3f} | {r['labels']} | {f(r['auc_product'])} | "
                     f"{f(r['auc_oracle'])} | {f(r['neyman10_product'])} | {f(r['cont_product'])} | "
                     f"{f(r['neyman10_oracle'])} | {f(r['cont_oracle'])} | {f(r['auc_text'])} | "
                     f"{f(r['neyman10_text'])} | {f(r['cont_text'])} |")
    lines += [
        "",
        f"The trusted region the issue aims at (50% of the pool, alpha {ALPHA}, delta {DELTA}): the true error of the "
        "half of the pool with the lowest predicted error (the product's P(wrong) at the first select), and the "
        "random labels inside it that a certificate would need, least and most over the seeds (inf: the half's "
        "error is at or above alpha, so no number of labels can certify it).",
        "",
        "| set | pairs | 6% of the pool | half's error, product P(wrong) | labels to certify it | half's error, "
        "oracle + text | labels to certify it |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in {r["set"]: r for r in results}.values():
        need = lambda v: "-".join("inf" if x == float("inf") else f"{x:.0f}" for x in dict.fromkeys(v))  # noqa: E731
        lines.append(f"| {r['set']} | {r['pairs']} | {round(0.06 * r['pairs'])} | {f(r['half_err_product'])} | "
                     f"{need(r['half_need_product'])} | {f(r['half_err_text'])} | {need(r['half_need_text'])} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default="pandalm,llmbar,mtbench")
    ap.add_argument("--budgets", default="0.02,0.06,0.10")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--write", action="store_true", help="Write the table into docs/benchmarks.md.")
    args = ap.parse_args(argv)
    command = "python -m benchmarks.quality_limits " + " ".join(
        argv if argv is not None else __import__("sys").argv[1:])
    start = time.perf_counter()
    emb = Embeddings()
    results = []
    for name in args.sets.split(","):
        pool = make_pool(LOADERS[name]())
        rm = RM(emb, pool)
        results += limits(pool, rm, emb, [float(b) for b in args.budgets.split(",")], args.seeds)
        print(f"{name} done ({(time.perf_counter() - start) / 60:.1f} min)", flush=True)
    md = markdown(results, command, time.perf_counter() - start)
    publish("quality_limits", md, args.write)
    return results


if __name__ == "__main__":
    main()
