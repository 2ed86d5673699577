"""``rlthf evaluate``: a reward model scored on human-labeled pairs it never trained on.

The pairs come from a file in any import format (:func:`read_eval_pairs`) or from the
workspace's own human labels, a ``--split`` fraction of them held out by pair
(:func:`workspace_eval_pairs`, :func:`rlthf_plugin.models.evaluation.split_mask`). The
model is a TRL reward model saved by ``rlthf train reward`` (:func:`load_trl_reward_model`),
or the workspace's configured reward model trained here on the workspace's curated set
without any pair that is scored (:func:`fit_workspace_model`). The scoring itself is pure
(:func:`rlthf_plugin.models.evaluation.evaluate_margins`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import InvalidInputError, RlthfError, WorkspaceError
from ..io.export import curated_from_workspace
from ..io.importer import iter_rows
from ..models.evaluation import Evaluation, evaluate_margins, split_mask
from ..models.reward import RewardModel
from ..pairs import A, B, majority, pair_id, swap_label
from ..store.labels import label_rows
from ..workspace import Workspace
from .pool import make_factory

#: The key in a TRL reward model's saved metrics that records ``train reward --exclude-split``.
EXCLUDE_SPLIT_KEY = "exclude_split"


@dataclass
class EvalPairs:
    """Pairs to score, columns of one length (N,): texts, the human majority label
    (A, B, tie, or "" when none), and the groups (source; category or "")."""

    pair_id: list[str] = field(default_factory=list)
    prompt: list[str] = field(default_factory=list)
    a: list[str] = field(default_factory=list)
    b: list[str] = field(default_factory=list)
    label: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    category: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.pair_id)

    def add(self, pid: str, prompt: str, a: str, b: str, label: str, source: str, category: str) -> None:
        for name, value in zip(("pair_id", "prompt", "a", "b", "label", "source", "category"),
                               (pid, prompt, a, b, label, source, category)):
            getattr(self, name).append(value)


def read_eval_pairs(paths: Sequence[str | Path], *, fmt: str | None = None,
                    skip_invalid: bool = False) -> tuple[EvalPairs, int]:
    """Human-labeled pairs from files in any import format; every vote of a pair is pooled.

    A curated export's rows count as human labels only where ``label_source`` is
    ``human``. Returns the pairs and the number of invalid rows left out (``skip_invalid``;
    else :class:`InvalidInputError` lists them). :class:`RlthfError` when no pair carries a
    human label.
    """
    names = [str(p) for p in paths]
    problems: list = []
    rows = list(iter_rows(names, problems, {}, fmt=fmt))
    if problems and not skip_invalid:
        raise InvalidInputError(problems, hint="rlthf evaluate reads the import formats (see rlthf import --help); "
                                               "pass --skip-invalid to score the other rows")
    texts: dict[str, tuple[str, str, str, str, str]] = {}
    votes: dict[str, list[str]] = {}
    for row in rows:
        if row.response_a is None or row.response_b is None:
            continue  # a judge row or a multi-response row: no pair with a label to score
        pid = pair_id(row.prompt, row.response_a, row.response_b)
        if pid not in texts:
            category = row.metadata.get("category")
            texts[pid] = (row.prompt, row.response_a, row.response_b, row.source,
                          "" if category is None else str(category))
        human = row.metadata.get("label_source") in (None, "human")
        flip = texts[pid][1] != row.response_a
        votes.setdefault(pid, []).extend(swap_label(v) if flip else v for _, v, _ in row.human_votes if human)
    out = EvalPairs()
    for pid, (prompt, a, b, source, category) in texts.items():
        m = majority(votes.get(pid, []))
        out.add(pid, prompt, a, b, m.label if m.label in (A, B, "tie") else "", source, category)
    if not any(out.label):
        raise RlthfError(f"{', '.join(names)}: no human labels ({len(out)} pair(s) read, none with a human vote): "
                         "nothing to evaluate against")
    return out, len(problems)


def workspace_eval_pairs(ws: Workspace, fraction: float) -> EvalPairs:
    """The workspace's human-labeled pairs (any platform) that ``--split fraction`` holds out."""
    if not 0 < fraction < 1:
        raise RlthfError(f"--split must be in (0, 1), got {fraction}")
    votes: dict[str, list[str]] = {}
    for r in label_rows(ws.ledger):
        votes.setdefault(r.pair_id, []).append(r.label)
    ids = sorted(votes)
    held = [pid for pid, h in zip(ids, split_mask(ids, fraction)) if h]
    out = EvalPairs()
    for p in ws.ledger.get_pairs(held):
        m = majority(votes[p.id])
        category = p.metadata.get("category")
        out.add(p.id, p.prompt, p.response_a, p.response_b, m.label if m.label in (A, B, "tie") else "",
                p.source, "" if category is None else str(category))
    if not any(out.label):
        raise RlthfError(f"{ws.root}: --split {fraction} holds out no pair with a human label "
                         f"({len(ids)} pair(s) have human labels): nothing to evaluate against")
    return out


def fit_workspace_model(ws: Workspace, *, exclude: Iterable[str], split: float = 0.0) -> tuple[RewardModel, dict]:
    """The workspace's configured reward model trained on its curated set, leaving out every
    pair in ``exclude`` (the pairs to be scored) and every pair ``split`` holds out.

    Returns the model and what it trained on (pairs per label source, pairs left out).
    """
    data = curated_from_workspace(ws.ledger, config=ws.config)
    drop = set(exclude)
    held = split_mask(data.pair_id, split) if split > 0 else np.zeros(len(data), bool)
    keep = [i for i, pid in enumerate(data.pair_id) if pid not in drop and not held[i]]
    if not keep:
        raise RlthfError(f"{ws.root}: no curated pair left to train on once the scored pairs are left out")
    train = data.subset(keep)
    model = make_factory(ws.ledger, ws.config)()
    model.fit(train.prompt, train.chosen, train.rejected, weights=train.amplification)
    return model, {"train": train.summary(), "left_out": len(data) - len(keep)}


def load_trl_reward_model(path: str | Path, *, split: float = 0.0):
    """A reward model saved by ``rlthf train reward``; one-line :class:`RlthfError` when it
    does not load. With ``split`` > 0 the model must have been trained with at least that
    ``--exclude-split`` (else its training set may hold the held-out pairs)."""
    path = Path(path)
    if not path.is_dir():
        raise WorkspaceError(f"--rm {path}: not a folder; expected a reward model saved by `rlthf train reward` "
                             "or 'workspace'")
    from ..models.reward_trl import META_FILE, TransformerRewardModel

    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        trained_split = float((meta.get("metrics") or {}).get(EXCLUDE_SPLIT_KEY) or 0.0)
    except (OSError, ValueError, TypeError, AttributeError) as e:
        raise WorkspaceError(f"--rm {path}: the reward model does not load: no readable {META_FILE} ({e})") from e
    if split > 0 and trained_split < split:
        raise RlthfError(f"--rm {path} was trained with --exclude-split {trained_split:g}, so the pairs "
                         f"--split {split:g} holds out may be in its training set: retrain it with "
                         f"`rlthf train reward --exclude-split {split:g}`")
    try:
        model = TransformerRewardModel.load(path)
    except RlthfError:
        raise
    except Exception as e:
        first = str(e).strip().splitlines()[0].strip().rstrip(":") if str(e).strip() else type(e).__name__
        raise WorkspaceError(f"--rm {path}: the reward model does not load: {first}") from e
    return model


def score(model: RewardModel, pairs: EvalPairs) -> Evaluation:
    """Margins of ``model`` on ``pairs``, scored against their human labels."""
    margins = model.margins(pairs.prompt, pairs.a, pairs.b)
    return evaluate_margins(margins, pairs.label, sources=pairs.source, categories=pairs.category)


__all__ = ["EXCLUDE_SPLIT_KEY", "EvalPairs", "fit_workspace_model", "load_trl_reward_model", "read_eval_pairs",
           "score", "workspace_eval_pairs"]
