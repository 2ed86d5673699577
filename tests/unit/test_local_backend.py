import json

import pytest

from rlthf_plugin.backends import LabelingBackend, Task
from rlthf_plugin.backends.local import LocalBackend
from rlthf_plugin.errors import BackendError, WebhookAuthError
from rlthf_plugin.pairs import PreferencePair


def _task(i: int) -> Task:
    return Task(pair=PreferencePair(id=f"p{i}", prompt=f"q{i}", response_a=f"a{i}", response_b=f"b{i}"))


def test_push_is_idempotent_and_pull_is_incremental():
    backend = LocalBackend()
    assert isinstance(backend, LabelingBackend)
    tasks = [_task(i) for i in range(3)]
    first = backend.push(tasks, known={})
    again = backend.push(tasks, known=first.mapping)
    assert (first.created, first.existing) == (3, 0) and (again.created, again.existing) == (0, 3)
    assert again.mapping == first.mapping and len(set(first.mapping.values())) == 3

    pid = tasks[0].pair.id
    backend.answer(pid, "A", annotator="ann")
    got = backend.pull()
    assert [(x.pair_id, x.label, x.platform) for x in got.labels] == [(pid, "A", "local")]
    assert backend.pull(cursor=got.cursor).labels == []
    with pytest.raises(BackendError):
        backend.answer("never-pushed", "A")


def test_webhook_needs_the_secret():
    backend = LocalBackend(secret="s3")
    pid = _task(0).pair.id
    backend.push([_task(0)], known={})
    body = json.dumps({"pair_id": pid, "label": "B", "annotator": "x"}).encode()
    with pytest.raises(WebhookAuthError):
        backend.parse_webhook({}, body)
    labels = backend.parse_webhook({"X-Rlthf-Secret": "s3"}, body)
    assert [(x.label, x.annotator) for x in labels] == [("B", "x")]
    with pytest.raises(BackendError):
        backend.parse_webhook({"X-Rlthf-Secret": "s3"}, b"[]")
