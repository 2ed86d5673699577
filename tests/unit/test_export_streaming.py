"""Export streams pairs a page at a time and writes under the final name only at the end."""

import json
from collections import Counter

from rlthf_plugin.cli import main
from rlthf_plugin.data import DEV_PAIRS
from rlthf_plugin.io.curated import to_row
from rlthf_plugin.io.export import curated_rows, iter_curated_rows
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.store import pairs as store_pairs
from rlthf_plugin.store.votes import audited_labels


def test_export_cli_writes_the_curated_rows(workspace, runner, tmp_path):
    import_files(workspace.ledger, [str(DEV_PAIRS)], skip_invalid=True)
    out = tmp_path / "out" / "set.jsonl"
    result = runner.invoke(main, ["-w", str(workspace.root), "export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    expected = curated_rows(workspace.ledger)
    # The primary judge (GPT-4, most pairs) labels the MT-bench rows; the PandaLM rows, which
    # only gpt-3.5-turbo judged, keep its label: every pair whose audited label names a winner
    # is exported, and each row names its judge.
    assert written == [json.loads(json.dumps(to_row(r))) for r in expected] and len(written) > 2100
    audited = audited_labels(workspace.ledger)
    assert {r["pair_id"] for r in written} == {p for p, lab in audited.labels.items() if lab in ("A", "B")}
    by_judge = Counter(r["label_judge"] for r in written)
    assert set(by_judge) == {audited.primary, "gpt-3.5-turbo (PandaLM release)"} and min(by_judge.values()) > 700
    assert all(r["label_judge"] == audited.judges[r["pair_id"]] for r in written)
    assert f"wrote {len(expected)} pair(s)" in result.output and "ai: " in result.output
    assert not list(out.parent.glob("*.partial"))


def test_pages_cover_every_pair_once_in_order(workspace):
    import_files(workspace.ledger, [str(DEV_PAIRS)], skip_invalid=True)
    paged = [p.id for p in store_pairs.iter_pairs(workspace.ledger, page=97)]
    assert paged == store_pairs.pair_ids(workspace.ledger)
    assert list(iter_curated_rows(workspace.ledger)) == curated_rows(workspace.ledger)
