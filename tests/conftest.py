"""Shared fixtures. Tests never reach the network: hub lookups fail at once offline."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path

import pytest
from click.testing import CliRunner

from rlthf_plugin.workspace import Workspace

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def workspace(tmp_path: Path):
    ws = Workspace.init(tmp_path / "ws")
    yield ws
    ws.close()


@pytest.fixture
def shared_dev() -> Path:
    path = SHARED_DATA / "dev"
    if not path.exists():
        pytest.skip("../shared/data/dev is not beside this checkout")
    return path
