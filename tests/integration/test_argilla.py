"""Argilla-only behaviour on the real argilla-server (see argilla_env.py): priority order
through search, suggestions hidden or shown, incompatible datasets, webhook forgeries."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import uuid

import httpx
import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook

from rlthf_plugin.store import ledger as L
from rlthf_plugin.loop import sync
from rlthf_plugin.backends.argilla import load_settings
from rlthf_plugin.config import SECRETS_FILE
from rlthf_plugin.errors import IncompatibleProjectError
from rlthf_plugin.loop.tasks import asked_tasks
from rlthf_plugin.store.votes import audited_labels

from .conftest import ReceiverThread, add_asked_iteration, wait_for

pytestmark = pytest.mark.integration

PRIORITY_DESC = {"query": {}, "sort": [{"scope": {"entity": "metadata", "metadata_property": "priority"},
                                        "order": "desc"}]}


def name() -> str:
    return f"argilla-{uuid.uuid4().hex[:8]}"


def pushed(env, ws, n: int, **configure):
    ids = add_asked_iteration(ws.ledger, n)
    env.configure(ws, name=name(), **configure)
    backend = env.backend(ws)
    report = sync.push(ws.ledger, backend, asked_tasks(ws.ledger), iteration=1)
    return ids, backend, report


def test_priority_orders_the_search_for_owner_and_annotator(argilla_env, argilla_server, real_workspace):
    ids, backend, _ = pushed(argilla_env, real_workspace, 30)
    with real_workspace.ledger.engine.connect() as conn:
        priority = dict(conn.execute(sa.select(L.decisions.c.pair_id, L.decisions.c.priority)).all())
    expected = sorted(ids, key=lambda pid: -priority[pid])[:10]
    ds_id = backend.dataset().id
    with argilla_server.owner() as owner:
        r = owner.post(f"/api/v1/datasets/{ds_id}/records/search", json=PRIORITY_DESC, params={"limit": 10})
    assert r.status_code == 200, r.text
    assert [i["record"]["external_id"] for i in r.json()["items"]] == expected
    meta = r.json()["items"][0]["record"]["metadata"]
    # Ids and the plain reason only: the margin, P(wrong) and signals stay in the ledger.
    assert meta["iteration"] == 1 and set(meta) == {"priority", "iteration", "why_asked"}
    # The annotator's queue (what the UI shows) sorted by the visible priority property.
    with argilla_server.annotator(1) as annotator:
        r = annotator.post(f"/api/v1/me/datasets/{ds_id}/records/search", json=PRIORITY_DESC, params={"limit": 10})
    assert r.status_code == 200, r.text
    assert [i["record"]["external_id"] for i in r.json()["items"]] == expected
    # Annotators see the priority and the plain reason; the iteration stays hidden.
    seen = r.json()["items"][0]["record"]["metadata"]
    assert seen["priority"] == priority[expected[0]] and set(seen) == {"priority", "why_asked"}
    assert not any(ch.isdigit() for ch in seen["why_asked"])


def test_a_rerun_push_sends_only_the_records_that_changed(argilla_env, argilla_server, real_workspace):
    ids, backend, first = pushed(argilla_env, real_workspace, 12, show_suggestions=True)
    assert first.created == 12 and first.predictions > 0
    sent: list[str] = []
    upsert = backend._upsert

    def counted(batch, report):
        sent.extend(t.pair.id for t in batch)
        return upsert(batch, report)

    backend._upsert = counted
    again = sync.push(real_workspace.ledger, backend, asked_tasks(real_workspace.ledger), iteration=1)
    # Metadata and suggestions compared with the listing's short entries: nothing to send.
    assert sent == [] and (again.created, again.existing, again.predictions) == (0, 12, first.predictions)
    with real_workspace.ledger.engine.begin() as conn:
        conn.execute(sa.update(L.decisions).where(L.decisions.c.pair_id == ids[3]).values(priority=1000.0))
    third = sync.push(real_workspace.ledger, backend, asked_tasks(real_workspace.ledger), iteration=1)
    assert sent == [ids[3]] and third.created == 0 and third.mapping == first.mapping
    with argilla_server.owner() as owner:
        r = owner.get(f"/api/v1/records/{first.mapping[ids[3]]}")
    assert r.json()["metadata"]["priority"] == 1000.0


@pytest.mark.parametrize("show", [False, True])
def test_suggestions_hidden_by_default_shown_on_request(argilla_env, argilla_server, real_workspace, show):
    ids, backend, report = pushed(argilla_env, real_workspace, 6, show_suggestions=show)
    # The suggestion is the audited label: the primary judge's, or a fallback judge's where the
    # primary did not vote. A pair whose label judge contradicted itself gets no suggestion.
    ai = audited_labels(real_workspace.ledger).labels
    suggested = [i for i in ids if ai.get(i) in ("A", "B", "tie")]
    first = suggested[0] if suggested else ids[0]
    with argilla_server.owner() as owner:
        r = owner.get(f"/api/v1/records/{report.mapping[first]}", params={"include": ["suggestions"]})
    suggestions = r.json()["suggestions"]
    if not show:
        assert suggestions == [] and report.predictions == 0
        return
    assert suggested and report.predictions == len(suggested)
    assert len(suggestions) == 1
    s = suggestions[0]
    assert s["value"] == {"A": "a", "B": "b", "tie": "tie"}[ai[first]]
    # No human label yet, so no calibration: no score rather than an uncalibrated number.
    assert s["score"] is None and s["agent"] == "rlthf-iter1"


def test_existing_incompatible_dataset_is_refused_by_name(argilla_env, argilla_server, real_workspace):
    import argilla as rg

    add_asked_iteration(real_workspace.ledger, 3)
    dataset = name()
    client = rg.Argilla(api_url=argilla_server.url, api_key="rlthf.owner.apikey")
    settings = load_settings()
    settings.fields.remove("response_b")
    rg.Dataset(name=dataset, workspace="argilla", settings=settings, client=client).create()
    argilla_env.configure(real_workspace, name=dataset)
    backend = argilla_env.backend(real_workspace)
    with pytest.raises(IncompatibleProjectError, match="response_b"):
        sync.push(real_workspace.ledger, backend, asked_tasks(real_workspace.ledger))
    assert argilla_env.remote_count(backend) == 0


def test_webhook_secret_stored_private_and_forgeries_rejected(argilla_env, argilla_server, real_workspace):
    ids = add_asked_iteration(real_workspace.ledger, 4)
    receiver = ReceiverThread(real_workspace.root)
    url = f"{receiver.url}/webhooks/argilla"
    argilla_env.configure(real_workspace, name=name(), webhook_url=url)
    receiver.start()
    try:
        backend = argilla_env.backend(real_workspace)
        report = sync.push(real_workspace.ledger, backend, asked_tasks(real_workspace.ledger), iteration=1)
        secrets = real_workspace.root / SECRETS_FILE
        assert stat.S_IMODE(os.stat(secrets).st_mode) == 0o600
        secret = str(argilla_env._secret())
        assert secret and secret in secrets.read_text()
        argilla_env.annotate(backend, report.mapping[ids[1]], "tie", annotator=2)
        wait_for(lambda: argilla_env._seen_ids(), what="a real delivery")
        # A correctly signed delivery of our own (another dataset's response): accepted once, then a replay.
        body = json.dumps({"type": "response.created", "version": 1, "data": {
            "id": str(uuid.uuid4()), "status": "submitted", "values": {}, "user": {"id": str(uuid.uuid4())},
            "record": {"id": str(uuid.uuid4()), "dataset": {"id": str(uuid.uuid4())}},
            "updated_at": "2026-01-01T00:00:00"}}).encode()
        msg_id, now = f"msg_{uuid.uuid4().hex}", dt.datetime.now(tz=dt.timezone.utc)
        headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
                   "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode())}
        assert httpx.post(url, content=body, headers=headers).status_code == 200
        assert httpx.post(url, content=body, headers=headers).status_code == 401  # replay
        assert httpx.post(url, content=body, headers={**headers, "webhook-id": "msg_other"}).status_code == 401
        assert httpx.post(url, content=body).status_code == 401  # unsigned
        for forged in argilla_env.forged_deliveries(body):
            assert httpx.post(url, content=body, headers=forged).status_code == 401, forged
    finally:
        receiver.stop()
