"""Reconcile cost on Label Studio: the incremental pull beside the full pass, same project.

A project of ``--tasks`` tasks (SYNTHETIC pairs from ``benchmarks.scale``; ``--labeled`` of
them carry an annotation from the start) on the real Label Studio 1.23.2 the integration
tests use. After a first pull sets the cursor, ``--new`` annotations are made through the
API, then the pull is timed both ways on the same project, in turn:

- incremental (``rlthf pull``): tasks filtered on ``updated_at >= cursor``, paged;
- full pass (``rlthf pull --full``): the project's JSON export, every annotation.

Target (issue 16): 100 new labels on a 100k-task project reconciled in < 5 s.

    PYTHONPATH=. python -m benchmarks.reconcile [--tasks 100000] [--labeled 10000] [--new 100]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks._report import write_section
from benchmarks.scale import baseline_label, run_step, write_pairs
from rlthf_plugin.backends.base import MAX_TASKS_PER_BULK, Task, batched
from rlthf_plugin.backends.label_studio import CURSOR_OVERLAP, task_payload
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.loop import sync
from rlthf_plugin.store.pairs import iter_pairs
from rlthf_plugin.workspace import Workspace


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--labeled", type=int, default=10_000)
    ap.add_argument("--new", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cli-repeats", type=int, default=2, help="runs of `rlthf pull --full` as a process")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="a checkout whose `rlthf pull --full` runs beside this code's (benchmarks.scale --baseline)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    from label_studio_sdk import LabelStudio

    from tests.integration.conftest import free_port
    from tests.integration.label_studio_env import LabelStudioEnv, LabelStudioServer, ensure_installed

    with tempfile.TemporaryDirectory(prefix="rlthf-reconcile-") as tmp:
        work = Path(tmp)
        server = LabelStudioServer(ensure_installed(), work / "label-studio", free_port()).start()
        try:
            env = LabelStudioEnv(server)
            ws = Workspace.init(work / "ws")
            write_pairs(work / "pairs.jsonl", args.tasks)
            import_files(ws.ledger, [str(work / "pairs.jsonl")])
            env.configure(ws, name=f"reconcile-{uuid.uuid4().hex[:8]}")
            backend = env.backend(ws)
            backend.ensure_project()
            client = LabelStudio(base_url=server.url, api_key=server.admin_token, timeout=600)
            annotator = {u.email: u.id for u in client.users.list()}["annotator1@rlthf.test"]
            # Set-up: tasks imported with their annotations in bulk calls (one call per
            # MAX_TASKS_PER_BULK tasks), a batch built at a time; the task ids come back.
            t0 = time.perf_counter()
            tasks: list[int] = []
            rows = (task_payload(Task(p, priority=float(args.tasks - i), reason={"region": "ask"}, iteration=1))
                    for i, p in enumerate(iter_pairs(ws.ledger)))
            for start, batch in enumerate(batched(rows, MAX_TASKS_PER_BULK)):
                for i, row in enumerate(batch, start * MAX_TASKS_PER_BULK):
                    if i < args.labeled:
                        row["annotations"] = [{"result": [{"from_name": "preference", "to_name": "prompt",
                                                           "type": "choices", "value": {"choices": ["Response A"]}}],
                                               "completed_by": annotator}]
                done = client.projects.import_tasks(int(backend.target), request=batch, return_task_ids=True)
                tasks += list(getattr(done, "task_ids", None) or done.model_extra["task_ids"])
            setup = time.perf_counter() - t0
            t0 = time.perf_counter()
            first = sync.pull(ws.ledger, backend, full=True)  # sets the cursor
            first_s = time.perf_counter() - t0
            print(f"set-up {setup:.0f} s ({len(tasks):,} tasks); first full pull {first_s:.0f} s ({first[0]:,} labels)",
                  flush=True)
            # Steady state: one label well after the import, pulled, so the cursor (and its
            # overlap) has moved past the import before the new labels come.
            pause = CURSOR_OVERLAP.total_seconds() + 1
            time.sleep(pause)
            env.annotate(backend, tasks[-1], "A", annotator=2)
            sync.pull(ws.ledger, backend)
            time.sleep(pause)
            for tid in tasks[args.labeled:args.labeled + args.new]:  # unlabeled tasks, imported in id order
                env.annotate(backend, tid, "B", annotator=2)
            cursor_key = f"pull:{backend.platform}:{backend.target}"
            cursor = ws.ledger.get_state(cursor_key)
            inc, full = [], []
            for _ in range(args.repeats):
                ws.ledger.set_state(cursor_key, cursor)  # the same changes each time
                t = time.perf_counter()
                read_inc, new_inc = sync.pull(ws.ledger, backend)
                inc.append(time.perf_counter() - t)
                t = time.perf_counter()
                read_full, _ = sync.pull(ws.ledger, backend, full=True)
                full.append(time.perf_counter() - t)
                print(f"incremental {inc[-1]:.2f} s ({read_inc} read, {new_inc} new); full {full[-1]:.2f} s ({read_full} read)",
                      flush=True)
            # The full pass as an `rlthf` process, for its peak RSS, this code and the baseline's in turn.
            cli_runs: dict[str, list[tuple[float, float]]] = {}
            trees = {"this code": None, **({baseline_label(args.baseline): args.baseline} if args.baseline else {})}
            for _ in range(args.cli_repeats):
                for name, tree in trees.items():
                    path = os.pathsep.join([*([str(tree)] if tree else []), *sys.path])
                    s, rss, tail = run_step([sys.executable, "-m", "rlthf_plugin", "-w", str(ws.root), "pull", "--full",
                                             "--backend", "label-studio"], {**os.environ, "PYTHONPATH": path})
                    cli_runs.setdefault(name, []).append((s, rss))
                    print(f"rlthf pull --full ({name}): {s:.1f} s, {rss:.0f} MB: {tail}", flush=True)
            ws.close()
        finally:
            server.stop()
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    md = "\n".join([
        "## Reconcile: incremental pull vs full pass on Label Studio (`benchmarks/reconcile.py`)",
        "",
        f"Label Studio 1.23.2 (SQLite, 127.0.0.1) started by the test harness; a project of {args.tasks:,} tasks "
        f"from **synthetic pairs**, {args.labeled:,} of them annotated at import (set-up {setup:.0f} s: tasks "
        f"with their annotations in bulk import calls of {MAX_TASKS_PER_BULK}); after a first full pull "
        f"({first[0]:,} labels, {first_s:.0f} s), {args.new} new annotations through the API. Median of "
        f"{args.repeats} runs, each from the same cursor; {platform.machine()}, {os.cpu_count()} CPU cores shared "
        f"with other jobs (load average {os.getloadavg()[0]:.1f} at the end).",
        "",
        "| pull | seconds (median) | labels read | runs (s) |",
        "|---|---:|---:|---|",
        f"| incremental (`rlthf pull`: tasks with updated_at >= cursor) | {med(inc):.2f} | {read_inc:,} | "
        f"{' / '.join(f'{x:.2f}' for x in inc)} |",
        f"| full pass (`rlthf pull --full`: project export) | {med(full):.2f} | {read_full:,} | "
        f"{' / '.join(f'{x:.2f}' for x in full)} |",
        "",
        *([f"`rlthf pull --full` as its own process ({read_full:,} labels; wall time with start-up / peak RSS, "
           f"runs in turn): " + "; ".join(f"{name}: " + ", ".join(f"{x:.1f} s / {m:.0f} MB" for x, m in runs)
                                          for name, runs in cli_runs.items()) + "."] if cli_runs else []),
        "",
        f"Target: < 5 s for {args.new} new labels on a {args.tasks:,}-task project: "
        f"**{'met' if med(inc) < 5 else 'missed'}** ({med(inc):.2f} s).",
        "",
        f"Reproduce: `PYTHONPATH=. python -m benchmarks.reconcile --tasks {args.tasks} --labeled {args.labeled} "
        f"--new {args.new} --repeats {args.repeats} --cli-repeats {args.cli_repeats}"
        f"{f' --baseline {args.baseline}' if args.baseline else ''}`",
    ])
    print(md)
    if not args.no_write:
        write_section("reconcile", md)


if __name__ == "__main__":
    main()
