"""Opening a judge from its spec string: ``openai:MODEL`` or ``hf:NAME_OR_PATH``.

The kinds are in :mod:`~rlthf_plugin.models.judge.openai` and
:mod:`~rlthf_plugin.models.judge.hf`; both import their heavy packages (openai, torch,
transformers) only when a judge is opened, so importing this module stays cheap.
"""

from __future__ import annotations

from ...config import JudgeConfig
from ...errors import ConfigError
from .base import Judge
from .hf import HFJudge
from .openai import OpenAIJudge
from .prompt import JudgeTemplate, load_template


def open_judge(spec: str, config: JudgeConfig | None = None, *, template: JudgeTemplate | None = None,
               base_url: str | None = None) -> Judge:
    """A judge from its spec, ``openai:MODEL`` or ``hf:NAME_OR_PATH``, set up from ``[judge]``.

    Raises
    ------
    ConfigError
        An empty or unknown spec, naming the two valid forms.
    """
    config = config or JudgeConfig()
    kind, _, name = spec.partition(":")
    if not name or kind not in ("openai", "hf"):
        raise ConfigError(f"--judge {spec!r}: expected 'openai:MODEL' or 'hf:NAME_OR_PATH'")
    template = template or load_template(config.template or None)
    if kind == "openai":
        return OpenAIJudge.from_config(name, config, base_url=base_url)
    return HFJudge(name, template=template, batch_size=config.batch_size, device=config.device or None)


__all__ = ["open_judge"]
