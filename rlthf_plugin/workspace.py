"""A workspace: a folder with ``rlthf.toml``, the ledger and caches (plots, models)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from .config import CONFIG_FILE, Config, load_config, save_secret, secrets_path
from .errors import WorkspaceError
from .store.ledger import Ledger


def resolve_ledger_url(url: str, root: Path) -> str:
    """Make a relative SQLite path absolute inside the workspace."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        return prefix + str((root / url[len(prefix):]).resolve())
    return url


#: The folder of the workspace's vector store (one memory-mapped matrix per embedder).
VECTORS_DIR = "vectors"


@dataclass
class Workspace:
    """An opened workspace. ``config`` is the effective config (file + env + options)."""

    root: Path
    config: Config
    ledger: Ledger

    def __post_init__(self) -> None:
        # Vectors live in files beside the ledger (any database): store/vector_files.py.
        if self.ledger.vectors is None:
            self.ledger.attach_vectors(self.root / VECTORS_DIR)

    @classmethod
    def init(cls, root: str | os.PathLike, config: Config | None = None) -> "Workspace":
        """Create ``root`` (if needed), write ``rlthf.toml`` (kept if present), create the ledger."""
        root = Path(root).resolve()
        root.mkdir(parents=True, exist_ok=True)
        path = root / CONFIG_FILE
        if not path.exists():
            path.write_text((config or Config()).to_toml(), encoding="utf-8")
        cfg = load_config(root)
        ledger = Ledger.open(resolve_ledger_url(cfg.ledger.url, root), create=True)
        ignore = root / ".gitignore"
        if not ignore.exists():  # the ledger, secrets and caches stay out of version control
            ignore.write_text(f"ledger.db*\n.rlthf-secrets.toml\ncache/\n{VECTORS_DIR}/\n", encoding="utf-8")
        return cls(root, cfg, ledger)

    @classmethod
    def open(cls, root: str | os.PathLike) -> "Workspace":
        root = Path(root).resolve()
        if not (root / CONFIG_FILE).exists():
            raise WorkspaceError(f"{root} is not a workspace (no {CONFIG_FILE}): run 'rlthf init {root}'")
        cfg = load_config(root)
        return cls(root, cfg, Ledger.open(resolve_ledger_url(cfg.ledger.url, root)))

    @property
    def cache_dir(self) -> Path:
        path = self.root / "cache"
        path.mkdir(exist_ok=True)
        return path

    @property
    def plots_dir(self) -> Path:
        path = self.root / "plots"
        path.mkdir(exist_ok=True)
        return path

    def backend_state(self) -> "WorkspaceState":
        """What labeling-platform adapters keep here: their secrets, in the secrets file."""
        return WorkspaceState(self.root)

    def close(self) -> None:
        self.ledger.close()

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class ConfigWatch:
    """A workspace's config (``rlthf.toml``, secrets file, environment), read again only when
    one of the two files changes (modification time or size): a service checks secrets on
    every request without reading files on each."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._lock = threading.Lock()
        self._seen: tuple | None = None
        self._config: Config | None = None

    def current(self) -> Config:
        stamp = (_stamp(self.root / CONFIG_FILE), _stamp(secrets_path(self.root)))
        with self._lock:
            if self._config is None or stamp != self._seen:
                self._config, self._seen = load_config(self.root), stamp
            return self._config


_WATCHES: dict[Path, ConfigWatch] = {}
_WATCHES_LOCK = threading.Lock()


def config_watch(root: Path) -> ConfigWatch:
    """The one :class:`ConfigWatch` of the workspace at ``root`` in this process."""
    with _WATCHES_LOCK:
        return _WATCHES.setdefault(Path(root).resolve(), ConfigWatch(Path(root).resolve()))


@dataclass
class WorkspaceState:
    """The :class:`~rlthf_plugin.backends.BackendState` of a workspace: secrets in its
    secrets file (read through :func:`~rlthf_plugin.config.load_config`, so the environment
    still overrides them)."""

    root: Path

    def secret(self, section: str, key: str) -> str | None:
        """The current value (cached; read again when the config or secrets file changes)."""
        value = getattr(getattr(config_watch(self.root).current(), section), key)
        return str(value) if value else None

    def save_secret(self, section: str, key: str, value: str) -> None:
        save_secret(secrets_path(self.root), section, key, value)
