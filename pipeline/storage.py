"""Files the pipeline keeps: one durable, atomic way to write a state file, and checksums of files.

A state file (a table, a JSON record, a marker) is written to a temporary file in the same folder, flushed and
fsynced, renamed over the old one, and the folder is fsynced: a reader — or the next run after a crash, a
``kill -9`` or a lost machine — finds the old file or the new one, never a torn one. Shared by every stage
(imports nothing of the project).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

Content = bytes | str | Callable[[BinaryIO], object]  # the bytes, text (UTF-8), or a function writing to the open file


def write_atomic(path: str | Path, content: Content, mode: int = 0o644) -> Path:
    """Replace ``path`` with ``content`` atomically and durably (see the module's docstring); returns ``path``.

    A failure while writing (an exception, or the process killed) leaves the old file as it was; the temporary
    file of a killed writer (``.NAME.*.tmp`` beside it) is garbage that readers never look at."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content.encode("utf-8") if isinstance(content, str) else content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return path


def fsync_dir(folder: str | Path) -> None:
    """Make a rename (or a new file) in ``folder`` durable: the folder's entry list is written out too."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rename_durably(source: str | Path, target: str | Path) -> None:
    """Rename a finished file or folder into place (``os.rename``: an existing folder is never replaced) and make
    the rename durable."""
    os.rename(source, target)
    fsync_dir(Path(target).parent)


def sha256_file(path: str | Path) -> str:
    """The sha256 of a file's bytes, read in blocks (flat memory whatever the size)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
