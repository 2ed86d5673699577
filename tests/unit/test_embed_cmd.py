"""``rlthf embed``: fills the vector store for every text (or the pending pairs' texts); the
shards of ``--shard i/n`` run as two processes at once, the ranks of ``torchrun
--nproc_per_node 2`` and of ``accelerate launch --num_processes 2`` (gloo, CPU), each leave
the store complete and equal to a one-process run."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rlthf_plugin.data import DEV_PAIRS
from rlthf_plugin.loop.embedding import Shard, missing_texts, shard_of
from rlthf_plugin.models.embedder import SentenceEmbedder
from rlthf_plugin.pairs import text_hash
from rlthf_plugin.store.vector_files import VectorFiles
from rlthf_plugin.workspace import Workspace

PAIRS = 16
MODEL = SentenceEmbedder().name
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}


def cli(ws: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rlthf_plugin", "-w", str(ws), "embed", "--no-progress", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)


def finish(*procs: subprocess.Popen) -> list[str]:
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=600)
        assert p.returncode == 0, out[-3000:]
        outs.append(out)
    return outs


def stored(ws: Path) -> dict[bytes, np.ndarray]:
    mv = VectorFiles(ws / "vectors").open_model(MODEL)
    return {k: np.array(v) for k, v in zip(mv.keys().tolist(), mv.matrix)}


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory):
    """Three copies of one workspace of dev pairs (nothing embedded yet)."""
    root = tmp_path_factory.mktemp("embed")
    rows = [json.loads(line) for line in gzip.open(DEV_PAIRS, "rt", encoding="utf-8")][::97][:PAIRS]
    data = root / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ws = Workspace.init(root / "one")
    from rlthf_plugin.io.importer import import_files

    import_files(ws.ledger, [str(data)])
    ws.close()
    for name in ("shards", "torchrun", "accelerate", "pending"):
        shutil.copytree(root / "one", root / name)
    return root


def test_shards_and_torchrun_ranks_fill_the_store_as_one_process_does(workspaces):
    one, shards, ranks, accelerated = (workspaces / n for n in ("one", "shards", "torchrun", "accelerate"))
    out, = finish(cli(one))
    assert "0 embedded now" not in out
    single = stored(one)
    assert len(single) > 2 * PAIRS
    # two shards as two processes at once, appending to one store
    outs = finish(cli(shards, "--shard", "0/2"), cli(shards, "--shard", "1/2"))
    assert all("embedded now" in o for o in outs)
    # torchrun and accelerate launch (2 CPU processes): each rank takes RANK/WORLD_SIZE; rank 0
    # checks the store after a gloo barrier
    bin_dir = os.path.dirname(sys.executable)
    launchers = {ranks: [shutil.which("torchrun", path=bin_dir), "--nproc_per_node", "2", "--master_port", "29531"],
                 accelerated: [shutil.which("accelerate", path=bin_dir), "launch", "--multi_gpu", "--num_processes", "2",
                               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                               "--main_process_port", "29533"]}
    for ws, launch in launchers.items():
        proc = subprocess.run([*launch, "-m", "rlthf_plugin", "-w", str(ws), "embed", "--no-progress"],
                              capture_output=True, text=True, env=ENV, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "shard 0/2" in proc.stdout and "shard 1/2" in proc.stdout
        assert "all ranks done: 0 text(s) still missing" in proc.stdout
    for ws in (shards, ranks, accelerated):
        got = stored(ws)
        assert set(got) == set(single)  # complete, nothing twice (keys are unique per store)
        for k, v in single.items():
            np.testing.assert_allclose(got[k], v, atol=1e-5)  # batches differ: float rounding only
        with Workspace.open(ws) as w:
            assert missing_texts(w.ledger, w.config) == 0
    # a rerun embeds nothing
    again, = finish(cli(one))
    assert " 0 embedded now" in again


def test_only_pending_embeds_the_texts_of_pairs_without_a_human_label(workspaces):
    ws_path = workspaces / "pending"
    with Workspace.open(ws_path) as ws:
        pair = ws.ledger.get_pairs()[0]
        ws.ledger.store_human_labels([{"pair_id": pair.id, "label": "A", "annotator": "x", "platform": "label-studio",
                                       "external_id": "t1"}])
        before = missing_texts(ws.ledger, ws.config)
    finish(cli(ws_path, "--only", "pending"))
    with Workspace.open(ws_path) as ws:
        assert missing_texts(ws.ledger, ws.config, only_pending=True) == 0
        assert 0 < missing_texts(ws.ledger, ws.config) < before  # the labeled pair's own texts wait


def test_shard_spec_and_split():
    assert Shard.parse("1/3") == Shard(1, 3) and str(Shard(1, 3)) == "1/3"
    assert Shard.from_env({"RANK": "1", "WORLD_SIZE": "2"}) == Shard(1, 2) and Shard.from_env({}) is None
    for bad in ("3/3", "x", "1/0"):
        with pytest.raises(Exception, match="shard"):
            Shard.parse(bad)
    hs = [text_hash(f"text {i}") for i in range(400)]
    parts = shard_of(hs, 4)
    assert np.bincount(parts).min() > 60  # about a quarter each
    assert np.array_equal(parts, shard_of(hs[::-1], 4)[::-1])  # by id, not by position
