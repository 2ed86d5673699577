"""A string that keeps itself out of logs and reprs: API keys and webhook secrets."""

from __future__ import annotations


class Secret(str):
    """A string whose repr hides it."""

    def __repr__(self) -> str:
        return "Secret('***')"


__all__ = ["Secret"]
