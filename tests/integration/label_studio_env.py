"""A real Label Studio 1.23.2 server for the integration tests (pytest plugin).

The server is installed once into its own virtual environment, cached between runs under
``~/.cache/rlthf_plugin/servers/label-studio-1.23.2`` (``RLTHF_SERVER_CACHE`` moves the
parent folder), started per test session on a free 127.0.0.1 port with SQLite in a
temporary data dir, and stopped at the end. A second user (the annotator) gets its own
token; annotations in tests are made by that user through the HTTP API, so Label Studio
fires its webhooks exactly as it does for a person in the browser.

Facts behind the settings: ``../shared/design/SERVERS.md``. Run this module to only
install the server (``python -m tests.integration.label_studio_env``).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import tomli_w

from rlthf_plugin.backends import LabelingBackend, open_backend
from rlthf_plugin.backends.label_studio import SECRET_HEADER
from rlthf_plugin.config import CONFIG_FILE, load_config, save_secret, secrets_path
from rlthf_plugin.workspace import Workspace

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

VERSION = "1.23.2"
ADMIN = "admin@rlthf.test"
ANNOTATORS = ("annotator1@rlthf.test", "annotator2@rlthf.test")
TOKENS_FILE = "rlthf-tokens.json"
CHOICE_OF = {"A": "A", "B": "B", "tie": "tie"}


def cache_root() -> Path:
    return Path(os.environ.get("RLTHF_SERVER_CACHE", Path.home() / ".cache" / "rlthf_plugin" / "servers"))


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_installed(*, python: str | None = None, quiet: bool = True) -> Path:
    """The ``bin`` folder of a virtual environment holding ``label-studio==VERSION``.

    Built on first use with the interpreter running the tests (about 100 s, 1 GB); a lock
    file serialises concurrent sessions and a marker written last tells a complete
    environment from one interrupted half-way (which is rebuilt).
    """
    root = cache_root() / f"label-studio-{VERSION}"
    venv, marker = root / "venv", root / "complete"
    with _file_lock(cache_root() / f"label-studio-{VERSION}.lock"):
        if marker.exists() and (venv / "bin" / "label-studio").exists():
            return venv / "bin"
        if venv.exists():
            shutil.rmtree(venv)
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run([python or sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", *(["-q"] if quiet else []),
               "--disable-pip-version-check", "install"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, f"label-studio=={VERSION}"], check=True)
        marker.write_text(VERSION, encoding="utf-8")
        return venv / "bin"



def server_env(data_dir: Path) -> dict[str, str]:
    """The server's environment: SQLite in ``data_dir``, no telemetry, loopback webhooks."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("HOST", "PORT", "USERNAME", "PASSWORD", "VIRTUAL_ENV", "PYTHONPATH", "DJANGO_SETTINGS_MODULE")}
    env.update(DJANGO_DB="sqlite", LABEL_STUDIO_BASE_DATA_DIR=str(data_dir), LATEST_VERSION_CHECK="false",
               COLLECT_ANALYTICS="false", SENTRY_DSN="", FRONTEND_SENTRY_DSN="",
               LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
               SSRF_PROTECTION_ENABLED="false", ML_BLOCK_LOCAL_IP="false")
    return env


def _init_user(bin_dir: Path, data_dir: Path, email: str, *, owner: bool = False) -> str:
    """``label-studio init`` one user (the first creates the organisation, with legacy
    tokens enabled); returns its API token."""
    token = secrets.token_hex(20)
    done = subprocess.run(
        [str(bin_dir / "label-studio"), "init", "-q", "--data-dir", str(data_dir), "--username", email,
         "--password", secrets.token_hex(12), "--user-token", token,
         *(["--enable-legacy-api-token"] if owner else [])],
        env=server_env(data_dir), capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"label-studio init for {email} failed:\n{done.stdout}\n{done.stderr}")
    return token


def ensure_seed(bin_dir: Path) -> Path:
    """A migrated SQLite data dir holding the owner and the annotators, made once and
    cached beside the installation; each session starts the server on a copy of it
    (seconds, instead of migrations and three Django boots)."""
    root = cache_root() / f"label-studio-{VERSION}"
    seed, marker = root / "seed", root / "seed-complete"
    with _file_lock(cache_root() / f"label-studio-{VERSION}.lock"):
        if marker.exists() and (seed / TOKENS_FILE).exists():
            return seed
        if seed.exists():
            shutil.rmtree(seed)
        seed.mkdir(parents=True)
        tokens = {"admin": _init_user(bin_dir, seed, ADMIN, owner=True),
                  "annotators": {str(i): _init_user(bin_dir, seed, email) for i, email in enumerate(ANNOTATORS, 1)}}
        (seed / TOKENS_FILE).write_text(json.dumps(tokens), encoding="utf-8")
        marker.write_text(VERSION, encoding="utf-8")
        return seed


@dataclass
class LabelStudioServer:
    """A running server: its URL, the owner's token and one token per annotator."""

    bin: Path
    data_dir: Path
    port: int
    admin_token: str = ""
    annotator_tokens: dict[int, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 240.0) -> "LabelStudioServer":
        """Copy the seed data dir into ``data_dir`` and start the server on it."""
        seed = ensure_seed(self.bin)
        tokens = json.loads((seed / TOKENS_FILE).read_text(encoding="utf-8"))
        self.admin_token = tokens["admin"]
        self.annotator_tokens = {int(k): v for k, v in tokens["annotators"].items()}
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        shutil.copytree(seed, self.data_dir)
        log = open(self.data_dir / "server.log", "wb")
        self.proc = subprocess.Popen(
            [str(self.bin / "label-studio"), "start", "--no-browser", "--internal-host", "127.0.0.1",
             "--port", str(self.port), "--data-dir", str(self.data_dir), "--log-level", "WARNING"],
            env=server_env(self.data_dir), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        deadline = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Label Studio exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                self.stop()
                raise RuntimeError(f"Label Studio did not answer /health in {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.25)
        return self

    def add_user(self, email: str, password: str) -> None:
        """A user who can sign in on the web page (``label-studio init`` beside the running
        server; the seeded users have API tokens but unknown passwords)."""
        done = subprocess.run(
            [str(self.bin / "label-studio"), "init", "-q", "--data-dir", str(self.data_dir), "--username", email,
             "--password", password], env=server_env(self.data_dir), capture_output=True, text=True, timeout=600,
            stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"label-studio init for {email} failed:\n{done.stdout}\n{done.stderr}")

    def log_tail(self, n: int = 4000) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace")[-n:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)


class LabelStudioEnv:
    """:class:`tests.integration.contract.PlatformEnv` on a running Label Studio."""

    platform = "label-studio"

    def __init__(self, server: LabelStudioServer):
        self.server = server

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Token {token}"}

    def configure(self, workspace: Workspace, *, name: str, webhook_url: str | None = None,
                  show_predictions: bool = False) -> list[str]:
        path = workspace.root / CONFIG_FILE
        data = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        section = data.setdefault("label_studio", {})
        section.update(url=self.server.url, title=name, show_predictions=show_predictions,
                       webhook_url=webhook_url or "")
        section.pop("project", None)
        path.write_text(tomli_w.dumps(data), encoding="utf-8")
        secrets_file = secrets_path(workspace.root)
        save_secret(secrets_file, "label_studio", "api_key", self.server.admin_token)
        if webhook_url:
            save_secret(secrets_file, "label_studio", "webhook_secret", secrets.token_urlsafe(24))
        workspace.config = load_config(workspace.root)
        return ["--create", name]

    def backend(self, workspace: Workspace) -> LabelingBackend:
        return open_backend("label-studio", load_config(workspace.root), workspace=workspace)

    def annotate(self, backend: LabelingBackend, external_id: str, label: str, *, annotator: int = 1,
                 cancelled: bool = False, comment: str | None = None) -> dict:
        result = [] if cancelled else [
            {"from_name": "preference", "to_name": "prompt", "type": "choices", "value": {"choices": [CHOICE_OF[label]]}}]
        if comment:
            result.append({"from_name": "comment", "to_name": "prompt", "type": "textarea",
                           "value": {"text": [comment]}})
        r = httpx.post(f"{self.server.url}/api/tasks/{external_id}/annotations/",
                       headers=self.headers(self.server.annotator_tokens[annotator]),
                       json={"result": result, "was_cancelled": cancelled}, timeout=30)
        r.raise_for_status()
        return r.json()

    def remote_count(self, backend: LabelingBackend) -> int:
        r = httpx.get(f"{self.server.url}/api/tasks/", headers=self.headers(self.server.admin_token),
                      params={"project": backend.target, "page_size": 1, "fields": "task_only"}, timeout=30)
        r.raise_for_status()
        return int(r.json()["total"])

    def forged_deliveries(self, body: bytes) -> list[dict[str, str]]:
        return [
            {"content-type": "application/json"},
            {"content-type": "application/json", SECRET_HEADER: ""},
            {"content-type": "application/json", SECRET_HEADER: "not-the-secret"},
            {"content-type": "application/json", SECRET_HEADER.lower(): secrets.token_urlsafe(24)},
        ]


@pytest.fixture(scope="session")
def label_studio_server(tmp_path_factory) -> Iterator[LabelStudioServer]:
    """Label Studio 1.23.2 on a free loopback port for the whole test session."""
    from .conftest import free_port

    server = LabelStudioServer(ensure_installed(), tmp_path_factory.mktemp("label-studio"), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def label_studio_env(label_studio_server) -> LabelStudioEnv:
    return LabelStudioEnv(label_studio_server)


if __name__ == "__main__":
    print(ensure_seed(ensure_installed(quiet=False)))
