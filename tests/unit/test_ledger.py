from rlthf_plugin.store import ledger as L
from rlthf_plugin.backends.base import HumanLabel
from rlthf_plugin.errors import WorkspaceError
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.loop.sync import store_labels


def test_schema_version_recorded_and_newer_refused(workspace):
    with workspace.ledger.engine.begin() as conn:
        assert workspace.ledger.version(conn) == L.SCHEMA_VERSION
        conn.execute(L.schema_version.insert().values(version=L.SCHEMA_VERSION + 1, applied_at=L.now()))
    try:
        workspace.ledger.migrate()
    except WorkspaceError as e:
        assert "newer" in str(e)
    else:
        raise AssertionError("a newer schema must be refused")


def test_store_labels_is_idempotent_and_updates(workspace, tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "p", "response_a": "x", "response_b": "y"}\n')
    import_files(workspace.ledger, [str(f)])
    (pid,) = workspace.ledger.pair_ids()
    lab = HumanLabel(pid, "A", "ann1", "label-studio", "ann-17")
    assert store_labels(workspace.ledger, [lab, lab]) == 1
    assert store_labels(workspace.ledger, [HumanLabel(pid, "B", "ann1", "label-studio", "ann-17")]) == 0
    assert workspace.ledger.human_votes()[pid] == [("ann1", "B")]
    store_labels(workspace.ledger, [HumanLabel(pid, "B", "ann1", "label-studio", "ann-17", deleted=True)])
    assert pid not in workspace.ledger.human_votes()
    # A label for a pair the ledger does not know is ignored.
    assert store_labels(workspace.ledger, [HumanLabel("0" * 32, "A", "x", "label-studio", "ann-18")]) == 0


def test_concurrent_stores_count_each_new_label_once(workspace, tmp_path):
    """Writers committing between another writer's statements must not inflate its count."""
    from concurrent.futures import ThreadPoolExecutor

    f = tmp_path / "p.jsonl"
    f.write_text("".join(f'{{"prompt": "p{i}", "response_a": "x", "response_b": "y"}}\n' for i in range(20)))
    import_files(workspace.ledger, [str(f)])
    ids = workspace.ledger.pair_ids()
    batches = [[HumanLabel(pid, "A", "ann", "label-studio", f"ann-{pid}")] for pid in ids] * 4
    with ThreadPoolExecutor(8) as pool:
        new = list(pool.map(lambda b: store_labels(workspace.ledger, b), batches))
    assert sum(new) == len(ids) == workspace.ledger.count(L.human_labels)
