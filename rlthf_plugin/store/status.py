"""The counts ``rlthf status`` shows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..pairs import majority
from . import schema as S
from .iterations import count_iterations
from .labels import human_votes, labels_per_platform
from .pushes import pairs_on_several_targets, pushes_per_platform
from .votes import ai_votes, count_votes

if TYPE_CHECKING:
    from .ledger import Ledger


def status(ledger: Ledger) -> dict[str, Any]:
    """Pairs, responses, AI and human votes (with conflicts and disagreement), iterations, pushes."""
    ai_v, human_v = ai_votes(ledger), human_votes(ledger)
    ai = {pid: majority(v) for pid, v in ai_v.items()}
    human = {pid: majority(label for _, label in v) for pid, v in human_v.items()}
    both = [pid for pid in human if pid in ai and human[pid].label in ("A", "B") and ai[pid].label in ("A", "B")]
    disagree = sum(1 for pid in both if human[pid].label != ai[pid].label)
    human_per_platform = labels_per_platform(ledger)
    r = S.responses
    with ledger.engine.connect() as conn:
        multi = conn.execute(sa.select(sa.func.count()).select_from(
            sa.select(r.c.prompt_id).group_by(r.c.prompt_id).having(sa.func.count() >= 3).subquery())).scalar_one()
    return {
        "pairs": ledger.count(S.pairs),
        "responses": ledger.count(S.responses),
        "prompts_with_3plus_responses": multi,
        "ai_labeled": len(ai),
        "ai_label_votes": count_votes(ledger),
        "ai_vote_conflicts": sum(1 for v in ai_v.values() if len({x for x in v if x in ("A", "B")}) > 1),
        "human_labeled": len(human),
        "human_label_votes": sum(human_per_platform.values()),
        "human_labels_per_platform": human_per_platform,
        "human_vote_conflicts": sum(1 for v in human_v.values() if len({x for _, x in v if x in ("A", "B")}) > 1),
        "both_labeled_with_winner": len(both),
        "ai_human_disagreement": (disagree / len(both)) if both else None,
        "iterations": count_iterations(ledger),
        "pushes_per_platform": pushes_per_platform(ledger),
        # One annotator could vote twice on these (push --allow-duplicate-targets put them there).
        "pairs_on_several_targets": pairs_on_several_targets(ledger),
    }


__all__ = ["status"]
