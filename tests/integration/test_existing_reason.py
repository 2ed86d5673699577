"""A real Label Studio 1.23.2 project made from its own RLHF template (no ``$reason``):
`rlthf push` says once which tag to add; with the tag added (or ``--map reason=NAME``) the
task shows the plain reason, and its meta carries ids only."""

from __future__ import annotations

import uuid

import httpx
import pytest

from rlthf_plugin.cli import main
from rlthf_plugin.config import update_config_file

from .conftest import add_asked_iteration
from .test_field_mapping import LS_MAP, ls_rlhf_template

pytestmark = pytest.mark.integration


def test_a_project_without_a_reason_tag_gets_the_tag_to_add_once(label_studio_env, label_studio_server,
                                                                 real_workspace, runner):
    env, server, ws = label_studio_env, label_studio_server, real_workspace
    add_asked_iteration(ws.ledger, 3)
    with httpx.Client(base_url=server.url, headers=env.headers(server.admin_token), timeout=60) as admin:
        r = admin.post("/api/projects/", json={"title": f"rlhf-{uuid.uuid4().hex[:6]}",
                                               "label_config": ls_rlhf_template(server)})
        r.raise_for_status()
        pid = r.json()["id"]
    env.configure(ws, name="unused")
    update_config_file(ws.root, "label_studio", project=pid, title="")
    w = ["--workspace", str(ws.root)]
    out = runner.invoke(main, [*w, "push", "--backend", "label-studio", "--map", LS_MAP])
    assert out.exit_code == 0, out.output
    assert out.output.count("shows annotators no reason") == 1, out.output
    assert '<Text name="reason" value="$reason"/>' in out.output and "--map reason=NAME" in out.output

    # The team adds a text of its own and maps the reason onto it: no hint, the task shows it.
    config = ls_rlhf_template(server).replace("</View>", '<Text name="why" value="$why_asked"/></View>', 1)
    with httpx.Client(base_url=server.url, headers=env.headers(server.admin_token), timeout=60) as admin:
        admin.patch(f"/api/projects/{pid}/", json={"label_config": config}).raise_for_status()
    out = runner.invoke(main, [*w, "push", "--backend", "label-studio", "--map", LS_MAP + ",reason=why_asked"])
    assert out.exit_code == 0 and "shows annotators no reason" not in out.output, out.output
    with httpx.Client(base_url=server.url, headers=env.headers(server.admin_token), timeout=60) as admin:
        tasks = admin.get("/api/tasks/", params={"project": pid, "fields": "all"}).json()["tasks"]
    assert tasks and all(set(t["meta"]["rlthf"]) == {"pair_id", "iteration"} for t in tasks)
