"""``rlthf report``: one self-contained HTML page per workspace, beside its PNG plots.

The page shows, per iteration, the margin curve with its boundaries (elbow, knee,
reflection) and the pairs asked and flipped (:func:`rlthf_plugin.report.plots.plot_margin_curve`);
the AI-error precision of each human batch, where human labels tell; how many labels were
asked, flipped and kept; the human labels saved against labeling everything; and the
agreement between annotators. No external assets: the plots are files in the same folder,
referenced by relative names, and the styles are inline.
"""

from __future__ import annotations

import html
import itertools
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Config, ground_truth_platforms
from ..io.export import curated_rows
from ..loop.workspace_calibration import labeled_margins
from ..loop.oracle import flip_precision
from ..loop.escalation import spend
from ..loop.quality import flips_statement, quality_curve, quality_summary
from ..pairs import A, B, majority
from ..store import iterations as iterations_db
from ..store.labels import label_rows
from ..store.ledger import Ledger
from ..store.votes import judges_overview
from ..selection.calibration import calibration_problem, fit_platt, out_of_fold_probability, reliability
from ..selection.rlthf import ACTIONS, Action
from ..vocab import SELECTING_STATES, LabelSource, Strategy
from .plots import plot_history, plot_margin_curve, plot_quality, plot_reliability

REPORT_FILE = "index.html"


# -- what the page shows -------------------------------------------------------------------------
def agreement(votes: dict[str, list[tuple[str, str]]]) -> dict[str, Any]:
    """Agreement between annotators on pairs labeled by two or more of them.

    ``votes``: pair id -> [(annotator, label), ...] with labels A, B or tie. Returns the
    number of such pairs, of annotator pairs compared, the share of those that agree
    (pairwise agreement), and the same per pair of annotators (most compared first).
    """
    compared = agreed = 0
    per: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    pairs = 0
    for items in votes.values():
        last: dict[str, str] = {}
        for who, label in items:
            if label in (A, B, "tie"):
                last[who] = label
        if len(last) < 2:
            continue
        pairs += 1
        for (u, lu), (v, lv) in itertools.combinations(sorted(last.items()), 2):
            compared += 1
            agreed += lu == lv
            per[(u, v)][0] += lu == lv
            per[(u, v)][1] += 1
    by_pair = sorted(((u, v, a, n) for (u, v), (a, n) in per.items()), key=lambda x: (-x[3], x[0], x[1]))
    return {"pairs": pairs, "compared": compared, "agreement": agreed / compared if compared else None,
            "by_annotators": by_pair}


def report_data(ledger: Ledger, config: Config) -> dict[str, Any]:
    """Everything the page shows, read from the ledger."""
    truth_platforms = ground_truth_platforms(config)
    judges, audited = judges_overview(ledger, config.selection.primary_judge)  # one read of the votes
    ai = audited.labels
    counted: dict[str, list[tuple[str, str]]] = defaultdict(list)
    truth_votes: dict[str, list[tuple[str, str]]] = defaultdict(list)
    rows = iterations_db.iteration_rows(ledger)
    for r in label_rows(ledger):
        (truth_votes if r.platform in truth_platforms else counted)[r.pair_id].append((f"{r.platform}:{r.annotator}",
                                                                                       r.label))
    decisions = defaultdict(list)
    for d in iterations_db.decisions(ledger):
        decisions[d["iteration"]].append(d)
    human = {pid: majority(label for _, label in v).label for pid, v in counted.items()}
    iterations = []
    for row in rows:
        if row["state"] in SELECTING_STATES:
            continue
        it, stats = row["id"], row["stats"] or {}
        ds = decisions.get(it, [])
        counts = Counter(d["action"] for d in ds)
        asked = [d["pair_id"] for d in ds if d["action"] == Action.ASK]
        told = [p for p in asked if human.get(p) in (A, B) and ai.get(p) in (A, B)]
        errors = sum(human[p] != ai[p] for p in told)
        iterations.append({
            "iteration": it, "state": row["state"], "stats": stats, "counts": {a: counts.get(a, 0) for a in ACTIONS},
            "answered": sum(1 for p in asked if p in human), "told": len(told), "ai_errors": errors,
            "precision": errors / len(told) if told else None, "flip_precision": flip_precision(ledger, config, it),
            "margins": np.array([d["margin"] if d["margin"] is not None else np.nan for d in ds], dtype=float),
            "actions": [d["action"] for d in ds], "asked": asked,
        })
    pool = sum(1 for label in ai.values() if label in (A, B))
    asked_total = len({p for it in iterations for p in it["asked"]})
    sources = Counter(r["label_source"] for r in curated_rows(ledger, config=config)) if pool else Counter()
    return {
        "pairs": len(ledger.pair_ids()), "pool": pool, "iterations": iterations, "asked_total": asked_total,
        "human_labels": sum(len(v) for v in counted.values()), "sources": dict(sources),
        "agreement": agreement(counted), "truth_agreement": agreement(truth_votes),
        "human_ai": _human_ai(human, ai), "judges": judges,
        "spend": spend(ledger, config) if config.escalation.judges or config.cost.human_label else [],
    }


def _human_ai(human: dict[str, str | None], ai: dict[str, str | None]) -> dict[str, Any]:
    both = [p for p, h in human.items() if h in (A, B) and ai.get(p) in (A, B)]
    agree = sum(human[p] == ai[p] for p in both)
    return {"pairs": len(both), "agreement": agree / len(both) if both else None}


# -- the page --------------------------------------------------------------------------------------
#: What the report calls each decision: "drop" is the AI label exported as is, never checked.
ACTION_HEADERS = {"drop": "unverified"}
#: What the report calls each label source of the curated set.
SOURCE_NAMES = {"ai": "ai (AI label kept, unverified)"}

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; background: #fff; line-height: 1.4; }
h1 { color: #1f4e79; border-bottom: 3px solid #1f4e79; padding-bottom: .2em; }
h2 { color: #1f4e79; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; }
th, td { border: 1px solid #c8d3df; padding: .3em .7em; text-align: right; }
th { background: #e8eef5; } td.l, th.l { text-align: left; }
.cards { display: flex; gap: 1em; flex-wrap: wrap; }
.card { background: #f3f7fb; border-left: 6px solid #2e86c1; padding: .6em 1em; min-width: 12em; }
.card b { display: block; font-size: 1.6em; color: #1f4e79; }
.saved { border-left-color: #28a745; } .asked { border-left-color: #e67e22; } .flip { border-left-color: #c0392b; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: .9em; }
.muted { color: #777; }
"""


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


def render(data: dict[str, Any], images: dict[str, str], *, title: str) -> str:
    """The page as HTML text; ``images`` maps iteration numbers (as text) and "history" to file names."""
    e = html.escape
    pool, asked = data["pool"], data["asked_total"]
    flipped = data["sources"].get(LabelSource.FLIPPED.value, 0)
    kept = data["sources"].get(LabelSource.TRUSTED_AI.value, 0)
    out = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>",
           f"<style>{CSS}</style></head><body>", f"<h1>{e(title)}</h1>",
           f"<p class='muted'>{data['pairs']} pairs, {pool} with an AI label that picks a winner; "
           f"{len(data['iterations'])} iteration(s).</p>",
           "<div class='cards'>",
           f"<div class='card asked'>human labels asked<b>{asked}</b>{_pct(asked, pool)} of the pool</div>",
           f"<div class='card saved'>labels saved against labeling everything<b>{max(pool - asked, 0)}</b>"
           f"{_pct(max(pool - asked, 0), pool)} of {pool}</div>",
           f"<div class='card flip'>AI labels flipped<b>{flipped}</b>in the curated set</div>",
           f"<div class='card'>AI labels kept (trusted)<b>{kept}</b>in the curated set</div>",
           "</div>"]
    out += _quality_section(data.get("quality") or {}, images)
    out.append("<h2>Iterations</h2><table><tr><th>iteration</th><th class='l'>state</th>"
               + "".join(f"<th title='{a}'>{ACTION_HEADERS.get(a, a)}</th>" for a in ACTIONS)
               + "<th>answered</th><th>AI errors / told</th><th>AI-error precision</th>"
                 "<th>flip precision (ground truth)</th><th class='l'>flip gate</th></tr>")
    for it in data["iterations"]:
        gate = (it["stats"].get("gate") or {}).get("reason", "")
        out.append(f"<tr><td>{it['iteration']}</td><td class='l'>{e(it['state'])}</td>"
                   + "".join(f"<td>{it['counts'][a]}</td>" for a in ACTIONS)
                   + f"<td>{it['answered']}</td><td>{it['ai_errors']} / {it['told']}</td>"
                     f"<td>{_fmt(it['precision'])}</td><td>{_fmt(it['flip_precision'])}</td>"
                     f"<td class='l'>{e(gate)}</td></tr>")
    out.append("</table><p class='muted'>unverified: the AI label kept, unverified (the selection's "
               "<i>drop</i>: left out of the next training set, exported as an <code>ai</code> label). "
               "AI-error precision: the share of a batch's answered pairs (human "
               "winner, AI winner) whose AI label the humans overturned; – where no human label tells yet.</p>")
    if "history" in images:
        out.append(f"<figure><img src='{e(images['history'])}' alt='AI-error precision per batch and accuracy "
                   "per iteration'><figcaption>AI-error precision of each human batch; accuracy of the curated "
                   "labels per iteration (against ground truth, where there is any).</figcaption></figure>")
    out += _spend_section(data.get("spend") or [])
    if data["sources"]:
        out.append("<h2>The curated set</h2><table><tr><th class='l'>label source</th><th>pairs</th></tr>"
                   + "".join(f"<tr><td class='l'>{e(SOURCE_NAMES.get(k, k))}</td><td>{v}</td></tr>"
                             for k, v in sorted(data["sources"].items()))
                   + "</table>")
    out.append("<h2>Agreement</h2><table><tr><th class='l'>who</th><th>pairs</th><th>comparisons</th>"
               "<th>agreement</th></tr>")
    for name, ag in (("annotators on the labeling platforms", data["agreement"]),
                     ("imported (ground-truth) votes", data["truth_agreement"])):
        out.append(f"<tr><td class='l'>{e(name)}</td><td>{ag['pairs']}</td><td>{ag['compared']}</td>"
                   f"<td>{_fmt(ag['agreement'])}</td></tr>")
    ha = data["human_ai"]
    out.append(f"<tr><td class='l'>human majority vs AI label</td><td>{ha['pairs']}</td><td>{ha['pairs']}</td>"
               f"<td>{_fmt(ha['agreement'])}</td></tr></table>")
    by = data["agreement"]["by_annotators"][:10]
    if by:
        out.append("<table><tr><th class='l'>annotator</th><th class='l'>annotator</th><th>pairs</th>"
                   "<th>agreement</th></tr>"
                   + "".join(f"<tr><td class='l'>{e(u)}</td><td class='l'>{e(v)}</td><td>{n}</td>"
                             f"<td>{_fmt(a / n)}</td></tr>" for u, v, a, n in by) + "</table>")
    out.append("<h2>Margin curves</h2>")
    for it in data["iterations"]:
        name = images.get(str(it["iteration"]))
        if name:
            curve = it["stats"].get("curve") or {}
            out.append(f"<figure><img src='{e(name)}' alt='margin curve of iteration {it['iteration']}'>"
                       f"<figcaption>Iteration {it['iteration']}: margins of the AI labels, sorted; elbow "
                       f"{_fmt(curve.get('elbow'))}, knee {_fmt(curve.get('knee'))}, reflection "
                       f"{_fmt(curve.get('reflection'))}; the batch asked in orange, flips in red."
                       "</figcaption></figure>")
    cal = data.get("calibration")
    out.append("<h2>Calibration</h2>")
    problem = data.get("calibration_problem")
    if problem:
        out.append(f"<p class='warn'><strong>Warning:</strong> {e(problem)}.</p>")
    if cal and "reliability" in images:
        out.append(f"<figure><img src='{e(images['reliability'])}' alt='reliability diagram'><figcaption>"
                   f"Reliability of the probabilities sent with predictions and suggestions: Platt scaling "
                   f"without a position term (slope {_fmt(cal['slope'], 3)}) fit on both orders of {cal['n']} "
                   "human-labeled pairs, against sigmoid(margin). Points near the diagonal are calibrated; each "
                   f"point is out of fold ({data.get('calibration_out_of_fold', 0)} pairs, 5 folds): its probability "
                   "comes from a fit made without it.</figcaption></figure>")
    elif not problem:
        out.append(f"<p class='muted'>{data.get('calibration_labels', 0)} human-labeled pair(s) with a margin: "
                   "too few for an out-of-fold reliability diagram.</p>")
    out += _judges_section(data.get("judges") or {}, data["iterations"])
    out.append("</body></html>")
    return "\n".join(out)


def _quality_section(q: dict[str, Any], images: dict[str, str]) -> list[str]:
    """The estimated accuracy curve with its band and the trusted / flipped / asked split."""
    e = html.escape
    if not q.get("available"):
        return []
    a, t, f, s, v = q["curated_accuracy"], q["trusted_region"], q["flips"], q["split"], q["stop"]
    out = ["<h2>Quality you can state</h2>",
           f"<p>Estimated curated accuracy <b>{a['estimate']:.3f}</b>, {a['confidence']:.0%} interval "
           f"[{a['low']:.3f}, {a['high']:.3f}], from {q['human']} human answers weighted by the probability "
           f"that each was asked (no ground truth used). Next batch: "
           + ("yield not known yet" if v["errors_fixed_per_100_labels"] is None else
              f"about {v['errors_fixed_per_100_labels']:.1f} AI errors fixed per 100 labels")
           + f"; {e(v['reason'])}.</p>"]
    if "quality" in images:
        out.append(f"<figure><img src='{e(images['quality'])}' alt='estimated curated accuracy per iteration'>"
                   "<figcaption>Estimated curated accuracy per iteration with its 95% interval: the curve to watch "
                   "when there is no ground truth.</figcaption></figure>")
    out.append("<table><tr><th class='l'>the curated set</th><th>pairs</th><th class='l'>statement</th></tr>"
               f"<tr><td class='l'>human answers</td><td>{s['human']}</td><td class='l'>right by definition</td></tr>"
               f"<tr><td class='l'>trusted AI labels</td><td>{s['trusted_ai']}</td><td class='l'>disagreement "
               f"&lt;= {t['alpha']:g} with probability &gt;= {1 - t['delta']:g}; {e(str(t.get('reason', '')))}"
               "</td></tr>"
               f"<tr><td class='l'>flipped AI labels</td><td>{s['flipped']}</td><td class='l'>"
               + e(flips_statement(f)) + "</td></tr>"
               f"<tr><td class='l'>asked, not answered yet</td><td>{s['asked_open']}</td><td class='l'>–</td></tr>"
               f"<tr><td class='l'>untrusted AI labels (escalation list)</td><td>{s['untrusted_ai']}</td>"
               "<td class='l'><code>rlthf label-ai --only untrusted</code></td></tr></table>")
    return out


def _spend_section(rows: list[dict[str, Any]]) -> list[str]:
    """Spend per iteration: human labels and escalation calls at ``[cost]`` prices."""
    if not any(r["cost"] or r["judge_calls"] for r in rows):
        return []
    e = html.escape
    out = ["<h2>Spend</h2><table><tr><th>iteration</th><th>human labels</th><th class='l'>escalation calls</th>"
           "<th>human cost</th><th>judge cost</th><th>cost</th><th>AI errors found</th><th>errors per unit cost</th></tr>"]
    for r in rows:
        calls = ", ".join(f"{e(j)} {n}" for j, n in r["judge_calls"].items()) or "–"
        out.append(f"<tr><td>{e(str(r['iteration']))}</td><td>{r['human_labels']}</td><td class='l'>{calls}</td>"
                   f"<td>{_fmt(r['human_cost'])}</td><td>{_fmt(r['judge_cost'])}</td><td>{_fmt(r['cost'])}</td>"
                   f"<td>{r['errors_found']}</td><td>{_fmt(r['errors_per_cost'], 3)}</td></tr>")
    out.append("</table><p class='muted'>Prices from [cost] in rlthf.toml; escalation calls count for the "
               "iteration whose batch they preceded; AI errors found: the batch's human labels against the "
               "audited AI label.</p>")
    return out


def _judges_section(judges: dict[str, Any], iterations: list[dict]) -> list[str]:
    """AI votes per judge, judge x judge agreement and the error model's weights per iteration."""
    e = html.escape
    per = judges.get("judges") or {}
    if not per:
        return []
    names = list(per)
    out = [f"<h2>Judges and signals</h2><p class='muted'>The audited label is the primary judge's "
           f"(<b>{e(str(judges.get('primary_judge')))}</b>); on pairs it did not vote on, the label of the "
           "best-covered judge that did (<i>audited</i>: pairs under each judge's label). Every other judge "
           "and order, the reward model's margin, the sibling margin (what the other labels of the same prompt "
           "imply) and the length ratio are signals against it.</p>",
           "<table><tr><th class='l'>judge</th><th>pairs</th><th>audited</th><th>votes</th><th>both orders</th>"
           "<th>split orders</th>"
           + "".join(f"<th>agrees with j{k}</th>" for k in range(len(names))) + "</tr>"]
    for k, n in enumerate(names):
        v = per[n]
        cells = "".join(f"<td>{_fmt(a / c) if c else '–'}</td>" for a, c in (judges["agreement"][n][m] for m in names))
        out.append(f"<tr><td class='l'>j{k}: {e(n)}</td><td>{v['pairs']}</td><td>{v.get('audited', 0)}</td>"
                   f"<td>{v['votes']}</td>"
                   f"<td>{v['both_orders']}</td><td>{v['split_orders']}</td>{cells}</tr>")
    out.append("</table>")
    rows = [(it["iteration"], it["stats"].get("error_model") or {}) for it in iterations
            if it["stats"].get("strategy") == Strategy.SIGNALS]
    signals = sorted({k for _, em in rows for k in (em.get("weights") or {})})
    if signals:
        out.append("<table><tr><th class='l'>error-model weight (+ = evidence the AI label is wrong)</th>"
                   + "".join(f"<th>iteration {i}</th>" for i, _ in rows) + "</tr>")
        for sig in signals:
            out.append(f"<tr><td class='l'>{e(sig)}</td>"
                       + "".join(f"<td>{_fmt((em.get('weights') or {}).get(sig))}</td>" for _, em in rows) + "</tr>")
        out.append("<tr><td class='l'>human labels (AI errors)</td>"
                   + "".join(f"<td>{em.get('n_labels', 0)} ({em.get('n_errors', 0)})</td>" for _, em in rows)
                   + "</tr></table>")
    return out


def write_report(ledger: Ledger, config: Config, out_dir: str | Path, *, title: str = "RLTHF report") -> Path:
    """Write ``index.html`` and its PNGs into ``out_dir``; returns the HTML's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = report_data(ledger, config)
    images: dict[str, str] = {}
    for it in data["iterations"]:
        if it["actions"]:
            path = plot_margin_curve(it["margins"], it["actions"], it["stats"].get("curve") or {},
                                     out_dir / f"margin_curve_iter{it['iteration']}.png",
                                     title=f"Iteration {it['iteration']}")
            images[str(it["iteration"])] = path.name
    if data["iterations"]:
        history = [{"iteration": it["iteration"], "precision": it["precision"],
                    "curated_accuracy": (it["stats"].get("eval") or {}).get("curated_accuracy"),
                    "ai_accuracy": (it["stats"].get("eval") or {}).get("ai_accuracy")} for it in data["iterations"]]
        images["history"] = plot_history(history, out_dir / "history.png").name
    data["quality"] = quality_summary(ledger, config)
    curve = quality_curve(ledger, config)
    if curve:
        images["quality"] = plot_quality(curve, out_dir / "quality.png").name
    margins, a_better = labeled_margins(ledger, config)
    calibration = fit_platt(margins, a_better)
    data["calibration_labels"] = int(margins.size)
    data["calibration_problem"] = calibration_problem(calibration, int(margins.size))
    if calibration is not None:
        data["calibration"] = asdict(calibration)
        oof = out_of_fold_probability(margins, a_better)  # each point from a fit made without it
        ok = np.isfinite(oof)
        data["calibration_out_of_fold"] = int(ok.sum())
        if ok.sum() >= 2:
            images["reliability"] = plot_reliability(
                reliability(oof[ok], a_better[ok]),
                reliability(1.0 / (1.0 + np.exp(-margins[ok])), a_better[ok]), out_dir / "reliability.png").name
    path = out_dir / REPORT_FILE
    path.write_text(render(data, images, title=title), encoding="utf-8")
    return path
