"""The exception tree of rlthf_plugin.

Every error a user can act on subclasses :class:`RlthfError`, itself a
``click.ClickException`` so the CLI prints its message (no traceback) and exits 1::

    RlthfError                      exit 1
    ├── InvalidInputError           a file, line and field that could not be read
    ├── ConfigError                 a bad config value or a missing secret
    ├── WorkspaceError              no workspace / ledger at the path, schema too new
    ├── MissingExtraError           an optional extra is not installed
    ├── BackendError                a labeling platform refused or failed a call
    ├── JudgeError                  an LLM judge endpoint or model failed (after retries)
    │   ├── IncompatibleProjectError  an existing project/dataset lacks a field or question
    │   └── NotThePlatformError     the URL answers, but not as Label Studio / Argilla does
    ├── WebhookAuthError            a webhook without a valid secret or signature, or a replay
    ├── BadWebhookError             an authenticated webhook body of the wrong shape (HTTP 400)
    ├── DuplicateTargetError        pairs already on another project/dataset (one vote per annotator)
    ├── LeaseHeldError              another process owns the iteration (its lease is held)
    └── LeaseLostError              this process lost the iteration lease mid-step; nothing written
"""

from __future__ import annotations

from dataclasses import dataclass

import click


def one_line(text: object, limit: int = 300) -> str:
    """``text`` on one line (runs of whitespace, newlines included, become one space), cut to
    ``limit`` characters with ``...`` after: a server's error body or page in an error line."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit] + "..."


class RlthfError(click.ClickException):
    """Root of every error rlthf_plugin raises on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class InputProblem:
    """One bad row: where it is and what is wrong with it."""

    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        field = f" field '{self.field}':" if self.field else ""
        return f"{where}:{field} {self.message}"


class InvalidInputError(RlthfError):
    """Input rows that cannot be imported; ``problems`` lists each one."""

    def __init__(self, problems: list[InputProblem], *, hint: str | None = None, limit: int = 20):
        self.problems = list(problems)
        lines = [str(p) for p in self.problems[:limit]]
        more = len(self.problems) - limit
        if more > 0:
            lines.append(f"... and {more} more")
        head = f"{len(self.problems)} invalid row(s); nothing was imported:"
        message = "\n".join([head, *("  " + line for line in lines)])
        if hint:
            message += "\n" + hint
        super().__init__(message)


class ConfigError(RlthfError):
    """A configuration value is missing or malformed."""


class WorkspaceError(RlthfError):
    """The workspace or its ledger is missing or unusable."""


class MissingExtraError(RlthfError):
    """An optional dependency is not installed; the message gives the pip command."""

    def __init__(self, package: str, extra: str):
        super().__init__(
            f"this needs the optional package '{package}': pip install 'rlthf_plugin[{extra}]'"
        )


class BackendError(RlthfError):
    """A labeling platform answered with an error or an inconsistent result."""


class JudgeError(RlthfError):
    """The judge's endpoint refused a call or kept failing after the retries; results so far are kept."""


class IncompatibleProjectError(BackendError):
    """An existing project or dataset lacks a field or question the plugin needs."""


class NotThePlatformError(BackendError):
    """The URL answers, but not as the platform does (another service, a web page, a proxy)."""


class WebhookAuthError(RlthfError):
    """A webhook delivery without a valid secret or signature, or a replay of a stored one."""


class BadWebhookError(RlthfError):
    """An authenticated webhook delivery whose body does not have the event's shape."""


class DuplicateTargetError(RlthfError):
    """Pairs already pushed to another project or dataset: one annotator could vote twice."""


class LeaseHeldError(RlthfError):
    """Another process holds the lease: it is moving the iteration now."""

    def __init__(self, name: str, holder: str | None):
        self.holder = holder
        super().__init__(f"the {name} lease is held by {holder or 'another process'}: another `rlthf serve` or "
                         "command is moving the iteration; wait for it to finish (or stop it) and run again")


class LeaseLostError(RlthfError):
    """The lease was lost while a step ran (taken over, expired, or its renewal failed)."""

    def __init__(self, name: str, reason: str):
        self.reason = reason
        super().__init__(f"lost the {name} lease ({reason}); the step stopped and its last write was rolled back")


def require(module: str, extra: str):
    """Import an optional module or raise :class:`MissingExtraError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(module.split(".")[0], extra) from e
