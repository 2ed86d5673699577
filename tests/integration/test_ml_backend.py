"""The service as a Label Studio ML backend, connected to the real 1.23.2 server: Label
Studio checks /ml/health and /ml/setup, asks /ml/predict for a project's tasks and stores
the reward model's preference as a prediction on each."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from rlthf_plugin.backends.label_studio import TEMPLATE
from rlthf_plugin.config import update_config_file
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.workspace import Workspace

from .conftest import ReceiverThread, write_pandalm_sample

pytestmark = pytest.mark.integration


def test_label_studio_shows_the_reward_models_preference(label_studio_env, tmp_path):
    env = label_studio_env
    sample = write_pandalm_sample(tmp_path / "sample.jsonl", 40)
    with Workspace.init(tmp_path / "ws") as ws:
        import_files(ws.ledger, [str(sample)])
        update_config_file(ws.root, "embedding", max_length=64)
    rows = [json.loads(line) for line in sample.read_text(encoding="utf-8").splitlines()[:5]]
    unseen = {"prompt": "Name a prime number.", "response_a": "Seven is prime.", "response_b": "Banana."}
    data = [{k: r[k] for k in ("prompt", "response_a", "response_b")} for r in rows] + [unseen]

    receiver = ReceiverThread(tmp_path / "ws", ml_backend=True).start()
    try:
        with httpx.Client(base_url=env.server.url, timeout=120,
                          headers=env.headers(env.server.admin_token)) as admin:
            r = admin.post("/api/projects/", json={"title": f"ml-{uuid.uuid4().hex[:8]}",
                                                   "label_config": TEMPLATE.read_text(encoding="utf-8")})
            assert r.status_code == 201, r.text
            pid = r.json()["id"]
            r = admin.post(f"/api/projects/{pid}/import", json=[{**d, "reason": "ml backend test"} for d in data])
            assert r.status_code == 201, r.text

            r = admin.post("/api/ml", json={"url": f"{receiver.url}/ml", "project": pid, "title": "rlthf reward model"})
            assert r.status_code == 201, r.text
            ml = r.json()
            assert ml["state"] == "CO", ml  # connected: /ml/health and /ml/setup answered

            r = admin.post("/api/dm/actions", params={"id": "retrieve_tasks_predictions", "project": pid},
                           json={"selectedItems": {"all": True, "excluded": []}})
            assert r.status_code == 200, r.text
            tasks = admin.get("/api/tasks/", params={"project": pid, "page_size": 100, "fields": "all"}).json()["tasks"]
    finally:
        receiver.stop()

    current = receiver.app.state.reward_model
    version, model = current.model()
    tasks = sorted(tasks, key=lambda t: t["id"])  # import order
    assert [{k: t["data"][k] for k in d} for t, d in zip(tasks, data)] == data and len(tasks) == len(data)
    for t, d in zip(tasks, data):
        (prediction,) = t["predictions"]
        assert prediction["model_version"] == version
        (item,) = prediction["result"]
        assert (item["from_name"], item["to_name"], item["type"]) == ("preference", "prompt", "choices")
        margin = float(model.margins([d["prompt"]], [d["response_a"]], [d["response_b"]])[0])
        assert item["value"]["choices"] == ["A" if margin >= 0 else "B"]
        # Only imported (ground-truth) human labels: no calibration, so no probability yet.
        assert prediction.get("score") is None and version.endswith("+uncalibrated")


def test_a_pairwise_project_connects_only_with_its_mapping(label_studio_env, label_studio_server, tmp_path):
    """Label Studio's own RLHF <Pairwise> template: /ml/setup refuses it until the
    workspace maps its names, then the predictions answer in the Pairwise control."""
    from .test_field_mapping import LS_MAP, ls_rlhf_template

    env = label_studio_env
    sample = write_pandalm_sample(tmp_path / "sample.jsonl", 40)
    with Workspace.init(tmp_path / "ws") as ws:
        import_files(ws.ledger, [str(sample)])
        update_config_file(ws.root, "embedding", max_length=64)
    row = json.loads(sample.read_text(encoding="utf-8").splitlines()[0])
    receiver = ReceiverThread(tmp_path / "ws", ml_backend=True).start()
    try:
        with httpx.Client(base_url=env.server.url, timeout=120, headers=env.headers(env.server.admin_token)) as admin:
            pid = admin.post("/api/projects/", json={"title": f"ml-pw-{uuid.uuid4().hex[:6]}",
                                                     "label_config": ls_rlhf_template(label_studio_server)}).json()["id"]
            admin.post(f"/api/projects/{pid}/import", json=[
                {"prompt": row["prompt"], "answer1": row["response_a"], "answer2": row["response_b"]}]).raise_for_status()
            refused = admin.post("/api/ml", json={"url": f"{receiver.url}/ml", "project": pid, "title": "rlthf"})
            assert refused.status_code >= 400 or refused.json().get("state") != "CO", refused.text
            assert "$response_a" in refused.text or refused.status_code >= 400

            update_config_file(tmp_path / "ws", "label_studio", map=LS_MAP)
            receiver.stop()
            receiver = ReceiverThread(tmp_path / "ws", ml_backend=True).start()
            r = admin.post("/api/ml", json={"url": f"{receiver.url}/ml", "project": pid, "title": "rlthf mapped"})
            assert r.status_code == 201 and r.json()["state"] == "CO", r.text
            r = admin.post("/api/dm/actions", params={"id": "retrieve_tasks_predictions", "project": pid},
                           json={"selectedItems": {"all": True, "excluded": []}})
            assert r.status_code == 200, r.text
            [task] = admin.get("/api/tasks/", params={"project": pid, "fields": "all"}).json()["tasks"]
    finally:
        receiver.stop()
    (prediction,) = task["predictions"]
    (item,) = prediction["result"]
    assert (item["from_name"], item["to_name"], item["type"]) == ("comparison", "answer1", "pairwise")
    assert item["value"]["selected"] in ("left", "right")


def test_label_studio_predictions_on_unseen_pairs_are_calibrated_and_not_one_sided(label_studio_env, tmp_path):
    """Human labels that mostly say A (a biased batch) calibrate the score but do not make the
    predictions say A: Label Studio fetches predictions for unseen dev pairs in both orders,
    each pair's two predictions mirror each other with the same score."""
    import numpy as np

    from benchmarks.ml_backend_accuracy import dev_split
    from rlthf_plugin.store import ledger as L
    from rlthf_plugin.store.labels import store_human_labels

    env = label_studio_env
    train, test = dev_split(limit_train=150, limit_test=30)
    sample = tmp_path / "train.jsonl"
    sample.write_text("".join(json.dumps(r) + "\n" for r in train), encoding="utf-8")
    with Workspace.init(tmp_path / "ws") as ws:
        import_files(ws.ledger, [str(sample)])
        update_config_file(ws.root, "embedding", max_length=64)
        ids = ws.ledger.pair_ids()
        rng = np.random.default_rng(0)
        with ws.ledger.engine.begin() as conn:
            conn.execute(L.iterations.insert().values(id=0, state="labeled", params={}, stats={}, started_at=L.now()))
            conn.execute(L.decisions.insert(), [
                {"iteration": 0, "pair_id": pid, "action": "ask", "region": "ask", "margin": float(m), "rank": k,
                 "priority": 1.0, "reason": {"region": "ask"}}
                for k, (pid, m) in enumerate(zip(ids[:60], rng.normal(1.0, 2.0, 60)))])
        ai = ws.ledger.ai_majority()
        margins = [d["margin"] for d in sorted(_decisions(ws), key=lambda d: d["rank"])]
        # Humans agree with the AI label more often where its margin is high (a monotone fit), and
        # 30% answer A whatever they see (a biased batch).
        store_human_labels(ws.ledger, [
            {"pair_id": pid, "label": "A" if rng.random() < 0.3 else ai[pid].label if rng.random() < 1 / (1 + np.exp(-m))
             else ("B" if ai[pid].label == "A" else "A"), "annotator": "ann",
             "platform": "label-studio", "external_id": f"h{k}"} for k, (pid, m) in enumerate(zip(ids[:60], margins))])
    data = []
    for r in test:
        data.append({"prompt": r["prompt"], "response_a": r["response_a"], "response_b": r["response_b"]})
        data.append({"prompt": r["prompt"], "response_a": r["response_b"], "response_b": r["response_a"]})

    receiver = ReceiverThread(tmp_path / "ws", ml_backend=True).start()
    try:
        with httpx.Client(base_url=env.server.url, timeout=300,
                          headers=env.headers(env.server.admin_token)) as admin:
            r = admin.post("/api/projects/", json={"title": f"ml-{uuid.uuid4().hex[:8]}",
                                                   "label_config": TEMPLATE.read_text(encoding="utf-8")})
            pid = r.json()["id"]
            r = admin.post(f"/api/projects/{pid}/import", json=[{**d, "reason": "unseen"} for d in data])
            assert r.status_code == 201, r.text
            r = admin.post("/api/ml", json={"url": f"{receiver.url}/ml", "project": pid, "title": "rlthf"})
            assert r.status_code == 201 and r.json()["state"] == "CO", r.text
            r = admin.post("/api/dm/actions", params={"id": "retrieve_tasks_predictions", "project": pid},
                           json={"selectedItems": {"all": True, "excluded": []}})
            assert r.status_code == 200, r.text
            tasks = admin.get("/api/tasks/", params={"project": pid, "page_size": 100, "fields": "all"}).json()["tasks"]
    finally:
        receiver.stop()

    tasks = sorted(tasks, key=lambda t: t["id"])
    assert len(tasks) == len(data)
    picks, scores = [], []
    for t in tasks:
        (prediction,) = t["predictions"]
        assert "platt-n" in prediction["model_version"]  # calibrated on the 60 human labels
        picks.append(prediction["result"][0]["value"]["choices"][0])
        scores.append(prediction["score"])
    for k in range(0, len(picks), 2):
        assert {picks[k], picks[k + 1]} == {"A", "B"}, (k, picks[k], picks[k + 1])  # the mirror
        assert scores[k] == pytest.approx(scores[k + 1]) and 0.5 <= scores[k] < 1
    assert picks.count("A") == len(picks) // 2  # not one-sided: exactly half, by symmetry


def _decisions(ws):
    import sqlalchemy as sa

    from rlthf_plugin.store import ledger as L

    with ws.ledger.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(L.decisions)).mappings()]
