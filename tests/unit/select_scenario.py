"""The scenario of ``test_select_same_decisions``: the packaged dev pairs, every text's vector
cached (seeded from its hash, as if embedded), two iterations per strategy with the simulated
annotator between them; the decisions as comparable rows.

``python -m tests.unit.select_scenario OUT.json.gz`` writes the reference (frozen from the code
before the streaming select, issue 22).
"""

from __future__ import annotations

import gzip
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from rlthf_plugin.config import Config
from rlthf_plugin.data import DEV_PAIRS
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.loop.iteration import select_iteration
from rlthf_plugin.loop.oracle import label_with_oracle
from rlthf_plugin.pairs import text_hash
from rlthf_plugin.store import iterations as iterations_db
from rlthf_plugin.store.embeddings import save_vectors
from rlthf_plugin.workspace import Workspace

EMBEDDER = "st:packaged:all-MiniLM-L6-v2:256"  # the select default's cache name
STRATEGIES = ("signals", "margin-curve")
ITERATIONS = 2
DIM = 384


def seeded_vector(h: str) -> np.ndarray:
    """A unit (DIM,) float32 vector seeded by a text hash."""
    v = np.random.default_rng(int(h[:12], 16)).normal(size=DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


def cache_vectors(ws: Workspace) -> None:
    """Every prompt's and response's seeded vector in the ledger's embedding table."""
    hashes = sorted({text_hash(t) for p in ws.ledger.get_pairs() for t in (p.prompt, p.response_a, p.response_b)})
    save_vectors(ws.ledger, EMBEDDER, hashes, np.stack([seeded_vector(h) for h in hashes]))


def run(root: Path, strategy: str, ledger_url: str | None = None, *, flip_audit: float = 0.0) -> list[dict]:
    """Decision rows (iteration, pair id, action, region, rank, priority, margin) of the scenario
    (on the ledger at ``ledger_url`` when given, e.g. PostgreSQL; else the workspace's SQLite)."""
    config = None
    if ledger_url is not None:
        config = Config()
        config.ledger.url = ledger_url
    ws = Workspace.init(root, config)
    try:
        import_files(ws.ledger, [str(DEV_PAIRS)], skip_invalid=True)
        cache_vectors(ws)
        ws.config.selection.strategy = strategy
        ws.config.selection.budget = 0.05
        # The reference predates the flip audit (issue 21), which changes the batch on purpose
        # (suspects sampled from its region): off by default here, tested in test_flip_audit.py.
        ws.config.selection.flip_audit = flip_audit
        out = []
        for it in range(ITERATIONS):
            select_iteration(ws.ledger, ws.config)
            label_with_oracle(ws.ledger, ws.config, "oracle:human")
            for d in iterations_db.decisions(ws.ledger, it):
                out.append({"iteration": it, "pair_id": d["pair_id"], "action": d["action"], "region": d["region"],
                            "audit": (d["reason"] or {}).get("audit"),
                            "rank": d["rank"], "priority": round(float(d["priority"]), 6),
                            "margin": round(float(d["margin"]), 5)})
        return sorted(out, key=lambda r: (r["iteration"], r["pair_id"]))
    finally:
        ws.close()


def scenario() -> dict[str, list[dict]]:
    with tempfile.TemporaryDirectory() as tmp:
        return {s: run(Path(tmp) / s, s) for s in STRATEGIES}


if __name__ == "__main__":
    data = scenario()
    with gzip.open(sys.argv[1], "wt", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))
    print({s: len(rows) for s, rows in data.items()})
