"""Helpers of the service tests (`rlthf serve` on real platforms): the ledger as the
service leaves it, the service as a CLI process, its /health and /metrics over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import httpx
import sqlalchemy as sa

from rlthf_plugin.store import ledger as L
from rlthf_plugin.workspace import Workspace

from .contract import workspace_env

#: Service settings that keep a test short: a check every half second, short leases, no
#: periodic pull (the pull at start still runs).
SERVE = {"poll_seconds": 0.5, "lease_seconds": 4.0, "reconcile_minutes": 0.0}


def fresh_name(prefix: str = "serve") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def state_of(ws: Workspace, iteration: int) -> str | None:
    with ws.ledger.engine.connect() as conn:
        return conn.execute(sa.select(L.iterations.c.state).where(L.iterations.c.id == iteration)).scalar()


def iteration_row(ws: Workspace, iteration: int) -> dict:
    with ws.ledger.engine.connect() as conn:
        return dict(conn.execute(sa.select(L.iterations).where(L.iterations.c.id == iteration)).mappings().one())


def iteration_ids(ws: Workspace) -> list[int]:
    with ws.ledger.engine.connect() as conn:
        return sorted(conn.execute(sa.select(L.iterations.c.id)).scalars())


def platform_labels(ws: Workspace, platform: str = "label-studio") -> list[dict]:
    with ws.ledger.engine.connect() as conn:
        q = sa.select(L.human_labels).where(L.human_labels.c.platform == platform, L.human_labels.c.deleted.is_(False))
        return [dict(r) for r in conn.execute(q).mappings()]


def truth(ws: Workspace, pair_ids) -> dict[str, str]:
    """The imported human majority of each pair (what a careful annotator would answer)."""
    votes = ws.ledger.human_votes()
    out = {}
    for pid in pair_ids:
        labels = [lab for _, lab in votes.get(pid, []) if lab in ("A", "B", "tie")]
        out[pid] = max(("A", "B", "tie"), key=labels.count) if labels else "tie"
    return out


def cli_env(root: str | os.PathLike) -> dict[str, str]:
    """The environment of an `rlthf` process on the workspace at ``root``, importing this
    checkout's code."""
    return {**workspace_env(SimpleNamespace(root=Path(root))), "PYTHONPATH": os.pathsep.join(sys.path)}


def rlthf(root: str | os.PathLike, *args: str, timeout: float = 900, stdout_only: bool = False) -> str:
    """Run `rlthf -w ROOT ARGS` as a user does; its output (stdout and stderr, or only
    stdout), or an AssertionError with both when it fails."""
    done = subprocess.run([sys.executable, "-m", "rlthf_plugin", "-w", str(root), *args], env=cli_env(root),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"rlthf {' '.join(args)} exited {done.returncode}\n{done.stdout[-3000:]}\n" \
                                 f"{done.stderr[-3000:]}"
    return done.stdout if stdout_only else done.stdout + done.stderr


def serve_process(ws: Workspace, *args: str, log_name: str = "serve.log") -> subprocess.Popen:
    """`rlthf serve ARGS` in its own process, stdout and stderr appended to ``ws.root / log_name``."""
    log = open(ws.root / log_name, "ab")
    cmd = [sys.executable, "-m", "rlthf_plugin", "serve", *args]
    proc = subprocess.Popen(cmd, env=cli_env(ws.root), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    return proc


def get_json(url: str) -> dict | None:
    """The JSON body of a GET (any status: /health answers 503 with a code), or None while
    nothing listens."""
    try:
        r = httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return None
    try:
        return r.json()
    except ValueError:
        return None


def metric(url: str, name: str, **labels: str) -> float | None:
    """One sample of the service's /metrics at ``url`` (None: not exposed)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None
