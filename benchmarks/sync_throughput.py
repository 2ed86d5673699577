"""Push and pull throughput of the platform adapters against the platforms' raw bulk calls.

Each platform has one function (``PLATFORMS``) that measures, on the same server and in
the same run, the adapter's path (``rlthf_plugin.loop.sync.push`` / ``sync.pull``, i.e. the
lookup by pair id, the bulk calls, the count checks and the ledger writes) side by side
with the SDK's raw bulk calls on the same payload. The goal is an adapter at >= 90% of
the raw rate. Results go to ``docs/benchmarks.md`` (one section per platform).

    python -m benchmarks.sync_throughput --platform label-studio [--tasks 2000] [--repeats 3]

By default the server is the one the integration tests use (installed once and started
on a free 127.0.0.1 port by ``tests/integration/label_studio_env.py``).
"""

from __future__ import annotations

import argparse
import json
import platform as platform_mod
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from benchmarks._report import write_section
from rlthf_plugin.loop import sync
from rlthf_plugin.backends.base import MAX_TASKS_PER_BULK, Task
from rlthf_plugin.batching import batched
from rlthf_plugin.data import DEV_PAIRS
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.workspace import Workspace


@dataclass
class Row:
    """One operation measured both ways: items per second (median of the repeats)."""

    operation: str
    items: int
    raw_rate: float
    adapter_rate: float
    with_ledger_rate: float

    @property
    def ratio(self) -> float:
        return self.adapter_rate / self.raw_rate


def interleaved_rates(items: int, runs: Sequence[Callable[[], float | None]], repeats: int) -> list[float]:
    """Items per second of each of ``runs`` (median over ``repeats``), run in turn
    (raw, adapter, raw, adapter...) so that a load change on the machine hits all alike.

    A run may return the seconds it measured itself (to leave set-up out), or None to be
    timed whole.
    """
    seconds: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for i, run in enumerate(runs):
            start = time.perf_counter()
            measured = run()
            seconds[i].append(measured if measured is not None else time.perf_counter() - start)
    return [items / statistics.median(s) for s in seconds]


def real_tasks(workspace: Workspace, n: int) -> list[Task]:
    """``n`` shipped real pairs as tasks with distinct priorities, reasons and AI labels."""
    ai = workspace.ledger.ai_majority()
    pairs = workspace.ledger.get_pairs()
    if len(pairs) < n:
        raise SystemExit(f"only {len(pairs)} shipped pairs, --tasks {n} asked")
    return [
        Task(p, priority=float(n - i), reason={"region": "ask", "margin": -i / n, "rank": i}, iteration=1,
             ai_label=ai[p.id].label if p.id in ai else None, margin=-i / n, model_version="bench")
        for i, p in enumerate(pairs[:n])
    ]


def markdown(title: str, rows: list[Row], notes: list[str]) -> str:
    lines = [f"## {title}", "", *notes, "",
             "| operation | items | raw SDK (items/s) | adapter (items/s) | adapter / raw "
             "| adapter + ledger (items/s) | + ledger / raw |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.operation} | {r.items} | {r.raw_rate:,.0f} | {r.adapter_rate:,.0f} | {r.ratio:.0%} "
              f"| {r.with_ledger_rate:,.0f} | {r.with_ledger_rate / r.raw_rate:.0%} |" for r in rows]
    return "\n".join(lines)


# -- Label Studio -------------------------------------------------------------------------
def label_studio(n: int, repeats: int, workdir: Path) -> str:
    """Push ``n`` tasks (AI label hidden, then shown as predictions) and pull the labels of
    ``n`` tasks with two annotations each, adapter vs raw SDK, on one Label Studio server."""
    from tests.integration.label_studio_env import LabelStudioEnv, LabelStudioServer, ensure_installed
    from tests.integration.conftest import free_port

    from rlthf_plugin.backends.label_studio import TEMPLATE

    server = LabelStudioServer(ensure_installed(), workdir / "label-studio", free_port()).start()
    try:
        env = LabelStudioEnv(server)
        ws = Workspace.init(workdir / "ws")
        import_files(ws.ledger, [str(DEV_PAIRS)], skip_invalid=True)
        tasks = real_tasks(ws, n)
        from label_studio_sdk import LabelStudio

        client = LabelStudio(base_url=server.url, api_key=server.admin_token, timeout=300)
        rows = []
        for shown in (False, True):
            def adapter_push(with_ledger: bool, shown: bool = shown) -> float:
                env.configure(ws, name=f"bench-{uuid.uuid4().hex[:8]}", show_predictions=shown)
                backend = env.backend(ws)
                backend.ensure_project()  # project creation is not part of the rate
                start = time.perf_counter()
                if with_ledger:
                    report = sync.push(ws.ledger, backend, tasks, iteration=1, allow_duplicate_targets=True)
                else:
                    report = backend.push(tasks, known={})
                elapsed = time.perf_counter() - start
                assert report.created == n, report
                backend.close()
                return elapsed

            def raw_push(shown: bool = shown) -> float:
                pid = client.projects.create(title=f"raw-{uuid.uuid4().hex[:8]}",
                                             label_config=TEMPLATE.read_text(encoding="utf-8")).id
                payload = [raw_payload(t, shown) for t in tasks]
                start = time.perf_counter()
                for batch in batched(payload, MAX_TASKS_PER_BULK):
                    client.projects.import_tasks(pid, request=list(batch), return_task_ids=True)
                return time.perf_counter() - start

            rates = interleaved_rates(n, [raw_push, lambda: adapter_push(False), lambda: adapter_push(True)], repeats)
            rows.append(Row(f"push ({'with predictions' if shown else 'AI label hidden'})", n, *rates))

        # Pull: one project whose n tasks carry two annotations each (imported in bulk).
        env.configure(ws, name=f"bench-pull-{uuid.uuid4().hex[:8]}")
        backend = env.backend(ws)
        backend.ensure_project()
        users = {u.email: u.id for u in client.users.list()}
        annotated = []
        for i, t in enumerate(tasks):
            payload = raw_payload(t, False)
            payload["annotations"] = [
                {"result": [{"from_name": "preference", "to_name": "prompt", "type": "choices",
                             "value": {"choices": [("A", "B", "tie")[(i + k) % 3]]}}],
                 "completed_by": users[email]}
                for k, email in enumerate(("annotator1@rlthf.test", "annotator2@rlthf.test"))]
            annotated.append(payload)
        for batch in batched(annotated, MAX_TASKS_PER_BULK):
            client.projects.import_tasks(int(backend.target), request=list(batch))
        labels = 2 * n

        def raw_pull() -> None:
            data = json.loads(b"".join(client.projects.exports.download_sync(
                int(backend.target), export_type="JSON", download_all_tasks=False)))
            assert sum(len(t["annotations"]) for t in data) == labels

        def adapter_pull() -> None:
            assert len(backend.pull(cursor=None).labels) == labels

        def adapter_pull_into_ledger() -> None:
            read, _ = sync.pull(ws.ledger, backend, full=True)
            assert read == labels, read

        rows.append(Row("pull (every label)", labels,
                        *interleaved_rates(labels, [raw_pull, adapter_pull, adapter_pull_into_ledger], repeats)))
        ws.close()
    finally:
        server.stop()
    notes = [
        f"`python -m benchmarks.sync_throughput --platform label-studio --tasks {n} --repeats {repeats}`: "
        f"Label Studio 1.23.2 (SQLite, 127.0.0.1), label-studio-sdk 2.1.2, {n} shipped real pairs, "
        f"batches of {MAX_TASKS_PER_BULK}, median of {repeats} runs, raw and adapter runs interleaved; {platform_mod.processor() or platform_mod.machine()}, "
        f"Python {platform_mod.python_version()}.",
        "",
        "Raw: `projects.import_tasks` on a fresh project with the same payload; `exports.download_sync` (JSON) "
        "for pull. Adapter: `LabelStudioBackend.push` (lookup of existing tasks by pair id, bulk import, created "
        "and prediction counts checked) and `.pull` (export, every annotator's label as a HumanLabel). "
        "Adapter + ledger: `rlthf_plugin.loop.sync.push` / `sync.pull`, which also record the pushes and store the "
        "labels idempotently in the workspace ledger (SQLite). Goal: adapter >= 90% of raw.",
    ]
    return markdown("Sync throughput: Label Studio", rows, notes)


def raw_payload(task: Task, shown: bool) -> dict:
    """The same task payload the adapter sends, built outside the timed region."""
    from rlthf_plugin.backends.label_studio import task_payload

    return task_payload(task, show_predictions=shown)


#: platform name -> (function(tasks, repeats, workdir) -> markdown, report section name).
PLATFORMS: dict[str, tuple[Callable[[int, int, Path], str], str]] = {
    "label-studio": (label_studio, "sync_throughput_label_studio"),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", choices=[*PLATFORMS, "all"], default="all")
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    for name in (PLATFORMS if args.platform == "all" else [args.platform]):
        run, section = PLATFORMS[name]
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
            text = run(args.tasks, args.repeats, Path(tmp))
        write_section(section, text)
        print(text, file=sys.stdout)


if __name__ == "__main__":
    main()
