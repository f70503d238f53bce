"""Files the pipeline keeps: checksums of files.

Shared by every stage (imports nothing of the project).
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    """The sha256 of a file's bytes, read in blocks (flat memory whatever the size)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
