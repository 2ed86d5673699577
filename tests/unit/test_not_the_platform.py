"""A server that answers but is not the platform (issue 13, fault 8): one line, exit 1,
nothing written. The server here is real (http.server on loopback), just not Label
Studio or Argilla."""

from __future__ import annotations

import http.server
import json
import threading

import pytest
import sqlalchemy as sa

from rlthf_plugin.cli import main
from rlthf_plugin.config import update_config_file, update_secrets_file
from rlthf_plugin.store import ledger as L


class _Page(http.server.BaseHTTPRequestHandler):
    def _answer(self):
        body = b"<html><body>It works!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def web_page():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("platform,options", [("label-studio", ["--create", "prefs"]),
                                              ("argilla", ["--dataset", "prefs"])])
def test_push_to_a_server_that_is_not_the_platform(workspace, tmp_path, runner, web_page, platform, options):
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps({"prompt": f"p{i}", "response_a": "x", "response_b": "y"}) + "\n"
                         for i in range(3)), encoding="utf-8")
    from rlthf_plugin.io.importer import import_files

    import_files(workspace.ledger, [str(f)])
    section = platform.replace("-", "_")
    update_secrets_file(workspace.root, section, api_key="some-key")
    update_config_file(workspace.root, section, url=web_page)
    result = runner.invoke(main, ["-w", str(workspace.root), "push", "--backend", platform, "--all", *options])
    assert result.exit_code == 1, result.output
    message = result.output.strip()
    assert "Traceback" not in message and len(message.splitlines()) == 1, message
    assert web_page in message and ("not as Label Studio does" in message or "not as Argilla does" in message), message
    with workspace.ledger.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(L.pushes)).scalar_one() == 0
