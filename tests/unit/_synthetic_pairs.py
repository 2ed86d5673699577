"""Synthetic preference rows for the loop tests: a good and a bad answer on a random side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rlthf_plugin.io.importer import import_files


def judged_pair(rng: np.random.Generator, i: int, good: str, bad: str, prompt: str) -> tuple[dict, str, str]:
    """``(row, truth, other)``: pair ``q{i}`` with ``good`` on a random side (one draw of
    ``rng``), its human label ``truth`` (the good side) and the other side."""
    a, b = (good, bad) if rng.random() < 0.5 else (bad, good)
    truth = "A" if a == good else "B"
    other = "B" if truth == "A" else "A"
    return {"id": f"q{i}", "prompt": prompt, "response_a": a, "response_b": b, "human_label": truth}, truth, other


def import_rows(ledger: Any, tmp_path: Path, rows: list[dict], name: str = "m.jsonl") -> Path:
    """Write ``rows`` as JSON lines under ``tmp_path`` and import them into ``ledger``."""
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_files(ledger, [str(path)])
    return path
