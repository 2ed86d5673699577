"""Every command the README shows parses (issue 13): the command exists, `--help` works,
and each option it uses is one of that command's options."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from rlthf_plugin.cli import main

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands() -> list[str]:
    """The `rlthf ...` lines of the README's code blocks (continuations joined, comments cut)."""
    text = README.read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" # ", 1)[0].strip().lstrip("$ ")
            if line.startswith("rlthf "):
                out.append(line)
    return out


def resolve(line: str) -> tuple[click.Command, list[str], list[str]]:
    """The command a README line calls, its path and the option names it passes."""
    words = shlex.split(line.replace("[", " ").replace("]", " "))[1:]
    while words and words[0] in ("-w", "--workspace"):
        words = words[2:]
    cmd: click.Command = main
    path = []
    ctx = click.Context(main)
    while isinstance(cmd, click.Group) and words and not words[0].startswith("-"):
        sub = cmd.get_command(ctx, words[0])
        assert sub is not None, f"README: `{line}`: no command '{words[0]}'"
        path.append(words.pop(0))
        cmd = sub
    return cmd, path, [w.split("=", 1)[0] for w in words if w.startswith("--")]


COMMANDS = readme_commands()


def test_the_readme_shows_commands():
    assert len(COMMANDS) >= 15


@pytest.mark.parametrize("line", COMMANDS)
def test_readme_command_parses(line, runner):
    cmd, path, options = resolve(line)
    known = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    unknown = [o for o in options if o not in known]
    assert not unknown, f"README: `{line}`: {' '.join(path)} has no option(s) {unknown}"
    result = runner.invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
