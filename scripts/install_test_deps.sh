#!/usr/bin/env bash
# Installs what the integration tests need beside the project's virtual environment.
# Server environments (Label Studio, argilla-server) are built by the test harness itself,
# once, under ~/.cache/rlthf_plugin/servers; building them here first shows the progress
# (and keeps the first pytest run from looking stuck). PYTHON: the project's interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# Headless Chromium takes the screenshot of `rlthf report` in tests/integration/test_report.py.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "missing: ${need_apt[*]} (install with apt-get as root)" >&2
    exit 1
  fi
fi

# Label Studio 1.23.2 in its own virtual environment (about 100 s the first time) and a
# migrated seed database the test sessions start from.
"$PYTHON" -m tests.integration.label_studio_env
