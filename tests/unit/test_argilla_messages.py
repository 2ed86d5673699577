"""Clear messages for a missing Argilla key: how to store it once, a push that stores it, and
`rlthf targets` saying whether a key is set (the unsupported question type: tests/integration)."""

from __future__ import annotations

import os
import stat

import pytest

from rlthf_plugin.backends.argilla import from_config
from rlthf_plugin.cli import main
from rlthf_plugin.config import load_config, update_config_file
from rlthf_plugin.errors import ConfigError
from rlthf_plugin.loop.targets import remember_key

def test_a_missing_key_says_how_to_store_it_once(workspace, monkeypatch):
    monkeypatch.delenv("RLTHF_ARGILLA_API_KEY", raising=False)
    update_config_file(workspace.root, "argilla", url="http://127.0.0.1:6900", dataset="prefs")
    with pytest.raises(ConfigError) as e:
        from_config(load_config(workspace.root))
    assert "not configured" in e.value.message and ".rlthf-secrets.toml" in e.value.message
    assert "chmod 600" in e.value.message and "stores it" in e.value.message


def test_the_key_a_push_used_is_stored_once_and_targets_shows_it(workspace, runner, monkeypatch):
    monkeypatch.delenv("RLTHF_ARGILLA_API_KEY", raising=False)
    update_config_file(workspace.root, "argilla", url="http://127.0.0.1:6900", dataset="prefs")
    w = ["--workspace", str(workspace.root)]
    assert "no API key" in runner.invoke(main, [*w, "targets"]).output
    assert remember_key(workspace.root, "argilla", "argilla.apikey") is True
    assert remember_key(workspace.root, "argilla", "another") is False  # the stored one stays
    secrets = workspace.root / ".rlthf-secrets.toml"
    assert stat.S_IMODE(os.stat(secrets).st_mode) == 0o600
    assert str(load_config(workspace.root).argilla.api_key) == "argilla.apikey"
    assert "API key set" in runner.invoke(main, [*w, "targets"]).output
