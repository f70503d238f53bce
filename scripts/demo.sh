#!/usr/bin/env bash
# The main job on the demo input: set up, start a local vLLM server, translate the project's sample
# conversations into the ten languages, write Parquet shards to demo-workspace/, publish them as the next
# release demo-workspace/releases/vN, stop the server.
# POLYGLOT_DEMO_MODEL picks the model (default Qwen/Qwen2.5-1.5B-Instruct; without a reachable model hub
# the tiny test model is served instead), POLYGLOT_DEMO_PORT the port (default 8011).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh "" --vllm
port="${POLYGLOT_DEMO_PORT:-8011}"
model="${POLYGLOT_DEMO_MODEL:-Qwen/Qwen2.5-1.5B-Instruct}"
.venv/bin/polyglot services up vllm --model "$model" --fallback-to-tiny --port "$port"
trap '.venv/bin/polyglot services down vllm --port "$port"' EXIT
.venv/bin/polyglot translate pipeline/ingest/demo_conversations.json --workspace demo-workspace --langs all \
  --server "http://127.0.0.1:$port"
.venv/bin/polyglot publish --workspace demo-workspace
echo "demo shards: $(pwd)/demo-workspace/translations/<lang>/shard-*.parquet"
echo "demo release: $(ls -d "$(pwd)"/demo-workspace/releases/v* | sort -V | tail -1) (load with datasets.load_dataset(path, 'hi'))"
