"""The workspace's margin calibration: Platt scaling fit on the human labels so far.

The fit has no position term and sees both orders of each labeled pair
(:func:`~rlthf_plugin.selection.calibration.fit_platt`), so the probability for (A, B)
mirrors the one for (B, A). A fit that is not monotone (slope <= 0) or one on too few
labels gives no calibration at all (:func:`current_calibration` is None) rather than a
misleading probability; :func:`calibration_state` says why, for the report.

Inputs, per pair that a human labeled A or B (ground-truth platforms left out, as for
training): the margin of the pair's latest selection decision, turned from the AI
label's orientation to ``r(A) - r(B)``. Those margins are the selection's out-of-fold
(cross-fitted) margins, so the fit is not flattered by pairs the model trained on.

The fitted :class:`~rlthf_plugin.selection.calibration.Calibration` gives the score of
the ML backend's predictions and of the pushed AI labels (Label Studio predictions,
Argilla suggestions) and the report's reliability diagram.
"""

from __future__ import annotations

import numpy as np

from ..config import Config, ground_truth_platforms
from ..pairs import A, B, majority
from ..selection.calibration import Calibration, calibration_problem, fit_platt
from ..store import iterations as iterations_db
from ..store.labels import label_rows
from ..store.ledger import Ledger
from ..store.votes import audited_labels


def labeled_margins(ledger: Ledger, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """``(margins r(A) - r(B), a_better)``, shapes (N,), of the human-labeled decided pairs."""
    truth = ground_truth_platforms(config)
    votes: dict[str, list[str]] = {}
    for r in label_rows(ledger):
        if r.platform not in truth:
            votes.setdefault(r.pair_id, []).append(r.label)
    answer = {pid: majority(v).label for pid, v in votes.items()}
    answer = {pid: lab for pid, lab in answer.items() if lab in (A, B)}
    if not answer:
        return np.zeros(0), np.zeros(0, dtype=bool)
    # Only the latest margin of the labeled pairs is read (not every decision of every iteration).
    latest = iterations_db.latest_margins(ledger, sorted(answer))
    # Decisions orient margins by the audited label (the primary judge's, or a fallback judge's).
    ai = audited_labels(ledger, config.selection.primary_judge).labels
    margins, y = [], []
    for pid, m in sorted(latest.items()):
        ai_label = ai.get(pid)
        if ai_label not in (A, B) or not np.isfinite(m):
            continue
        margins.append(m if ai_label == A else -m)  # decisions hold r(AI-chosen) - r(AI-rejected)
        y.append(answer[pid] == A)
    return np.asarray(margins, dtype=np.float64), np.asarray(y, dtype=bool)


def current_calibration(ledger: Ledger, config: Config) -> Calibration | None:
    """Platt scaling on :func:`labeled_margins`; None with too few labels or a fit that is
    not monotone."""
    margins, y = labeled_margins(ledger, config)
    calibration = fit_platt(margins, y)
    return calibration if calibration is not None and calibration.monotone else None


def calibration_state(ledger: Ledger, config: Config) -> tuple[Calibration | None, str | None]:
    """``(fit, problem)``: the Platt fit on :func:`labeled_margins` (even a non-monotone
    one, for the report) and why it gives no probability (None when it is usable)."""
    margins, y = labeled_margins(ledger, config)
    calibration = fit_platt(margins, y)
    return calibration, calibration_problem(calibration, int(margins.size))


def ai_label_probability(calibration: Calibration | None, ai_label: str | None, margin: float | None) -> float | None:
    """P(the AI label is right) for a pair whose AI-oriented margin is ``margin``."""
    if calibration is None or ai_label not in (A, B) or margin is None or not np.isfinite(margin):
        return None
    margin_ab = margin if ai_label == A else -margin
    p_a = float(calibration.probability(np.array([margin_ab]))[0])
    return p_a if ai_label == A else 1.0 - p_a


__all__ = ["ai_label_probability", "calibration_state", "current_calibration", "labeled_margins"]
