"""Integration fixtures: real servers on 127.0.0.1, started and stopped by the harness.

Platform environments live in their own plugin modules (one per platform) and provide
the :class:`tests.integration.contract.PlatformEnv` interface.
"""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from rlthf_plugin.store import ledger as L
from rlthf_plugin.data import DEV_PAIRS
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.workspace import Workspace

# Each platform's harness lives in its own module; its fixtures are made visible here
# (pytest_plugins is only allowed in the rootdir's conftest).
from .argilla_env import argilla_env, argilla_server  # noqa: F401
from .label_studio_env import label_studio_env, label_studio_server  # noqa: F401


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def add_asked_iteration(ledger: L.Ledger, n: int, *, seed: int = 0, iteration: int = 1) -> list[str]:
    """Record an iteration whose decisions ask humans about ``n`` real pairs, with
    distinct priorities (what `rlthf select` writes); returns the pair ids asked."""
    ids = ledger.pair_ids()[:n]
    if len(ids) < n:
        raise ValueError(f"only {len(ids)} pairs in the ledger, {n} wanted")
    priorities = np.random.default_rng(seed).permutation(n).astype(float)
    with ledger.engine.begin() as conn:
        conn.execute(L.iterations.insert().values(id=iteration, state="asked", params={}, stats={},
                                                  started_at=L.now()))
        conn.execute(L.decisions.insert(), [
            {"iteration": iteration, "pair_id": pid, "action": "ask", "region": "ask", "margin": float(-p / n),
             "rank": int(i), "priority": float(p), "reason": {"region": "ask", "margin": float(-p / n), "rank": int(i)}}
            for i, (pid, p) in enumerate(zip(ids, priorities))
        ])
    return ids


def write_pandalm_sample(path, n: int):
    """The first ``n`` well-formed real PandaLM pairs of the shipped dev file, as JSONL at
    ``path`` (gpt-3.5 AI label and three human votes each); returns ``path``."""
    import gzip
    import json

    rows = []
    with gzip.open(DEV_PAIRS, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            ok = all(isinstance(r[k], str) and r[k].strip() for k in ("prompt", "response_a", "response_b"))
            if ok and r["response_a"] != r["response_b"] and r["source"].startswith("PandaLM"):
                rows.append(r)
            if len(rows) == n:
                break
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def real_workspace(tmp_path):
    """A workspace holding the shipped real pairs (2,636 valid)."""
    ws = Workspace.init(tmp_path / "ws")
    import_files(ws.ledger, [str(DEV_PAIRS)], skip_invalid=True)
    yield ws
    ws.close()


class ReceiverThread:
    """`rlthf serve`'s app in a uvicorn thread on a free port; can be stopped and restarted."""

    def __init__(self, root, **app_options):
        """``app_options`` go to ``create_app`` (e.g. ``backends=["label-studio"]`` starts the worker)."""
        self.root, self.port, self.server, self.thread = root, free_port(), None, None
        self.app_options, self.app = app_options, None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ReceiverThread":
        import uvicorn

        from rlthf_plugin.service.app import create_app

        self.app = create_app(self.root, **self.app_options)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("the receiver did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
            self.thread.join(timeout=10)
            self.server = None


@pytest.fixture
def receiver_port():
    return free_port()


def wait_for(predicate, *, timeout: float = 60.0, every: float = 0.25, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the session; ``postgres.create_db(name)`` gives a URL."""
    from .postgres import PostgresServer

    server = PostgresServer(free_port()).start()
    yield server
    server.stop()
