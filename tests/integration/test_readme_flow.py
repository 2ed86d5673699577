"""The README's flow from the command line, as a new user runs it (issue 13): `make demo`'s
script (init, import, the loop with the oracle annotator, export), then `rlthf train reward`
on the export (tiny run) and `rlthf train policy` with a tiny local causal LM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import write_pandalm_sample

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_readme_flow_demo_export_train_reward_train_policy(tmp_path):
    sample = write_pandalm_sample(tmp_path / "sample.jsonl", 60)
    ws = tmp_path / "demo-workspace"
    bin_dir = Path(sys.executable).parent
    # PYTHONPATH: the CLI of this checkout, whatever the virtualenv has installed editable.
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "RLTHF_DEMO_WORKSPACE": str(ws), "RLTHF_DEMO_DATA": str(sample), "RLTHF_DEMO_ITERATIONS": "2",
           "RLTHF_DEMO_BUDGET": "0.1", "RLTHF_EMBEDDING_MAX_LENGTH": "64", "RLTHF_SELECTION_FOLDS": "3"}
    demo = subprocess.run(["bash", str(ROOT / "examples" / "demo.sh")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    curated = ws / "curated.jsonl"
    rows = [json.loads(line) for line in curated.read_text(encoding="utf-8").splitlines()]
    assert {"ai", "human"} <= {r["label_source"] for r in rows}, demo.stdout[-2000:]

    def rlthf(*args: str) -> str:
        r = subprocess.run([sys.executable, "-m", "rlthf_plugin", "-w", str(ws), *args], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, f"rlthf {' '.join(args)}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        return r.stdout + r.stderr

    tiny = [sys.executable, "-c", "import sys, json; from rlthf_plugin.models.tiny import build_tiny_causal_lm; "
            "rows = [json.loads(l) for l in open(sys.argv[1])]; "
            "build_tiny_causal_lm(sys.argv[2], [r[k] for r in rows for k in ('prompt', 'chosen', 'rejected')], "
            "vocab_size=400)", str(curated), str(tmp_path / "tiny-lm")]
    subprocess.run(tiny, env=env, check=True, timeout=300)
    out = rlthf("train", "reward", "--data", str(curated), "--out", str(tmp_path / "rm"), "--max-steps", "2",
                "--max-length", "48", "--batch-size", "8")
    assert "eval_accuracy" in out and (tmp_path / "rm" / "README.md").exists()
    # From the ledger (no --data): the same schema, the workspace's ground truth left out.
    rlthf("train", "reward", "--out", str(tmp_path / "rm2"), "--max-steps", "1", "--max-length", "48",
          "--batch-size", "8")
    out = rlthf("train", "policy", "--model", str(tmp_path / "tiny-lm"), "--data", str(curated), "--out",
                str(tmp_path / "policy"), "--max-steps", "1", "--max-length", "64", "--max-prompt-length", "32",
                "--batch-size", "4")
    assert (tmp_path / "policy" / "README.md").exists(), out
