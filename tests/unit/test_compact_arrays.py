"""The compact per-pair arrays of a million-pair select (issue 22) give what the plain ones gave:
packed pair ids, int32 node codes, the audit region's pre-filter, decisions without per-pair
bounds, the signal table a block of rows at a time, and the pinned mapping threshold."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from rlthf_plugin import memory
from rlthf_plugin.selection import siblings, signals, trust
from rlthf_plugin.selection.flip_audit import audit_region
from rlthf_plugin.store.pair_ids import PairIds, pack_hex, unpack_hex


def _hex_ids(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    ids = [hashlib.sha256(str(rng.integers(1 << 60)).encode()).hexdigest()[:32] for _ in range(n)]
    ids[0] = "ab" * 15 + "00"  # trailing zero bytes: an S16 item drops them when read
    ids[1] = "00" * 16
    return ids


def test_hex_ids_are_packed_and_read_back_as_text():
    ids = _hex_ids(500)
    got = PairIds(ids)
    assert got.packed and got.data.dtype == np.dtype("S16")
    assert list(got) == ids and got[0] == ids[0] and got[1] == ids[1] and got[5:9] == ids[5:9]
    assert [bytes(b).decode() for b in got.text()] == ids
    assert unpack_hex(pack_hex(np.array([i.encode() for i in ids]))).tolist() == [i.encode() for i in ids]


def test_packed_ids_find_the_positions_the_text_ids_find():
    ids = _hex_ids(800, seed=1)
    packed, text = PairIds(ids), PairIds(np.array([i.encode() for i in ids]).astype("S40"))  # S40: not packed
    assert not text.packed
    queries = [*ids[::7], "not-an-id", ids[3].upper(), ids[4][:31], ids[5] + "0", "", "zz" * 16]
    assert packed.positions(queries).tolist() == text.positions(queries).tolist()
    assert packed.positions(queries)[-6:].tolist() == [-1] * 6
    srt = sorted(ids)  # packing keeps the text's order: sorted ids stay sorted (binary search, no argsort)
    assert PairIds(srt)._sorted and PairIds(srt).positions(srt).tolist() == list(range(len(srt)))


def test_ids_that_are_not_hex_stay_text():
    ids = ["pair-1", "pair-2", "é" * 3]
    got = PairIds(ids)
    assert not got.packed and list(got) == ids and got.positions(["pair-2", "x"]).tolist() == [1, -1]


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_sorted_codes_are_uniques_inverse(dtype):
    rng = np.random.default_rng(2)
    for size, high in [(1, 3), (50, 5), (5000, 10**9), (3000, 40)]:
        x = rng.integers(-high, high, size).astype(dtype)
        want = np.unique(x, return_inverse=True)[1].reshape(-1)
        assert np.array_equal(siblings._sorted_codes(x), want)
        assert np.array_equal(siblings._dense_codes(x), want)


def _audit_region_sorting_all(p, eligible, budget, min_mean):
    """The region as computed before the pre-filter: every eligible pair sorted."""
    el = eligible & np.isfinite(p)
    rows = np.flatnonzero(el)
    order = rows[np.argsort(-p[rows], kind="stable")]
    mean = np.cumsum(p[order]) / np.arange(1, order.size + 1)
    ok = np.flatnonzero(mean >= min_mean)
    region = np.zeros(p.size, dtype=bool)
    if ok.size and ok.max() + 1 > budget:
        region[order[: ok.max() + 1]] = True
    return region


def test_the_audit_regions_prefilter_changes_nothing():
    rng = np.random.default_rng(3)
    for trial in range(300):
        n = int(rng.integers(1, 400))
        p = rng.beta(rng.uniform(0.2, 3), rng.uniform(0.2, 3), n)
        p[rng.random(n) < 0.05] = np.nan
        if trial % 3 == 0:
            p = np.round(p, 1)  # ties
        eligible = rng.random(n) < 0.9
        budget, level = int(rng.integers(0, 20)), float(rng.uniform(0.3, 0.95))
        assert np.array_equal(audit_region(p, eligible=eligible, budget=budget, min_mean=level),
                              _audit_region_sorting_all(p, eligible, budget, level)), trial


def test_decisions_do_not_depend_on_the_block_and_give_their_bounds(monkeypatch):
    rng = np.random.default_rng(4)
    n = 3000
    p = rng.uniform(0, 1, n)
    p[:40] = np.nan
    wrong = np.where(rng.random(n) < 0.2, (rng.random(n) < p).astype(float), np.nan)
    whole = trust.decide(p, wrong, flip_min_precision=0.6, trust_max_error=0.2, min_evidence=5)
    monkeypatch.setattr(trust, "_BLOCK", 17)
    blocks = trust.decide(p, wrong, flip_min_precision=0.6, trust_max_error=0.2, min_evidence=5)
    assert np.array_equal(whole.code, blocks.code)
    assert whole.counts()["flip"] > 0 and whole.counts()["trust"] > 0
    open_ = np.isfinite(p) & ~np.isfinite(wrong)
    assert np.array_equal(whole.is_("flip"), open_ & (whole.lower >= 0.6) & ~(whole.upper < 0.2))
    assert np.array_equal(whole.is_("trust"), open_ & (whole.upper < 0.2))
    assert np.isnan(whole.calibrated[:40]).all() and np.isfinite(whole.lower[40:]).all()
    rows = np.array([45, 3, 2999])
    assert np.array_equal(whole.bounds(rows), np.column_stack([whole.calibrated, whole.lower, whole.upper])[rows],
                          equal_nan=True)
    assert list(whole.decision[:3]) == ["none"] * 3


def test_the_signal_table_does_not_depend_on_the_block(monkeypatch):
    rng = np.random.default_rng(5)
    n, judges = 500, 3
    votes = rng.choice([1.0, -1.0, 0.0, np.nan], size=(n, judges, 2), p=[0.4, 0.35, 0.1, 0.15])
    p_a = np.where(np.isfinite(votes), rng.uniform(0, 1, votes.shape), np.nan)
    kw = dict(judge_names=["a", "b", "c"], rm_margin=rng.normal(size=n), length_a=rng.integers(0, 900, n).astype(np.int32),
              length_b=rng.integers(0, 900, n), p_a=p_a, sibling_margin=rng.normal(size=n))
    whole = signals.signal_table(votes, 0, **kw)
    monkeypatch.setattr(signals, "_ROWS", 13)
    blocks = signals.signal_table(votes, 0, **kw)
    assert whole.names == blocks.names and np.array_equal(whole.values, blocks.values)
    as_float = signals.signal_table(votes, 0, **{**kw, "length_a": kw["length_a"].astype(float)})
    assert np.array_equal(whole.values, as_float.values)  # int32 lengths: the same column as floats


def test_the_mapping_threshold_is_pinned_unless_the_environment_sets_one(monkeypatch):
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    import platform
    if platform.libc_ver()[0] == "glibc":
        assert memory.map_large_arrays() is True
    assert memory.map_large_arrays(0) is False
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert memory.map_large_arrays() is False


def test_the_cli_refuses_a_threshold_that_is_not_bytes(tmp_path):
    from click.testing import CliRunner

    from rlthf_plugin.cli import main

    got = CliRunner().invoke(main, ["--mmap-threshold", "lots", "-w", str(tmp_path / "ws"), "init"])
    assert got.exit_code == 2 and "--mmap-threshold" in got.output
    ok = CliRunner().invoke(main, ["-w", str(tmp_path / "ws"), "init"], env={"RLTHF_MMAP_THRESHOLD": "0"})
    assert ok.exit_code == 0, ok.output


def test_the_pools_columns_keep_every_id_when_a_later_page_is_not_hex(workspace):
    """read_columns packs page by page; a page of ids that are not the ledger's hex (pairs added
    through the API with their own ids, which sort after the digits) turns the pages already
    packed back to text."""
    from rlthf_plugin.loop.pair_columns import read_columns
    from rlthf_plugin.models.embedder import SentenceEmbedder
    from rlthf_plugin.models.vectors import StoredTextTable
    from rlthf_plugin.pairs import pair_id
    from rlthf_plugin.store.pairs import add_pairs
    from rlthf_plugin.store._sql import now

    def row(pid, i):
        return {"id": pid, "prompt_id": f"p{i}", "prompt": f"prompt {i}", "response_a": f"a {i}",
                "response_b": f"b {i}", "source": "test", "metadata": {}, "origin": "import", "created_at": now()}

    add_pairs(workspace.ledger, [row(pair_id(f"prompt {i}", f"a {i}", f"b {i}"), i) for i in range(5)]
              + [row(f"pair-{i}", 10 + i) for i in range(3)])
    want = workspace.ledger.pair_ids()
    assert [len(i) for i in want] == [32] * 5 + [6] * 3  # the hex ids' pages come first
    table = StoredTextTable(SentenceEmbedder(), workspace.ledger.vector_store)
    cols = read_columns(workspace.ledger, table, page=2)
    assert not cols.ids.packed and list(cols.ids) == want
    assert cols.ids.positions(want[::-1]).tolist() == list(range(len(want)))[::-1]
