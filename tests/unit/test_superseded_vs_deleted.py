"""Labels never come back from deletion (issue 23): "superseded" (an annotator's newer answer
replaced this one) is tracked apart from "deleted" (the platform removed it), so a platform
deletion is always recorded and a stale re-delivery cannot revive it; deletions are ordered
on the platform's clock where it gives one; one vote per annotator per platform identity;
ledgers of schema v1 migrate."""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa

from rlthf_plugin.backends.base import HumanLabel
from rlthf_plugin.loop.sync import store_labels

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
LS = "label-studio"


def _pair(workspace, tmp_path) -> str:
    from rlthf_plugin.io.importer import import_files

    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"prompt": "p", "response_a": "x", "response_b": "y"}) + "\n", encoding="utf-8")
    import_files(workspace.ledger, [str(f)])
    return workspace.ledger.pair_ids()[0]


def _row(ledger, ext: str, platform: str = LS) -> tuple[bool, bool]:
    from rlthf_plugin.store import schema as S

    t = S.human_labels
    with ledger.engine.connect() as conn:
        r = conn.execute(sa.select(t.c.deleted, t.c.superseded)
                         .where(t.c.platform == platform, t.c.external_id == ext)).one()
    return bool(r.deleted), bool(r.superseded)


def _ls_deletion(ext: str) -> HumanLabel:
    """What Label Studio's ANNOTATIONS_DELETED becomes: no pair id, no time."""
    from rlthf_plugin.backends.label_studio_events import event_labels

    body = json.dumps({"action": "ANNOTATIONS_DELETED", "annotations": [{"id": int(ext)}]}).encode()
    (lab,) = event_labels(body, lambda pid, a: None)
    return lab


def test_a_superseded_label_deleted_on_the_platform_is_recorded_deleted(workspace, tmp_path):
    pid = _pair(workspace, tmp_path)
    store_labels(workspace.ledger, [HumanLabel(pid, "A", "ann", LS, "11", labeled_at=T0),                   # project 1
                                    HumanLabel(pid, "B", "ann", LS, "97", labeled_at=T0 + dt.timedelta(hours=1))])
    assert _row(workspace.ledger, "11") == (False, True)  # superseded, not deleted
    assert workspace.ledger.mark_deleted(LS, ["11"]) == 1  # today's code skipped it (already "deleted")
    assert _row(workspace.ledger, "11") == (True, True)


def test_a_stale_redelivery_never_revives_a_platform_deletion(workspace, tmp_path):
    pid = _pair(workspace, tmp_path)
    first = HumanLabel(pid, "A", "ann", LS, "11", labeled_at=T0)
    store_labels(workspace.ledger, [first, HumanLabel(pid, "B", "ann", LS, "97", labeled_at=T0 + dt.timedelta(hours=1))])
    store_labels(workspace.ledger, [_ls_deletion("11")])
    store_labels(workspace.ledger, [_ls_deletion("97")])
    assert pid not in workspace.ledger.human_votes()
    store_labels(workspace.ledger, [first])  # a late retry of project 1's creation, original labeled_at
    assert _row(workspace.ledger, "11")[0] is True
    assert pid not in workspace.ledger.human_votes()


def test_deleting_the_newest_answer_brings_back_the_superseded_one(workspace, tmp_path):
    pid = _pair(workspace, tmp_path)
    store_labels(workspace.ledger, [HumanLabel(pid, "A", "ann", LS, "11", labeled_at=T0),
                                    HumanLabel(pid, "B", "ann", LS, "97", labeled_at=T0 + dt.timedelta(hours=1))])
    assert workspace.ledger.human_votes()[pid] == [("ann", "B")]
    store_labels(workspace.ledger, [_ls_deletion("97")])
    assert workspace.ledger.human_votes()[pid] == [("ann", "A")]  # still on the platform in project 1


def test_a_deletion_without_a_platform_time_wins_over_a_platform_clock_ahead(workspace, tmp_path):
    """Label Studio's clock ahead of the receiver's: the label's updated_at is later than the
    receiver's now. The deletion is ordered after it, not compared across clocks."""
    pid = _pair(workspace, tmp_path)
    ahead = dt.datetime.now(UTC) + dt.timedelta(hours=2)
    version = HumanLabel(pid, "A", "ann", LS, "5", labeled_at=ahead)
    store_labels(workspace.ledger, [version])
    store_labels(workspace.ledger, [_ls_deletion("5")])
    assert _row(workspace.ledger, "5")[0] is True
    store_labels(workspace.ledger, [version])  # the same version again (a pull racing the deletion)
    assert _row(workspace.ledger, "5")[0] is True and pid not in workspace.ledger.human_votes()


def test_an_argilla_deletion_is_on_argillas_clock(workspace, tmp_path):
    """response.deleted keeps the response's own updated_at (Argilla's clock), so it is
    recorded even when Argilla's clock is ahead of the receiver's."""
    from standardwebhooks import Webhook

    from rlthf_plugin.backends.argilla import ArgillaBackend
    from rlthf_plugin.backends.argilla_records import DEFAULT_ANSWER, LABEL_QUESTION, LABEL_VALUES

    secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"
    b = ArgillaBackend(url="http://127.0.0.1:1", api_key="k", dataset="d", webhook_secret=secret)
    b.dataset = lambda: type("D", (), {"id": "ds-1"})()  # what parse_webhook reads of the dataset
    b._answer = DEFAULT_ANSWER
    pid = _pair(workspace, tmp_path)
    ahead = (dt.datetime.now(UTC) + dt.timedelta(hours=2)).replace(tzinfo=None).isoformat()

    def event(kind: str) -> list[HumanLabel]:
        body = json.dumps({"type": kind, "data": {
            "id": "r-1", "status": "submitted", "updated_at": ahead, "user": {"id": "u1", "username": "ann"},
            "values": {LABEL_QUESTION: {"value": LABEL_VALUES["A"]}}, "record": {"external_id": pid, "dataset": {"id": "ds-1"}}}})
        when = dt.datetime.now(UTC)
        headers = {"webhook-id": f"m-{kind}", "webhook-timestamp": str(int(when.timestamp())),
                   "webhook-signature": Webhook(secret).sign(f"m-{kind}", when, body)}
        return b.parse_webhook(headers, body.encode())

    created = event("response.created")
    store_labels(workspace.ledger, created)
    assert _row(workspace.ledger, "r-1", "argilla") == (False, False)
    store_labels(workspace.ledger, event("response.deleted"))
    assert _row(workspace.ledger, "r-1", "argilla")[0] is True
    store_labels(workspace.ledger, created)  # a retry of the creation
    assert _row(workspace.ledger, "r-1", "argilla")[0] is True


def test_one_vote_per_annotator_is_per_platform_identity(workspace, tmp_path):
    """"ann" on Label Studio and "ann" on Argilla are two people as far as the ledger knows."""
    pid = _pair(workspace, tmp_path)
    store_labels(workspace.ledger, [HumanLabel(pid, "A", "ann", LS, "11", labeled_at=T0),
                                    HumanLabel(pid, "B", "ann", "argilla", "r-9", labeled_at=T0 + dt.timedelta(hours=1))])
    assert sorted(workspace.ledger.human_votes()[pid]) == [("ann", "A"), ("ann", "B")]


def make_v1(ledger) -> None:
    """Turn a fresh ledger into schema v1: no ``superseded`` column, version 1."""
    from rlthf_plugin.store import schema as S

    with ledger.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE human_labels DROP COLUMN superseded"))
        conn.execute(S.schema_version.delete().where(S.schema_version.c.version > 1))


def v1_rows(ledger, pid: str) -> None:
    """What v1 stored for: ann's answer in project 1 superseded by project 2 (marked deleted),
    and other's label deleted on the platform."""
    now = dt.datetime(2026, 5, 2)
    rows = [(pid, "A", "ann", "11", True, T0), (pid, "B", "ann", "97", False, T0 + dt.timedelta(hours=1)),
            (pid, "A", "other", "12", True, T0)]
    with ledger.engine.begin() as conn:
        for p, label, who, ext, deleted, at in rows:
            conn.execute(sa.text("INSERT INTO human_labels (pair_id, label, annotator, platform, external_id, deleted, "
                                 "labeled_at, stored_at) VALUES (:p, :l, :w, :pl, :e, :d, :at, :now)"),
                         {"p": p, "l": label, "w": who, "pl": LS, "e": ext, "d": deleted,
                          "at": at.replace(tzinfo=None), "now": now})


def check_migrated(ledger, pid: str) -> None:
    from rlthf_plugin.store import schema as S

    with ledger.engine.connect() as conn:
        assert ledger.version(conn) == S.SCHEMA_VERSION == 2
    assert _row(ledger, "11") == (True, True)    # superseded, and stays deleted (cannot tell which)
    assert _row(ledger, "97") == (False, False)
    assert _row(ledger, "12") == (True, False)   # a platform deletion
    assert ledger.human_votes()[pid] == [("ann", "B")]


def test_a_v1_ledger_migrates(workspace, tmp_path):
    from rlthf_plugin.store.ledger import Ledger

    pid = _pair(workspace, tmp_path)
    url = str(workspace.ledger.engine.url)
    make_v1(workspace.ledger)
    v1_rows(workspace.ledger, pid)
    again = Ledger.open(url)
    try:
        check_migrated(again, pid)
    finally:
        again.close()
