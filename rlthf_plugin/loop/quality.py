"""What a team got, from the ledger: the curated accuracy with an interval, the trusted
region, the flips and whether another batch is worth it (issue 21).

Every finished ``signals`` iteration is one batch of :func:`rlthf_plugin.selection.quality.curated_accuracy`:

- its population: the pairs it decided about (its decision rows, less REAL candidates and
  pairs whose label judge contradicted itself, which have no AI label to keep), each with
  the P(wrong) it recorded (``reason.p_wrong``), known before its labels;
- its design (:func:`rlthf_plugin.selection.design.design_of_batch`): the suspects it asked
  are the band (known for sure once answered), the exploration sample is a uniform draw of
  the rest. With a flip audit (:mod:`.flip_audit`), its region (``reason.audit``) is a
  stratum of its own, whose suspects and exploration picks are a uniform sample of it. A
  pair asked but not answered (yet) counts with the rest, not sampled.

The curated set is the export's (human answers right, the latest iteration's flips and
kept AI labels); the quality is shown by ``rlthf status`` (and ``--json``), the report, the
export's dataset card and ``/metrics``. Pure arithmetic lives in ``selection``; this module
only reads the ledger and arranges arrays.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

import numpy as np

from ..batching import batched
from ..config import Config, ground_truth_platforms
from ..pairs import A, B
from ..selection.allocation import Kind
from ..selection.quality import curated_accuracy, stop_verdict
from ..selection.rlthf import Action
from ..store import iterations as iterations_db
from ..store.labels import label_rows
from ..store.ledger import Ledger
from ..store.pair_ids import positions_of
from ..vocab import SELECTING_STATES, Strategy
from .pool import Pool, read_pool

#: Decision regions that are not a pool pair with an AI label to keep.
_NOT_POOL = {"inconsistent", Kind.REAL.value}
#: Decision rows whose pairs are looked up at a time.
LOOKUP_PAGE = 5000


def signals_iterations(ledger: Ledger) -> list[dict]:
    """The finished selections of the ``signals`` strategy, oldest first."""
    return [r for r in iterations_db.iteration_rows(ledger)
            if (r["stats"] or {}).get("strategy") == Strategy.SIGNALS.value
            and r["state"] not in {s.value for s in SELECTING_STATES}]


def _located(pool: Pool, rows: Iterable[dict]) -> Iterator[tuple[dict, int]]:
    """(row, the pool position of its pair or -1), the positions looked up a page of rows at a time."""
    for page in batched(rows, LOOKUP_PAGE):
        yield from zip(page, positions_of(pool.index, [r["pair_id"] for r in page]).tolist())


def batch_arrays(pool: Pool, batches: Iterable[Iterable[dict]]) -> dict[str, np.ndarray]:
    """The arrays :func:`curated_accuracy` takes, from each batch's decision rows (each batch
    read once, in order: rows may be streamed).

    Returns ``f`` and ``stratum`` (T, N), ``asked_at`` and ``wrong`` (N,), ``suspect`` and
    ``explore`` (T, N) bool (asked as such), ``pop`` and ``audit`` (T, N) bool (in the batch's
    population, in its audit region) over the pool's pairs.
    """
    batches = list(batches)  # unstarted streams: each is read when its turn comes
    n, t_n = len(pool.pairs), len(batches)
    f = np.full((t_n, n), np.nan)
    pop = np.zeros((t_n, n), dtype=bool)
    suspect = np.zeros((t_n, n), dtype=bool)
    explore = np.zeros((t_n, n), dtype=bool)
    audit = np.zeros((t_n, n), dtype=bool)
    for t, rows in enumerate(batches):
        for r, i in _located(pool, rows):
            reason = r["reason"] or {}
            if i < 0 or r["region"] in _NOT_POOL or reason.get("p_wrong") is None:
                continue
            if pool.ai[i] not in (A, B):
                continue
            pop[t, i] = True
            f[t, i] = float(reason["p_wrong"])
            audit[t, i] = reason.get("audit") is not None
            if r["action"] == Action.ASK.value:
                suspect[t, i] = reason.get("kind") == Kind.SUSPECT.value
                explore[t, i] = reason.get("kind") == Kind.EXPLORE.value
    answered = pool.human_any
    in_pop = pop.any(axis=0)
    last = np.where(in_pop, t_n - 1 - np.argmax(pop[::-1], axis=0), -1)
    asked_at = np.where(answered, last, -1)
    wrong = np.where(answered, np.where(np.isin(pool.human, [A, B]), (pool.human != pool.ai).astype(float), 0.0),
                     np.nan)
    stratum = np.where(pop, 1, -1)
    stratum[pop & audit] = 2  # the audit region: its suspects (and explore picks) are a uniform sample of it
    rows_t = np.arange(t_n)[:, None]
    known = pop & ~audit & answered[None, :] & (suspect | ((asked_at[None, :] == rows_t) & ~explore))
    stratum[known] = 0
    return {"f": f, "stratum": stratum, "asked_at": asked_at, "wrong": wrong, "suspect": suspect,
            "explore": explore, "pop": pop, "audit": audit}


def quality_summary(ledger: Ledger, config: Config, *, pool: Pool | None = None) -> dict[str, Any]:
    """The ``quality`` object of ``rlthf status --json`` (documented in the README)."""
    sel = config.selection
    its = signals_iterations(ledger)
    if not its:
        return {"available": False, "reason": "no finished iteration of the signals strategy yet"}
    pool = pool or read_pool(ledger, config, texts=False)  # ids and labels only
    # Each batch's rows are streamed (a page at a time), the latest one twice: never a whole
    # iteration of rows in memory.
    arr = batch_arrays(pool, (iterations_db.decision_stream(ledger, r["id"]) for r in its))
    n = len(pool.pairs)
    action = np.full(n, "", dtype=object)
    calibrated = np.full(n, np.nan)
    for r, i in _located(pool, iterations_db.decision_stream(ledger, its[-1]["id"])):
        if i >= 0:
            action[i] = r["action"]
            c = (r["reason"] or {}).get("calibrated")
            calibrated[i] = np.nan if c is None else float(c)
    open_ = ~pool.human_any
    flipped = (action == Action.FLIP.value) & open_ & arr["pop"][-1]
    trusted = (action == Action.KEEP.value) & open_ & arr["pop"][-1]
    asked = (action == Action.ASK.value) & open_
    q = curated_accuracy(arr["f"], arr["stratum"], arr["asked_at"], arr["wrong"], flipped=flipped, confidence=0.95)
    stats = its[-1]["stats"] or {}
    cert = stats.get("certified") or {}
    verdict = _stop(calibrated, arr, q.low, sel.target_accuracy)
    est = q.as_dict()
    return {
        "available": True, "iteration": its[-1]["id"],
        "curated_accuracy": est["curated_accuracy"], "remaining_errors": est["remaining_errors"],
        "pairs": est["pairs"], "human": est["human"], "lam": est["lam"], "batches": est["batches"],
        "trusted_region": {**(cert.get("trusted") or {}), "pairs": int(trusted.sum()),
                           "alpha": sel.trust_alpha, "delta": sel.trust_delta},
        "flips": {**(cert.get("flips") or {}), "pairs": int(flipped.sum()), "delta": sel.trust_delta},
        "split": {"human": int(pool.human_any.sum()), "asked_open": int(asked.sum()), "flipped": int(flipped.sum()),
                  "trusted_ai": int(trusted.sum()),
                  "untrusted_ai": int((open_ & arr["pop"][-1] & ~flipped & ~trusted & ~asked).sum())},
        "stop": verdict,
    }


def _stop(calibrated: np.ndarray, arr: dict[str, np.ndarray], low: float, target: float | None) -> dict[str, Any]:
    """The stopping verdict of the latest batch's suspects (``calibrated``: (N,) their
    calibrated P(wrong), NaN where none).

    The first batch is chosen before any human label, so its P(wrong) is not calibrated:
    then the share of its suspects that humans found wrong stands for it, and while none is
    answered the yield is unknown (``errors_fixed_per_100_labels`` null), never "no pair
    left to ask", which only an empty batch of suspects means.
    """
    suspects = arr["suspect"][-1]
    next_p = calibrated[suspects]
    if np.isfinite(next_p).any() or not suspects.any():
        return stop_verdict(next_p, low, target=target).as_dict()
    measured = arr["wrong"][suspects]
    verdict = stop_verdict(measured if np.isfinite(measured).any() else [np.nan], low, target=target).as_dict()
    if np.isfinite(measured).any():
        if not verdict["target_reached"]:
            verdict["reason"] += " (measured: the share of the batch's suspects humans found wrong; no calibration yet)"
        return verdict
    verdict.update(errors_fixed_per_100_labels=None, stop=verdict["target_reached"])
    if not verdict["target_reached"]:
        verdict["reason"] = ("the next batch's yield is not known yet: no human answer to the first batch's "
                             "suspects so far" + ("" if target is None else f"; lower bound {low:.3f} < target {target:g}"))
    return verdict


def quality_curve(ledger: Ledger, config: Config, *, pool: Pool | None = None) -> list[dict[str, Any]]:
    """Per signals iteration: the curated accuracy estimate with its band, from the batches so
    far (the curve a team watches instead of a ground-truth one)."""
    its = signals_iterations(ledger)
    if not its:
        return []
    pool = pool or read_pool(ledger, config, texts=False)  # ids and labels only
    batches = [iterations_db.decisions(ledger, r["id"]) for r in its]
    arr = batch_arrays(pool, batches)
    out = []
    for t, r in enumerate(its):
        # Labels answered after batch t are not known at t: only batches 0..t and their answers.
        known = (arr["asked_at"] >= 0) & (arr["asked_at"] <= t)
        wrong = np.where(known, arr["wrong"], np.nan)
        at = np.where(known, arr["asked_at"], -1)
        flipped = np.zeros(len(pool.pairs), dtype=bool)
        for row, i in _located(pool, batches[t]):
            if i >= 0 and row["action"] == Action.FLIP.value and not known[i]:
                flipped[i] = True
        s = arr["stratum"][: t + 1].copy()
        s[(s == 0) & ~known[None, :]] = 1  # not answered by then: with the rest
        q = curated_accuracy(arr["f"][: t + 1], s, at, wrong, flipped=flipped)
        out.append({"iteration": r["id"], "estimate": q.estimate, "low": q.low, "high": q.high,
                    "human": q.human})
    return out


def untrusted_pairs(ledger: Ledger, config: Config, top: int | None = None) -> list[str]:
    """The escalation list: pairs the latest signals iteration neither trusted, flipped nor
    asked (action ``drop``) and no human answered, highest P(wrong) first; ``top`` of them."""
    its = signals_iterations(ledger)
    if not its:
        return []
    truth = ground_truth_platforms(config)
    answered = {r.pair_id for r in label_rows(ledger) if r.platform not in truth}
    rows = [r for r in iterations_db.decisions(ledger, its[-1]["id"])
            if r["action"] == Action.DROP.value and r["pair_id"] not in answered and r["region"] not in _NOT_POOL]
    rows.sort(key=lambda r: (-float((r["reason"] or {}).get("p_wrong") or 0.0), r["pair_id"]))
    return [r["pair_id"] for r in rows[:top]]


def flips_statement(f: dict[str, Any]) -> str:
    """What the flips of ``quality.flips`` stand on, in one clause (status, report, card)."""
    audited = int(f.get("audit_flips") or 0)
    per_pair = max(int(f.get("pairs") or 0) - audited, 0)
    last = (f"the audit of iteration {f['audit_iteration']}: {f['errors']} of {f['labels']} sampled AI labels of "
            f"its region of {f['region']} wrong, p-value {f['p_value']:.3g}") if f.get("audit_iteration") is not None else ""
    parts = []
    if audited:
        parts.append(f"{audited} flipped as sets certified by a uniform audit (precision above 1/2 with probability "
                     f">= {1 - float(f.get('delta', 0.1)):g})" + (f"; the latest, {last}" if last else ""))
    elif last:
        parts.append(f"no audited set certified ({last})")
    parts.append(f"{per_pair} on per-pair calibrated evidence")
    return "; ".join(parts)


def dataset_card(quality: dict[str, Any], counts: dict[str, int], *, name: str, only: list[str] | None) -> str:
    """The dataset card (``NAME.card.md``) written beside an export: what the set holds and
    what it is worth, from :func:`quality_summary`."""
    lines = [f"# {name}", "", "Curated preference pairs exported by rlthf_plugin (`rlthf export`).", "",
             "| label source | pairs |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(counts.items())]
    lines += ["", f"Sources kept: {', '.join(only) if only else 'all'}.", "", "## Quality", ""]
    if not quality.get("available"):
        lines.append(f"No estimate: {quality.get('reason')}.")
        return "\n".join(lines) + "\n"
    a, e, t, f = (quality["curated_accuracy"], quality["remaining_errors"], quality["trusted_region"],
                  quality["flips"])
    lines += [
        f"- Estimated accuracy of the whole curated set (every source; human answers count as right): "
        f"**{a['estimate']:.3f}**, {a['confidence']:.0%} interval [{a['low']:.3f}, {a['high']:.3f}] "
        f"(iteration {quality['iteration']}, {quality['human']} human answers, active inference over "
        f"{quality['batches']} batch(es)).",
        f"- AI errors left in it: {e['estimate']:.1f} [{e['low']:.1f}, {e['high']:.1f}].",
        f"- `trusted_ai`: {t['pairs']} AI labels whose disagreement with humans is at most {t['alpha']:g} with "
        f"probability at least {1 - t['delta']:g} (fixed-sequence testing over thresholds of P(wrong)).",
        f"- `flipped`: {f['pairs']} AI labels: {flips_statement(f)}.",
    ]
    if only and set(only) <= {"human", "flipped", "trusted_ai"}:
        lines.append("- This export keeps only human, flipped and trusted labels: each part carries the "
                     "statement above.")
    return "\n".join(lines) + "\n"


__all__ = ["batch_arrays", "dataset_card", "flips_statement", "untrusted_pairs", "quality_curve", "quality_summary", "signals_iterations"]
