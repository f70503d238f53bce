"""Talking to Label Studio: the SDK client, errors a person can act on, and the per-language projects."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from annotation.assets import Served, font_css
from annotation.labeling import label_config, project_title
from annotation.server import LabelStudioLogin, labelstudio_login
from pipeline.review.corrections import review_dir
from pipeline.storage import write_atomic

INSTRUCTIONS = """<p>You check machine translations of image conversations, one turn at a time.</p>
<ol>
<li>Read the English turn (and the earlier turns above it, for context).</li>
<li>The box holds the machine translation. If it is right, submit it unchanged. If not, click into it and correct
it: keep the meaning, the line breaks, any <code>&lt;image&gt;</code> tag, numbers, code and coordinates exactly.</li>
<li>Tick every error category that applied to the machine text (<em>ok</em> if none), give a 1–5 rating, Submit.</li>
<li>If you cannot judge a turn, press Skip: it is recorded and nobody loses it.</li>
</ol>"""


class ReviewServerUnavailable(RuntimeError):
    """Label Studio did not answer; nothing was changed locally."""


@contextmanager
def guarded(url: str, doing: str) -> Iterator[None]:
    """Turn transport failures and refusals into messages that name the server and what to do."""
    try:
        yield
    except (httpx.TransportError, ConnectionError) as exc:
        raise ReviewServerUnavailable(
            f"Label Studio at {url} did not answer while {doing} ({type(exc).__name__}: {exc}). Start it with "
            "'polyglot services up labelstudio' (or set LABEL_STUDIO_URL) and run the command again: nothing "
            "local was changed, the next run picks everything up."
        ) from None
    except ApiError as exc:
        if exc.status_code in (401, 403):
            raise RuntimeError(
                f"Label Studio at {url} refused the API key while {doing} (HTTP {exc.status_code}): set "
                "LABEL_STUDIO_API_KEY (or LABEL_STUDIO_API_KEY_FILE) to an admin's token"
            ) from None
        raise RuntimeError(
            f"Label Studio at {url} answered HTTP {exc.status_code} while {doing}: {str(exc.body)[:500]}"
        ) from None


def connect(login: LabelStudioLogin | None = None) -> tuple[LabelStudio, str]:
    login = login or labelstudio_login()
    client = LabelStudio(base_url=login.url, api_key=login.api_key, timeout=120)
    with guarded(login.url, "checking the API key"):
        client.users.whoami()
    return client, login.url


def _projects_file(workspace: Path) -> Path:
    return review_dir(workspace) / "projects.json"


def known_projects(workspace: Path) -> dict[str, int]:
    """lang → project id, as recorded by earlier pushes of this workspace."""
    path = _projects_file(workspace)
    return {k: int(v) for k, v in json.loads(path.read_text()).items()} if path.exists() else {}


def workspace_id(workspace: Path) -> str:
    """This workspace's identity on review servers, written once to ``review/workspace.id``: the projects it
    creates carry it in their description, so a second workspace on the same server never adopts them."""
    path = review_dir(workspace) / "workspace.id"
    if not path.exists():
        write_atomic(path, uuid.uuid4().hex + "\n")
    return path.read_text().strip()


OWNER = re.compile(r"polyglot workspace ([0-9a-f]{32})")


def _adopt_by_title(client: LabelStudio, title: str, owner: str) -> int | None:
    """The project titled ``title`` if this workspace created it (its projects.json was lost); None if there is
    none; an error naming the fix if another workspace (or a person) owns that title."""
    for p in client.projects.list(search=title):
        if p.title != title:
            continue
        found = OWNER.search(p.description or "")
        if found and found.group(1) == owner:
            return p.id
        whose = f"workspace {found.group(1)[:8]}…" if found else "someone else (it has no polyglot workspace id)"
        raise RuntimeError(
            f"Label Studio already has a project titled {title!r} (id {p.id}) that belongs to {whose}; this "
            f"workspace would mix its tasks into it. Give this workspace its own titles with --project-prefix NAME "
            f"(or delete that project if it is abandoned)"
        )
    return None


def ensure_project(
    client: LabelStudio,
    workspace: Path,
    lang: str,
    prefix: str,
    overlap: float,
    served: Served | None = None,
    images: bool = False,
) -> int:
    """The language's project: the one recorded, else the one with its title that this workspace created, else a
    new one (a title another workspace owns is an error). Settings kept current.
    With a served folder the project serves its fonts (and, with ``images``, the linked image folder) through
    local-files storages."""
    if not 0.0 <= overlap <= 1.0:
        raise ValueError(f"overlap must be a share between 0 and 1, got {overlap}")
    title = project_title(prefix, lang)
    owner = workspace_id(workspace)
    settings = dict(
        description=f"Review of {lang} translations · polyglot workspace {owner}",
        label_config=label_config(lang, font_css(served, lang)),
        maximum_annotations=2 if overlap > 0 else 1,
        overlap_cohort_percentage=round(overlap * 100),
        show_collab_predictions=True,
        show_skip_button=True,
        expert_instruction=INSTRUCTIONS,
        show_instruction=False,
    )
    recorded = known_projects(workspace)
    project_id = recorded.get(lang)
    if project_id is not None:
        try:
            client.projects.get(id=project_id)
        except ApiError as exc:
            if exc.status_code != 404:
                raise
            project_id = None
    if project_id is None:
        project_id = _adopt_by_title(client, title, owner)
    if project_id is None:
        project_id = client.projects.create(title=title, **settings).id
    else:  # ours: settings made current, and a project from before workspace ids gets this one's
        client.projects.update(id=project_id, **settings)
    if served is not None:
        wanted = [f"{served.on_server}/fonts"] + ([f"{served.on_server}/images"] if images else [])
        have = {st.path.rstrip("/") for st in client.import_storage.local.list(project=project_id)}
        for folder in wanted:
            if folder not in have:  # Label Studio serves a file only under a storage of the task's project
                client.import_storage.local.create(
                    project=project_id,
                    path=folder,
                    title=f"polyglot {folder.rsplit('/', 1)[-1]}",
                    use_blob_urls=False,
                    recursive_scan=True,
                )
    record_project(workspace, lang, project_id)
    return project_id


def record_project(workspace: Path, lang: str, project_id: int) -> None:
    """Remember the language's project in ``review/projects.json`` (atomically: a crash leaves the old record)."""
    recorded = known_projects(workspace)
    recorded[lang] = project_id
    write_atomic(_projects_file(workspace), json.dumps(recorded, indent=2, sort_keys=True) + "\n")


def invite_url(client: LabelStudio, url: str) -> str:
    """The sign-up link for new reviewers (the server accepts sign-ups only through it)."""
    with guarded(url, "asking for the invite link"):
        return url + client.organizations.invites.get_invite_link().invite_url
