"""Opening a judge from its spec string: ``openai:MODEL``, ``hf:NAME_OR_PATH`` or ``recorded:FILE[#JUDGE]``.

The kinds are in :mod:`~rlthf_plugin.models.judge.openai`,
:mod:`~rlthf_plugin.models.judge.hf` and :mod:`~rlthf_plugin.models.judge.recorded`
(verdicts computed elsewhere, replayed from a file); the first two import their heavy packages (openai, torch,
transformers) only when a judge is opened, so importing this module stays cheap.
"""

from __future__ import annotations

from ...config import JudgeConfig
from ...errors import ConfigError
from .base import Judge
from .hf import HFJudge
from .openai import OpenAIJudge
from .prompt import JudgeTemplate, load_template
from .recorded import RecordedJudge, parse_spec

#: The spec forms, for messages.
SPEC_FORMS = "'openai:MODEL', 'hf:NAME_OR_PATH' or 'recorded:FILE[#JUDGE]'"


def open_judge(spec: str, config: JudgeConfig | None = None, *, template: JudgeTemplate | None = None,
               base_url: str | None = None) -> Judge:
    """A judge from its spec, ``openai:MODEL``, ``hf:NAME_OR_PATH`` or ``recorded:FILE[#JUDGE]``,
    set up from ``[judge]``.

    Raises
    ------
    ConfigError
        An empty or unknown spec, naming the valid forms.
    InvalidInputError
        A recorded judge's file with a malformed line (one line naming file and line).
    """
    config = config or JudgeConfig()
    kind, _, name = spec.partition(":")
    if not name or kind not in ("openai", "hf", "recorded"):
        raise ConfigError(f"--judge {spec!r}: expected {SPEC_FORMS}")
    if kind == "recorded":
        path, judge = parse_spec(spec)
        return RecordedJudge(path, judge)
    template = template or load_template(config.template or None)
    if kind == "openai":
        return OpenAIJudge.from_config(name, config, base_url=base_url)
    return HFJudge(name, template=template, batch_size=config.batch_size, device=config.device or None)


def spec_name(spec: str) -> str:
    """The name ``open_judge(spec).name`` has, without opening a model or an endpoint
    (a recorded judge's file is read: its name may be the file's ``ai_judge``)."""
    kind, _, name = spec.partition(":")
    if not name or kind not in ("openai", "hf", "recorded"):
        raise ConfigError(f"judge {spec!r}: expected {SPEC_FORMS}")
    if kind == "recorded":
        path, judge = parse_spec(spec)
        return judge or RecordedJudge(path).name
    return f"{kind}:{name}"


__all__ = ["SPEC_FORMS", "open_judge", "spec_name"]
