"""Argilla push/pull throughput of the adapter against the raw SDK, same server, same run.

Starts the test harness's argilla-server 2.8.0 (Redis, rq worker, in-memory search
engine; see tests/integration/README.md), then, for N records of the shipped real pairs:

- push: ``ArgillaBackend.push`` (listing first, then bulk upserts of 500) against raw
  ``dataset.records.log`` of the same records into a fresh dataset;
- pull: ``ArgillaBackend.pull`` (search of records with responses, every response mapped
  to a label) against a raw listing of the same records with their responses.

Run: ``PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/sync_throughput_argilla.py [--n 1000]``.
Writes the ``sync_throughput_argilla`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks._report import write_section
from rlthf_plugin.loop import sync
from rlthf_plugin.data import DEV_PAIRS
from rlthf_plugin.io.importer import import_files
from rlthf_plugin.loop.tasks import asked_tasks
from rlthf_plugin.workspace import Workspace
from tests.integration.argilla_env import OWNER_KEY, ArgillaEnv, ArgillaServer
from tests.integration.conftest import add_asked_iteration


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def raw_log(server: ArgillaServer, name: str, tasks) -> float:
    import argilla as rg

    from rlthf_plugin.backends.argilla import load_settings, record_metadata

    client = rg.Argilla(api_url=server.url, api_key=OWNER_KEY)
    ds = rg.Dataset(name=name, workspace="argilla", settings=load_settings(), client=client).create()
    records = [{"id": t.pair.id, "prompt": t.pair.prompt, "response_a": t.pair.response_a,
                "response_b": t.pair.response_b, **record_metadata(t)} for t in tasks]
    _, seconds = timed(lambda: ds.records.log(records, batch_size=500))
    return seconds


def raw_listing(server: ArgillaServer, dataset_id: str) -> tuple[int, float]:
    def run():
        n, offset = 0, 0
        with httpx.Client(base_url=server.url, headers={"X-Argilla-Api-Key": OWNER_KEY}, timeout=120) as c:
            while True:
                r = c.get(f"/api/v1/datasets/{dataset_id}/records",
                          params={"offset": offset, "limit": 500, "include": ["responses"]})
                items = r.json()["items"]
                n += sum(len(i["responses"]) for i in items)
                if len(items) < 500:
                    return n
                offset += len(items)
    return timed(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="records per push (default 1000)")
    parser.add_argument("--annotated", type=int, default=300, help="records answered by two annotators")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = ArgillaServer(Path(tmp) / "server")
        server.root.mkdir()
        server.start()
        try:
            env = ArgillaEnv(server)
            ws = Workspace.init(Path(tmp) / "ws")
            import_files(ws.ledger, [str(DEV_PAIRS)], skip_invalid=True)
            add_asked_iteration(ws.ledger, args.n)
            tasks = asked_tasks(ws.ledger)
            raw_push = raw_log(server, "bench-raw", tasks)
            env.configure(ws, name="bench-adapter")
            backend = env.backend(ws)
            report, adapter_push = timed(lambda: sync.push(ws.ledger, backend, tasks, iteration=1))
            _, rerun = timed(lambda: sync.push(ws.ledger, backend, tasks, iteration=1))
            for i, pid in enumerate(list(report.mapping)[:args.annotated]):
                env.annotate(backend, report.mapping[pid], "AB"[i % 2], annotator=1)
                env.annotate(backend, report.mapping[pid], "tie", annotator=2)
            result, adapter_pull = timed(lambda: backend.pull())
            raw_n, raw_pull = raw_listing(server, str(backend.dataset().id))
            assert len(result.labels) == raw_n == 2 * args.annotated
            backend.close()
            ws.close()
        finally:
            server.stop()
    rows = [
        ("push (records/s)", args.n / raw_push, args.n / adapter_push),
        ("pull (labels/s)", raw_n / raw_pull, raw_n / adapter_pull),
    ]
    lines = [
        "## Argilla sync throughput (adapter vs raw SDK, same server, same run)",
        "",
        f"argilla-server 2.8.0 with the harness's in-memory search engine, SQLite, {platform.machine()}, "
        f"{args.n} records, {raw_n} responses from 2 annotators.",
        "Command: `PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/sync_throughput_argilla.py "
        f"--n {args.n} --annotated {args.annotated}`",
        "",
        "| operation | raw | adapter | adapter / raw |",
        "|---|---:|---:|---:|",
        *[f"| {op} | {raw:.0f} | {ours:.0f} | {ours / raw:.0%} |" for op, raw, ours in rows],
        "",
        f"Raw push: `dataset.records.log` (batch 500); adapter push: `rlthf` push (listing + bulk upserts). "
        f"Raw pull: listing with responses; adapter pull: search for records with responses + mapping. "
        f"A rerun of the unchanged push (nothing sent) took {rerun:.2f} s.",
    ]
    write_section("sync_throughput_argilla", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
