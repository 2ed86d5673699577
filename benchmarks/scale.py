"""How each step's time and peak memory grow with the number of pairs (SYNTHETIC pairs).

The pairs are synthetic (generated here, not real data): prompt ``i // 4`` (four pairs
share a prompt), two distinct responses of 20-60 words from a fixed vocabulary, a random
AI label. Each step runs as its own ``rlthf`` CLI process on one workspace (SQLite), and
its wall time and peak RSS (``wait4``'s ``ru_maxrss``) are recorded:

- ``import``: the pairs file (JSON lines);
- ``status``;
- ``embed``: fills the embedding cache for every prompt and response with SYNTHETIC unit
  vectors (seeded; MiniLM on 2 CPU cores would take days at 1M, see the embeddings
  section for the real rate) so that ``select`` runs with every embedding cached, as the
  target asks; its time is the cache write, reported apart;
- ``select``: one RLTHF iteration with the embedding reward model (cached vectors);
- ``status`` again after ``select`` (the quality estimate over the iteration's decisions);
- ``export``: the curated set (after ``select`` where it ran: with the decisions and the card);
- with ``--platforms``, against the real servers of the test harness (Label Studio 1.23.2,
  argilla-server 2.8.0, each started once for the run), up to ``--push-max`` pairs:
  ``push --all`` of every pair to a new project / dataset; then a ``--labeled`` fraction
  of the tasks is answered through the platform's API (set-up, timed apart) and
  ``pull`` reads them (the first pull: every label new); ``--new-labels`` more answers,
  and ``pull`` again (incremental: the labels since the cursor); ``pull --full`` (every
  label read again). These go to their own section, ``scale_sync``.

The growth exponent is the slope of log(time) (and log(RSS)) against log(N) between the
two largest sizes measured for a step (1 = linear).

With ``--select-baseline DIR`` a checkout's code (e.g. ``git archive main``) fills the cache and
selects on a copy of the workspace at ``--select-baseline-at`` pairs, in the same run; with
``--embed-pairs N``, ``rlthf embed`` (packaged MiniLM, CPU, nothing cached) of N pairs runs
with one process and with ``torchrun --nproc_per_node 2``.

    PYTHONPATH=. python -m benchmarks.scale [--sizes 10000,100000,1000000] [--select-max 100000]
        [--select-baseline /tmp/main --select-baseline-at 200000] [--embed-pairs 300]
        [--platforms label-studio,argilla --push-max 100000 --labeled 0.05 --new-labels 100] [--sync-only]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._report import write_section
from rlthf_plugin.store.pushes import pushes_per_target

WORDS = ("the model answer explains why each step follows from the previous one and gives a short "
         "example with numbers code or a list of sources that a careful reader can check quickly").split()
EMBEDDER = "st:packaged:all-MiniLM-L6-v2:256"  # SentenceEmbedder's cache name (the select default)


def write_pairs(path: Path, n: int, seed: int = 0) -> None:
    """``n`` SYNTHETIC pairs in the merged JSON-lines format."""
    rng = np.random.default_rng(seed)
    words = np.array(WORDS)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            a, b = (" ".join(words[rng.integers(0, len(words), rng.integers(20, 60))]) for _ in range(2))
            f.write(json.dumps({"prompt": f"synthetic prompt {i // 4}: explain topic {i // 4}",
                                "response_a": f"{a} [{i}a]", "response_b": f"{b} [{i}b]",
                                "ai_label": "A" if rng.random() < 0.5 else "B"}) + "\n")


FILL_CACHE = """
import sys, numpy as np
from rlthf_plugin.pairs import text_hash
from rlthf_plugin.store import pairs as P
from rlthf_plugin.workspace import Workspace
ws = Workspace.open(sys.argv[1]); model = sys.argv[2]
rng = np.random.default_rng(0)
batch, seen = [], set()
def flush():  # the workspace's vector store (this code: its vector files; older code: the ledger's table)
    v = rng.normal(size=(len(batch), 384)).astype(np.float32)
    ws.ledger.save_vectors(model, batch, v / np.linalg.norm(v, axis=1, keepdims=True)); batch.clear()
for p in P.iter_pairs(ws.ledger):
    for t in (p.prompt, p.response_a, p.response_b):
        h = text_hash(t)
        if h not in seen:
            seen.add(h); batch.append(h)
    if len(batch) >= 20000: flush()
if batch: flush()
print(len(seen), "synthetic vectors cached")
"""


def run_step(args: list[str], env: dict) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and output tail of one child process, run outside any
    checkout (``python -m`` puts the working directory first on sys.path: PYTHONPATH decides)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tempfile.gettempdir())
    out = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(args)} exited {code}:\n{out[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, out.strip().splitlines()[-1] if out.strip() else ""


def exponent(ns: list[int], ys: list[float]) -> float:
    if len(ns) < 2:
        return float("nan")
    return float(np.log(ys[-1] / ys[-2]) / np.log(ns[-1] / ns[-2]))


def table(results: dict[str, dict[int, tuple[float, float]]], sizes: list[int]) -> list[str]:
    """Markdown rows: one per step, a cell per size (wall time / peak RSS), the exponents."""
    rows = [f"| step | {' | '.join(f'{n:,} pairs' for n in sizes)} | time exponent | RSS exponent |",
            f"|---|{'---|' * len(sizes)}---:|---:|"]
    for name, by_n in results.items():
        ns = sorted(by_n)
        cells = " | ".join(f"{by_n[n][0]:.1f} s / {by_n[n][1]:.0f} MB" if n in by_n else "not run" for n in sizes)
        rows.append(f"| {name} | {cells} | {exponent(ns, [by_n[n][0] for n in ns]):.2f} | "
                    f"{exponent(ns, [by_n[n][1] for n in ns]):.2f} |")
    return rows


def machine() -> str:
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs "
            f"(load average {os.getloadavg()[0]:.1f} at the end)")


def report(results: dict[str, dict[int, tuple[float, float]]], sizes: list[int], args, write: bool) -> str:
    """The markdown table of what was measured so far (written after each size)."""
    md = "\n".join([
        "## Scale: time and peak memory per step (`benchmarks/scale.py`)",
        "",
        f"**Synthetic pairs** (generated by the script; four pairs per prompt, responses of 20-60 words), "
        f"SQLite workspace, each step a separate `rlthf` process; {machine()}. Cells: wall time / peak RSS.",
        "Exponents: slope of log(time) and log(RSS) on log(N) between the two largest sizes run (1 = linear).",
        "",
        *table(results, sizes),
        "",
        "Rows tagged [branch@commit] ran that checkout's code (`--select-baseline`) on a copy of the same workspace "
        "in the same run, right before this code's rows." if args.select_baseline
        else "",
        f"Reproduce: `PYTHONPATH=. python -m benchmarks.scale --sizes {args.sizes} --select-max {args.select_max}"
        + (f" --select-baseline {args.select_baseline} --select-baseline-at {args.select_baseline_at}"
           if args.select_baseline else "") + (f" --embed-pairs {args.embed_pairs}" if args.embed_pairs else "") + "`",
    ])
    if write:
        write_section("scale", md)
    return md


def parse_push_max(text: str, platforms: list[str]) -> dict[str, int]:
    """``--push-max``: one number for every platform, or ``platform=N,...`` (others: no limit)."""
    if "=" not in text:
        return {p: int(text) for p in platforms}
    given = dict(item.split("=", 1) for item in text.split(","))
    return {p: int(given[p]) if p in given else sys.maxsize for p in platforms}


def baseline_label(tree: Path) -> str:
    """``branch@commit`` of a checkout, for the table."""
    def git(*a: str) -> str:
        return subprocess.run(["git", "-C", str(tree), *a], capture_output=True, text=True).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD")
    return f"{git('rev-parse', '--abbrev-ref', 'HEAD')}@{commit}" if commit else tree.name  # an exported tree: its name


# -- push and pull against the real servers -----------------------------------------------
PLATFORMS = ("label-studio", "argilla")
#: Annotation requests in flight at once while answering tasks (set-up, not measured).
ANSWER_THREADS = 4


class PlatformServer:
    """One platform's real server from the test harness, started once for the run, with
    the annotators' API calls that answer tasks (set-up, timed apart from the steps)."""

    def __init__(self, name: str, root: Path):
        self.name = name
        root.mkdir(parents=True, exist_ok=True)
        if name == "label-studio":
            from tests.integration.conftest import free_port
            from tests.integration.label_studio_env import LabelStudioEnv, LabelStudioServer, ensure_installed

            self.server = LabelStudioServer(ensure_installed(), root / "server", free_port()).start()
            self.env = LabelStudioEnv(self.server)
        elif name == "argilla":
            from tests.integration.argilla_env import ArgillaEnv, ArgillaServer

            self.server = ArgillaServer(root).start()
            self.env = ArgillaEnv(self.server)
        else:
            raise SystemExit(f"--platforms: unknown platform {name!r} (label-studio, argilla)")

    def answer(self, external_ids: list[str], *, annotator: int = 1) -> float:
        """Answer the tasks ``external_ids`` as ``annotator`` through the platform's API:
        Argilla's bulk responses endpoint (100 a call); Label Studio (no bulk annotation
        call in the Community edition) one annotation a request, a few in flight."""
        from concurrent.futures import ThreadPoolExecutor

        t0 = time.perf_counter()
        if self.name == "argilla":
            with self.server.annotator(annotator) as client:
                for start in range(0, len(external_ids), 100):
                    items = [{"record_id": ext, "status": "submitted", "values": {"label": {"value": "ab"[i % 2]}}}
                             for i, ext in enumerate(external_ids[start:start + 100], start)]
                    r = client.post("/api/v1/me/responses/bulk", json={"items": items})
                    r.raise_for_status()
                    failed = [x["error"] for x in r.json()["items"] if x.get("error")]
                    if failed:
                        raise RuntimeError(f"argilla refused {len(failed)} response(s): {failed[0]}")
        else:
            with ThreadPoolExecutor(ANSWER_THREADS) as pool:
                list(pool.map(lambda ie: self.env.annotate(None, ie[1], "AB"[ie[0] % 2], annotator=annotator),
                              enumerate(external_ids)))
        return time.perf_counter() - t0

    def stop(self) -> None:
        self.server.stop()


def read_counts(tail: str) -> tuple[int, int]:
    """(read, new) from `rlthf pull`'s last line: "... read R label(s), N new"."""
    import re

    m = re.search(r"read (\d+) label\(s\), (\d+) new", tail)
    if not m:
        raise RuntimeError(f"unexpected pull output: {tail!r}")
    return int(m.group(1)), int(m.group(2))


def sync_steps(server: PlatformServer, cli: list[str], ws_path: Path, n: int, args, env: dict,
               record, tag: str = "") -> dict[str, Any]:
    """Push every pair of the workspace to a new project / dataset, answer a share of the
    tasks, and pull three ways; ``record(step, n, cmd, check, env)`` runs and records a
    step; ``tag`` ends each step's name (the baseline's)."""
    from rlthf_plugin.backends.label_studio import CURSOR_OVERLAP
    from rlthf_plugin.workspace import Workspace

    ws = Workspace.open(ws_path)
    try:
        server.env.configure(ws, name=f"scale-{n}-{uuid.uuid4().hex[:6]}")
        base = [*cli, "-w", str(ws_path)]
        p = server.name
        record(f"{p}: push (every pair){tag}", n, [*base, "push", "--all", "--backend", p, "--allow-duplicate-targets"],
               None, env)
        (target, mapping), = [(t, ws.ledger.pushed(p, t)) for (pl, t) in pushes_per_target(ws.ledger) if pl == p]
        if len(mapping) != n:
            raise RuntimeError(f"{p}: {len(mapping)} pairs recorded as pushed, {n} expected")
        external = [mapping[pid] for pid in sorted(mapping)]
        labeled, new = int(n * args.labeled), args.new_labels
        setup = server.answer(external[:labeled])
        record(f"{p}: pull, first (every label new){tag}", n, [*base, "pull", "--backend", p],
               lambda tail: read_counts(tail) == (labeled, labeled), env)
        # Steady state, as benchmarks/reconcile.py: one label well after the first batch, pulled, so
        # the cursor (less its overlap) has moved past that batch before the new labels come.
        pause = CURSOR_OVERLAP.total_seconds() + 1
        time.sleep(pause)
        setup += server.answer(external[labeled:labeled + 1])
        run_step([*base, "pull", "--backend", p], env)
        time.sleep(pause)
        setup += server.answer(external[labeled + 1:labeled + 1 + new])
        record(f"{p}: pull, {new} new labels{tag}", n, [*base, "pull", "--backend", p],
               lambda tail: read_counts(tail)[1] == new, env)
        record(f"{p}: pull --full (every label again){tag}", n, [*base, "pull", "--full", "--backend", p],
               lambda tail: read_counts(tail) == (labeled + 1 + new, 0), env)
        return {"labels": labeled, "new": new, "answer_s": setup, "target": target}
    finally:
        ws.close()


def sync_report(results: dict[str, dict[int, tuple[float, float]]], sizes: list[int], notes: dict, args,
                write: bool) -> str:
    """The ``scale_sync`` section: push and pull per platform and size."""
    platforms = [p for p in args.platforms.split(",") if p]
    labels = "; ".join(f"{n:,} pairs: {notes[n]['labels']:,} labels answered before the first pull, "
                       f"then {notes[n]['new']} new" for n in sizes if n in notes)
    answering = "; ".join(f"{p} at {n:,}: {s:.0f} s" for (p, n), s in sorted(notes.get("answer_s", {}).items()))
    md = "\n".join([
        "## Scale: push and pull against the real servers (`benchmarks/scale.py --platforms`)",
        "",
        f"**Synthetic pairs** (as in the scale section), SQLite workspace, each step a separate `rlthf` process "
        f"(wall time includes its start-up and imports) against the test harness's Label Studio 1.23.2 "
        f"(SQLite) and argilla-server 2.8.0 (SQLite, in-memory search engine), on 127.0.0.1 and the same "
        f"{os.cpu_count()} cores; {machine()}. Cells: wall time / peak RSS of the `rlthf` process (the servers' "
        "memory is not in it).",
        "",
        "- push: `rlthf push --all --allow-duplicate-targets` of every pair to a new project / dataset (AI label "
        "hidden; the same pairs go to both platforms).",
        f"- pull, first: `rlthf pull` after {args.labeled:.0%} of the tasks were answered through the platform's "
        f"API (Argilla: the bulk responses endpoint; Label Studio: one annotation a request, "
        f"{ANSWER_THREADS} in flight); every label is new. {labels}.",
        f"- pull, {args.new_labels} new labels: `rlthf pull` in steady state (after the first pull, one more "
        "answer and an unrecorded pull moved the cursor past the first batch; Label Studio: tasks "
        "listed by `updated_at` on the server; Argilla: every record with a response is read and the "
        "responses are filtered by time on the client, see scale_targets).",
        "- pull --full: every label read again (none new).",
        "",
        *table(results, sizes),
        "",
        f"Answering through the API (set-up, not a step): {answering or 'n/a'}.",
        *([f"Rows tagged [{baseline_label(args.baseline)}] ran that checkout's code (`--baseline`), on its own "
           "workspace and project / dataset, on the same servers in the same run, right before this code's rows."]
          if args.baseline else []),
        *([f"Not run: {', '.join(f'{p} above {m:,} pairs' for p, m in parse_push_max(args.push_max, platforms).items() if m < max(sizes))} "
           "(`--push-max`); see scale_targets for the projection."]
          if any(m < max(sizes) for m in parse_push_max(args.push_max, platforms).values()) else []),
        "",
        f"Reproduce: `PYTHONPATH=. python -m benchmarks.scale --sync-only --sizes {args.sizes} "
        f"--platforms {args.platforms} --push-max {args.push_max} --labeled {args.labeled} "
        f"--new-labels {args.new_labels}{f' --baseline {args.baseline}' if args.baseline else ''}`",
    ])
    if write:
        write_section("scale_sync", md)
    return md


def embed_rows(cli: list[str], env: dict, n: int) -> dict[str, dict[int, tuple[float, float]]]:
    """`rlthf embed` (packaged MiniLM on CPU, nothing cached) of ``n`` synthetic pairs: one
    process, then the two ranks of ``torchrun --nproc_per_node 2`` (each half the texts,
    one thread each; RSS: the largest process)."""
    out: dict[str, dict[int, tuple[float, float]]] = {}
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    with tempfile.TemporaryDirectory(prefix="rlthf-scale-embed-") as tmp:
        data = Path(tmp) / "pairs.jsonl"
        write_pairs(data, n)
        for name, launch in (("embed, MiniLM on CPU, 1 process", [*cli]),
                             ("embed, MiniLM on CPU, torchrun 2 processes",
                              [torchrun, "--nproc_per_node", "2", "--master_port", "29547", "-m", "rlthf_plugin"])):
            ws = Path(tmp) / name.split()[-2]
            subprocess.run([*cli, "init", str(ws)], check=True, env=env, capture_output=True)
            run_step([*cli, "-w", str(ws), "import", str(data)], env)
            s, rss, tail = run_step([*launch, "-w", str(ws), "embed", "--no-progress"], env)
            out[name] = {n: (s, rss)}
            print(f"{n:>9,} {name:<42} {s:8.1f} s {rss:8.0f} MB   {tail[:100]}", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--select-max", type=int, default=100_000,
                    help="largest N for embed+select (the cache holds (2.25 N) x 384 float32 vectors)")
    ap.add_argument("--platforms", default="",
                    help="push and pull against these real servers (label-studio,argilla), started once")
    ap.add_argument("--push-max", default="100000",
                    help="largest N pushed and pulled: a number, or per platform (label-studio=100000,argilla=10000)")
    ap.add_argument("--labeled", type=float, default=0.05,
                    help="share of the pushed tasks answered through the API before the first pull")
    ap.add_argument("--new-labels", type=int, default=100, help="answers added before the incremental pull")
    ap.add_argument("--sync-only", action="store_true",
                    help="only push and pull (the import runs, unrecorded): the scale section is left as it is")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="a checkout (e.g. of main) whose rlthf_plugin runs the same push and pull steps, "
                         "side by side in the same run, on its own workspace and project / dataset")
    ap.add_argument("--select-baseline", type=Path, default=None,
                    help="a checkout (e.g. of main) whose code also fills the cache and selects, side by side in "
                         "the same run, on a copy of the workspace, at --select-baseline-at pairs")
    ap.add_argument("--select-baseline-at", type=int, default=200_000)
    ap.add_argument("--embed-pairs", type=int, default=0,
                    help="also time `rlthf embed` (packaged MiniLM, CPU) on this many pairs with 1 process and "
                         "with torchrun --nproc_per_node 2 (0: skip)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    platforms = [p for p in args.platforms.split(",") if p]
    if args.sync_only and not platforms:
        raise SystemExit("--sync-only needs --platforms")
    push_max = parse_push_max(args.push_max, platforms)
    sync_sizes = [n for n in sizes if any(n <= m for m in push_max.values())]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    cli = [sys.executable, "-m", "rlthf_plugin"]
    baseline_env = {**env, "PYTHONPATH": os.pathsep.join([str(args.baseline), *sys.path])} if args.baseline else env
    baseline_name = baseline_label(args.baseline) if args.baseline else ""
    if args.baseline:  # the baseline's steps must run the baseline's code, not this checkout's
        where = subprocess.run([sys.executable, "-c", "import rlthf_plugin; print(rlthf_plugin.__file__)"],
                               env=baseline_env, cwd=tempfile.gettempdir(), capture_output=True, text=True).stdout
        if not where.startswith(str(args.baseline.resolve())):
            raise SystemExit(f"--baseline {args.baseline}: rlthf_plugin would come from {where.strip()}")
    results: dict[str, dict[int, tuple[float, float]]] = {}
    synced: dict[str, dict[int, tuple[float, float]]] = {}
    notes: dict = {"answer_s": {}}
    with tempfile.TemporaryDirectory(prefix="rlthf-scale-") as tmp:
        servers = {}
        try:
            for p in platforms:
                t0 = time.perf_counter()
                servers[p] = PlatformServer(p, Path(tmp) / p)
                print(f"{p} server started in {time.perf_counter() - t0:.0f} s", flush=True)

            def record(name: str, n: int, cmd: list[str], check=None, step_env=env, into=synced) -> None:
                s, rss, tail = run_step(cmd, step_env)
                if check is not None and not check(tail):
                    raise RuntimeError(f"{name} at {n:,}: unexpected result: {tail}")
                into.setdefault(name, {})[n] = (s, rss)
                print(f"{n:>9,} {name:<42} {s:8.1f} s {rss:8.0f} MB   {tail[:100]}", flush=True)

            for n in sizes:
                if args.sync_only and n not in sync_sizes:
                    continue
                data = Path(tmp) / f"pairs{n}.jsonl"
                write_pairs(data, n)
                ws = Path(tmp) / f"ws{n}"
                subprocess.run([*cli, "init", str(ws)], check=True, env=env, capture_output=True)
                steps = [("import", [*cli, "-w", str(ws), "import", str(data)])]
                if not args.sync_only:
                    steps.append(("status", [*cli, "-w", str(ws), "status"]))
                    if n <= args.select_max:
                        steps += [("embed (synthetic vectors cached)", [sys.executable, "-c", FILL_CACHE, str(ws), EMBEDDER]),
                                  ("select (embeddings cached)", [*cli, "-w", str(ws), "select", "--no-plot"]),
                                  # after a finished iteration: the quality estimate reads its decisions
                                  ("status (after select)", [*cli, "-w", str(ws), "status"])]
                    steps += [("export", [*cli, "-w", str(ws), "export", "--out", str(Path(tmp) / f"out{n}.jsonl")])]
                for name, cmd in steps:
                    if args.sync_only:  # the import is a prerequisite here, not a measurement
                        run_step(cmd, env)
                    else:
                        record(name, n, cmd, into=results)
                    if name == "status" and args.select_baseline and n == args.select_baseline_at \
                            and n <= args.select_max:  # the baseline's code on a copy, before this code's
                        base_ws = Path(tmp) / f"ws{n}-select-baseline"
                        shutil.copytree(ws, base_ws)
                        tag = f" [{baseline_label(args.select_baseline)}]"
                        benv = {**env, "PYTHONPATH": os.pathsep.join([str(args.select_baseline), *sys.path])}
                        record(f"embed (synthetic vectors cached){tag}", n,
                               [sys.executable, "-c", FILL_CACHE, str(base_ws), EMBEDDER], into=results, step_env=benv)
                        record(f"select (embeddings cached){tag}", n,
                               [*cli, "-w", str(base_ws), "select", "--no-plot"], into=results, step_env=benv)
                        shutil.rmtree(base_ws, ignore_errors=True)
                if not args.baseline:
                    data.unlink()
                if not args.sync_only:
                    report(results, sizes, args, not args.no_write)  # partial results survive a stopped run
                if n in sync_sizes:
                    for p, server in servers.items():
                        if n > push_max[p]:
                            continue
                        if args.baseline:  # the same steps with the baseline's code, its own workspace and target
                            base_ws = Path(tmp) / f"ws{n}-baseline-{p}"
                            write_pairs(data, n)
                            subprocess.run([*cli, "init", str(base_ws)], check=True, env=env, capture_output=True)
                            run_step([*cli, "-w", str(base_ws), "import", str(data)], env)
                            data.unlink()
                            sync_steps(server, cli, base_ws, n, args, baseline_env, record, tag=f" [{baseline_name}]")
                            shutil.rmtree(base_ws, ignore_errors=True)
                        got = sync_steps(server, cli, ws, n, args, env, record)
                        notes[n] = got
                        notes["answer_s"][(p, n)] = got["answer_s"]
                    if servers:
                        sync_report(synced, sync_sizes, notes, args, not args.no_write)
                shutil.rmtree(ws, ignore_errors=True)
        finally:
            for server in servers.values():
                server.stop()
    if args.embed_pairs:
        results.update(embed_rows(cli, env, args.embed_pairs))
        sizes = sorted({*sizes, args.embed_pairs})
    if not args.sync_only:
        print(report(results, sizes, args, not args.no_write))
    if servers:
        print(sync_report(synced, sync_sizes, notes, args, not args.no_write))


if __name__ == "__main__":
    main()
