"""Versioned, immutable releases: Parquet shards in the Hugging Face datasets layout, a manifest with the sha256
of every file, a dataset card; verify, diff, LLaVA export, and a loading API for downstream code.

A release ``vN`` is a directory::

    vN/README.md                               dataset card; YAML front matter declares one config per language
    vN/manifest.json                           version, parent, time, inputs, counts, sha256 of every file, config
    vN/data/{lang}/train-0000i-of-0000n.parquet
    vN/plots/*.png                             QE plots of the workspace when it was published

It is assembled in a temporary directory beside the releases and renamed into place; an existing version is
never overwritten. Reading goes through fsspec, so a release copied to an object store (``s3://…``,
``gs://…``) loads and verifies the same way as a local one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from pipeline.assemble.translations import translations
from pipeline.languages import LANGUAGES
from pipeline.release.card import dataset_card, release_notes
from pipeline.storage import rename_durably, sha256_file, write_atomic
from pipeline.translate import registry
from pipeline.translate.translators import qualifications

RELEASE_COLUMNS = [
    "id",
    "image",
    "conversations",
    "lang",
    "source_id",
    "conv_key",
    "source_file",
    "record_index",
    "translator_version",
    "translator",
    "rules_version",
    "status",
    "turn_status",
    "turn_flags",
    "qe_status",
    "turn_qe_status",
    "turn_qe_reasons",
    "turn_lang_detected",
    "turn_lang_prob",
    "turn_script_share",
    "turn_length_ratio",
    "turn_bt_chrf",
    "turn_back_translation",
    "turn_embed_sim",
    "qe_score",
    "turn_qe_score",
    "review_status",
    "human_corrected",
    "turn_human",
]
VERSION_RE = re.compile(r"v(\d+)")


class ReleaseError(ValueError):
    """A release cannot be written or read as asked (the message says what to do)."""


def releases_dir(workspace: Path) -> Path:
    return Path(workspace) / "releases"


def versions(root: Path) -> list[str]:
    """Existing versions under ``root``, oldest first."""
    if not root.exists():
        return []
    found = [p.name for p in root.iterdir() if p.is_dir() and VERSION_RE.fullmatch(p.name)]
    return sorted(found, key=lambda v: int(v[1:]))


@dataclass
class PublishResult:
    version: str
    path: Path
    parent: str | None
    counts: dict[str, dict] = field(default_factory=dict)
    notes: str = ""


def _release_frame(workspace: Path, lang: str) -> pl.DataFrame:
    df = translations(workspace, [lang], [c for c in RELEASE_COLUMNS if c != "source_id"])
    return (
        df.with_columns(pl.col("id").alias("source_id"))
        .select(RELEASE_COLUMNS)
        .sort("source_file", "record_index", "conv_key")
    )


def _counts(df: pl.DataFrame) -> dict:
    qe = dict(zip(*df["qe_status"].value_counts().sort("qe_status").get_columns())) if df.height else {}
    return {
        "rows": df.height,
        "turns": int(df["conversations"].list.len().sum() or 0),
        "status_ok": df.filter(pl.col("status") == "ok").height,
        "qe": {k: int(v) for k, v in qe.items()},
        "reviewed": df.filter(pl.col("review_status") != "unreviewed").height,
        "human_corrected": df.filter(pl.col("human_corrected")).height,
        "qe_score_at_least": {
            "0.5": df.filter(pl.col("qe_score") >= 0.5).height,
            "0.8": df.filter(pl.col("qe_score") >= 0.8).height,
        },
    }


def write_release(
    workspace: Path,
    version: str | None,
    build: Callable[[Path, str | None], dict],
    card: Callable[[dict], str],
) -> PublishResult:
    """Write release ``version`` (default: the next vN) of ``workspace`` atomically: ``build(tmp, parent)`` writes
    the files into a temporary folder and returns the manifest's fields (``files`` may give per-file details);
    ``card(manifest)`` returns the README. Every file gets its size and sha256 in ``manifest.json``; the folder is
    fsynced and renamed into place. An existing version is never overwritten."""
    workspace = Path(workspace)
    root = releases_dir(workspace)
    existing = versions(root)
    if version is None:
        version = f"v{int(existing[-1][1:]) + 1 if existing else 1}"
    if not VERSION_RE.fullmatch(version):
        raise ReleaseError(f"a version is 'v' and a number, like v3; got {version!r}")
    if (root / version).exists():
        raise ReleaseError(
            f"release {version} already exists at {root / version} and is never overwritten: publish a new version (e.g. omit --version)"
        )
    parent = next((v for v in reversed(existing) if int(v[1:]) < int(version[1:])), None)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{version}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        fields = build(tmp, parent)
        files: dict[str, dict] = fields.pop("files", {})
        manifest = {
            "version": version,
            "parent": parent,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **fields,
        }
        for path in sorted(tmp.rglob("*")):
            if path.is_file():
                files.setdefault(path.relative_to(tmp).as_posix(), {})
        manifest["files"] = files
        (tmp / "README.md").write_text(card(manifest), encoding="utf-8")
        files["README.md"] = {}
        for rel, info in files.items():
            info.update(bytes=(tmp / rel).stat().st_size, sha256=sha256_file(tmp / rel))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        _fsync_tree(tmp)
        if (root / version).exists():
            raise ReleaseError(
                f"release {version} appeared at {root / version} while this one was written; it is never overwritten"
            )
        rename_durably(tmp, root / version)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return PublishResult(version, root / version, parent, manifest.get("counts", {}))


def publish(
    workspace: Path,
    version: str | None = None,
    shard_rows: int = 10_000,
    langs: list[str] | None = None,
    note: str | None = None,
) -> PublishResult:
    """Assemble release ``version`` (default: the next vN) from the workspace's translations and corrections;
    ``note`` (recorded in the manifest) opens the dataset card."""
    workspace = Path(workspace)
    if shard_rows < 1:
        raise ReleaseError(f"shard size must be at least 1 row, got {shard_rows}")
    available = (
        sorted(p.name for p in (workspace / "translations").iterdir() if p.is_dir())
        if (workspace / "translations").exists()
        else []
    )
    langs = [lang for lang in (langs or available) if lang in available]
    if not langs:
        raise ReleaseError(f"no translations in {workspace / 'translations'}: run 'polyglot translate' first")
    root = releases_dir(workspace)
    changes: dict = {}
    notes: list[str] = []

    def build(tmp: Path, parent: str | None) -> dict:
        counts: dict[str, dict] = {}
        files: dict[str, dict] = {}
        for lang in sorted(langs, key=list(LANGUAGES).index):
            df = _release_frame(workspace, lang)
            counts[lang] = _counts(df)
            n = max(1, -(-df.height // shard_rows))
            for i in range(n):
                rel = f"data/{lang}/train-{i:05d}-of-{n:05d}.parquet"
                out = tmp / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                part = df.slice(i * shard_rows, shard_rows)
                part.write_parquet(out, compression="zstd", statistics=True)
                files[rel] = {"rows": part.height}
        for png in sorted((workspace / "reports").glob("*.png")):
            (tmp / "plots").mkdir(exist_ok=True)
            shutil.copyfile(png, tmp / "plots" / png.name)
            files[f"plots/{png.name}"] = {}
        changes["against_parent"] = diff(root / parent, tmp) if parent else None
        return {**_manifest(workspace, counts, shard_rows, langs), "note": note, "files": files}

    def card(manifest: dict) -> str:
        notes.append(release_notes(manifest, changes["against_parent"]))
        return dataset_card(manifest, manifest["files"], notes[0])

    result = write_release(workspace, version, build, card)
    result.notes = notes[0]
    return result


def _fsync_tree(path: Path) -> None:
    for p in sorted(path.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


def _input_hashes(workspace: Path) -> list[dict]:
    path = workspace / "ingest" / "inputs.json"
    return json.loads(path.read_text()) if path.exists() else []


def _manifest(workspace: Path, counts: dict, shard_rows: int, langs: list[str]) -> dict:
    from language_rules import rules_version

    ingest_summary = workspace / "ingest" / "summary.json"
    versions_by_lang, translators = {}, {}
    measured = qualifications(workspace)
    for lang in langs:
        used = translations(workspace, [lang], ["translator_version", "translator"]).unique().sort("translator_version")
        versions_by_lang[lang] = used["translator_version"].to_list()
        translators[lang] = []
        for version, described in zip(used["translator_version"], used["translator"]):
            d = json.loads(described)
            if d.get("source"):
                continue
            q = measured.get((version, lang))
            translators[lang].append(
                {
                    "version": version,
                    "model": d.get("model"),
                    "adapter": d.get("adapter"),
                    "weights": d.get("weights"),
                    "qualification_chrf": q["chrf"] if q else None,
                    "qualification_refs": q["refs"] if q else None,
                }
            )
    return {
        "inputs": _input_hashes(workspace),
        "ingest": json.loads(ingest_summary.read_text()) if ingest_summary.exists() else None,
        "counts": counts,
        "config": {
            "shard_rows": shard_rows,
            "languages": langs,
            "translator_versions": versions_by_lang,
            "translators": translators,
            "rules_version": rules_version(),
            "active_translators": registry.active(workspace),
        },
    }


# --- reading -------------------------------------------------------------------------------------------------


def _fs(url: str | Path):
    import fsspec

    return fsspec.core.url_to_fs(str(url))


def read_manifest(release: str | Path) -> dict:
    fs, base = _fs(release)
    path = f"{base.rstrip('/')}/manifest.json"
    if not fs.exists(path):
        raise ReleaseError(f"no manifest.json in {release}: not a release directory (or not finished)")
    with fs.open(path, "rb") as f:
        return json.loads(f.read())


def verify(release: str | Path) -> list[str]:
    """Problems with a release's files (empty: every file is there with the sha256 the manifest gives)."""
    fs, base = _fs(release)
    manifest = read_manifest(release)
    problems = []
    for rel, info in manifest["files"].items():
        path = f"{base.rstrip('/')}/{rel}"
        if not fs.exists(path):
            problems.append(f"{rel}: missing")
            continue
        with fs.open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        if digest != info["sha256"]:
            problems.append(f"{rel}: sha256 {digest} does not match the manifest's {info['sha256']}")
    listed = set(manifest["files"]) | {"manifest.json"}
    for path in fs.find(base):
        rel = path[len(base.rstrip("/")) + 1 :] if path.startswith(base.rstrip("/")) else path
        if rel not in listed:
            problems.append(f"{rel}: not in the manifest")
    return problems


def load(release: str | Path, lang: str, check: bool = True) -> pl.LazyFrame:
    """One language of a release as a polars LazyFrame, after checking every file's sha256 (``check``)."""
    if check and (problems := verify(release)):
        raise ReleaseError(f"release {release} failed verification: " + "; ".join(problems))
    manifest = read_manifest(release)
    if lang not in manifest["config"]["languages"]:
        raise ReleaseError(
            f"release {manifest['version']} has no {lang!r}: it has {', '.join(manifest['config']['languages'])}"
        )
    base = str(release).rstrip("/")
    paths = sorted(f"{base}/{rel}" for rel in manifest["files"] if rel.startswith(f"data/{lang}/"))
    return pl.scan_parquet(paths)


def load_datasets(release: str | Path, lang: str, check: bool = True):
    """One language as a ``datasets.Dataset`` (split ``train``), after verification."""
    from datasets import load_dataset

    if check and (problems := verify(release)):
        raise ReleaseError(f"release {release} failed verification: " + "; ".join(problems))
    return load_dataset(str(release), lang, split="train")


def _frame(release: Path, lang: str) -> pl.DataFrame:
    files = sorted((Path(release) / "data" / lang).glob("*.parquet"))
    if not files:
        return pl.DataFrame(
            schema={
                "conv_key": pl.String,
                "id": pl.String,
                "conversations": pl.List(pl.Struct({"from": pl.String, "value": pl.String})),
            }
        )
    return pl.read_parquet(files, columns=["conv_key", "id", "conversations", "human_corrected"])


def diff(a: str | Path, b: str | Path, examples: int = 3) -> dict[str, dict]:
    """Per language: conversations added, removed and changed (by ``conv_key``) from release ``a`` to ``b``."""
    langs = sorted(
        {p.name for r in (a, b) for p in (Path(r) / "data").iterdir() if p.is_dir()}
        if all((Path(r) / "data").exists() for r in (a, b))
        else set()
    )
    out = {}
    for lang in langs:
        old, new = _frame(Path(a), lang), _frame(Path(b), lang)
        old_map = dict(zip(old["conv_key"], old["conversations"].to_list()))
        new_map = dict(zip(new["conv_key"], new["conversations"].to_list()))
        ids = dict(zip(new["conv_key"], new["id"])) | {
            k: v for k, v in zip(old["conv_key"], old["id"]) if k not in new_map
        }
        changed = sorted(k for k in old_map.keys() & new_map.keys() if old_map[k] != new_map[k])
        shown = []
        for k in changed[:examples]:
            turn = (
                next(i for i, (x, y) in enumerate(zip(old_map[k], new_map[k])) if x != y)
                if len(old_map[k]) == len(new_map[k])
                else 0
            )
            shown.append(
                {
                    "id": ids[k],
                    "turn": turn,
                    "before": old_map[k][turn]["value"] if turn < len(old_map[k]) else None,
                    "after": new_map[k][turn]["value"] if turn < len(new_map[k]) else None,
                }
            )
        out[lang] = {
            "added": sorted(ids[k] for k in new_map.keys() - old_map.keys()),
            "removed": sorted(ids[k] for k in old_map.keys() - new_map.keys()),
            "changed": sorted(ids[k] for k in changed),
            "examples": shown,
        }
    return out


def export_llava(
    release: str | Path,
    out_dir: Path,
    langs: list[str] | None = None,
    mix: bool = False,
    only_usable: bool = True,
    seed: int = 0,
    min_qe_score: float | None = None,
) -> dict[str, int]:
    """LLaVA training JSON per language (``llava_{lang}.json``) and, with ``mix``, all of them in one shuffled
    file (``llava_mix.json``, ids suffixed with the language) as the paper trained on. ``only_usable`` keeps rows
    whose every turn was translated (``status == "ok"``) and QE did not reject; ``min_qe_score`` keeps rows whose
    worst turn scores at least that (the English source always)."""
    import random

    manifest = read_manifest(release)
    langs = langs or manifest["config"]["languages"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts, mixed = {}, []
    for lang in langs:
        frame = load(release, lang)
        if only_usable:
            frame = frame.filter((pl.col("status") == "ok") & (pl.col("qe_status") != "rejected"))
        if min_qe_score is not None:  # English rows have no score: the source is kept
            frame = frame.filter(
                pl.col("qe_score").is_null() & (pl.col("lang") == "en") | (pl.col("qe_score") >= min_qe_score)
            )
        df = frame.select("id", "image", "conversations").collect()
        records = []
        for rid, image, conv in df.iter_rows():
            rec = {
                "id": rid,
                **({"image": image} if image is not None else {}),
                "conversations": [{"from": t["from"], "value": t["value"]} for t in conv],
            }
            records.append(rec)
            mixed.append({**rec, "id": f"{rid}-{lang}"})
        _write_json(out_dir / f"llava_{lang}.json", records)
        counts[lang] = len(records)
    if mix:
        random.Random(seed).shuffle(mixed)
        _write_json(out_dir / "llava_mix.json", mixed)
        counts["mix"] = len(mixed)
    return counts


def _write_json(path: Path, data) -> None:
    write_atomic(path, json.dumps(data, ensure_ascii=False))
