"""The workspace's vector files (store/vector_files.py): one mapped matrix per embedder by
text id, atomic appends (a writer killed mid-append leaves the store readable and the next
run completes it), several processes appending at once, and the move of the ledger's
cached vectors into the files on first use."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from rlthf_plugin.models.vectors import StoredTextTable, TextTable
from rlthf_plugin.pairs import text_hash
from rlthf_plugin.store import embeddings as embeddings_db
from rlthf_plugin.store.vector_files import VectorFiles, folder_name
from rlthf_plugin.workspace import Workspace

MODEL = "test:seeded:8"


def vec(h: str, dim: int = 8) -> np.ndarray:
    """The vector a text id stands for (so any row can be checked against its key)."""
    return np.random.default_rng(int(h[:12], 16)).normal(size=dim).astype(np.float32)


def ids(n: int, start: int = 0) -> list[str]:
    return [text_hash(f"text {i}") for i in range(start, start + n)]


def check(store: VectorFiles, hashes: list[str]) -> None:
    """Every stored row holds its key's vector."""
    mv = store.open_model(MODEL)
    keys = mv.keys()
    assert len(set(keys.tolist())) == len(keys) == mv.rows  # no key twice
    for k, row in zip(keys, mv.matrix):
        assert np.array_equal(row, vec(k.hex()))


def test_append_read_as_one_array_and_reopen(tmp_path):
    store = VectorFiles(tmp_path / "v")
    hs = ids(50)
    store.save_vectors(MODEL, hs[:30], np.stack([vec(h) for h in hs[:30]]))
    store.save_vectors(MODEL, hs[20:], np.stack([vec(h) for h in hs[20:]]))  # 10 already there: kept
    rows = store.rows_of(MODEL, hs + ids(3, 1000))
    assert (rows[:50] >= 0).all() and (rows[50:] == -1).all()
    assert sorted(rows[:50].tolist()) == list(range(50))
    assert np.array_equal(store.matrix(MODEL)[rows[7]], vec(hs[7]))
    again = VectorFiles(tmp_path / "v")  # another process's view
    got = again.load_vectors(MODEL, hs[::7])
    assert set(got) == set(hs[::7]) and all(np.array_equal(v, vec(h)) for h, v in got.items())
    assert isinstance(again.matrix(MODEL), np.memmap)
    with pytest.raises(ValueError, match="dimension 4"):
        again.save_vectors(MODEL, ids(1, 500), np.zeros((1, 4), dtype=np.float32))
    check(again, hs)


def test_a_partial_append_past_the_manifest_is_ignored_then_overwritten(tmp_path):
    """What a writer killed between its data and its manifest leaves."""
    store = VectorFiles(tmp_path / "v")
    hs = ids(10)
    store.save_vectors(MODEL, hs, np.stack([vec(h) for h in hs]))
    folder = tmp_path / "v" / folder_name(MODEL)
    with open(folder / "vectors.f32", "ab") as f:
        f.write(b"\xff" * 4 * 8 * 3 + b"\x01")  # 3.1 garbage rows
    with open(folder / "keys.bin", "ab") as f:
        f.write(b"\xee" * 16 * 2)
    fresh = VectorFiles(tmp_path / "v")
    assert fresh.open_model(MODEL).rows == 10
    more = ids(5, 10)
    fresh.save_vectors(MODEL, more, np.stack([vec(h) for h in more]))
    assert (folder / "vectors.f32").stat().st_size == 15 * 8 * 4
    check(VectorFiles(tmp_path / "v"), hs + more)


WRITER = textwrap.dedent("""
    import sys, numpy as np
    from rlthf_plugin.pairs import text_hash
    from rlthf_plugin.store.vector_files import VectorFiles
    sys.path.insert(0, sys.argv[3])
    from test_vector_files import vec, MODEL
    store = VectorFiles(sys.argv[1]); start = int(sys.argv[2])
    for k in range(10**6):
        hs = [text_hash(f"text {i}") for i in range(start + k * 2000, start + (k + 1) * 2000)]
        store.save_vectors(MODEL, hs, np.stack([vec(h) for h in hs]))
        print(k, flush=True)
""")


def writer(root, start: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(start), os.path.dirname(__file__)],
                            stdout=subprocess.PIPE, text=True, env={**os.environ})


def test_a_writer_killed_mid_append_leaves_the_store_readable_and_the_next_run_completes_it(tmp_path):
    root = tmp_path / "v"
    for delay in (0.0, 0.013, 0.031):  # SIGKILL at several points of an append
        proc = writer(root, 0)
        proc.stdout.readline()  # one append done
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        store = VectorFiles(root)
        rows = store.open_model(MODEL).rows
        assert rows >= 2000 and rows % 2000 == 0  # whole appends only
        check(store, [])
    # the next run completes it: every text of the first rows present, once
    store = VectorFiles(root)
    hs = ids(rows + 3000)
    missing = [h for h, r in zip(hs, store.rows_of(MODEL, hs)) if r < 0]
    store.save_vectors(MODEL, missing, np.stack([vec(h) for h in missing]))
    assert (VectorFiles(root).rows_of(MODEL, hs) >= 0).all()
    check(VectorFiles(root), hs)


def test_processes_appending_at_once_do_not_clash(tmp_path):
    root = tmp_path / "v"
    procs = [writer(root, 0), writer(root, 1000)]  # overlapping keys
    for p in procs:
        for _ in range(3):
            p.stdout.readline()
    for p in procs:
        p.send_signal(signal.SIGKILL)
        p.wait()
    store = VectorFiles(root)
    assert store.open_model(MODEL).rows >= 7000
    check(store, [])


def test_workspace_moves_the_ledgers_cached_vectors_into_the_files_on_first_use(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    hs = ids(40)
    embeddings_db.save_vectors(ws.ledger, MODEL, hs, np.stack([vec(h) for h in hs]))  # the old table
    assert embeddings_db.has_vectors(ws.ledger, MODEL)
    got = ws.ledger.load_vectors(MODEL, hs)  # first use
    assert len(got) == 40 and all(np.array_equal(v, vec(h)) for h, v in got.items())
    assert not embeddings_db.has_vectors(ws.ledger, MODEL)
    manifest = json.loads((ws.root / "vectors" / folder_name(MODEL) / "manifest.json").read_text())
    assert manifest["rows"] == 40 and manifest["migrated_from_ledger"] is True
    ws.ledger.save_vectors(MODEL, ids(5, 40), np.stack([vec(h) for h in ids(5, 40)]))
    assert not embeddings_db.has_vectors(ws.ledger, MODEL)  # new vectors go to the files
    ws.close()
    with Workspace.open(tmp_path / "ws") as again:
        assert len(again.ledger.load_vectors(MODEL, ids(45))) == 45


class Seeded:
    """An embedder whose vector is its text's seeded vector; counts what it encodes."""

    name = MODEL

    def __init__(self):
        self.seen: list[str] = []

    def encode(self, texts):
        self.seen += list(texts)
        return np.stack([vec(text_hash(t)) for t in texts])


def test_stored_text_table_maps_the_store_and_embeds_only_what_it_lacks(tmp_path):
    store = VectorFiles(tmp_path / "v")
    texts = [f"text {i}" for i in range(30)]
    store.save_vectors(MODEL, [text_hash(t) for t in texts[:20]], np.stack([vec(text_hash(t)) for t in texts[:20]]))
    emb = Seeded()
    table = TextTable.of(emb, store)
    assert isinstance(table, StoredTextTable)
    rows = table.index(texts + texts[:5])
    assert sorted(emb.seen) == sorted(texts[20:])
    assert np.array_equal(table.matrix[rows], np.stack([vec(text_hash(t)) for t in texts + texts[:5]]))
    assert np.allclose(table.lengths[rows], np.log1p([len(t) for t in texts + texts[:5]]))
    table.release()
    assert np.array_equal(table.matrix[rows[3]], vec(text_hash(texts[3])))  # read again after the release


def test_gather_reads_the_rows_asked_for_in_their_order(tmp_path):
    store = VectorFiles(tmp_path / "v")
    hs = ids(300)
    store.save_vectors(MODEL, hs, np.stack([vec(h) for h in hs]))
    rows = np.array([5, 3, 4, 299, 0, 3, 150, 151, 152, 5])  # runs, duplicates, any order
    got = store.gather(MODEL, rows)
    assert got.dtype == np.float32 and np.array_equal(got, np.asarray(store.matrix(MODEL))[rows])
    assert store.gather(MODEL, np.zeros(0, dtype=np.int64)).shape == (0, 8)
    with pytest.raises(IndexError):
        store.gather(MODEL, np.array([300]))


def test_a_forgotten_index_is_read_again_when_rows_are_looked_up(tmp_path):
    import numpy as np

    from rlthf_plugin.store.vector_files import VectorFiles, keys_of

    store = VectorFiles(tmp_path)
    hashes = [f"{i:032x}" for i in range(50)]
    store.save_vectors("m", hashes[:30], np.eye(30, 4, dtype=np.float32))
    store.forget_index("m")
    np.testing.assert_array_equal(store.rows_of("m", hashes[25:35]), [25, 26, 27, 28, 29, -1, -1, -1, -1, -1])
    store.forget_index("m")
    store.save_vectors("m", hashes[20:50], np.ones((30, 4), dtype=np.float32))  # appends the 20 new ones
    np.testing.assert_array_equal(store.rows_of("m", hashes[::10]), [0, 10, 20, 30, 40])
    assert store.open_model("m").rows == 50 and len(keys_of(hashes)) == 50
