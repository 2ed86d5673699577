#!/usr/bin/env bash
# The main job on the embedded default: import the shipped real data (MT-bench + PandaLM
# pairs with real LLM-judge labels and human votes) into a fresh workspace and report.
set -euo pipefail
WS=${RLTHF_DEMO_WORKSPACE:-demo-workspace}
DATA=$(python -c "from rlthf_plugin.data import DEV_PAIRS; print(DEV_PAIRS)")
rm -rf "$WS"
rlthf -w "$WS" init
# The shipped file holds real bad rows (non-string or identical responses): they are
# listed and left out.
rlthf -w "$WS" import --skip-invalid "$DATA"
rlthf -w "$WS" status
