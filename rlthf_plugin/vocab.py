"""Names the ledger stores and the layers share: iteration states, label sources, strategies.

Each is a ``str`` enum, so a member equals the plain string stored in the ledger and
written to files (``IterationState.SELECTED == "selected"``). The actions and regions
of a selection live with the selection (:mod:`rlthf_plugin.selection.rlthf`).
"""

from __future__ import annotations

from enum import Enum


class IterationState(str, Enum):
    """Where an iteration stands; the worker moves it through these in this order."""

    SELECTING = "selecting"
    SELECTED = "selected"
    PUSHING = "pushing"
    PUSHED = "pushed"
    LABELED = "labeled"
    #: Written by older versions while selecting.
    RUNNING = "running"
    #: Recorded by hand (tests, scripts): its tasks still have to be pushed.
    ASKED = "asked"

    def __str__(self) -> str:
        return self.value


class Strategy(str, Enum):
    """``selection.strategy``, stored in an iteration's params and stats: every signal
    against the AI label (``signals``) or the RLTHF paper's margin-curve rules."""

    SIGNALS = "signals"
    MARGIN_CURVE = "margin-curve"

    def __str__(self) -> str:
        return self.value


STRATEGIES = tuple(s.value for s in Strategy)


#: States of an iteration whose selection has not finished (``running``: older ledgers).
SELECTING_STATES = (IterationState.SELECTING, IterationState.RUNNING)


class LabelSource(str, Enum):
    """Where a curated label comes from (the ``label_source`` column of the curated set)."""

    HUMAN = "human"
    FLIPPED = "flipped"
    TRUSTED_AI = "trusted_ai"
    AI = "ai"
    RM = "rm"

    def __str__(self) -> str:
        return self.value


#: Every label source, in the order of trust.
LABEL_SOURCES = tuple(s.value for s in LabelSource)

#: Why a pair was dropped, by the decision's region: a dropped pair's decision stores no
#: reason (its code is the action and region; at 1M pairs a JSON reason each was most of
#: the write), and this text stands for it where a reason is shown.
DROP_WHY = {
    "none": "neither flip nor trust proven: the AI label stays",
    "flip": "flip region, not flipped: the flip gate is closed",
}
#: The dropped-pair text of every other region (the margin curve's ambiguous middle).
DROP_WHY_DEFAULT = "ambiguous middle: left out of the next training set"


def derived_reason(action: str, region: str, margin: float | None, rank: int | None = None) -> dict:
    """The reason shown for a decision stored without one (a dropped pair): from its code."""
    out: dict = {"action": action, "region": region, "why": DROP_WHY.get(region, DROP_WHY_DEFAULT)}
    if margin is not None:
        out["margin"] = margin
    if rank is not None:
        out["rank"] = rank
    return out


__all__ = [
    "DROP_WHY",
    "DROP_WHY_DEFAULT",
    "IterationState",
    "LABEL_SOURCES",
    "LabelSource",
    "SELECTING_STATES",
    "derived_reason",
]
