"""The Argilla adapter's translation and webhook checks that need no server."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from standardwebhooks import Webhook

from rlthf_plugin.backends.argilla import Answer, ArgillaBackend, record_metadata, response_labels
from rlthf_plugin.backends.mapping import parse_map, ranking_options
from rlthf_plugin.backends.base import Task
from rlthf_plugin.errors import ConfigError, WebhookAuthError
from rlthf_plugin.pairs import PreferencePair

SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"


def backend() -> ArgillaBackend:
    return ArgillaBackend(url="http://127.0.0.1:1", api_key="k", dataset="d", webhook_secret=SECRET)


def signed(body: bytes, msg_id: str = "msg_1", *, secret: str = SECRET, age: float = 0.0) -> dict:
    when = dt.datetime.now(tz=dt.timezone.utc) - dt.timedelta(seconds=age)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, when, body.decode())}


def test_record_metadata_keeps_ids_and_the_plain_reason_only():
    """Annotators can read record metadata through the API: no margin, P(wrong) or signals."""
    task = Task(PreferencePair.create("p", "a", "b"), priority=3,
                reason={"region": "ask", "rank": 2, "margin": -0.123456, "p_wrong": 0.7, "signals": {"x": 1}},
                iteration=4, margin=-0.25)
    assert record_metadata(task) == {"priority": 3.0, "iteration": 4,
                                     "why_asked": "Asked because our reward model is unsure which answer is better"}
    assert record_metadata(Task(PreferencePair.create("p", "a", "b"))) == {"priority": 0.0}


def test_response_labels_map_values_users_and_withdrawals():
    record = {"external_id": "pair1"}
    responses = [
        {"id": "r1", "status": "submitted", "user_id": "u1", "updated_at": "2026-01-02T00:00:00",
         "values": {"label": {"value": "b"}, "comment": {"value": "clearer"}}},
        {"id": "r2", "status": "discarded", "user_id": "u2", "updated_at": "2026-01-03T00:00:00", "values": None},
        {"id": "r3", "status": "submitted", "user_id": "u3", "updated_at": "2026-01-01T00:00:00",
         "values": {"label": {"value": "tie"}}},
    ]
    labels = response_labels(record, responses, {"u1": "ann1"}, since="2026-01-02T00:00:00")
    assert [(x.external_id, x.label, x.annotator, x.deleted, x.comment) for x in labels] == [
        ("r1", "B", "ann1", False, "clearer"), ("r2", "skip", "u2", False, None)]  # a discard is a skip


def test_missing_settings_name_the_option():
    with pytest.raises(ConfigError, match="api_key"):
        ArgillaBackend(url="http://x", api_key="", dataset="d")


def test_unsigned_forged_and_stale_deliveries_are_refused():
    b = backend()
    body = json.dumps({"type": "dataset.created", "data": {}}).encode()
    with pytest.raises(WebhookAuthError, match="unsigned"):
        b.parse_webhook({}, body)
    with pytest.raises(WebhookAuthError, match="signature"):
        b.parse_webhook(signed(body, secret="d3Jvbmctd3Jvbmctd3Jvbmc="), body)
    with pytest.raises(WebhookAuthError):
        b.parse_webhook(signed(body, age=3600), body)
    with pytest.raises(WebhookAuthError):
        b.parse_webhook(signed(body), body + b" ")
    assert b.parse_webhook(signed(body, "msg_ok"), body) == []  # an event the adapter does not map
    assert b.delivery_id(signed(body, "msg_ok")) == "argilla:msg_ok"


@pytest.mark.parametrize("body", [b"[]", b'"x"', b"{not json", b'{"type": "response.created"}',
                                  b'{"type": "response.created", "data": []}',
                                  b'{"type": "response.updated", "data": {"record": 3}}'])
def test_signed_bodies_of_the_wrong_shape_are_bad_requests(body):
    from rlthf_plugin.errors import BadWebhookError

    with pytest.raises(BadWebhookError) as e:
        backend().parse_webhook(signed(body), body)
    assert "\n" not in e.value.message


def test_a_delivery_is_remembered_with_its_labels_only(workspace, tmp_path, monkeypatch):
    """Replay protection in the labels' transaction: a failed store leaves the id unseen."""
    import sqlalchemy as sa

    from rlthf_plugin.backends.base import HumanLabel
    from rlthf_plugin.io.importer import import_files
    from rlthf_plugin.loop.sync import store_labels
    from rlthf_plugin.store.ledger import ReplayedDelivery

    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "p", "response_a": "x", "response_b": "y"}\n')
    import_files(workspace.ledger, [str(f)])
    (pid,) = workspace.ledger.pair_ids()
    label = HumanLabel(pid, "A", "ann", "argilla", "r1")
    real = type(workspace.ledger).store_human_labels

    def broken(self, rows, **kw):
        from rlthf_plugin.store.sync_state import remember_delivery

        with self.engine.begin() as conn:
            remember_delivery(conn, kw["delivery"])
            raise sa.exc.OperationalError("INSERT", {}, Exception("disk full"))

    monkeypatch.setattr(type(workspace.ledger), "store_human_labels", broken)
    with pytest.raises(sa.exc.OperationalError):
        store_labels(workspace.ledger, [label], delivery="argilla:msg_1")
    assert not workspace.ledger.delivery_seen("argilla:msg_1")
    monkeypatch.setattr(type(workspace.ledger), "store_human_labels", real)
    assert store_labels(workspace.ledger, [label], delivery="argilla:msg_1") == 1
    with pytest.raises(ReplayedDelivery):
        store_labels(workspace.ledger, [label], delivery="argilla:msg_1")


def test_a_discard_is_a_skip_whatever_its_values():
    """Issue 13, fault 7: a discard completes the task but is never a preference."""
    response = {"id": "r9", "status": "discarded", "user_id": "u1", "updated_at": "2026-01-02T00:00:00",
                "values": {"label": {"value": "a"}}}
    (label,) = response_labels({"external_id": "pair1"}, [response], {"u1": "ann1"})
    assert (label.label, label.deleted) == ("skip", False)


def test_ranking_and_rating_answers_read_as_a_b_tie():
    fm = parse_map("prompt=instruction,response_a=response1,response_b=response2,label=ranking")
    ranking = Answer("ranking", "ranking", ranking_options(["response2", "response1"], fm))
    assert ranking.options == ("response1", "response2")  # named like the fields: order does not matter
    assert ranking.label([{"value": "response1", "rank": 2}, {"value": "response2", "rank": 1}]) == "B"
    assert ranking.label([{"value": "response1", "rank": 1}, {"value": "response2", "rank": 1}]) == "tie"
    assert ranking.label(ranking.value("A")) == "A" and ranking.label(ranking.value("B")) == "B"
    assert ranking.value("tie") is None  # a suggestion cannot rank two options equal
    rating = Answer("rating", "rating", (1, 2, 3, 4, 5))
    assert [rating.label(v) for v in (1, 2, 3, 4, 5)] == ["A", "A", "tie", "B", "B"]
    assert (rating.value("A"), rating.value("B"), rating.value("tie")) == (1, 5, 3)
    even = Answer("rating", "rating", (1, 2, 3, 4))
    assert [even.label(v) for v in (1, 2, 3, 4)] == ["A", "A", "B", "B"] and even.value("tie") is None
    record = {"external_id": "pair1"}
    response = {"id": "r1", "status": "submitted", "user_id": "u1", "updated_at": "2026-01-02T00:00:00",
                "values": {"rating": {"value": 4}}}
    [label] = response_labels(record, [response], {}, answer=rating)
    assert label.label == "B"
    with pytest.raises(ConfigError, match="unknown key 'answer'.*'prompt' has no name"):
        parse_map("answer=x,prompt=")
