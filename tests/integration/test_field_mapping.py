"""Existing projects and datasets with their own names, on the real servers and with the
platforms' own templates: Label Studio's "Human Preference collection for RLHF"
(``<Pairwise>``, ``$answer1``/``$answer2``) as the server ships it, and Argilla datasets
with ``instruction``/``response1``/``response2`` and a RankingQuestion or RatingQuestion."""

from __future__ import annotations

import uuid

import httpx
import pytest
import yaml

from rlthf_plugin.backends import open_backend
from rlthf_plugin.config import load_config, update_config_file
from rlthf_plugin.errors import IncompatibleProjectError
from rlthf_plugin.loop import sync
from rlthf_plugin.loop.tasks import asked_tasks

from .conftest import add_asked_iteration

pytestmark = pytest.mark.integration

LS_MAP = "prompt=prompt,response_a=answer1,response_b=answer2,label=comparison"


def ls_rlhf_template(server) -> str:
    """The label config of Label Studio's own RLHF template, read from the server's installation."""
    site = next(server.bin.parent.glob("lib/python*/site-packages"))
    path = site / "label_studio" / "annotation_templates" / "generative-ai" / "human-feedback-collection" / "config.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))["config"]


def test_label_studio_pairwise_template_both_ways(label_studio_env, label_studio_server, real_workspace):
    env, server, ws = label_studio_env, label_studio_server, real_workspace
    ids = add_asked_iteration(ws.ledger, 4)
    with httpx.Client(base_url=server.url, headers=env.headers(server.admin_token), timeout=60) as admin:
        r = admin.post("/api/projects/", json={"title": f"rlhf-{uuid.uuid4().hex[:6]}",
                                               "label_config": ls_rlhf_template(server)})
        r.raise_for_status()
        pid = r.json()["id"]
    env.configure(ws, name="unused")
    update_config_file(ws.root, "label_studio", project=pid, title="")
    config = load_config(ws.root)
    # Without a mapping: every missing name at once, and nothing is created.
    backend = open_backend("label-studio", config, workspace=ws)
    with pytest.raises(IncompatibleProjectError) as err:
        sync.push(ws.ledger, backend, asked_tasks(ws.ledger))
    assert "$response_a" in err.value.message and "$response_b" in err.value.message
    assert env.remote_count(backend) == 0

    backend = open_backend("label-studio", config, workspace=ws, field_map=LS_MAP, show_ai=True)
    tasks = asked_tasks(ws.ledger)
    report = sync.push(ws.ledger, backend, tasks, iteration=1)
    # Every A/B prediction is created (the adapter checks the server's count); a tie has no Pairwise answer.
    assert report.created == 4 and report.predictions == sum(t.ai_label in ("A", "B") for t in tasks) > 0
    with httpx.Client(base_url=server.url, headers=env.headers(server.admin_token), timeout=60) as admin:
        tasks = admin.get("/api/tasks/", params={"project": pid, "fields": "all"}).json()["tasks"]
    pairs = {p.id: p for p in ws.ledger.get_pairs(ids)}
    for task in tasks:
        pair = pairs[task["data"]["pair_id"]]
        assert (task["data"]["answer1"], task["data"]["answer2"]) == (pair.response_a, pair.response_b)
        assert set(task["meta"]["rlthf"]) == {"pair_id", "iteration"}  # ids only: no margin or signals to read
        assert not any(ch.isdigit() for ch in task["data"]["reason"])
    # Annotations as the labeling page saves them (to_name = the Pairwise tag itself).
    by_pair = {t["data"]["pair_id"]: t["id"] for t in tasks}
    for pid_, side in zip(ids, ("left", "right", "left", "right")):
        r = httpx.post(f"{server.url}/api/tasks/{by_pair[pid_]}/annotations/",
                       headers=env.headers(server.annotator_tokens[1]), timeout=30,
                       json={"result": [{"from_name": "comparison", "to_name": "comparison", "type": "pairwise",
                                         "value": {"selected": side}}]})
        r.raise_for_status()
    read, new = sync.pull(ws.ledger, backend)
    assert (read, new) == (4, 4)
    votes = ws.ledger.human_votes()
    assert [[lab for who, lab in votes[p] if who.startswith("annotator1")] for p in ids] == [["A"], ["B"], ["A"], ["B"]]


def _argilla_dataset(server, name: str, kind: str) -> None:
    import argilla as rg

    client = rg.Argilla(api_url=server.url, api_key="rlthf.owner.apikey")
    question = (rg.RankingQuestion(name="ranking", values=["response1", "response2"], client=client) if kind == "ranking"
                else rg.RatingQuestion(name="rating", values=[1, 2, 3, 4, 5], client=client))
    settings = rg.Settings(fields=[rg.TextField(name="instruction"), rg.TextField(name="response1"),
                                   rg.TextField(name="response2")], questions=[question])
    rg.Dataset(name=name, workspace="argilla", settings=settings, client=client).create()


@pytest.mark.parametrize("kind", ["ranking", "rating"])
def test_argilla_ranking_and_rating_datasets(argilla_env, argilla_server, real_workspace, kind):
    server, ws = argilla_server, real_workspace
    ids = add_asked_iteration(ws.ledger, 3)
    dataset = f"{kind}-{uuid.uuid4().hex[:6]}"
    _argilla_dataset(server, dataset, kind)
    argilla_env.configure(ws, name=dataset)
    config = load_config(ws.root)
    with pytest.raises(IncompatibleProjectError) as err:  # every missing field at once
        sync.push(ws.ledger, open_backend("argilla", config, workspace=ws), asked_tasks(ws.ledger))
    assert all(f"'{f}'" in err.value.message for f in ("prompt", "response_a", "response_b"))

    mapping = f"prompt=instruction,response_a=response1,response_b=response2,label={kind}"
    update_config_file(ws.root, "argilla", map=mapping)  # the config's [argilla] map, not the option
    backend = open_backend("argilla", load_config(ws.root), workspace=ws, show_ai=True)
    report = sync.push(ws.ledger, backend, asked_tasks(ws.ledger), iteration=1)
    assert report.created == 3
    answers = {"ranking": [[{"value": "response1", "rank": 1}, {"value": "response2", "rank": 2}],
                           [{"value": "response1", "rank": 2}, {"value": "response2", "rank": 1}],
                           [{"value": "response1", "rank": 1}, {"value": "response2", "rank": 1}]],
               "rating": [1, 5, 3]}[kind]
    with server.annotator(1) as annotator:
        for pid, value in zip(ids, answers):
            r = annotator.post(f"/api/v1/records/{report.mapping[pid]}/responses",
                               json={"values": {kind: {"value": value}}, "status": "submitted"})
            assert r.status_code == 201, r.text
    with server.owner() as owner:  # the machine reason is hidden from annotators, priority is not
        props = owner.get(f"/api/v1/me/datasets/{backend.dataset().id}/metadata-properties").json()["items"]
        visible = {p["name"]: p["visible_for_annotators"] for p in props}
    # The dataset has no 'why' field: annotators read the plain reason in the visible metadata 'why_asked'.
    assert visible == {"priority": True, "iteration": False, "why_asked": True}
    read, new = sync.pull(ws.ledger, backend)
    assert (read, new) == (3, 3)
    votes = ws.ledger.human_votes()
    assert [[lab for _, lab in votes[p] if _ == "annotator1"] for p in ids] == [["A"], ["B"], ["tie"]]
    assert backend.annotation_url.endswith(f"/dataset/{backend.dataset().id}/annotation-mode?"
                                           "sort=metadata.priority.desc")
    with server.owner() as owner:  # the sorted link leads the guidelines
        guidelines = owner.get(f"/api/v1/datasets/{backend.dataset().id}").json()["guidelines"]
    assert backend.annotation_url in guidelines
