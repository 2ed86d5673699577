"""Flips certified by an audit, across iterations (the loop's side of
:mod:`rlthf_plugin.selection.flip_audit`).

A ``signals`` iteration with ``selection.flip_audit > 0``:

1. certifies the audit of the iteration before: its decision rows mark the region
   (``reason.audit`` = that iteration); the region pairs it asked (suspects, and exploration
   picks that fell in it: all exchangeable) are the sample, and their human answers the
   test. Certified: the region's pairs no human answered are flipped;
2. keeps every flip an earlier audit certified (``reason.audit_flip`` = the certifying
   audit's iteration) until a human answers the pair;
3. draws this iteration's region over the suspects not flipped; the batch's suspects are
   a uniform sample of it (:func:`rlthf_plugin.selection.allocation.allocate`, ``audit=``).

The labels of an iteration are in when the next one selects (``run`` pulls them first;
``serve`` selects when the batch is closed); an asked pair not answered yet is left out of
the sample and, if the region is certified, flipped with the rest until its answer comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..batching import batched
from ..pairs import A, B
from ..selection.flip_audit import AuditCertificate, certify_region
from ..selection.rlthf import Action
from ..store import iterations as iterations_db
from ..store.ledger import Ledger
from ..store.pair_ids import positions_of
from .pool import Pool

#: Decision rows whose pairs are looked up at a time.
LOOKUP_PAGE = 5000


@dataclass(frozen=True)
class AuditFlips:
    """The flips audits certified, as of this iteration.

    Attributes
    ----------
    flipped : ndarray of bool, shape (N,)
        Open pairs flipped by a certified audit.
    source : ndarray of int, shape (N,)
        The iteration whose audit certified each flip (-1: none).
    certificate : AuditCertificate or None
        The previous iteration's audit (None: it had no region).
    iteration : int or None
        The previous iteration.
    """

    flipped: np.ndarray
    source: np.ndarray
    certificate: AuditCertificate | None
    iteration: int | None

    def summary(self) -> dict[str, Any]:
        """``stats.certified.flips`` of the iteration (``quality.flips`` in ``status --json``)."""
        cert = self.certificate.as_dict() if self.certificate is not None else {}
        cert.pop("flipped", None)
        carried = int(np.sum(self.flipped & (self.source != self.iteration)))
        return {"audit_iteration": self.iteration if self.certificate is not None else None, **cert,
                "audit_flips": int(self.flipped.sum()), "carried": carried}


def no_audit(n: int) -> AuditFlips:
    return AuditFlips(np.zeros(n, dtype=bool), np.full(n, -1, dtype=np.int32), None, None)


def previous_audit(ledger: Ledger, pool: Pool, iteration: int | None, *, delta: float) -> AuditFlips:
    """Certify the audit of ``iteration`` (the one before) and carry the earlier audits' flips.

    Parameters
    ----------
    pool : Pool
        The current pool (human answers as of now).
    iteration : int or None
        The previous iteration (None: none yet, nothing to certify).
    delta : float in (0, 1)
        The test's error (``selection.trust_delta``).
    """
    n = len(pool.ai)
    if iteration is None:
        return no_audit(n)
    region = np.zeros(n, dtype=bool)
    sampled = np.zeros(n, dtype=bool)
    source = np.full(n, -1, dtype=np.int32)
    for page in batched(iterations_db.audit_stream(ledger, iteration), LOOKUP_PAGE):
        for r, i in zip(page, positions_of(pool.index, [r["pair_id"] for r in page]).tolist()):
            reason = r["reason"] or {}
            if i < 0:
                continue
            if reason.get("audit") is not None:
                region[i] = True
                sampled[i] = r["action"] == Action.ASK.value
            if reason.get("audit_flip") is not None and r["action"] == Action.FLIP.value:
                source[i] = int(reason["audit_flip"])
    open_ = ~pool.human_any
    winner = np.isin(pool.ai, [A, B])
    # A human tie says the AI label is not wrong: it counts against the flip.
    wrong = np.where(pool.human_any & winner, (np.isin(pool.human, [A, B]) & (pool.human != pool.ai)).astype(float),
                     np.nan)
    flipped = (source >= 0) & open_
    source = np.where(flipped, source, -1).astype(np.int32)
    cert = None
    if region.any():
        cert = certify_region(wrong, region, sampled, delta=delta)
        new = cert.flipped & open_ & winner & ~flipped
        flipped |= new
        source[new] = iteration
    return AuditFlips(flipped, source, cert, iteration)
