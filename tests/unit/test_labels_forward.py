"""Labels only move forward (issue 13, fault 2): a stored label or deletion is replaced only
by one at least as new, whatever order deliveries, retries and pulls arrive in; adapters
hand over UTC timestamps."""

from __future__ import annotations

import datetime as dt
import json

from rlthf_plugin.backends.argilla import response_labels
from rlthf_plugin.backends.base import HumanLabel
from rlthf_plugin.backends.label_studio import LabelStudioBackend
from rlthf_plugin.loop.sync import store_labels

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _pair(workspace, tmp_path) -> str:
    from rlthf_plugin.io.importer import import_files

    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"prompt": "p", "response_a": "x", "response_b": "y"}) + "\n", encoding="utf-8")
    import_files(workspace.ledger, [str(f)])
    return workspace.ledger.pair_ids()[0]


def _stored(workspace, ext: str = "r1") -> tuple[str, bool]:
    import sqlalchemy as sa

    from rlthf_plugin.store import ledger as L

    with workspace.ledger.engine.connect() as conn:
        row = conn.execute(sa.select(L.human_labels.c.label, L.human_labels.c.deleted)
                           .where(L.human_labels.c.external_id == ext)).one()
    return row.label, row.deleted


def lab(pid, label, at, *, deleted=False, ext="r1", platform="argilla"):
    return HumanLabel(pid, label, "ann", platform, ext, labeled_at=at, deleted=deleted)


def test_an_older_delivery_never_overwrites_a_newer_label(workspace, tmp_path):
    pid = _pair(workspace, tmp_path)
    store_labels(workspace.ledger, [lab(pid, "B", T0 + dt.timedelta(minutes=5))])
    store_labels(workspace.ledger, [lab(pid, "A", T0)])  # a late retry of the first answer
    assert _stored(workspace) == ("B", False)
    store_labels(workspace.ledger, [lab(pid, "tie", T0 + dt.timedelta(minutes=5))])  # as new: replaces
    assert _stored(workspace) == ("tie", False)


def test_a_replayed_creation_does_not_undelete(workspace, tmp_path):
    pid = _pair(workspace, tmp_path)
    store_labels(workspace.ledger, [lab(pid, "A", T0)])
    store_labels(workspace.ledger, [lab(pid, "A", T0 + dt.timedelta(minutes=1), deleted=True)])
    store_labels(workspace.ledger, [lab(pid, "A", T0)])  # replay of the creation
    assert _stored(workspace) == ("A", True)
    store_labels(workspace.ledger, [lab(pid, "B", T0 + dt.timedelta(minutes=2))])  # a newer edit does
    assert _stored(workspace) == ("B", False)


def test_a_deletion_without_a_timestamp_applies_and_an_older_update_cannot_revive(workspace, tmp_path):
    """Label Studio's deletion event names only annotation ids: it applies as of now."""
    pid = _pair(workspace, tmp_path)
    store_labels(workspace.ledger, [lab(pid, "A", T0, platform="label-studio")])
    store_labels(workspace.ledger, [HumanLabel("", "skip", "", "label-studio", "r1", deleted=True)])
    assert _stored(workspace) == ("A", True)
    store_labels(workspace.ledger, [lab(pid, "A", T0, platform="label-studio")])
    assert _stored(workspace) == ("A", True)


def test_mixed_time_zones_compare_as_instants(workspace, tmp_path):
    pid = _pair(workspace, tmp_path)
    later_in_paris = dt.datetime(2026, 5, 1, 13, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))  # 11:30 UTC
    store_labels(workspace.ledger, [lab(pid, "B", T0)])  # 12:00 UTC
    store_labels(workspace.ledger, [lab(pid, "A", later_in_paris)])  # earlier in fact
    assert _stored(workspace) == ("B", False)


def test_argilla_timestamps_are_converted_to_utc_not_stripped():
    record = {"external_id": "p1"}
    response = {"id": "r1", "status": "submitted", "user_id": "u", "values": {"label": {"value": "a"}},
                "updated_at": "2026-05-01T14:00:00+02:00"}
    (label,) = response_labels(record, [response], {"u": "ann"})
    assert label.labeled_at == T0 and label.labeled_at.utcoffset() == dt.timedelta(0)


def test_label_studio_timestamps_are_utc():
    backend = LabelStudioBackend("http://127.0.0.1:1", "key")
    label = backend.to_label("p1", {"id": 3, "completed_by": {"email": "a@b"}, "updated_at": "2026-05-01T14:00:00+02:00",
                                    "result": [{"from_name": "preference", "value": {"choices": ["A"]}}]})
    assert label.labeled_at == T0 and label.labeled_at.utcoffset() == dt.timedelta(0)
