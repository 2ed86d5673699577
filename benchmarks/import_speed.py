"""`rlthf import` of SYNTHETIC pairs: this tree side by side with a baseline tree, in one run.

The pairs are ``benchmarks.scale.write_pairs``' synthetic ones (four pairs per prompt,
responses of 20-60 words, a random AI label), in the merged JSON-lines format. Each import
is its own ``python -m rlthf_plugin import`` process into a fresh SQLite workspace, run
from a neutral folder with ``PYTHONPATH`` set to the tree under test, so the baseline
(e.g. ``git archive main | tar -x -C /tmp/base``) and this tree run the same command. The
runs alternate (baseline, this tree, baseline, ...) so that both see the same load; each
records wall time, CPU time (user + system, from ``wait4``), peak RSS and the 1-minute load
average when it ended. ``--only-this`` sizes (e.g. 1M) are run with this tree only.

    PYTHONPATH=. python -m benchmarks.import_speed --baseline /tmp/base [--sizes 100000] \\
        [--repeats 2] [--only-this 1000000]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._report import write_section
from benchmarks.scale import write_pairs

HERE = Path(__file__).resolve().parents[1]


def run_import(tree: Path, data: Path, tmp: Path) -> dict:
    """One ``rlthf init`` + ``rlthf import`` with ``tree`` on PYTHONPATH; the import's figures."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(tree)}
    ws = Path(tempfile.mkdtemp(prefix="ws", dir=tmp))
    cli = [sys.executable, "-m", "rlthf_plugin", "-w", str(ws)]
    where = subprocess.run([sys.executable, "-c", "import rlthf_plugin; print(rlthf_plugin.__file__)"], cwd=tmp,
                           env=env, check=True, capture_output=True, text=True).stdout.strip()
    if not where.startswith(str(tree)):  # the editable install must not shadow the tree under test
        raise RuntimeError(f"{tree}: rlthf_plugin imports from {where}")
    subprocess.run([sys.executable, "-m", "rlthf_plugin", "init", str(ws)], cwd=tmp, env=env, check=True,
                   capture_output=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen([*cli, "import", str(data)], cwd=tmp, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    out = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"import with {tree} failed:\n{out[-3000:]}")
    new = [line for line in out.splitlines() if line.startswith("new:")]
    size = sum(f.stat().st_size for f in ws.iterdir() if f.name.startswith("ledger.db"))
    for f in ws.iterdir():
        if f.name.startswith("ledger.db"):
            f.unlink()
    return {"wall": seconds, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024,
            "load": os.getloadavg()[0], "new": new[-1] if new else "", "db_mb": size / 2**20}


def cell(runs: list[dict]) -> str:
    if not runs:
        return "not run"
    med = {k: statistics.median(r[k] for r in runs) for k in ("wall", "cpu", "rss")}
    each = " / ".join(f"{r['wall']:.1f}" for r in runs)
    return (f"{med['wall']:.1f} s wall ({each}), {med['cpu']:.1f} s CPU, {med['rss']:.0f} MB, "
            f"{runs[0]['n'] / med['wall']:,.0f} pairs/s")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, required=True, help="a checkout of the baseline (e.g. main)")
    ap.add_argument("--sizes", default="100000", help="sizes run with both trees")
    ap.add_argument("--only-this", default="", help="sizes run with this tree only (e.g. 1000000)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    both = [int(s) for s in args.sizes.split(",") if s]
    only = [int(s) for s in args.only_this.split(",") if s]
    trees = {"baseline": args.baseline.resolve(), "this tree": HERE}
    results: dict[tuple[str, int], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="rlthf-import-") as tmp:
        for n in sorted(set(both) | set(only)):
            data = Path(tmp) / f"pairs{n}.jsonl"
            write_pairs(data, n)
            names = list(trees) if n in both else ["this tree"]
            for _ in range(args.repeats if n in both else 1):
                for name in names:
                    r = run_import(trees[name], data, Path(tmp))
                    r["n"] = n
                    results.setdefault((name, n), []).append(r)
                    print(f"{n:>9,} {name:<10} {r['wall']:7.1f} s wall {r['cpu']:7.1f} s CPU {r['rss']:6.0f} MB "
                          f"load {r['load']:.1f} ledger {r['db_mb']:.0f} MB  {r['new']}", flush=True)
            data.unlink()
    sizes = sorted(set(both) | set(only))
    loads = [r["load"] for runs in results.values() for r in runs]
    rows = [f"| {name} | " + " | ".join(cell(results.get((name, n), [])) for n in sizes) + " |" for name in trees]
    md = "\n".join([
        "## Import speed: this tree vs the baseline (`benchmarks/import_speed.py`)",
        "",
        f"**Synthetic pairs** (`benchmarks.scale.write_pairs`: four pairs per prompt, responses of 20-60 words, a "
        f"random AI label; merged JSON lines), each import a separate `rlthf import` process into a fresh SQLite "
        f"workspace; baseline and this tree alternate, {args.repeats} run(s) each. {platform.machine()}, "
        f"{os.cpu_count()} CPU cores shared with other jobs (1-minute load average {min(loads):.1f}-{max(loads):.1f} "
        "as the runs ended). Cells: median wall time (each run), median CPU time (user + system), median peak RSS, "
        "pairs per second of wall time.",
        "",
        f"| tree | {' | '.join(f'{n:,} pairs' for n in sizes)} |",
        f"|---|{'---|' * len(sizes)}",
        *rows,
        "",
        f"Reproduce: `git archive main | tar -x -C /tmp/base; PYTHONPATH=. python -m benchmarks.import_speed "
        f"--baseline /tmp/base --sizes {args.sizes} --repeats {args.repeats}"
        + (f" --only-this {args.only_this}`" if only else "`"),
    ])
    if not args.no_write:
        write_section("import_speed", md)
    print(md)


if __name__ == "__main__":
    main()
