"""rlthf_plugin: targeted human feedback (RLTHF) and dissimilar-pair selection (REAL)
for preference data labeled in Argilla or Label Studio.

The public Python API is what ``__all__`` lists; the ``rlthf`` CLI is a thin layer on it.
"""

from .loop.candidates import CandidateReport, build_candidates
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
from .io.importer import ImportReport, import_files
from .store.ledger import Ledger
from .pairs import PreferencePair, majority, pair_id
from .selection.real import PairSelection, PoolSelection, select_from_pool, select_pairs
from .workspace import Workspace

__version__ = "0.1.0"

# Heavier parts (torch, TRL, platform SDKs, FastAPI) load on first use: name -> module.
_LAZY = {
    "analyze_curve": "selection.rlthf", "select_actions": "selection.rlthf", "schedule": "selection.rlthf",
    "ai_margins": "selection.rlthf", "flip_gate": "selection.rlthf",
    "select_iteration": "loop.iteration", "label_with_oracle": "loop.oracle", "evaluate": "loop.oracle",
    "curated_rows": "io.export", "write_export": "io.export",
    "RewardModel": "models.reward", "EmbeddingRewardModel": "models.reward",
    "TransformerRewardModel": "models.reward_trl", "RewardTrainingConfig": "models.reward_trl",
    "DPOTrainingConfig": "models.policy", "train_policy": "models.policy",
    "SentenceEmbedder": "models.embedder", "EmbeddingCache": "models.vectors",
    "CausalLMEmbedder": "models.llm_embeddings",
    "open_judge": "models.judge", "label_pairs": "loop.judging",
    "LabelingBackend": "backends", "Task": "backends", "HumanLabel": "backends", "PushReport": "backends",
    "open_backend": "backends", "store_labels": "loop.sync",
    "create_app": "service.app", "write_report": "report.html",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    *sorted(_LAZY),
]
