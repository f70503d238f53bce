"""The documentation: every relative link and anchor in README.md and docs/ resolves, and the mkdocs site builds
with --strict (a broken link, anchor or nav entry fails the build)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

from .conftest import REPO

# [text](target) outside code; images too. Reference-style links are not used in this project.
LINK_RE = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE_RE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE_RE = re.compile(r"`[^`\n]*`")


def documents() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def slug(heading: str) -> str:
    """The anchor of a heading as GitHub and mkdocs (Python-Markdown's toc) both make it for the headings used here:
    lower case, punctuation dropped, spaces to hyphens."""
    text = unicodedata.normalize("NFKD", re.sub(r"`|\*\*", "", heading)).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path: Path) -> set[str]:
    text = FENCE_RE.sub("", path.read_text(encoding="utf-8"))
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)}


def links(path: Path) -> list[str]:
    text = INLINE_CODE_RE.sub("", FENCE_RE.sub("", path.read_text(encoding="utf-8")))
    return LINK_RE.findall(text)


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if not resolved.exists():
            broken.append(f"{target} (no {resolved.relative_to(REPO) if resolved.is_relative_to(REPO) else resolved})")
        elif anchor and (resolved.is_dir() or resolved.suffix != ".md" or anchor not in anchors(resolved)):
            broken.append(f"{target} (no heading with the anchor #{anchor})")
    return broken


def test_every_relative_link_and_anchor_in_readme_and_docs_resolves():
    found = {p.name: links(p) for p in documents()}
    assert sum(map(len, found.values())) >= 30 and found["README.md"], found  # the check reads real links
    broken = {str(p.relative_to(REPO)): b for p in documents() if (b := broken_links(p))}
    assert not broken, broken


def test_the_link_check_finds_a_broken_file_and_a_broken_anchor(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\n## Some section: it's here\n\n`[not a link](nowhere.md)`\n")
    page = tmp_path / "b.md"
    page.write_text(
        "[ok](a.md#some-section-its-here) [ok](#top) [bad](a.md#missing) [gone](c.md) [web](https://example.org)\n"
        "```\n[in code](nowhere.md)\n```\n# Top\n"
    )
    assert broken_links(tmp_path / "a.md") == []
    assert [b.split(" ")[0] for b in broken_links(page)] == ["a.md#missing", "c.md"]


def test_readme_stays_a_short_tour():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, len(lines)
    commands = [line for line in lines if line.startswith("bash scripts/")]
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"], commands


def test_the_docs_site_builds_with_strict(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    pages = {p.relative_to(tmp_path / "site").parts[0] for p in (tmp_path / "site").glob("*/index.html")}
    assert {p.stem for p in (REPO / "docs").glob("*.md")} - {"index"} <= pages, pages
