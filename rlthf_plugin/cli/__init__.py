"""The ``rlthf`` command line: a thin click layer over the Python API.

Commands live in one module per area and are imported only when used, so
``rlthf --help`` stays fast and an optional extra is needed only by its own command.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click

#: command name -> "module:function" (modules under rlthf_plugin.cli).
COMMANDS: dict[str, str] = {
    "init": "workspace_cmds:init",
    "import": "workspace_cmds:import_",
    "status": "workspace_cmds:status",
    "push": "sync_cmds:push",
    "pull": "sync_cmds:pull",
    "serve": "sync_cmds:serve",
    "targets": "sync_cmds:targets",
    "abandon": "sync_cmds:abandon",
    "candidates": "real_cmds:candidates",
    "label-ai": "judge_cmds:label_ai",
    "embed": "embed_cmds:embed",
    "select": "loop_cmds:select",
    "label": "loop_cmds:label",
    "run": "loop_cmds:run",
    "export": "loop_cmds:export",
    "train": "train_cmds:train",
    "report": "report_cmds:report",
    "evaluate": "eval_cmds:evaluate",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-w", "--workspace", type=click.Path(file_okay=False, path_type=Path), default=".",
              envvar="RLTHF_WORKSPACE", show_default=True,
              help="Workspace folder (rlthf.toml + ledger). Env: RLTHF_WORKSPACE.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="warning",
              envvar="RLTHF_LOG_LEVEL", show_default=True,
              help="How much to log (stderr). Env: RLTHF_LOG_LEVEL.")
@click.option("--mmap-threshold", type=click.IntRange(min=0), default=1 << 20, envvar="RLTHF_MMAP_THRESHOLD",
              show_default=True,
              help="Arrays of at least this many bytes are mapped on their own and returned to the OS when "
                   "freed (a large select's peak the same every run; ~18% slower at 200k pairs); 0 keeps "
                   "glibc's own threshold. Env: RLTHF_MMAP_THRESHOLD.")
@click.version_option(package_name="rlthf_plugin")
@click.pass_context
def main(ctx: click.Context, workspace: Path, log_level: str, mmap_threshold: int) -> None:
    """Targeted human feedback for preference data.

    An LLM judge labels every pair; a reward model trained on those labels finds the
    pairs the judge probably got wrong (RLTHF) and the pairs worth a human label (REAL);
    the plugin pushes them to Argilla or Label Studio, pulls the human labels back,
    retrains, and exports a curated set for TRL.

    Typical loop: init -> import -> label-ai -> select -> push -> pull -> ... -> export.
    """
    import logging

    from ..memory import map_large_arrays

    map_large_arrays(mmap_threshold)  # freed arrays go back to the OS: a million-pair select peaks lower, every run
    logging.basicConfig(level=getattr(logging, log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(max(logging.WARNING, getattr(logging, log_level.upper())))
    ctx.obj = {"workspace": workspace, "log_level": log_level}
