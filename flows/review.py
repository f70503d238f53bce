"""Prefect flows ``review-push`` and ``review-pull``: thin wrappers over :mod:`annotation.review`.

Push: one task per language (build the tasks from the queue, import what the server lacks). Pull: one task
fetches every new annotation version into the corrections table (the cursor moves only after it is on disk),
then the corrections are put into the translated shards.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from annotation.assets import ImageRoot
from annotation.client import connect
from annotation.review import pull, push
from pipeline.languages import parse_languages


@task(name="push-language")
def push_language_task(workspace: str, lang: str, prefix: str, overlap: float, image_root: str | None = None) -> dict:
    client, url = connect()
    return asdict(push(client, url, Path(workspace), [lang], prefix, overlap, ImageRoot.parse(image_root))[lang])


@flow(name="review-push", log_prints=False)
def review_push_flow(
    workspace: str,
    langs: str = "all",
    prefix: str = "llava-polyglot",
    overlap: float = 0.1,
    image_root: str | None = None,
) -> dict:
    """Send the routing queue of ``langs`` to Label Studio (one project per language); idempotent. ``image_root``
    (or ``POLYGLOT_IMAGE_ROOT``): a URL prefix or a local folder of the conversations' images."""
    if not 0.0 <= overlap <= 1.0:
        raise ValueError(f"overlap must be a share between 0 and 1, got {overlap}")
    ImageRoot.parse(image_root)  # a bad value named before any task
    connect()  # a clear error before any task when the server is down or the key is wrong
    result = {
        lang: push_language_task(workspace, lang, prefix, overlap, image_root)
        for lang in parse_languages(langs)
        if lang != "en"
    }
    create_table_artifact(
        key="review-push",
        table=[{"lang": lang, **counts} for lang, counts in result.items()],
        description="Tasks pushed to Label Studio per language (already there: pushed before, not duplicated)",
    )
    return result


@task(name="pull-annotations")
def pull_task(workspace: str, langs: list[str] | None) -> dict:
    client, url = connect()
    return pull(client, url, Path(workspace), langs).to_dict()


@flow(name="review-pull", log_prints=False)
def review_pull_flow(workspace: str, langs: str | None = None) -> dict:
    """Fetch annotations created or updated since the last pull; humans' text goes into the translated shards."""
    connect()
    result = pull_task(workspace, parse_languages(langs) if langs else None)
    create_table_artifact(
        key="review-pull",
        table=[{"lang": lang, **counts} for lang, counts in result["languages"].items()],
        description=f"Annotation versions pulled into {result['corrections_file'] or 'nothing new'}",
    )
    if result["agreement"]:
        create_table_artifact(
            key="review-agreement",
            table=result["agreement"],
            description="Agreement between reviewers on overlapping tasks",
        )
    return result
