"""Push reads its tasks a page at a time: ids are held, pair texts one page at once."""

import pytest

from rlthf_plugin.backends.base import Task, by_priority
from rlthf_plugin.batching import batched
from rlthf_plugin.backends.local import LocalBackend
from rlthf_plugin.data import DEV_PAIRS
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.loop import sync, tasks as tasks_mod
from rlthf_plugin.loop.tasks import TaskList, all_tasks, asked_tasks, task_ids
from rlthf_plugin.pairs import PreferencePair
from rlthf_plugin.store import iterations as iterations_db
from rlthf_plugin.store.votes import audited_labels, iteration_primary
from tests.integration.conftest import add_asked_iteration


@pytest.fixture
def asked(workspace, monkeypatch):
    """A workspace of the shipped pairs with 300 asked, tasks built 40 at a time, and the
    sizes of every pair read (``reads``)."""
    import_files(workspace.ledger, [str(DEV_PAIRS)], skip_invalid=True)
    add_asked_iteration(workspace.ledger, 300, seed=5)
    monkeypatch.setattr(tasks_mod, "PAGE", 40)
    reads: list[int] = []
    get_pairs = workspace.ledger.get_pairs

    def counted(ids=None):
        got = get_pairs(ids)
        reads.append(len(got))
        return got

    monkeypatch.setattr(workspace.ledger, "get_pairs", counted)
    return workspace, reads


def test_asked_tasks_are_the_decisions_highest_priority_first_read_a_page_at_a_time(asked):
    ws, reads = asked
    tasks = asked_tasks(ws.ledger)
    assert isinstance(tasks, TaskList) and len(tasks) == 300 and reads == []  # nothing read yet
    got = list(tasks)
    assert reads and max(reads) == 40 and sum(reads) == 300  # one page of texts at a time
    rows = iterations_db.asked_decisions(ws.ledger, 1, task_ids(tasks))
    assert [t.pair.id for t in got] == sorted(rows, key=lambda pid: (-rows[pid]["priority"], pid))
    ai = audited_labels(ws.ledger, iteration_primary(ws.ledger, 1), list(rows)).labels
    for t in got:
        row = rows[t.pair.id]
        assert (t.priority, t.margin, dict(t.reason), t.iteration) == (row["priority"], row["margin"], row["reason"], 1)
        assert t.ai_label == ai.get(t.pair.id) and t.pair.prompt
    assert any(t.ai_label for t in got)
    assert tasks[0] == got[0] and tasks[5:8] == got[5:8]  # an index or a slice reads just those


def test_all_tasks_every_pair_in_id_order(asked):
    ws, reads = asked
    tasks = all_tasks(ws.ledger, limit=90)
    assert [t.pair.id for t in tasks] == ws.ledger.pair_ids()[:90] and max(reads) == 40
    assert all(t.priority == 0.0 and t.reason == {"region": "all"} for t in tasks)


def test_sync_push_checks_ids_first_then_sends_page_by_page(asked):
    ws, reads = asked
    backend = LocalBackend()
    report = sync.push(ws.ledger, backend, asked_tasks(ws.ledger), iteration=1)
    assert report.created == 300 and max(reads) == 40 and sum(reads) == 300  # read once, by pages
    assert ws.ledger.pushed(backend.platform, backend.target) == report.mapping


def _task(pid: str, priority: float) -> Task:
    return Task(PreferencePair(pid, "q", "a", "b"), priority=priority)


def test_a_list_is_sorted_highest_priority_first_an_ordered_task_list_is_left_as_it_comes():
    tasks = [_task("b", 1), _task("c", 3), _task("a", 1)]
    assert [t.pair.id for t in by_priority(tasks)] == ["c", "a", "b"]
    lazy = TaskList(["x", "y"], lambda ids: [_task(i, 0) for i in ids])
    assert by_priority(lazy) is lazy


def test_batched_holds_one_batch_of_any_iterable():
    assert list(batched(iter(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(batched([], 3)) == []
