"""`rlthf report` renders, and headless Chromium (Debian's `chromium`) shows it with its plots.

No labeling server is needed: two oracle iterations on 80 real pairs, plus labels from two
annotators on a platform so the agreement table has something to compare.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from rlthf_plugin.backends.base import HumanLabel
from rlthf_plugin.cli import main
from rlthf_plugin.loop.sync import store_labels
from rlthf_plugin.workspace import Workspace

from .conftest import write_pandalm_sample

pytestmark = pytest.mark.integration

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1200,2000"]
#: matplotlib's tab:orange (the batch bars, the asked pairs) and tab:green (kept pairs): only the plots use them.
PLOT_COLOURS = {"tab:orange": (255, 127, 14), "tab:green": (44, 160, 44)}


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError("Debian's chromium is missing: run scripts/install_test_deps.sh (apt-get install chromium)")


def screenshot(page, out, tmp_path) -> np.ndarray:
    from PIL import Image

    profile = tmp_path / f"profile-{out.stem}"
    done = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}",
                           page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and out.exists(), done.stderr[-2000:]
    return np.asarray(Image.open(out).convert("RGB"))


def near(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 6) -> int:
    return int((np.abs(pixels.astype(int) - np.array(rgb)).max(axis=-1) <= tol).sum())


@pytest.fixture
def looped_workspace(tmp_path, runner):
    sample = write_pandalm_sample(tmp_path / "sample.jsonl", 80)
    ws = tmp_path / "ws"
    # margin-curve: its kept region is what draws the tab:green the screenshot check looks for
    # (the signals strategy trusts no pair before its calibration has evidence).
    env = {"RLTHF_EMBEDDING_MAX_LENGTH": "64", "RLTHF_SELECTION_FOLDS": "3",
           "RLTHF_SELECTION_STRATEGY": "margin-curve"}
    for args in (["init"], ["import", str(sample)],
                 ["run", "--iterations", "2", "--budget", "0.1", "--annotator", "oracle:human"]):
        result = runner.invoke(main, ["-w", str(ws), *args], env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    with Workspace.open(ws) as w:
        votes = w.ledger.human_votes()  # pairs the oracle did not answer: only u1 and u2 compared there
        ids = [p for p in w.ledger.pair_ids() if all(who != "oracle:human" for who, _ in votes.get(p, []))][:6]
        store_labels(w.ledger, [HumanLabel(p, "A", "u1", "label-studio", f"1-{p}") for p in ids]
                     + [HumanLabel(p, "A" if i < 3 else "B", "u2", "label-studio", f"2-{p}") for i, p in enumerate(ids)])
    return ws


def test_report_renders_in_headless_chromium(runner, looped_workspace, tmp_path):
    out = tmp_path / "report"
    result = runner.invoke(main, ["-w", str(looped_workspace), "report", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    page = out / "index.html"
    text = page.read_text(encoding="utf-8")
    # Self-contained: every src/href is a file beside the page; nothing is fetched.
    refs = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", text)
    assert sorted(refs) == ["history.png", "margin_curve_iter0.png", "margin_curve_iter1.png"]
    assert all((out / ref).exists() for ref in refs) and "http" not in text.lower().replace("http-equiv", "")
    assert "human labels asked" in text and "labels saved against labeling everything" in text
    # The agreement of the two platform annotators: 3 of 6 pairs agree.
    assert re.search(r"annotators on the labeling platforms</td><td>6</td><td>6</td><td>0.50<", text)

    pixels = screenshot(page, tmp_path / "shot.png", tmp_path)
    assert pixels.shape == (2000, 1200, 3)
    colours = len(np.unique(pixels.reshape(-1, 3) // 8, axis=0))
    assert colours > 50, f"only {colours} colour bins: a blank page?"
    for name, rgb in PLOT_COLOURS.items():
        assert near(pixels, rgb) > 200, f"no {name} pixels: the plots did not load"

    # The same page without its PNGs: the plot colours are gone (the check above can fail).
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(page, bare / "index.html")
    pixels = screenshot(bare / "index.html", tmp_path / "bare.png", tmp_path)
    assert near(pixels, PLOT_COLOURS["tab:orange"]) < 50
