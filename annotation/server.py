"""The Label Studio server: its own virtual environment and data directory, bound to 127.0.0.1, with the admin
login and API token from the environment (or generated once into a file of mode 0600; never printed)."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from annotation.assets import ImageRoot, Served, ensure_fonts, link_images
from pipeline.processes import ServerRecord, answers, check_slot, ensure_env, home, records, running, say, spawn, stop
from pipeline.storage import write_atomic

LABEL_STUDIO_REQUIREMENT = "label-studio==1.23.2"


@dataclass
class LabelStudioLogin:
    """Who the project talks to Label Studio as. Secrets never appear in ``repr`` and are never printed."""

    url: str
    username: str
    password: str = field(repr=False)
    api_key: str = field(repr=False)
    source: str  # where the secrets came from: environment | FILE


def secrets_file() -> Path:
    return home() / "secrets" / "labelstudio.json"


def _read_secret_file(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise RuntimeError(
            f"cannot read the Label Studio API key file {path} (LABEL_STUDIO_API_KEY_FILE): {exc.strerror}"
        ) from None


def labelstudio_login(create: bool = False) -> LabelStudioLogin:
    """The admin login and API token: ``LABEL_STUDIO_API_KEY`` (or ``LABEL_STUDIO_API_KEY_FILE``),
    ``LABEL_STUDIO_USERNAME``/``LABEL_STUDIO_PASSWORD`` from the environment, else ``secrets/labelstudio.json``;
    with ``create``, missing ones are generated and saved there (mode 0600). URL: ``LABEL_STUDIO_URL``, else
    the local server started by ``polyglot services up labelstudio``, else http://127.0.0.1:8080.
    """
    path = secrets_file()
    stored = json.loads(path.read_text()) if path.exists() else {}
    env_key = os.environ.get("LABEL_STUDIO_API_KEY") or (
        _read_secret_file(os.environ["LABEL_STUDIO_API_KEY_FILE"])
        if os.environ.get("LABEL_STUDIO_API_KEY_FILE")
        else None
    )
    values = {
        "username": os.environ.get("LABEL_STUDIO_USERNAME") or stored.get("username"),
        "password": os.environ.get("LABEL_STUDIO_PASSWORD") or stored.get("password"),
        "api_key": env_key or stored.get("api_key"),
    }
    if create and not all(values.values()):
        generated = {
            "username": values["username"] or "admin@llava-polyglot.local",
            "password": values["password"] or secrets.token_urlsafe(18),
            "api_key": values["api_key"] or secrets.token_hex(20),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        kept = {**stored, **{k: v for k, v in generated.items() if k not in stored}}
        write_atomic(path, json.dumps(kept, indent=2), mode=0o600)  # never readable by others, not even while written
        values = generated
    if not values["api_key"]:
        raise RuntimeError(
            "no Label Studio API key: set LABEL_STUDIO_API_KEY (or LABEL_STUDIO_API_KEY_FILE), "
            "or start the local server with: polyglot services up labelstudio"
        )
    url = os.environ.get("LABEL_STUDIO_URL")
    if not url:
        live = [r for r in records("labelstudio") if running(r)]
        url = live[0].url if live else "http://127.0.0.1:8080"
    source = "environment" if env_key else str(path)
    return LabelStudioLogin(
        url.rstrip("/"), values["username"] or "", values["password"] or "", values["api_key"], source
    )


def start_labelstudio(
    port: int = 8080,
    host: str = "127.0.0.1",
    data_dir: Path | None = None,
    wait_seconds: float = 300.0,
    image_root: str | None = None,
) -> ServerRecord:
    """Start Label Studio (own environment, own data dir) with the admin user and API token of
    :func:`labelstudio_login`; sign-up only through the invite link; analytics and version checks off.

    It serves ``<data dir>/served`` through its local-files storage and nothing outside it: the fonts of the
    labeling pages (fetched once) and, with a local ``image_root``, a link to the images."""
    check_slot("labelstudio", "Label Studio", port)
    images = ImageRoot.parse(image_root)
    python = ensure_env("labelstudio", LABEL_STUDIO_REQUIREMENT)
    login = labelstudio_login(create=True)
    data = Path(data_dir or home() / "labelstudio").resolve()
    data.mkdir(parents=True, exist_ok=True)
    served = data / "served"
    (served / "fonts").mkdir(parents=True, exist_ok=True)
    say(f"fonts for the labeling pages in {served / 'fonts'} (Noto, OFL; fetched once)")
    ensure_fonts(served)
    if images is not None and images.folder is not None:
        link_images(Served(served, str(served)), images.folder)
    env_extra = {
        "LABEL_STUDIO_USERNAME": login.username,
        "LABEL_STUDIO_PASSWORD": login.password,
        "LABEL_STUDIO_USER_TOKEN": login.api_key,
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_BASE_DATA_DIR": str(data),
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "LABEL_STUDIO_HOST": f"http://{host}:{port}",
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(served),
        "COLLECT_ANALYTICS": "false",
        "LATEST_VERSION_CHECK": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "DO_NOT_TRACK": "1",
    }
    cmd = [str(python.parent / "label-studio"), "start", "--no-browser", "--internal-host", host, "--port", str(port)]
    record = spawn(
        "labelstudio",
        "Label Studio",
        "/health",
        cmd,
        env_extra,
        host,
        port,
        str(data),
        "label-studio",
        wait_seconds,
        cwd=data,
    )
    if not answers(f"{record.url}/api/current-user/whoami", headers={"Authorization": f"Token {login.api_key}"}):
        stop("labelstudio", port)
        raise RuntimeError(
            f"Label Studio started, but the API key from {login.source} is not the admin's token in {data}: "
            "use the key that data directory was created with, or a new data directory"
        )
    return record
