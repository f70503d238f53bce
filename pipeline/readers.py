"""Stream records out of LLaVA files: JSON arrays, JSONL, and gzip of either, never the whole file in memory.

Each record comes with its index in the file and the byte offset where it starts (in the decompressed
stream), so a quarantined record or a broken file can be named precisely.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHUNK_CHARS = 1 << 20
MAX_RECORD_BYTES = 256 << 20
_WS = " \t\r\n"


@dataclass(slots=True)
class RawRecord:
    """A parsed record, or the reason it could not be parsed (``obj`` is then None)."""

    index: int
    byte_offset: int
    obj: Any = None
    error: str | None = None  # machine-readable reason when the record could not be parsed
    detail: str = ""
    raw: bytes | None = None  # the record's bytes, kept only when it could not be parsed


class FileFormatError(Exception):
    """The file stops being valid JSON/JSONL at some point; records before it were delivered."""

    def __init__(self, path: str, index: int, byte_offset: int, message: str, raw: bytes = b""):
        self.path, self.index, self.byte_offset, self.raw = path, index, byte_offset, raw
        super().__init__(
            f"{path}: not valid JSON at record {index} (byte offset {byte_offset}): {message}. "
            f"The {index} record(s) before it were kept; fix or truncate the file at that offset and rerun."
        )


def _open_binary(path: Path) -> io.BufferedIOBase:
    raw = open(path, "rb")
    magic = raw.read(2)
    raw.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    return raw  # type: ignore[return-value]


def iter_records(path: str | Path) -> Iterator[RawRecord]:
    """Yield the records of a JSON array, JSONL, or concatenated JSON values file (gzip or not).

    The format is told from the first byte ("[" → array) and, for "{", from whether the first line is a
    whole JSON value (JSONL: a bad line is quarantined and reading goes on) or not (pretty-printed values:
    a syntax error stops the file).
    """
    path = Path(path)
    with _open_binary(path) as stream:
        first_line = stream.readline()
        stream.seek(0)
        head = first_line.lstrip(b" \t\r\n\xef\xbb\xbf")
        if head.startswith(b"["):
            yield from _iter_json_values(path, stream, array=True)
        elif head.startswith(b"{") and not _is_json(head):
            yield from _iter_json_values(path, stream, array=False)
        else:
            yield from _iter_jsonl(path, stream)


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _iter_jsonl(path: Path, stream: io.BufferedIOBase) -> Iterator[RawRecord]:
    index = 0
    offset = 0
    for line in stream:
        start = offset
        offset += len(line)
        if not line.strip():
            continue
        if index == 0 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield RawRecord(index, start, error="invalid_utf8", detail=f"byte {exc.start}: {exc.reason}", raw=line)
        else:
            try:
                yield RawRecord(index, start, json.loads(text))
            except json.JSONDecodeError as exc:
                yield RawRecord(index, start, error="invalid_json", detail=f"{exc.msg} at column {exc.colno}", raw=line)
        index += 1


class _ByteCounter:
    """Byte offsets of positions in a decoded text buffer, computed incrementally (linear in total)."""

    def __init__(self) -> None:
        self.pos = 0
        self.bytes = 0

    def at(self, buf: str, pos: int) -> int:
        if pos < self.pos:
            raise ValueError("byte counter moves forward only")
        self.bytes += len(buf[self.pos : pos].encode("utf-8", "surrogateescape"))
        self.pos = pos
        return self.bytes

    def rebase(self, dropped: int) -> None:
        self.pos -= dropped


def _iter_json_values(path: Path, stream: io.BufferedIOBase, array: bool) -> Iterator[RawRecord]:
    # Undecodable bytes become lone surrogates: the record that holds them is quarantined, not the file.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    decoder = json.JSONDecoder()
    buf = text.read(CHUNK_CHARS)
    eof = not buf
    counter = _ByteCounter()
    pos = 0
    index = 0

    def fill(min_extra: int = CHUNK_CHARS) -> bool:
        nonlocal buf, pos, eof
        if eof:
            return False
        if pos > 0:
            counter.at(buf, pos)
            buf = buf[pos:]
            counter.rebase(pos)
            pos = 0
        more = text.read(max(min_extra, CHUNK_CHARS))
        if not more:
            eof = True
            return False
        buf += more
        return True

    def skip_ws() -> bool:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in _WS:
                pos += 1
            if pos < len(buf):
                return True
            if not fill():
                return False

    def fail(message: str) -> FileFormatError:
        return FileFormatError(str(path), index, counter.at(buf, pos), message, buf[pos : pos + 4096].encode("utf-8", "surrogateescape"))

    if array:
        skip_ws()
        pos += 1  # the opening "[" (seen by the caller)
        if not skip_ws():
            raise fail("the array is never closed (file truncated?)")
        if buf[pos] == "]":
            pos += 1
            if skip_ws():
                raise fail("unexpected data after the closing ']'")
            return
    while True:
        if not skip_ws():
            if array:
                raise fail("file ends inside the array (truncated?)")
            return
        start = pos
        while True:
            try:
                obj, end = decoder.raw_decode(buf, pos)
                if end == len(buf) and not eof and buf[pos] not in "{[\"":
                    raise json.JSONDecodeError("number may continue", buf, end)
                break
            except json.JSONDecodeError as exc:
                if len(buf) - pos > MAX_RECORD_BYTES:
                    raise fail(f"record larger than {MAX_RECORD_BYTES} bytes or {exc.msg}") from None
                if not fill(len(buf) - pos):
                    raise fail(exc.msg) from None
                start = pos
        yield RawRecord(index, counter.at(buf, start), obj)
        index += 1
        pos = end
        if not array:
            continue
        if not skip_ws():
            raise fail("file ends after a record: expected ',' or ']' (truncated?)")
        if buf[pos] == ",":
            pos += 1
            continue
        if buf[pos] != "]":
            raise fail(f"expected ',' or ']' after a record, found {buf[pos]!r}")
        pos += 1
        if skip_ws():
            raise fail("unexpected data after the closing ']'")
        return
