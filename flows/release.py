"""Prefect flow ``publish``: an immutable release of the workspace, with its release notes as a markdown artifact."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from pipeline.release.releases import publish, verify


@task(name="assemble-release")
def publish_task(
    workspace: str, version: str | None, shard_rows: int, langs: list[str] | None, note: str | None = None
) -> dict:
    result = publish(Path(workspace), version, shard_rows, langs, note)
    return {
        "version": result.version,
        "path": str(result.path),
        "parent": result.parent,
        "counts": result.counts,
        "notes": result.notes,
    }


@task(name="verify-release")
def verify_task(path: str) -> list[str]:
    return verify(path)


@flow(name="publish", log_prints=False)
def publish_flow(
    workspace: str,
    version: str | None = None,
    shard_rows: int = 10_000,
    langs: list[str] | None = None,
    note: str | None = None,
) -> dict:
    """Publish ``version`` (default: the next) and check it back from disk before anyone loads it; ``note`` goes at
    the top of its dataset card."""
    result = publish_task(workspace, version, shard_rows, langs, note)
    problems = verify_task(result["path"])
    if problems:  # pragma: no cover - a bug or a failing disk
        raise RuntimeError(f"release {result['version']} does not verify right after publishing: {'; '.join(problems)}")
    create_markdown_artifact(
        key="release-notes",
        markdown=f"# Release {result['version']}\n\n{result['notes']}\n",
        description=f"llava-polyglot release {result['version']} at {result['path']}",
    )
    return result
