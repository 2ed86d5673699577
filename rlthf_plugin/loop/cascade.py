"""The escalation judges of a workspace, cheap to strong, read from ``[escalation]`` and ``[cost]``.

One :class:`Step` per judge: its spec, template, the name its verdicts are stored under
in the ledger, its budget (share of the pool per iteration) and the price of one call.
The pool (:mod:`.pool`) settles labels with their verdicts (strongest first); the
escalation itself is :mod:`.escalation`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config
from ..errors import ConfigError
from ..models.judge.factory import spec_name
from ..models.judge.prompt import JudgeTemplate, load_template
from ..selection.escalation import RULES
from .judging import stored_judge_name


@dataclass(frozen=True)
class Step:
    """One escalation judge."""

    spec: str
    template: JudgeTemplate
    #: The ledger's ``judge`` column for its verdicts.
    name: str
    #: Share of the pool asked per iteration.
    budget: float
    #: Price of one call (one order); 0 when ``[cost] judge_call`` does not say.
    call_price: float


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",")] if value.strip() else []


def _per_judge(values: list[float], n: int, what: str) -> list[float]:
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise ConfigError(f"{what}: give one value or one per escalation judge ({n}), got {len(values)}")
    return list(values)


def cascade(config: Config) -> list[Step]:
    """The escalation judges in ``config``, cheap to strong; [] when none.

    Raises
    ------
    ConfigError
        Budgets, templates or prices that do not match the judges, a budget outside
        (0, 1], an unknown rule or judge spec.
    """
    esc = config.escalation
    specs = _split(esc.judges)
    if not specs:
        return []
    if esc.rule not in RULES:
        raise ConfigError(f"escalation.rule must be one of {', '.join(RULES)}, not '{esc.rule}'")
    if esc.settle not in ("all", "ties"):
        raise ConfigError(f"escalation.settle must be 'all' or 'ties', not '{esc.settle}'")
    templates = _split(esc.templates) or [""]
    if len(templates) == 1:
        templates = templates * len(specs)
    if len(templates) != len(specs):
        raise ConfigError(f"escalation.templates: give one or one per judge ({len(specs)}), got {len(templates)}")
    budgets = _per_judge(list(esc.budgets), len(specs), "escalation.budgets")
    if any(not 0 < b <= 1 for b in budgets):
        raise ConfigError(f"escalation.budgets must be shares of the pool in (0, 1], got {budgets}")
    prices = _per_judge(list(config.cost.judge_call), len(specs), "cost.judge_call") if config.cost.judge_call \
        else [0.0] * len(specs)
    if any(p < 0 for p in prices) or config.cost.human_label < 0:
        raise ConfigError("cost.human_label and cost.judge_call must be >= 0")
    steps = []
    for spec, tmpl, budget, price in zip(specs, templates, budgets, prices):
        template = load_template(tmpl or config.judge.template or None)
        steps.append(Step(spec, template, stored_judge_name(spec_name(spec), template), budget, price))
    if len({s.name for s in steps}) != len(steps):
        raise ConfigError(f"escalation.judges: the same judge twice ({[s.name for s in steps]})")
    return steps


def settler_names(config: Config) -> list[str]:
    """Stored names of the escalation judges, strongest first (the order :func:`~rlthf_plugin.selection.signals.settle` wants)."""
    return [s.name for s in reversed(cascade(config))]


__all__ = ["Step", "cascade", "settler_names"]
