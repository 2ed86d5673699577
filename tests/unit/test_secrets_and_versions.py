"""Secrets are written atomically (issue 13, fault 9): a reader never sees a truncated
file, the file stays 0600; and no module imports ``tomllib`` without the tomli fallback."""

from __future__ import annotations

import ast
import os
import stat
import sys
import threading
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from rlthf_plugin.config import save_secret

PACKAGE = Path(__file__).resolve().parents[2] / "rlthf_plugin"


def test_secrets_are_replaced_atomically_and_stay_private(tmp_path):
    path = tmp_path / ".rlthf-secrets.toml"
    save_secret(path, "label_studio", "api_key", "k" * 64)
    stop, seen = threading.Event(), []

    def read() -> None:
        while not stop.is_set():
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            seen.append(bool((data.get("label_studio") or {}).get("api_key")))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(300):
            save_secret(path, "argilla", "webhook_secret", f"s{i}" * 20)
    finally:
        stop.set()
        reader.join()
    assert seen and all(seen), f"{seen.count(False)} of {len(seen)} reads saw a truncated secrets file"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name != path.name]  # no temporary file left


def test_no_bare_tomllib_import():
    """``tomllib`` is 3.11+: each import sits in a version check with the ``tomli`` fallback."""
    bare = []
    for file in PACKAGE.rglob("*.py"):
        tree = ast.parse(file.read_text(encoding="utf-8"))
        guarded = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.If, ast.Try)):
                for child in ast.walk(node):
                    guarded.add(id(child))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name == "tomllib" for a in node.names) and id(node) not in guarded:
                bare.append(f"{file.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert not bare, bare
