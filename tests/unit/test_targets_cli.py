"""`rlthf targets`, and the options each command offers (no server needed)."""

from __future__ import annotations

import socket

from rlthf_plugin.cli import main
from rlthf_plugin.config import update_config_file


def test_targets_lists_what_the_config_remembers(runner, workspace):
    w = ["--workspace", str(workspace.root)]
    assert "no target yet" in runner.invoke(main, [*w, "targets"]).output
    update_config_file(workspace.root, "argilla", url="http://127.0.0.1:6900", dataset="prefs", workspace="team",
                       map="prompt=instruction,response_a=r1,response_b=r2,label=ranking")
    update_config_file(workspace.root, "label_studio", url="http://127.0.0.1:8080", project=12)
    out = runner.invoke(main, [*w, "targets"]).output
    assert "label-studio: http://127.0.0.1:8080 project 12, 0 pair(s) pushed" in out
    assert "argilla: http://127.0.0.1:6900 dataset 'prefs' in workspace 'team', 0 pair(s) pushed, map prompt=" in out
    # Two targets: a command without --backend asks for one, naming both.
    result = runner.invoke(main, [*w, "pull"])
    assert result.exit_code == 2 and "remembers targets on argilla and label-studio" in result.output


def test_pull_has_no_create_and_push_has(runner):
    assert "--create" not in runner.invoke(main, ["pull", "--help"]).output
    assert "--create" in runner.invoke(main, ["push", "--help"]).output
    assert "--map" in runner.invoke(main, ["pull", "--help"]).output


def test_serve_refuses_a_busy_port_at_once(runner, workspace):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(main, ["--workspace", str(workspace.root), "serve", "--port", str(port)])
    assert result.exit_code == 1 and f"cannot listen on 127.0.0.1:{port}" in result.output
