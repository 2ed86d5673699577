"""Import in chunks: bounded memory, the same result as one pass, still all or nothing."""

from __future__ import annotations

import json

import pytest

from rlthf_plugin.data import DEV_PAIRS
from rlthf_plugin.errors import InvalidInputError
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.workspace import Workspace


def counts(ledger) -> dict:
    s = ledger.status()
    return {k: s[k] for k in ("pairs", "responses", "ai_label_votes", "human_label_votes", "ai_vote_conflicts")}


@pytest.fixture
def two_workspaces(tmp_path):
    a, b = Workspace.init(tmp_path / "a"), Workspace.init(tmp_path / "b")
    yield a, b
    a.close(), b.close()


def test_small_chunks_give_the_same_ledger_as_one_chunk(two_workspaces):
    one, many = two_workspaces
    big = import_files(one.ledger, [str(DEV_PAIRS)], skip_invalid=True, chunk=100_000)
    small = import_files(many.ledger, [str(DEV_PAIRS)], skip_invalid=True, chunk=7)
    assert counts(one.ledger) == counts(many.ledger)
    assert (big.rows, big.new_pairs, len(big.skipped)) == (small.rows, small.new_pairs, len(small.skipped))
    assert one.ledger.get_pairs() == many.ledger.get_pairs()


def test_judge_file_before_its_pairs_is_held_back_and_written(two_workspaces, shared_dev):
    usual, reversed_ = two_workspaces
    pairs, judge = str(shared_dev / "testset-v1.json"), str(shared_dev / "gpt-3.5-turbo-testset-v1.json")
    import_files(usual.ledger, [pairs, judge], skip_invalid=True)
    report = import_files(reversed_.ledger, [judge, pairs], skip_invalid=True, chunk=50)
    assert report.new_ai_labels > 900
    assert counts(usual.ledger) == counts(reversed_.ledger)


def test_bad_row_after_many_chunks_rolls_everything_back(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    rows = [{"prompt": f"p{i}", "response_a": f"a{i}", "response_b": f"b{i}", "ai_label": "A"} for i in range(40)]
    rows.append({"prompt": "p", "response_a": "same", "response_b": "same", "ai_label": "A"})
    rows.append({"ref": "nowhere", "idx": 7})
    f = tmp_path / "rows.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(InvalidInputError) as err:
        import_files(ws.ledger, [str(f)], chunk=3)
    assert [p.line for p in err.value.problems][:1] == [41]
    assert counts(ws.ledger)["pairs"] == 0  # 13 chunks were inserted, then rolled back
    ws.close()


def test_missing_pair_of_a_judge_row_is_reported(tmp_path, shared_dev):
    ws = Workspace.init(tmp_path / "ws")
    judge = str(shared_dev / "gpt-3.5-turbo-testset-v1.json")
    with pytest.raises(InvalidInputError, match="import the pairs first"):
        import_files(ws.ledger, [judge], chunk=100)
    assert counts(ws.ledger)["ai_label_votes"] == 0
    skipped = import_files(ws.ledger, [judge], chunk=100, skip_invalid=True)
    assert skipped.rows == 0 and len(skipped.skipped) >= 999 and skipped.new_ai_labels == 0
    ws.close()


def test_bulk_insert_stores_what_insert_ignore_stores(tmp_path):
    import datetime as dt

    import sqlalchemy as sa

    from rlthf_plugin.store import schema as S
    from rlthf_plugin.store._sql import insert_ignore, insert_ignore_bulk

    stamp = dt.datetime(2024, 5, 6, 7, 8, 9, 123456)
    pairs = [{"id": f"p{i}", "prompt_id": "q", "prompt": "é \"x\"", "response_a": f"a{i}", "response_b": "b",
              "source": "s", "metadata": {"k": [i, None]} if i % 2 else {}, "origin": "import", "created_at": stamp}
             for i in range(7)]
    humans = [{"pair_id": f"p{i}", "label": "A", "annotator": "h", "platform": "import", "external_id": f"e{i}",
               "comment": None, "iteration": None, "deleted": i == 3, "labeled_at": stamp,
               "stored_at": stamp + dt.timedelta(seconds=i)} for i in range(7)]
    stored = []
    for insert in (insert_ignore, insert_ignore_bulk):
        engine = sa.create_engine(f"sqlite:///{tmp_path / insert.__name__}.db")
        S.metadata.create_all(engine)
        with engine.begin() as conn:
            insert(conn, S.pairs, pairs)
            insert(conn, S.human_labels, humans)
            insert(conn, S.human_labels, humans[:2])  # existing keys: ignored
            stored.append([conn.exec_driver_sql(f"SELECT * FROM {t}").fetchall() for t in ("pairs", "human_labels")])
            with pytest.raises(ValueError, match="source"):  # a column with a default left out
                insert_ignore_bulk(conn, S.pairs, [{k: v for k, v in pairs[0].items() if k != "source"}])
        engine.dispose()
    assert stored[0] == stored[1]
    assert len(stored[1][1]) == 7
