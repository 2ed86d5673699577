"""Candidate pairs from multi-response prompts (REAL), written into the ledger.

Reads every prompt with at least two responses from the ``responses`` table (the importer
fills it from every pair and from multi-response rows), embeds the responses without
their prompt (cached by text hash), chooses pairs with
:func:`rlthf_plugin.selection.real.select_pairs`, and stores them as pairs with origin
``candidates`` and the strategy and similarity in their metadata. Pair ids are the
stable :func:`~rlthf_plugin.pairs.pair_id`, so re-running adds nothing twice and a chosen
pair that was already imported is left as it is. From there candidates are pairs like
any other: AI labeling, selection and push treat them the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..models.embedder import Embedder

from ..models.vectors import EmbeddingCache
from ..pairs import pair_id
from ..selection.real import select_pairs
from ..store.ledger import Ledger, now
from ..store.pairs import add_pairs, response_groups

ORIGIN = "candidates"


@dataclass
class CandidateReport:
    """What one ``build_candidates`` run did."""

    prompts: int = 0
    responses: int = 0
    selected: int = 0
    new_pairs: int = 0
    #: Chosen pairs that were already in the ledger (imported, or from an earlier run).
    existing: int = 0
    similarity: list[float] = field(default_factory=list)


def build_candidates(ledger: Ledger, embedder: Embedder, *, strategy: str = "easy", per_prompt: int = 1,
                     seed: int = 0, progress: bool = True, dry_run: bool = False) -> CandidateReport:
    """Choose ``per_prompt`` pairs per multi-response prompt and store them as pairs.

    Parameters
    ----------
    ledger : Ledger
    embedder : Embedder
        Embeds the responses (without the prompt); cached in the ledger by text hash.
    strategy : {"easy", "hard", "centroid", "random"}, default "easy"
    per_prompt : int, default 1
    seed : int, default 0
        For ``random`` and the k-means of ``centroid``.
    dry_run : bool, default False
        Choose and report, but write no pair.
    """
    rows = response_groups(ledger)
    report = CandidateReport(prompts=len({r["prompt_id"] for r in rows}), responses=len(rows))
    if not rows:
        return report
    vectors = EmbeddingCache(embedder, ledger, progress=progress).embed([r["text"] for r in rows],
                                                                       desc="embedding responses")
    sel = select_pairs(vectors, np.array([r["prompt_id"] for r in rows]), strategy=strategy,
                       per_prompt=per_prompt, seed=seed)
    stamp = now()
    new = []
    for i, j, sim, rank in zip(sel.first.tolist(), sel.second.tolist(), sel.similarity.tolist(), sel.rank.tolist()):
        a, b = rows[i], rows[j]
        new.append({
            "id": pair_id(a["prompt"], a["text"], b["text"]), "prompt_id": a["prompt_id"], "prompt": a["prompt"],
            "response_a": a["text"], "response_b": b["text"], "source": "rlthf candidates",
            "metadata": {"origin": ORIGIN, "strategy": strategy, "similarity": round(sim, 6), "rank": rank,
                         "embedder": embedder.name, "seed": seed, "model_a": a["model"], "model_b": b["model"],
                         "response_ids": [a["id"], b["id"]]},
            "origin": ORIGIN, "created_at": stamp,
        })
    report.selected = len(new)
    report.similarity = sel.similarity.tolist()
    known = add_pairs(ledger, new, dry_run=dry_run)
    report.existing = len(known)
    report.new_pairs = len(new) - len(known)
    return report
