#!/usr/bin/env bash
# Set up everything the tests need from nothing, then run them. Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
# The tests read real data in place (LLaVA conversations, NTREX references): say so at once if it is not there.
shared="${POLYGLOT_SHARED_DATA:-$(cd .. && pwd)/shared/data}"
if [ ! -d "$shared/llava" ] || [ ! -d "$shared/ntrex-dev" ]; then
  echo "error: the tests need the shared data folder (llava/ and ntrex-dev/, see ../shared/data/SOURCES.md); looked in $shared; point POLYGLOT_SHARED_DATA at another copy" >&2
  exit 1
fi
export POLYGLOT_SHARED_DATA="$shared"
scripts/setup-venv.sh test --vllm || exit 1
# The review tests drive Debian's Chromium headless (never a browser download).
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing Debian's chromium for the headless-browser test" >&2
  { apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; }; } \
    || { echo "error: could not install chromium (apt-get install chromium)" >&2; exit 1; }
fi
# Lint before the long run: the rules and the line length are in pyproject.toml ([tool.ruff]).
.venv/bin/ruff check --quiet . || { echo "error: ruff check found the problems above (ruff check --fix fixes some)" >&2; exit 1; }
.venv/bin/ruff format --check --quiet . || { echo "error: the files above are not formatted: run .venv/bin/ruff format ." >&2; exit 1; }
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
