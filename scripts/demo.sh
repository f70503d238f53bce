#!/usr/bin/env bash
# The main job on the demo input: set up, then process the project's sample conversations into demo-workspace/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh
.venv/bin/polyglot ingest pipeline/data/demo_conversations.json --workspace demo-workspace
echo "demo tables are in $(pwd)/demo-workspace/ingest"
