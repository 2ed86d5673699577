#!/usr/bin/env bash
# The main job on the embedded default: import the shipped real data (MT-bench + PandaLM
# pairs with real LLM-judge labels and human votes) into a fresh workspace, then run the
# RLTHF loop on it with the simulated annotator answering from the real human votes.
set -euo pipefail
WS=${RLTHF_DEMO_WORKSPACE:-demo-workspace}
ITERATIONS=${RLTHF_DEMO_ITERATIONS:-3}
# 128 tokens per text keeps the one-off embedding of ~2,000 texts to a few CPU minutes
# (cached in the ledger: a second run embeds nothing).
export RLTHF_EMBEDDING_MAX_LENGTH=${RLTHF_EMBEDDING_MAX_LENGTH:-128}
# RLTHF_DEMO_DATA: another pairs file (the README flow test runs this script on a sample).
DATA=${RLTHF_DEMO_DATA:-$(python -c "from rlthf_plugin.data import DEV_PAIRS; print(DEV_PAIRS)")}
BUDGET=${RLTHF_DEMO_BUDGET:-0.02}
rm -rf "$WS"
rlthf -w "$WS" init
# The shipped file holds real bad rows (non-string or identical responses): they are
# listed and left out.
rlthf -w "$WS" import --skip-invalid "$DATA" 2>/dev/null
rlthf -w "$WS" status
# The imported human votes are held out as ground truth (selection.ground_truth = import):
# the loop sees only AI labels, and `oracle:human` answers each batch from the votes.
# Per iteration: the curve, labels asked, flipped (only when the flip gate opens on
# measured evidence), the AI-error precision of the batch and the curated accuracy.
rlthf -w "$WS" run --iterations "$ITERATIONS" --budget "$BUDGET" --annotator oracle:human
rlthf -w "$WS" export --out "$WS/curated.jsonl"
echo "plots: $WS/plots/"
