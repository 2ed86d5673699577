"""`rlthf serve`: the remembered target and port, one service per workspace, and a restart
right after kill -9 (real `rlthf serve` processes; no labeling platform needed)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx

from rlthf_plugin.cli import main
from rlthf_plugin.config import load_config, update_config_file
from rlthf_plugin.loop.targets import serve_plan


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(root, port: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "rlthf_plugin", "--workspace", str(root), "serve",
                             "--port", str(port), *extra], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _health(port: int, timeout: float = 60.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"no /health on port {port} after {timeout}s")


def test_the_plan_takes_the_one_remembered_target_and_its_webhook_port(workspace):
    backends, port, note = serve_plan(workspace.config, workspace.ledger)
    assert backends == () and port is None and "remembers no target" in note
    update_config_file(workspace.root, "label_studio", url="http://127.0.0.1:8080", project=3,
                       webhook_url="http://10.0.0.5:9311/webhooks/label-studio")
    backends, port, note = serve_plan(load_config(workspace.root), workspace.ledger)
    assert backends == ("label-studio",) and port == 9311 and "remembered label-studio target" in note
    assert serve_plan(load_config(workspace.root), workspace.ledger, ("argilla",))[:2] == (("argilla",), None)
    update_config_file(workspace.root, "argilla", url="http://127.0.0.1:6900", dataset="prefs")
    backends, port, note = serve_plan(load_config(workspace.root), workspace.ledger)
    assert backends == () and "argilla and label-studio" in note and "--backend" in note


def test_serve_without_backend_runs_the_worker_on_the_remembered_target(workspace):
    """The worker exists with no --backend given: /health stays "ok" without one; with one,
    its first step against the (unreachable) remembered platform turns it to an error code."""
    update_config_file(workspace.root, "label_studio", url="http://127.0.0.1:9", project=3)
    port = _free_port()
    proc = _serve(workspace.root, port)
    try:
        health = _health(port)
        deadline = time.monotonic() + 60
        while health["status"] == "ok" and time.monotonic() < deadline:
            time.sleep(0.5)
            health = _health(port)
        assert health["status"] in ("platform_unreachable", "worker_error"), health
    finally:
        proc.kill()
        out = proc.communicate()[0].decode()
    assert "running the loop on the remembered label-studio target" in out, out


def test_a_second_serve_exits_1_naming_the_first(runner, workspace):
    port = _free_port()
    first = _serve(workspace.root, port)
    try:
        _health(port)
        second = runner.invoke(main, ["--workspace", str(workspace.root), "serve", "--port", str(_free_port())])
        assert second.exit_code == 1, second.output
        assert "the serve lease is held by" in second.output and f":{first.pid}:" in second.output, second.output
    finally:
        first.terminate()
        first.communicate()


def test_a_restart_right_after_kill_9_listens_at_once(workspace):
    """A client still connected when the service is killed leaves the port's old socket
    closing (FIN_WAIT2, about 60 s): the restart binds anyway, as a supervisor needs."""
    port = _free_port()
    proc = _serve(workspace.root, port)
    client = socket.create_connection(("127.0.0.1", port), timeout=30) if _health(port) else None
    try:
        client.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        assert b"200" in client.recv(65536).split(b"\r\n")[0]  # a kept-alive connection, open
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        restarted = _serve(workspace.root, port)
        try:
            assert _health(port, timeout=30)["status"] == "ok"
        finally:
            restarted.terminate()
            out = restarted.communicate()[0].decode()
        assert "cannot listen" not in out and "lease is held" not in out, out
    finally:
        client.close()


def test_sigterm_stops_serve_cleanly_and_frees_its_lease(workspace):
    """A supervisor's SIGTERM (systemd, Kubernetes, `kill`): serve shuts down gracefully,
    exits 0 and releases its lease, so a successor on another host need not wait for the
    lease to expire. (uvicorn re-raises the signal after its shutdown; with the default
    handler that killed the process before the lease was released.)"""
    from rlthf_plugin.loop.owner import SERVE_LEASE
    from rlthf_plugin.store import lock

    port = _free_port()
    proc = _serve(workspace.root, port)
    try:
        assert _health(port)["status"] == "ok"
        assert lock.holder_of(workspace.ledger, SERVE_LEASE) is not None
    finally:
        proc.terminate()
        out = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 0, out
    assert lock.holder_of(workspace.ledger, SERVE_LEASE) is None, out
