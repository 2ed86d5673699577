"""A service safe to expose (issue 23): /ml only on request and behind Basic auth, bodies
capped while they stream (413), an optional token on /metrics, /health as state codes,
secrets read again only when their file changes, and `serve` refusing /ml on a public
host without credentials."""

from __future__ import annotations

import base64
import json
import threading
import time

import httpx
import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from rlthf_plugin.config import update_config_file, update_secrets_file
from rlthf_plugin.service.app import create_app
from rlthf_plugin.service.guard import basic_auth_matches, bearer_matches


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_ml_is_not_mounted_unless_asked(workspace):
    with TestClient(create_app(workspace.root)) as client:
        assert client.get("/ml/health").status_code == 404
    update_config_file(workspace.root, "serve", ml_backend=True)
    with TestClient(create_app(workspace.root)) as client:
        assert client.get("/ml/health").status_code == 200  # loopback without credentials: open


def test_ml_asks_for_basic_auth(workspace, monkeypatch):
    monkeypatch.setenv("RLTHF_ML_BASIC_AUTH", "labelstudio:pa55:word")
    with TestClient(create_app(workspace.root, ml_backend=True)) as client:
        r = client.get("/ml/health")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
        assert client.get("/ml/health", headers=basic("labelstudio", "wrong")).status_code == 401
        assert client.post("/ml/predict", json={"tasks": []}, headers=basic("x", "y")).status_code == 401
        assert client.get("/ml/health", headers=basic("labelstudio", "pa55:word")).status_code == 200
        assert client.get("/health").status_code == 200  # the rest needs no credentials


def test_credentials_compare_in_constant_time_helpers():
    assert basic_auth_matches(basic("u", "p")["Authorization"], "u:p")
    assert not basic_auth_matches("Basic !!!", "u:p") and not basic_auth_matches(None, "u:p")
    assert bearer_matches("Bearer t0k", "t0k") and not bearer_matches("Bearer t0", "t0k")


def test_predict_caps_tasks_and_never_writes_the_ledger(workspace, tmp_path, monkeypatch):
    import sqlalchemy as sa

    from rlthf_plugin.io.importer import import_files
    from rlthf_plugin.store import schema as S

    monkeypatch.setenv("RLTHF_EMBEDDING_MAX_LENGTH", "32")
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps({"prompt": f"q{i}", "response_a": f"a{i}", "response_b": f"b{i}",
                                     "ai_label": "A" if i % 2 else "B"}) + "\n" for i in range(12)))
    import_files(workspace.ledger, [str(f)])
    update_config_file(workspace.root, "serve", ml_max_tasks=5)

    def embedding_rows() -> tuple[int, int]:
        """(the ledger's vector rows, bytes of the workspace's vector files): where vectors are written."""
        with workspace.ledger.engine.connect() as conn:
            rows = conn.execute(sa.select(sa.func.count()).select_from(S.embeddings)).scalar_one()
        files = workspace.root / "vectors"
        return rows, sum(p.stat().st_size for p in files.rglob("*") if p.is_file()) if files.exists() else 0

    with TestClient(create_app(workspace.root, ml_backend=True)) as client:
        tasks = [{"id": i, "data": {"prompt": f"novel {i}", "response_a": f"x {i}", "response_b": f"y {i}"}}
                 for i in range(6)]
        assert client.post("/ml/predict", json={"tasks": tasks}).status_code == 413
        before = embedding_rows()
        r = client.post("/ml/predict", json={"tasks": tasks[:5]})
        assert r.status_code == 200, r.text
        assert len(r.json()["results"]) == 5
        assert embedding_rows() == before  # the fit and the novel texts stayed in memory


class Server:
    """The app under a real uvicorn (streamed bodies reach it in chunks)."""

    def __init__(self, app, **options):
        import socket

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    **options))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started and time.time() < deadline:
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def test_bodies_over_the_cap_get_413_while_streaming(workspace):
    from rlthf_plugin.service.guard import Guard, Rule

    update_config_file(workspace.root, "serve", max_body_bytes=4096)
    with Server(create_app(workspace.root)) as url:
        r = httpx.post(f"{url}/webhooks/label-studio", content=b"{" + b" " * 5000 + b"}")
        assert r.status_code == 413  # Content-Length over the cap: refused before reading
        small = httpx.post(f"{url}/webhooks/label-studio", content=b"{}")
        assert small.status_code != 413  # under the cap: on to the receiver (no platform configured here)

    read = {"bytes": 0}

    async def reader(scope, receive, send):  # an app that reads whatever it is sent
        while True:
            message = await receive()
            read["bytes"] += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read"})

    def chunked():  # no Content-Length: the cap must hold while the body streams
        for _ in range(200):
            yield b"x" * 8192

    with Server(Guard(reader, [Rule("", max_body=4096)])) as url:
        try:
            r = httpx.post(url, content=chunked(), timeout=30)
            assert r.status_code == 413
        except httpx.HTTPError:
            pass  # the server may close the connection while the client still writes
    assert read["bytes"] <= 4096  # the app never got past the cap


def test_metrics_token_is_optional(workspace):
    with TestClient(create_app(workspace.root)) as client:
        assert client.get("/metrics").status_code == 200  # off by default
    update_secrets_file(workspace.root, "serve", metrics_token="m3trics")
    with TestClient(create_app(workspace.root)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer m3trics"}).status_code == 200


def test_health_is_a_state_code(workspace):
    with TestClient(create_app(workspace.root)) as client:
        body = client.get("/health").json()
        assert set(body) == {"status", "last_success", "loop"} and body["status"] == "ok"
        assert body["loop"] == "off"  # no worker: serve only receives webhooks
        workspace.ledger.engine.dispose()
        app = client.app
        app.state.health.ledger = type("Gone", (), {"ping": lambda self: (False, "OperationalError: /secret/path"),
                                                    "set_state": lambda self, k, v: None})()
        r = client.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "ledger_unavailable" and "/secret" not in r.text


def test_secrets_are_read_again_only_when_the_file_changes(workspace, monkeypatch):
    from rlthf_plugin import workspace as W

    calls = {"n": 0}
    real = W.load_config

    def counting(root, env=None):
        calls["n"] += 1
        return real(root, env)

    monkeypatch.setattr(W, "load_config", counting)
    state = workspace.backend_state()
    for _ in range(20):
        assert state.secret("label_studio", "webhook_secret") is None
    assert calls["n"] <= 1
    update_secrets_file(workspace.root, "label_studio", webhook_secret="s3cret")
    assert state.secret("label_studio", "webhook_secret") == "s3cret"  # the file changed: read again


def test_serve_refuses_ml_on_a_public_host_without_credentials(workspace, runner, monkeypatch):
    from rlthf_plugin.cli import main

    monkeypatch.delenv("RLTHF_ML_BASIC_AUTH", raising=False)
    result = runner.invoke(main, ["--workspace", str(workspace.root), "serve", "--host", "0.0.0.0", "--ml-backend"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "RLTHF_ML_BASIC_AUTH" in lines[0]


def test_rlthf_status_shows_what_health_keeps_private(workspace, runner):
    from rlthf_plugin.cli import main

    with TestClient(create_app(workspace.root)) as client:
        client.app.state.health.ledger = type("Down", (), {
            "ping": lambda self: (True, "ok"), "set_state": workspace.ledger.set_state})()
        client.app.state.health.worker = type("W", (), {"alive": True, "error": "HTTP 502 from http://ls.internal:8080",
                                                       "error_code": "platform_unreachable", "last_reconcile": {},
                                                       "last_success": None})()
        body = client.get("/health").json()
    assert body["status"] == "platform_unreachable" and "ls.internal" not in json.dumps(body)
    result = runner.invoke(main, ["-w", str(workspace.root), "status", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)["service_health"]
    assert shown["status"] == "platform_unreachable" and "ls.internal" in shown["detail"]
