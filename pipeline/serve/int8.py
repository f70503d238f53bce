"""An int8 copy of a model folder for serving on a CPU: W8A8 in the compressed-tensors format vLLM reads.

Every linear layer of the decoder (the 2-D weights under ``model.layers.``) is stored as int8 with one scale per
output channel (symmetric, round to nearest); vLLM quantises the activations per token as it runs (dynamic), so
no calibration data is needed. Embeddings, norms, biases and ``lm_head`` stay as they are. On a CPU the decoder
reads a quarter of the bytes per step and multiplies in int8 (oneDNN, VNNI where the CPU has it).

Runs in the vLLM environment (torch, safetensors); :func:`pipeline.serve.models.make_int8` writes into a
temporary folder and renames it. The last stdout line is a JSON object: layers quantised, bytes before and
after, and the relative weight error ‖W − Ŵ‖/‖W‖ over those layers.

    python -m pipeline.serve.int8 SOURCE_FOLDER OUT_DIR
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from pipeline.serve.gguf_import import report

QUANTIZATION_CONFIG = {
    "quant_method": "compressed-tensors",
    "format": "int-quantized",
    "quantization_status": "compressed",
    "config_groups": {
        "group_0": {
            "targets": ["Linear"],
            "weights": {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "channel", "dynamic": False},
            "input_activations": {
                "num_bits": 8,
                "type": "int",
                "symmetric": True,
                "strategy": "token",
                "dynamic": True,
            },
        }
    },
    "ignore": ["lm_head"],
}


def is_decoder_linear(name: str, ndim: int) -> bool:
    return name.startswith("model.layers.") and name.endswith(".weight") and ndim == 2


def quantize(weight):
    """(int8 weight, float32 scale per output row) of a 2-D weight, symmetric, round to nearest."""
    import torch

    w = weight.float()
    scale = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0
    return torch.round(w / scale).clamp(-127, 127).to(torch.int8), scale


def convert(source: Path, out_dir: Path) -> dict:
    from safetensors import safe_open
    from safetensors.torch import save_file

    config = json.loads((source / "config.json").read_text())
    if config.get("quantization_config"):
        raise ValueError(
            f"{source} is already quantised ({config['quantization_config'].get('quant_method')}); give the dense folder"
        )
    files = sorted(source.glob("*.safetensors"))
    if not files:
        raise ValueError(f"{source} has no .safetensors weights")
    out_dir.mkdir(parents=True, exist_ok=True)
    index: dict[str, str] = {}
    layers = before = after = 0
    err2 = norm2 = 0.0
    for path in files:
        tensors = {}
        with safe_open(path, framework="pt") as f:
            for name in f.keys():
                t = f.get_tensor(name)
                before += t.numel() * t.element_size()
                if is_decoder_linear(name, t.ndim):
                    q, scale = quantize(t)
                    w = t.float()
                    err2 += float(((q.float() * scale - w) ** 2).sum())
                    norm2 += float((w**2).sum())
                    base = name.removesuffix(".weight")
                    tensors[name], tensors[f"{base}.weight_scale"] = q, scale
                    layers += 1
                elif t.ndim == 2 and not name.endswith(("embed_tokens.weight", "lm_head.weight")):
                    raise ValueError(
                        f"{source}: {name} is a 2-D weight outside the decoder layers; this converter knows decoder-only "
                        f"models (Llama, Qwen, Mistral and their kind) and leaves such a model dense"
                    )
                else:
                    tensors[name] = t
        for name, t in tensors.items():
            after += t.numel() * t.element_size()
            index[name] = path.name
        save_file(tensors, out_dir / path.name, metadata={"format": "pt"})
    if layers == 0:
        raise ValueError(f"{source}: no decoder linear layers (model.layers.*.weight) to quantise")
    if (source / "model.safetensors.index.json").exists():
        meta = json.loads((source / "model.safetensors.index.json").read_text()).get("metadata", {})
        (out_dir / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {**meta, "total_size": after}, "weight_map": index}, indent=2)
        )
    for extra in source.iterdir():  # tokenizer, chat template, generation config, import manifest
        if (
            extra.is_file()
            and extra.suffix != ".safetensors"
            and extra.name not in ("config.json", "model.safetensors.index.json")
        ):
            shutil.copy2(extra, out_dir / extra.name)
    (out_dir / "config.json").write_text(
        json.dumps({**config, "quantization_config": QUANTIZATION_CONFIG}, indent=2) + "\n"
    )
    return {
        "layers": layers,
        "bytes_before": before,
        "bytes_after": after,
        "weight_error": round((err2 / max(norm2, 1e-30)) ** 0.5, 5),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    return report("int8", lambda: convert(args.source, args.out_dir), args.out_dir)


if __name__ == "__main__":
    raise SystemExit(main())
