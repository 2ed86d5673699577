"""The Argilla test environment: a real argilla-server 2.8.0 with Redis and an rq worker.

Installed once into its own virtual environment under
``~/.cache/rlthf_plugin/servers/argilla-server-2.8.0`` (``RLTHF_SERVERS_CACHE`` moves
it), with the pins of SERVERS.md (``click<8.2``, ``huggingface-hub<1.0``) in that
environment only; a lock file serialises concurrent installs and a marker file says the
install completed. Per test session: Redis on a free 127.0.0.1 port without persistence,
a fresh SQLite database (migrated), an owner and two annotators, the server and the
worker; all stopped at the end.

Elasticsearch cannot be installed here, so the server runs with the harness's in-memory
search engine (``argilla_memory_engine.py``), registered in the server's search-engine
registry by ``argilla_launcher.py``; the server's code is not patched. See README.md.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from rlthf_plugin.backends import open_backend
from rlthf_plugin.config import load_config, update_config_file, update_secrets_file

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VERSION = "2.8.0"
PINS = [f"argilla-server=={VERSION}", "click<8.2", "huggingface-hub<1.0"]
CACHE = Path(os.environ.get("RLTHF_SERVERS_CACHE", Path.home() / ".cache" / "rlthf_plugin" / "servers"))
HOME = CACHE / f"argilla-server-{VERSION}"
OWNER_KEY, OWNER_PASSWORD = "rlthf.owner.apikey", "owner-password-1"
WORKSPACE = "argilla"
ANNOTATORS = [("annotator1", "rlthf.annotator1.apikey"), ("annotator2", "rlthf.annotator2.apikey")]
START_TIMEOUT = 240.0  # the first import of the server takes tens of seconds on a busy 2-core machine


def server_python() -> Path:
    """The server environment's python, installing it first if needed (once, locked)."""
    python = HOME / "venv" / "bin" / "python"
    marker = HOME / ".complete"
    HOME.mkdir(parents=True, exist_ok=True)
    with open(HOME / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and python.exists() and json.loads(marker.read_text()).get("pins") == PINS:
            return python
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(HOME / "venv")], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PINS], check=True)
        marker.write_text(json.dumps({"pins": PINS, "installed_at": time.time()}))
    return python


def redis_server() -> str:
    """Path of redis-server, installed with scripts/install_test_deps.sh (apt) when missing."""
    found = shutil.which("redis-server")
    if found is None:
        subprocess.run(["bash", str(REPO / "scripts" / "install_test_deps.sh")], check=True)
        found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("redis-server is missing and could not be installed (scripts/install_test_deps.sh)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, ready, procs: list[tuple[str, subprocess.Popen, Path]], timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for name, proc, logfile in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{logfile.read_text()[-3000:]}")
        try:
            if ready():
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{what} not ready after {timeout:.0f}s")


@dataclass
class ArgillaServer:
    """Redis + argilla-server + rq worker, started for one test session."""

    root: Path
    url: str = ""
    procs: list[tuple[str, subprocess.Popen, Path]] = field(default_factory=list)

    def _spawn(self, name: str, cmd: list[str], env: dict) -> subprocess.Popen:
        logfile = self.root / f"{name}.log"
        proc = subprocess.Popen(cmd, env=env, stdout=open(logfile, "wb"), stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=self.root)
        self.procs.append((name, proc, logfile))
        return proc

    def start(self) -> "ArgillaServer":
        python = str(server_python())
        redis_port, port = free_port(), free_port()
        self._spawn("redis", [redis_server(), "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], dict(os.environ))
        _wait("redis", lambda: _redis_ping(redis_port), self.procs, 30)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ARGILLA_")},
            "ARGILLA_HOME_PATH": str(self.root / "home"),
            "ARGILLA_DATABASE_URL": f"sqlite+aiosqlite:///{self.root / 'argilla.db'}",
            "ARGILLA_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1",
        }
        launcher = str(HERE / "argilla_launcher.py")
        setup = [python, launcher, "setup", "--owner-key", OWNER_KEY, "--owner-password", OWNER_PASSWORD,
                 "--workspace", WORKSPACE, *[a for name, key in ANNOTATORS for a in ("--annotator", f"{name}:{key}:{OWNER_PASSWORD}")]]
        done = subprocess.run(setup, env=env, capture_output=True, text=True, timeout=START_TIMEOUT, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"argilla setup failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
        self._spawn("argilla-server", [python, launcher, "server", "--port", str(port)], env)
        self._spawn("argilla-worker", [python, launcher, "worker"], env)
        self.url = f"http://127.0.0.1:{port}"
        _wait("argilla-server", lambda: self.owner().get("/api/v1/me").status_code == 200, self.procs, START_TIMEOUT)
        return self

    def owner(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Argilla-Api-Key": OWNER_KEY}, timeout=60)

    def annotator(self, n: int) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Argilla-Api-Key": ANNOTATORS[n - 1][1]}, timeout=60)

    def stop(self) -> None:
        """Worker, server, then Redis (the worker needs Redis to shut down cleanly)."""
        for _, proc, _ in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: the worker's work horses go too
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()


def _redis_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")


class ArgillaEnv:
    """:class:`tests.integration.contract.PlatformEnv` for Argilla."""

    platform = "argilla"

    def __init__(self, server: ArgillaServer):
        self.server = server
        self.workspaces = []  # configured in this session, newest last (for replays of real deliveries)

    def configure(self, workspace, *, name: str, webhook_url: str | None = None, show_suggestions: bool = False,
                  min_submitted: int = 1) -> list[str]:
        update_config_file(workspace.root, "argilla", url=self.server.url, dataset=name, workspace=WORKSPACE,
                           webhook_url=webhook_url or "", show_suggestions=show_suggestions,
                           min_submitted=min_submitted)
        update_secrets_file(workspace.root, "argilla", api_key=OWNER_KEY)
        workspace.config = load_config(workspace.root)
        self.workspaces.append(workspace)
        return ["--dataset", name]

    def backend(self, workspace):
        return open_backend("argilla", workspace.config, workspace=workspace)

    def annotate(self, backend, external_id: str, label: str, *, annotator: int = 1, status: str = "submitted") -> None:
        value = {"A": "a", "B": "b", "tie": "tie"}[label]
        with self.server.annotator(annotator) as client:
            r = client.post(f"/api/v1/records/{external_id}/responses",
                            json={"values": {"label": {"value": value}}, "status": status})
            if r.status_code != 201:
                raise AssertionError(f"annotator{annotator} could not respond on {external_id}: {r.status_code} {r.text}")

    def remote_count(self, backend) -> int:
        """Records in the backend's dataset as the server's database counts them (0 before it exists)."""
        with self.server.owner() as client:
            r = client.get("/api/v1/me/datasets")
            r.raise_for_status()
            ids = [d["id"] for d in r.json()["items"] if d["name"] == backend.dataset_name]
            if not ids:
                return 0
            r = client.get(f"/api/v1/datasets/{ids[0]}/records", params={"limit": 1})
            r.raise_for_status()
            return int(r.json()["total"])

    def forged_deliveries(self, body: bytes) -> list[dict[str, str]]:
        """No signature; a wrong secret; a tampered body; a stale timestamp; and a replay of
        a delivery id the receiver already accepted from the real server (correctly signed)."""
        from standardwebhooks import Webhook

        now = dt_now()
        forged = [
            {"content-type": "application/json"},
            _signed(Webhook("d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA=="), f"msg_{uuid.uuid4().hex}", now, body),
        ]
        secret = self._secret()
        if secret:
            good = Webhook(secret)
            forged.append(_signed(good, f"msg_{uuid.uuid4().hex}", now, body + b" "))
            forged.append(_signed(good, f"msg_{uuid.uuid4().hex}", now - dt.timedelta(hours=1), body))
            seen = self._seen_ids()
            if seen:
                forged.append(_signed(good, seen[-1], now, body))
        return forged

    def _secret(self) -> str | None:
        if not self.workspaces:
            return None
        secret = load_config(self.workspaces[-1].root).argilla.webhook_secret
        return str(secret) if secret else None

    def _seen_ids(self) -> list[str]:
        import sqlalchemy as sa

        from rlthf_plugin.store import ledger as L
        from rlthf_plugin.backends.argilla import SEEN_PREFIX as PLATFORM_PREFIX

        SEEN_PREFIX = L.DELIVERY_PREFIX + PLATFORM_PREFIX
        with self.workspaces[-1].ledger.engine.connect() as conn:
            keys = conn.execute(sa.select(L.sync_state.c.key).where(L.sync_state.c.key.startswith(SEEN_PREFIX))
                                .order_by(L.sync_state.c.updated_at)).scalars().all()
        return [k[len(SEEN_PREFIX):] for k in keys]


def dt_now() -> dt.datetime:
    return dt.datetime.now(tz=dt.timezone.utc)


def _signed(hook, msg_id: str, when, body: bytes) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": hook.sign(msg_id, when, body.decode("utf-8", "replace")),
            "content-type": "application/json"}


def signed_headers(secret: str, body: bytes, msg_id: str | None = None) -> dict[str, str]:
    """Standard Webhooks headers for ``body``, signed now with ``secret`` (a new id unless given)."""
    from standardwebhooks import Webhook

    return _signed(Webhook(secret), msg_id or f"msg_{uuid.uuid4().hex}", dt_now(), body)


@pytest.fixture(scope="session")
def argilla_server(tmp_path_factory):
    server = ArgillaServer(tmp_path_factory.mktemp("argilla-server"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def argilla_env(argilla_server):
    _delete_webhooks(argilla_server)  # the server allows 10; the session's tests register more
    return ArgillaEnv(argilla_server)


def _delete_webhooks(server: ArgillaServer) -> None:
    """Remove the webhooks earlier tests registered on the session's server."""
    with server.owner() as client:
        r = client.get("/api/v1/webhooks")
        r.raise_for_status()
        for hook in r.json().get("items", []):
            client.delete(f"/api/v1/webhooks/{hook['id']}").raise_for_status()
