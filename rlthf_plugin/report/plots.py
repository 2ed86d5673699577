"""Plots of the loop (matplotlib, Agg backend, PNG files).

- :func:`plot_margin_curve`: the sorted margins of one iteration with the elbow, knee and
  reflection point, the trusted region and the pairs asked and flipped;
- :func:`plot_history`: the AI-error precision of each human batch, and the accuracy of
  the curated labels per iteration (against ground truth, where there is any);
- :func:`plot_reliability`: the reliability diagram of the calibrated probabilities
  against the raw ``sigmoid(margin)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..selection.rlthf import Action
from ..store import iterations as iterations_db
from ..store.ledger import Ledger
from ..vocab import SELECTING_STATES


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_margin_curve(margins: np.ndarray, actions: Sequence[str], curve: dict[str, Any], path: str | Path, *,
                      title: str = "") -> Path:
    """The margin curve, sorted descending, with its boundaries and the actions.

    Parameters
    ----------
    margins : array of float, shape (N,)
    actions : sequence of {"ask", "flip", "keep", "drop"}, length N
    curve : dict with ``elbow``, ``knee``, ``reflection`` ranks (``Curve.summary()``)
    path : where to write the PNG
    """
    plt = _pyplot()
    m = np.asarray(margins, dtype=float)
    act = np.asarray(actions, dtype=str)
    order = np.argsort(-m, kind="stable")
    y, a = m[order], act[order]
    x = np.arange(len(y))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(x, y, color="0.3", lw=1.2, label="margin (sorted)")
    colors = {Action.KEEP.value: "tab:green", Action.ASK.value: "tab:orange", Action.FLIP.value: "tab:red"}
    for action, color in colors.items():
        sel = a == action
        if sel.any():
            ax.scatter(x[sel], y[sel], s=6, color=color, label=f"{action} ({int(sel.sum())})", zorder=3)
    for name, style in (("elbow", ":"), ("knee", "--"), ("reflection", "-.")):
        rank = curve.get(name)
        if rank is not None and rank < len(y):
            ax.axvline(rank, color="tab:blue", ls=style, lw=1)
            ax.annotate(name, (rank, ax.get_ylim()[1]), rotation=90, va="top", ha="right", fontsize=8, color="tab:blue")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_xlabel("rank (pairs sorted by margin of the AI label)")
    ax.set_ylabel("margin r(AI-chosen) - r(AI-rejected)")
    ax.set_title(title or "RLTHF margin curve")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_history(history: list[dict[str, Any]], path: str | Path) -> Path:
    """Batch AI-error precision and curated accuracy per iteration (two panels).

    ``history``: one dict per iteration with ``iteration`` and optionally ``precision``,
    ``curated_accuracy``, ``ai_accuracy``.
    """
    plt = _pyplot()
    its = [h["iteration"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    prec = [h.get("precision") for h in history]
    left.bar(its, [p if p is not None else 0 for p in prec], color="tab:orange")
    left.set_ylim(0, 1)
    left.set_xticks(its)
    left.set_xlabel("iteration")
    left.set_ylabel("AI-error precision of the human batch")
    left.set_title("Which share of asked pairs had a wrong AI label")
    acc = [h.get("curated_accuracy") for h in history]
    ai = [h.get("ai_accuracy") for h in history]
    if any(a is not None for a in acc):
        right.plot(its, acc, marker="o", label="curated labels")
    if any(a is not None for a in ai):
        right.plot(its, ai, ls="--", color="0.5", label="AI labels only")
    right.set_xticks(its)
    right.set_xlabel("iteration")
    right.set_ylabel("accuracy vs ground truth")
    right.set_title("Accuracy per iteration")
    if right.get_legend_handles_labels()[0]:  # nothing measured yet: no legend (and no warning)
        right.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_reliability(calibrated: tuple[np.ndarray, np.ndarray, np.ndarray],
                     raw: tuple[np.ndarray, np.ndarray, np.ndarray], path: str | Path, *, title: str = "") -> Path:
    """The reliability diagram: predicted probability against the share that came true.

    ``calibrated`` and ``raw`` are :func:`rlthf_plugin.selection.calibration.reliability`
    outputs ``(mean_predicted (B,), fraction_true (B,), counts (B,))``; marker area
    follows the count of pairs per bin.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], ls=":", color="0.4", label="perfectly calibrated")
    for (mean, frac, counts), name, style in ((raw, "sigmoid(margin), uncalibrated", dict(color="tab:red", ls="--")),
                                              (calibrated, "calibrated (Platt)", dict(color="tab:blue"))):
        if len(mean):
            ax.plot(mean, frac, marker="o", label=name, **style)
            ax.scatter(mean, frac, s=10 + 90 * counts / max(counts.max(), 1), color=style["color"], alpha=0.4)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted P(response A is better)")
    ax.set_ylabel("share of pairs where humans chose A")
    ax.set_title(title or "Reliability of the reward model's probabilities")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def workspace_plots(ledger: Ledger, out_dir: str | Path, *, iteration: int | None = None) -> list[Path]:
    """Write ``margin_curve_iterN.png`` for an iteration (default: the latest) and ``history.png``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    its = [r for r in iterations_db.iteration_rows(ledger) if r["state"] not in SELECTING_STATES]
    if not its:
        return []
    row = its[-1] if iteration is None else next((r for r in its if r["id"] == iteration), its[-1])
    ds = iterations_db.decisions(ledger, row["id"])
    stats = row["stats"] or {}
    paths = []
    if ds:
        paths.append(plot_margin_curve(np.array([d["margin"] for d in ds], dtype=float), [d["action"] for d in ds],
                                       stats.get("curve", {}),
                                       out_dir / f"margin_curve_iter{row['id']}.png",
                                       title=f"Iteration {row['id']}: {stats.get('gate', {}).get('reason', '')}"))
    history = []
    for r in its:
        st = r["stats"] or {}
        ev = st.get("eval") or {}
        history.append({"iteration": r["id"], "precision": (st.get("batch") or {}).get("precision"),
                        "curated_accuracy": ev.get("curated_accuracy"), "ai_accuracy": ev.get("ai_accuracy")})
    paths.append(plot_history(history, out_dir / "history.png"))
    return paths
