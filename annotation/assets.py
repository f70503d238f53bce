"""What the labeling page needs besides the text: the image a conversation is about, and fonts for every script.

Both are served by Label Studio itself through its local-files storage (the documented way: a document root,
``LOCAL_FILES_SERVING_ENABLED``, and a local storage per project whose path is inside that root; Label Studio
refuses any path outside it). The project keeps one such folder, the *served folder*:

- ``fonts/<package>/``: the Noto fonts of the scripts reviewers read (Nastaliq for Urdu, Naskh for Arabic,
  Devanagari, Bengali, Simplified Chinese, Japanese), regular weight, as woff2 files cut by Unicode range, from
  the fonts' OFL releases on the npm registry (``@fontsource/*``, checked against the registry's sha512), with a
  stylesheet declaring them under the family names ``Polyglot …`` — distinct from any system font, so a page
  that shows them proves the served font is in use;
- ``images``: a link to the image root given to ``--image-root`` / ``POLYGLOT_IMAGE_ROOT`` when that is a local
  folder (a URL prefix such as ``https://…/coco/train2017/`` is used as it is, nothing served).

For the local server (``polyglot services up labelstudio``) the served folder is ``<data dir>/served``. A
Label Studio elsewhere (the compose stack) names it twice: ``POLYGLOT_LS_SERVED_DIR`` (the folder as this
process sees it) and ``POLYGLOT_LS_SERVED_ROOT`` (as Label Studio sees it: its ``LOCAL_FILES_DOCUMENT_ROOT``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import httpx

from pipeline.processes import home, records, running
from pipeline.storage import rename_durably, write_atomic

FONTSOURCE_VERSION = "5.3.0"
# language → (fontsource package, family)
FONT_PACKAGES = {
    "ur": ("noto-nastaliq-urdu", "Noto Nastaliq Urdu"),
    "ar": ("noto-naskh-arabic", "Noto Naskh Arabic"),
    "hi": ("noto-sans-devanagari", "Noto Sans Devanagari"),
    "bn": ("noto-sans-bengali", "Noto Sans Bengali"),
    "zh": ("noto-sans-sc", "Noto Sans SC"),
    "ja": ("noto-sans-jp", "Noto Sans JP"),
}
STYLESHEET = "polyglot-400.css"
LOCAL_FILES_URL = "/data/local-files/?d="


def served_family(lang: str) -> str | None:
    return f"Polyglot {FONT_PACKAGES[lang][1]}" if lang in FONT_PACKAGES else None


@dataclass(frozen=True)
class Served:
    """The folder Label Studio serves: ``local`` as this process sees it, ``on_server`` as Label Studio does."""

    local: Path
    on_server: str

    def url(self, relative: str) -> str:
        return LOCAL_FILES_URL + urllib.parse.quote(relative)


def served_folder() -> Served | None:
    """The served folder of the Label Studio the review commands talk to (None: nothing can be served)."""
    local, on_server = os.environ.get("POLYGLOT_LS_SERVED_DIR"), os.environ.get("POLYGLOT_LS_SERVED_ROOT")
    if local and on_server:
        return Served(Path(local), on_server.rstrip("/"))
    url = os.environ.get("LABEL_STUDIO_URL", "").rstrip("/")
    for rec in records("labelstudio"):
        if running(rec) and (not url or rec.url == url):
            folder = Path(rec.model) / "served"
            return Served(folder, str(folder))
    return None


def _registry() -> str:
    return os.environ.get("POLYGLOT_NPM_REGISTRY", "https://registry.npmjs.org").rstrip("/")


def _download(package: str, cache: Path) -> bytes:
    """The package's tarball (cached), checked against the registry's sha512."""
    path = cache / f"{package}-{FONTSOURCE_VERSION}.tgz"
    meta_url = f"{_registry()}/@fontsource%2F{package}/{FONTSOURCE_VERSION}"
    try:
        meta = httpx.get(meta_url, timeout=60, follow_redirects=True)
        meta.raise_for_status()
        dist = meta.json()["dist"]
        if not path.exists():
            tarball = httpx.get(dist["tarball"], timeout=600, follow_redirects=True)
            tarball.raise_for_status()
            write_atomic(path, tarball.content)
    except (httpx.HTTPError, OSError, ValueError, KeyError) as exc:
        if not path.exists():
            raise RuntimeError(
                f"cannot fetch the font package @fontsource/{package} from {_registry()} ({exc}); "
                f"set POLYGLOT_NPM_REGISTRY to a reachable npm registry, or serve without fonts"
            ) from None
        dist = None
    data = path.read_bytes()
    if dist is not None:
        algorithm, _, expected = dist["integrity"].partition("-")
        if algorithm != "sha512" or base64.b64encode(hashlib.sha512(data).digest()).decode() != expected:
            path.unlink()
            raise RuntimeError(
                f"@fontsource/{package} {FONTSOURCE_VERSION}: the download does not match the registry's sha512; try again"
            )
    return data


def ensure_fonts(served: Path, langs: list[str] | None = None) -> dict[str, Path]:
    """Put the fonts of ``langs`` (default: every script that needs one) into ``served/fonts`` once; returns the
    stylesheet of each language."""
    out = {}
    for lang in langs or list(FONT_PACKAGES):
        if lang not in FONT_PACKAGES:
            continue
        package, family = FONT_PACKAGES[lang]
        folder = served / "fonts" / package
        sheet = folder / STYLESHEET
        if not sheet.exists():
            data = _download(package, home() / "cache" / "fonts")
            tmp = folder.with_name(f".{package}.tmp")
            tmp.mkdir(parents=True, exist_ok=True)
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:  # one pass: a .tgz has no index
                css = ""
                for member in tar:
                    name = member.name.removeprefix("package/")
                    if name == "400.css":
                        css = tar.extractfile(member).read().decode()
                    elif name == "LICENSE" or (name.startswith("files/") and name.endswith("-400-normal.woff2")):
                        (tmp / name.removeprefix("files/")).write_bytes(tar.extractfile(member).read())
            css = re.sub(
                r"src: url\(\./files/([\w.-]+\.woff2)\) format\('woff2'\)(?:, url\([^)]*\) format\('woff'\))?",
                lambda m, package=package: f"src: url({LOCAL_FILES_URL}fonts/{package}/{m.group(1)}) format('woff2')",
                css,
            )
            css = css.replace(f"font-family: '{family}'", f"font-family: '{served_family(lang)}'")
            (tmp / STYLESHEET).write_text(css)
            if folder.exists():
                import shutil

                shutil.rmtree(folder)
            rename_durably(tmp, folder)
        out[lang] = sheet
    return out


def font_css(served: Served | None, lang: str) -> str:
    """The @font-face rules of ``lang``'s served font ('' when nothing is served or the script needs none)."""
    if served is None or lang not in FONT_PACKAGES:
        return ""
    sheet = ensure_fonts(served.local, [lang])[lang]
    return sheet.read_text()


def link_images(served: Served, image_root: Path) -> None:
    """Make ``served/images`` the image root (a link, replaced when the root changes)."""
    link = served.local / "images"
    target = image_root.resolve()
    if not target.is_dir():
        raise FileNotFoundError(f"image root {image_root} is not a folder (give a folder of images or a URL prefix)")
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    if link.is_symlink() or link.exists():
        link.unlink()
    served.local.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target, target_is_directory=True)


def _placeholder(note: str) -> str:
    """A small picture that says what is missing (instead of a broken image)."""
    svg = (
        "<svg xmlns='http://www.w3.org/2000/svg' width='640' height='120'><rect width='100%' height='100%' fill='#f3f3f3'/>"
        f"<text x='20' y='65' font-family='sans-serif' font-size='22' fill='#555'>{escape(note)}</text></svg>"
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


@dataclass(frozen=True)
class ImageRoot:
    """Where the conversations' images are: a URL prefix, or a local folder served by Label Studio."""

    prefix: str | None = None
    folder: Path | None = None

    @classmethod
    def parse(cls, value: str | None) -> ImageRoot | None:
        value = value or os.environ.get("POLYGLOT_IMAGE_ROOT")
        if not value:
            return None
        if re.match(r"https?://", value):
            return cls(prefix=value if value.endswith("/") else value + "/")
        folder = Path(value).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"image root {value} is neither a URL (http…) nor a folder")
        return cls(folder=folder.resolve())

    def task_fields(self, image: str | None, served: Served | None) -> dict:
        """``image`` (a URL the page can show) and ``image_note`` for one conversation."""
        if not image:
            return {
                "image": _placeholder("This conversation has no image."),
                "image_note": "no image: this conversation has none",
            }
        if self.prefix:
            return {"image": self.prefix + urllib.parse.quote(image), "image_note": f"image {image}"}
        path = (self.folder / image).resolve()
        if not path.is_relative_to(self.folder) or not path.is_file():
            return {
                "image": _placeholder(f"Image not found: {image[:60]}"),
                "image_note": f"image not found: {image} is not in {self.folder}",
            }
        if served is None:
            return {
                "image": _placeholder("Image not served (start Label Studio with polyglot services up labelstudio)."),
                "image_note": f"image {image}: no served folder for this Label Studio",
            }
        return {
            "image": served.url(f"images/{path.relative_to(self.folder).as_posix()}"),
            "image_note": f"image {image}",
        }


def no_image_root(image: str | None) -> dict:
    note = "no image: this conversation has none" if not image else f"image {image} (no image root given: --image-root)"
    return {
        "image": _placeholder(
            "This conversation has no image." if not image else "Image not available: no image root given."
        ),
        "image_note": note,
    }
