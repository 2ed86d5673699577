"""Quality you can state, simulated on the dev sets (issue 21).

The ``signals`` loop of :mod:`benchmarks.signals_dev` (same pools, reward model, signal
table, prior and error model; iterations of 2% of the pool), with each batch's design
recorded, and at every budget:

- the curated accuracy's 95% interval (:mod:`rlthf_plugin.selection.quality`), with the
  power-tuned lambda (PPI++) and lambda = 1 (AIPW): coverage of the truth, width, and the
  width of the classical interval from a uniform sample of the same number of labels;
- the AI errors fixed (human labels + flips), with today's per-pair flips and with the
  set-certified flips (:func:`rlthf_plugin.selection.guarantee.flip_set`);
- the trusted region (:func:`rlthf_plugin.selection.guarantee.trusted_region`), certified
  on the uniform exploration labels or on every human label: its share of the pool and its
  realized disagreement against alpha.

Designs: ``signals`` (today's batch: suspects, then 10% uniform exploration),
``band_explore<E>`` (:func:`rlthf_plugin.selection.design.draw_design`: a band of suspects
and ``E`` of the batch in two Neyman-allocated exploration strata) and ``audit<c>`` (the
product's ``selection.flip_audit = c``, :mod:`rlthf_plugin.selection.flip_audit`: the
suspects a uniform sample of the flip-candidate region, its rest flipped by the next batch
when certified). Beside each row, :func:`oracle_limits`: what no design or certificate on
this P(wrong) can beat.

    nice -n 10 python -m benchmarks.quality_dev --seeds 30 --write

Dev sets only (``RLTHF_DEV_DATA``, default shared/data/dev); never the holdout.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from collections import defaultdict

import numpy as np

from rlthf_plugin.selection.allocation import allocate
from rlthf_plugin.selection.design import Design, design_of_batch, draw_design, inclusion
from rlthf_plugin.selection.flip_audit import audit_region, certify_region
from rlthf_plugin.selection.error_model import fit_error_model
from rlthf_plugin.selection.guarantee import Certified, flip_set, trusted_region
from rlthf_plugin.selection.prior import prior_wrong
from rlthf_plugin.selection.quality import classical_interval, curated_accuracy
from rlthf_plugin.selection.siblings import sibling_margins
from rlthf_plugin.selection.signals import signal_table
from rlthf_plugin.selection.trust import decide

from ._report import publish
from .quality_limits import neyman_ratio
from .signals_dev import DEFAULTS, LOADERS, RM, Embeddings, make_pool, swap

ALPHA, DELTA = 0.05, 0.1


def run(pool, rm: RM, design: str, seed: int, budgets, step) -> list[dict]:
    n = pool.truth.size
    err = (pool.ai != pool.truth).astype(float)
    human = np.full(n, "", dtype=object).astype(str)
    asked_at = np.full(n, -1)
    explored = np.zeros(n, bool)
    fs, ss, out = [], [], []
    flipped = np.zeros(n, bool)
    audits, region, sampled = [], None, None
    amp_of = np.asarray(DEFAULTS.amplification, dtype=float)
    for it in range(int(round(max(budgets) / step))):
        amp = amp_of[np.clip(asked_at, 0, amp_of.size - 1)]
        labels = np.where(human != "", human, pool.ai)
        margin = rm.margins(labels, np.where(human != "", amp, 1.0), seed + it)
        sib = sibling_margins(pool.group, pool.a_id, pool.b_id, np.where(labels == "A", 1.0, -1.0),
                              weights=np.where(human != "", amp, 1.0))
        table = signal_table(pool.votes, pool.primary, judge_names=pool.judges, rm_margin=margin,
                             length_a=pool.len_a, length_b=pool.len_b, sibling_margin=sib)
        prior = prior_wrong(table, pool.votes, pool.primary, rm_margin=margin, method=DEFAULTS.prior)
        wrong = np.where(human != "", err, np.nan)
        p = fit_error_model(table, prior, wrong, prior_strength=DEFAULTS.prior_strength, seed=seed).p_wrong
        k = int(round(step * n))
        open_ = human == ""
        flipped &= open_  # a flipped pair a human answered later is the human's
        if region is not None and region.any():
            # as the product does: the previous batch's audit is certified when the next one selects
            cert = certify_region(np.where(human != "", err, np.nan), region, sampled & region, delta=DELTA)
            flipped |= cert.flipped & open_
            audits.append(cert)
        region = None
        if design.startswith("audit"):
            d, region = audit_batch(p, open_, flipped, k, float(design.removeprefix("audit")), seed + it)
        elif design == "signals":
            batch = allocate(p, budget=k, eligible=open_, shares={"suspect": 1 - DEFAULTS.explore, "real": 0.0,
                                                                  "explore": DEFAULTS.explore}, seed=seed + it)
            d = design_of_batch(open_, batch.of("suspect"), batch.of("explore"))
        else:
            d = draw_design(np.where(open_, p, np.nan), budget=k, explore=float(design.removeprefix("band_explore")),
                            strata=2, seed=seed + it)
        fs.append(p)
        ss.append(d.stratum)
        asked = d.asked
        human[asked] = pool.truth[asked]
        asked_at[asked] = it
        explored |= asked & (d.stratum > 0)
        sampled = asked
        b = round((it + 1) * step, 4)
        if any(abs(b - x) < 1e-9 for x in budgets):
            out.append(measure(pool, design, seed, b, p, np.array(fs), np.array(ss), asked_at, explored,
                               audit=(flipped & (human == ""), audits) if design.startswith("audit") else None))
    return out


def audit_batch(p, open_, flipped, k, min_mean, seed):
    """The ``audit<min_mean>`` design, as the product draws it (``selection.flip_audit``): the
    suspects a uniform sample of the flip-candidate region (:func:`audit_region`, over the open
    pairs no audit flipped) when there is one, else the band by P(wrong); the exploration share
    uniform over every other open pair (flipped ones and the region's rest included)."""
    to_ask = np.where(open_ & ~flipped, p, np.nan)
    shares = {"suspect": 1 - DEFAULTS.explore, "real": 0.0, "explore": DEFAULTS.explore}
    region = audit_region(to_ask, eligible=open_ & ~flipped, budget=int(round(shares["suspect"] * k)),
                          min_mean=min_mean)
    batch = allocate(to_ask, budget=k, eligible=open_, shares=shares, seed=seed, audit=region)
    stratum = np.where(open_, 1, -1)
    stratum[region] = 2
    if not region.any():
        stratum[batch.of("suspect")] = 0
    asked = np.zeros(p.size, bool)
    asked[batch.index] = True
    return Design(stratum, asked, inclusion(stratum, asked)), region


def measure(pool, design, seed, budget, p, F, S, asked_at, explored, audit=None) -> dict:
    n = pool.truth.size
    err = (pool.ai != pool.truth).astype(float)
    has = asked_at >= 0
    wrong = np.where(has, err, np.nan)
    cand = ~has
    # today's per-pair flips
    dec = decide(p, wrong, flip_min_precision=DEFAULTS.flip_min_precision,
                 trust_max_error=DEFAULTS.trust_max_error, min_evidence=DEFAULTS.min_evidence)
    old_flips = dec.decision == "flip"
    flips = flip_set(p, wrong, candidates=cand, delta=DELTA)
    if audit is not None:  # the audit design's own certified flips
        flips = Certified(audit[0], np.nan, 0, 0, np.nan, 0.5, DELTA, len(audit[1]), "audit")
    r = {"set": pool.name, "design": design, "seed": seed, "budget": budget, "asked": int(has.sum()),
         "explored": int(explored.sum())}
    for name, fl in (("old", old_flips), ("cert", flips.members)):
        cur = np.where(fl, swap(pool.ai), pool.ai)
        cur = np.where(has, pool.truth, cur)
        r[f"fixed_{name}"] = float((err.astype(bool) & (cur == pool.truth)).sum() / max(err.sum(), 1))
    r["flips"] = flips.size
    r["flip_net"] = float(err[flips.members].sum() - (1 - err[flips.members]).sum())
    r["flip_precision"] = float(err[flips.members].mean()) if flips.size else float("nan")
    truth = 1 - (err[cand & ~flips.members].sum() + (1 - err[flips.members]).sum()) / n
    for lam_name, lam in (("tuned", None), ("aipw", 1.0)):
        q = curated_accuracy(F, S, asked_at, wrong, flipped=flips.members, lam=lam)
        r[f"cover_{lam_name}"] = bool(q.low <= truth <= q.high)
        r[f"width_{lam_name}"] = q.high - q.low
        r[f"lam_{lam_name}"] = q.lam
    rng = np.random.default_rng(10_000 + seed)
    uni = rng.choice(n, size=int(has.sum()), replace=False)
    acc_c, lo_c, hi_c = classical_interval(err[uni], n)
    truth_c = 1 - err[np.setdiff1d(np.arange(n), uni)].sum() / n
    r["width_classical"] = hi_c - lo_c
    r["cover_classical"] = bool(lo_c <= truth_c <= hi_c)
    # The largest trusted share any threshold of this P(wrong) could have (truth known): is 50% there at all?
    order = np.flatnonzero(cand)[np.argsort(p[cand], kind="stable")]
    run_err = np.cumsum(err[order]) / np.arange(1, order.size + 1)
    ok_k = np.flatnonzero(run_err <= ALPHA)
    r["trust_oracle_share"] = (ok_k.max() + 1) / n if ok_k.size else 0.0
    r.update(oracle_limits(p, err, cand, int(has.sum())))
    for cal_name, cal in (("explore", explored), ("all", has)):
        t = trusted_region(p, wrong, candidates=cand, calibration=cal, alpha=ALPHA, delta=DELTA)
        r[f"trust_{cal_name}_share"] = t.size / n
        r[f"trust_{cal_name}_err"] = float(err[t.members].mean()) if t.size else float("nan")
    return r


def oracle_limits(p, err, cand, n_labels, strata=10) -> dict:
    """What no design or certificate on this P(wrong) can beat (the truth known).

    - ``oracle_ratio``: the width ratio to the classical interval of a design that spends all
      ``n_labels`` at random over the open pairs, in ``strata`` quantile strata of P(wrong)
      with Neyman allocation on the strata's TRUE error variance (stratified estimation,
      finite-population variance ``(sum N_h s_h)^2 / n - sum N_h s_h^2``); the classical
      interval is a uniform sample of the same size. A valid interval from these labels
      cannot be narrower than this in expectation (the difference estimator with P(wrong)
      as control variate gains on this only what the strata leave, measured below 2%).
    - ``flip_oracle_net`` / ``flip_oracle_m``: the most errors any flip set of the top-m open
      pairs by P(wrong) fixes on net (right flips less wrong ones), and its m;
      ``flip_oracle_labels``: the uniform labels in that set a one-sided test at ``DELTA``
      needs to show its precision is above 1/2 (normal approximation at its true precision).
    """
    idx = np.flatnonzero(cand)
    out = {"oracle_ratio": float("nan"), "flip_oracle_net": 0.0, "flip_oracle_m": 0, "flip_oracle_labels": 0}
    if idx.size < 2 * strata or n_labels < 2:
        return out
    o = idx[np.argsort(-p[idx], kind="stable")]
    out["oracle_ratio"] = neyman_ratio(p[idx], err[idx], n_labels, strata) if err[idx].var() > 0 else float("nan")
    net = np.cumsum(2 * err[o] - 1)
    m = int(np.argmax(net)) + 1
    if net[m - 1] > 0:
        prec = float(err[o[:m]].mean())
        z = 1.2816  # one-sided, delta 0.1
        need = int(np.ceil(z ** 2 * prec * (1 - prec) / (prec - 0.5) ** 2)) if prec > 0.5 else 0
        out.update(flip_oracle_net=float(net[m - 1]), flip_oracle_m=m, flip_oracle_labels=need)
    return out


def _ms(xs, f="{:.3f}") -> str:
    x = np.array([v for v in xs if v == v], float)
    return "-" if not x.size else f.format(x.mean()) + (" ± " + f.format(x.std()) if x.size > 1 else "")


def table(rows, budgets) -> str:
    g = defaultdict(list)
    for r in rows:
        g[(r["set"], r["design"], r["budget"])].append(r)
    designs = list(dict.fromkeys(r["design"] for r in rows))
    out = ["| set | design | budget | coverage (tuned / AIPW / classical) | width tuned | width AIPW | "
           "width classical | width ratio (tuned / classical) | errors fixed (today's flips) | "
           "errors fixed (certified flips) | certified flips | flip net | flip precision | "
           "trusted share (explore / all) | trusted err <= alpha (explore / all) | largest share with err <= alpha "
           "(oracle) | width ratio, best stratified design (oracle) | best flip net (oracle) | its flips / labels to "
           "certify it |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in dict.fromkeys(r["set"] for r in rows):
        for b in budgets:
            for d in designs:
                rs = g.get((s, d, b))
                if not rs:
                    continue
                ratio = np.mean([r["width_tuned"] for r in rs]) / np.mean([r["width_classical"] for r in rs])
                def ok(c: str, rs: list = rs) -> str:
                    key = f"trust_{c}_err"  # NaN (an empty region) counts as within alpha
                    return f"{np.mean([r[key] <= ALPHA if r[key] == r[key] else True for r in rs]):.2f}"

                out.append(
                    f"| {s} | {d} | {b:.0%} | {np.mean([r['cover_tuned'] for r in rs]):.3f} / "
                    f"{np.mean([r['cover_aipw'] for r in rs]):.3f} / {np.mean([r['cover_classical'] for r in rs]):.3f} | "
                    f"{_ms(r['width_tuned'] for r in rs)} | {_ms(r['width_aipw'] for r in rs)} | "
                    f"{_ms(r['width_classical'] for r in rs)} | {ratio:.2f} | {_ms(r['fixed_old'] for r in rs)} | "
                    f"{_ms(r['fixed_cert'] for r in rs)} | {np.mean([r['flips'] for r in rs]):.1f} | "
                    f"{_ms((r['flip_net'] for r in rs), '{:.1f}')} | {_ms(r['flip_precision'] for r in rs)} | "
                    f"{_ms(r['trust_explore_share'] for r in rs)} / {_ms(r['trust_all_share'] for r in rs)} | "
                    f"{ok('explore')} / {ok('all')} | {_ms(r.get('trust_oracle_share', np.nan) for r in rs)} | "
                    f"{_ms((r.get('oracle_ratio', np.nan) for r in rs), '{:.2f}')} | "
                    f"{_ms((r.get('flip_oracle_net', np.nan) for r in rs), '{:.1f}')} | "
                    f"{np.mean([r.get('flip_oracle_m', np.nan) for r in rs]):.0f} / "
                    f"{np.mean([r.get('flip_oracle_labels', np.nan) for r in rs]):.0f} |")
    return "\n".join(out)


def markdown(rows, budgets, command, wall) -> str:
    return "\n".join([
        "## Quality you can state: interval, trusted region, certified flips (issue 21)", "",
        f"Command: `{command}` ({wall / 60:.1f} min on this machine, 2 shared CPU cores). Dev sets only.", "",
        "The `signals` loop of the dev benchmark above (same pools, RM, signals, prior and error model, 2% "
        "iterations), with each batch's design recorded. Designs: `signals` (today's batch: suspects by P(wrong), "
        "10% uniform exploration of the rest; inclusion probability 1 for suspects, n/N for the rest), "
        "`band_explore<E>` (a band of suspects and a share E of the batch drawn in two exploration strata by "
        "Neyman allocation) and `audit<c>` (the product's `selection.flip_audit = c`: where the open pairs of highest "
        "P(wrong) have a mean P(wrong) >= c and outnumber the suspects, the suspects are a uniform sample of them; "
        "the next batch flips the rest if the sample shows a precision above 1/2 at 1-delta, hypergeometric test; "
        "flipped pairs are never suspects again but stay explorable; the flips of `audit` rows are these). "
        "Coverage: the share of runs whose 95% interval holds the true curated accuracy "
        "(human labels right, certified flips applied); `tuned` = PPI++ power-tuned lambda, `AIPW` = lambda 1; "
        "classical = the Wald interval from a uniform sample of the same number of labels. Errors fixed: share "
        "of the primary judge's errors fixed by human labels and flips (a wrong flip un-fixes), with today's "
        "per-pair flips (`decide`) and with the set-certified flips (precision lower bound >= 0.5 at 1-delta, "
        f"delta {DELTA}). Trusted region: alpha {ALPHA}, delta {DELTA}, certified on the uniform exploration "
        "labels or on all human labels; share of the pool, and the share of runs whose realized disagreement in "
        "the region is <= alpha (an empty region counts as met); the oracle column is the largest share of the pool "
        "that any threshold of the same P(wrong) could trust with a realized disagreement <= alpha (truth known): "
        "an upper limit for any certificate. Oracle limits (truth known, `oracle_limits`): the width ratio of the best "
        "stratified design (all labels random, Neyman allocation over 10 quantile strata of P(wrong) on the strata's "
        "true error variance) and the best flip set of the top open pairs by P(wrong) (its net, its size, and the "
        "uniform labels in it a one-sided test at delta needs). Mean ± sd over seeds.", "",
        table(rows, budgets), ""])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default="pandalm,llmbar,mtbench")
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--budgets", default="0.02,0.04,0.06,0.08,0.10")
    ap.add_argument("--step", type=float, default=0.02)
    ap.add_argument("--designs", default="signals,band_explore0.5")
    ap.add_argument("--write", action="store_true", help="Write the table into docs/benchmarks.md.")
    ap.add_argument("--out", type=Path, default=None, help="Write the rows as JSON here (one file per set: run "
                                                            "the sets in parallel, then --merge).")
    ap.add_argument("--merge", nargs="*", type=Path, default=None, help="Only tabulate these row files.")
    args = ap.parse_args(argv)
    command = "nice -n 10 python -m benchmarks.quality_dev " + " ".join(
        argv if argv is not None else __import__("sys").argv[1:])
    start = time.perf_counter()
    budgets = [float(x) for x in args.budgets.split(",")]
    if args.merge is not None:
        rows = [r for f in args.merge for r in json.loads(f.read_text())]
        md = markdown(rows, budgets, command, sum(r.get("seconds", 0) for r in rows))
        publish("quality_dev", md, args.write)
        return rows
    emb = Embeddings()
    rows = []
    for name in args.sets.split(","):
        pool = make_pool(LOADERS[name]())
        rm = RM(emb, pool)
        for seed in range(args.seeds):
            for d in args.designs.split(","):
                rows += run(pool, rm, d, seed, budgets, args.step)
        print(f"{name} done ({(time.perf_counter() - start) / 60:.1f} min)", flush=True)
    wall = time.perf_counter() - start
    for r in rows:
        r["seconds"] = wall / max(len(rows), 1)
    if args.out:
        args.out.write_text(json.dumps(rows, default=float))
    md = markdown(rows, budgets, command, wall)
    publish("quality_dev", md, args.write)
    return rows


if __name__ == "__main__":
    main()
