"""rlthf_plugin: targeted human feedback (RLTHF) and dissimilar-pair selection (REAL)
for preference data labeled in Argilla or Label Studio.

The public Python API is what ``__all__`` lists; the ``rlthf`` CLI is a thin layer on it.
"""

from .candidates import CandidateReport, build_candidates
from .config import Config, load_config
from .errors import (
    BackendError,
    ConfigError,
    IncompatibleProjectError,
    InvalidInputError,
    MissingExtraError,
    RlthfError,
    WebhookAuthError,
    WorkspaceError,
)
from .importer import ImportReport, import_files
from .ledger import Ledger
from .pairs import PreferencePair, majority, pair_id
from .selection.real import PairSelection, PoolSelection, select_from_pool, select_pairs
from .workspace import Workspace

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "CandidateReport",
    "Config",
    "ConfigError",
    "ImportReport",
    "IncompatibleProjectError",
    "InvalidInputError",
    "Ledger",
    "MissingExtraError",
    "PairSelection",
    "PoolSelection",
    "PreferencePair",
    "RlthfError",
    "WebhookAuthError",
    "Workspace",
    "WorkspaceError",
    "build_candidates",
    "import_files",
    "load_config",
    "majority",
    "pair_id",
    "select_from_pool",
    "select_pairs",
]
