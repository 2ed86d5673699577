"""Label Studio's ML-backend API on the service app, over a workspace of 40 real pairs."""

import gzip
import json
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from rlthf_plugin.store import ledger as L
from rlthf_plugin.data import DEV_PAIRS
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.backends.label_studio import TEMPLATE
from rlthf_plugin.selection.calibration import Calibration
from rlthf_plugin.service.ml_backend import choice_control, preferences
from rlthf_plugin.service.app import create_app
from rlthf_plugin.workspace import Workspace


def _real_pairs(n: int) -> list[dict]:
    rows = []
    with gzip.open(DEV_PAIRS, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if all(isinstance(r[k], str) and r[k].strip() for k in ("prompt", "response_a", "response_b")) \
                    and r["response_a"] != r["response_b"] and r["source"].startswith("PandaLM"):
                rows.append(r)
            if len(rows) == n:
                return rows
    raise AssertionError(f"fewer than {n} PandaLM pairs in {DEV_PAIRS}")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("RLTHF_EMBEDDING_MAX_LENGTH", "64")
    root = tmp_path_factory.mktemp("ml") / "ws"
    rows = _real_pairs(40)
    sample = root.parent / "sample.jsonl"
    sample.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with Workspace.init(root) as ws:
        import_files(ws.ledger, [str(sample)])
    app = create_app(root, ml_backend=True)
    with TestClient(app) as client:
        yield client, app, rows
    mp.undo()


def _task(r: dict, i: int) -> dict:
    return {"id": i, "data": {k: r[k] for k in ("prompt", "response_a", "response_b")}}


def test_health_and_setup(served):
    client, app, _ = served
    assert client.get("/ml/health").json() == {"status": "UP", "model_class": "RlthfRewardModel"}
    r = client.post("/ml/setup", json={"project": "1.0", "schema": TEMPLATE.read_text(encoding="utf-8")})
    assert r.status_code == 200 and r.json()["model_version"] == "rlthf-embedding-itnone-h0+uncalibrated"
    assert client.post("/ml/webhook", json={"action": "ANNOTATION_CREATED"}).status_code == 200


def test_predict_picks_the_response_the_reward_model_scores_higher(served):
    client, app, rows = served
    unseen = {"prompt": "Name a prime number.", "response_a": "Seven is prime.", "response_b": "Banana."}
    tasks = [_task(r, i) for i, r in enumerate(rows[:12])] + [{"id": 99, "data": unseen}]
    r = client.post("/ml/predict", json={"tasks": tasks})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == len(tasks)
    version, model = app.state.reward_model.model()
    texts = [t["data"] for t in tasks]
    ra = model.score([d["prompt"] for d in texts], [d["response_a"] for d in texts])
    rb = model.score([d["prompt"] for d in texts], [d["response_b"] for d in texts])
    for pred, a, b in zip(results, ra, rb):
        assert pred["model_version"] == version
        (item,) = pred["result"]
        assert (item["from_name"], item["to_name"], item["type"]) == ("preference", "prompt", "choices")
        assert item["value"]["choices"] == ["A" if a >= b else "B"]
        assert "score" not in pred  # only imported (ground-truth) human labels: no calibration, no score
    # The reward model learned the AI labels it trained on (better than chance on them).
    agree = [p["result"][0]["value"]["choices"][0] == r["ai_label"]
             for p, r in zip(results, rows[:12]) if r["ai_label"] in ("A", "B")]
    assert agree and np.mean(agree) > 0.5


def test_predict_follows_the_label_config_and_skips_non_pairwise_tasks(served):
    client, _, rows = served
    config = ('<View><Text name="q" value="$prompt"/><Choices name="pick" toName="q">'
              '<Choice value="A"/><Choice value="B"/></Choices></View>')
    r = client.post("/ml/predict", json={"tasks": [{"id": 1, "data": {"text": "no pair"}}, _task(rows[0], 2)],
                                         "label_config": config}).json()["results"]
    assert r[0]["result"] == [] and r[0]["score"] == 0.0
    assert (r[1]["result"][0]["from_name"], r[1]["result"][0]["to_name"]) == ("pick", "q")
    assert client.post("/ml/predict", json={"nothing": 1}).status_code == 400


def test_a_new_iteration_refits_the_model(served):
    client, app, rows = served
    current = app.state.reward_model
    before, first = current.model()
    ledger = app.state.receiver.workspace.ledger
    ids = ledger.pair_ids()
    with ledger.engine.begin() as conn:
        conn.execute(L.iterations.insert().values(id=0, state="selected", params={}, stats={}, started_at=L.now()))
        conn.execute(L.decisions.insert(), [
            {"iteration": 0, "pair_id": pid, "action": "flip" if k < 20 else "keep", "region": "flip", "margin": 0.0,
             "rank": k, "priority": 0.0, "reason": {}} for k, pid in enumerate(ids)])
    stale, served_meanwhile = current.model()  # the last good fit answers while the refit runs
    assert stale == before and served_meanwhile is first
    deadline = time.time() + 120
    while current.model()[0] == before and time.time() < deadline:
        time.sleep(0.1)
    after, second = current.model()
    assert after == "rlthf-embedding-it0-h0+uncalibrated" != before and second is not first
    assert client.post("/ml/setup", json={}).json()["model_version"] == after


def test_preferences_and_choice_control_are_checked():
    choices, scores = preferences(np.array([0.0, -2.0, 3.0]))
    assert list(choices) == ["A", "B", "A"] and scores is None
    cal = Calibration(slope=0.5, intercept=0.0, n=30)
    choices, scores = preferences(np.array([0.0, -2.0, 3.0]), cal)
    assert list(choices) == ["A", "B", "A"]
    assert scores == pytest.approx([0.5, 1 / (1 + np.exp(-1)), 1 / (1 + np.exp(-1.5))])
    with pytest.raises(ValueError, match="finite"):
        preferences(np.array([np.nan]))
    assert choice_control(None) == ("preference", "prompt")
    assert choice_control("<View><Choices name='x' toName='y'><Choice value='yes'/></Choices></View>") == \
        ("preference", "prompt")
    assert choice_control("<View") == ("preference", "prompt")


#: Label Studio's own RLHF template (styles left out): <Pairwise> over $answer1 / $answer2.
PAIRWISE = ('<View><Text name="prompt" value="$prompt"/><Pairwise name="comparison" toName="answer1,answer2"/>'
            '<Text name="answer1" value="$answer1"/><Text name="answer2" value="$answer2"/></View>')


def test_setup_refuses_a_config_it_cannot_serve(served):
    client, app, _ = served
    r = client.post("/ml/setup", json={"project": "1.0", "schema": PAIRWISE})
    assert r.status_code == 422 and "$response_a" in r.json()["detail"] and "--map" in r.json()["detail"]
    rating = '<View><Text name="prompt" value="$prompt"/><Rating name="r" toName="prompt"/></View>'
    assert client.post("/ml/setup", json={"schema": rating}).status_code == 422
