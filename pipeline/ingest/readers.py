"""Stream records out of LLaVA files: JSON arrays, JSONL, and gzip of either, never the whole file in memory.

Each record comes with its index in the file and the byte offset where it starts (in the decompressed
stream), so a quarantined record or a broken file can be named precisely. Hand-written on purpose: no streaming
JSON library gives both the byte offset of every record and a clean stop at the first broken byte with everything
before it kept.
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHUNK_CHARS = 1 << 20
MAX_RECORD_BYTES = 256 << 20
_WS = " \t\r\n"
GZIP_CUT = "the gzip file ends before its end-of-stream marker (an interrupted download or copy?)"


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
        if message == GZIP_CUT:
            super().__init__(
                f"{path}: cut short at record {index} (byte offset {byte_offset} of the decompressed data): {message}. "
                f"The {index} record(s) before it were kept; copy the file again and rerun."
            )
            return
        super().__init__(
            f"{path}: not valid JSON at record {index} (byte offset {byte_offset}): {message}. "
            f"The {index} record(s) before it were kept; fix or truncate the file at that offset and rerun."
        )


class _GzipStream(io.RawIOBase):
    """The decompressed bytes of a gzip file (of several members too), up to a cut if there is one.

    ``gzip.GzipFile`` raises ``EOFError`` at a cut, and a buffered read that meets it drops the bytes it had
    already gathered. This stream hands out every byte that can be decompressed, then ends like a file does
    and sets ``truncated``: the record reader then says where the file was cut, as it does for a cut JSON file.
    """

    def __init__(self, path: Path):
        self._raw = open(path, "rb")
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._pending = b""
        self._in_member = False  # inside a gzip member whose end marker has not been seen yet
        self.truncated = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            data = self._inflate.unconsumed_tail or self._inflate.unused_data or self._raw.read(1 << 16)
            if not data:
                self.truncated = self._in_member
                return 0
            if self._inflate.eof:  # the next member of a multi-member file (or padding after the last)
                if not data.strip(b"\x00"):
                    self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    continue
                self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self._in_member = True
            try:
                self._pending = self._inflate.decompress(data, 1 << 20)
            except zlib.error as exc:
                raise OSError(f"damaged gzip data: {exc}") from None
            if self._inflate.eof:
                self._in_member = False
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def _open_binary(path: Path) -> tuple[io.BufferedIOBase, Callable[[], bool]]:
    """The file's bytes (decompressed if gzip) and a function telling, once read, whether it was cut short."""
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        gz = _GzipStream(path)
        return io.BufferedReader(gz, buffer_size=1 << 16), lambda: gz.truncated
    return open(path, "rb"), lambda: False


def iter_records(path: str | Path) -> Iterator[RawRecord]:
    """Yield the records of a JSON array, JSONL, or concatenated JSON values file (gzip or not).

    The format is told from the first byte ("[" → array) and, for "{", from whether the first line is a
    whole JSON value (JSONL: a bad line is quarantined and reading goes on) or not (pretty-printed values:
    a syntax error stops the file). A gzip file cut short ends like a cut JSON file: every record before the
    cut, then :class:`FileFormatError` naming the record and byte offset of the cut.
    """
    path = Path(path)
    probe, _ = _open_binary(path)
    with probe:
        head = probe.readline().lstrip(b" \t\r\n\xef\xbb\xbf")
    stream, truncated = _open_binary(path)
    with stream:
        if head.startswith(b"["):
            yield from _iter_json_values(path, stream, truncated, array=True)
        elif head.startswith(b"{") and not _is_json(head):
            yield from _iter_json_values(path, stream, truncated, array=False)
        else:
            yield from _iter_jsonl(path, stream, truncated)


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _iter_jsonl(path: Path, stream: io.BufferedIOBase, truncated: Callable[[], bool]) -> Iterator[RawRecord]:
    index = 0
    offset = 0
    for line in stream:
        start = offset
        offset += len(line)
        if not line.endswith(b"\n") and truncated():  # the line the cut went through
            raise FileFormatError(str(path), index, start, GZIP_CUT, line)
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
    if truncated():  # cut right after a line break
        raise FileFormatError(str(path), index, offset, GZIP_CUT)


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


def _iter_json_values(
    path: Path, stream: io.BufferedIOBase, truncated: Callable[[], bool], array: bool
) -> Iterator[RawRecord]:
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
        if truncated():
            message = GZIP_CUT
        return FileFormatError(
            str(path), index, counter.at(buf, pos), message, buf[pos : pos + 4096].encode("utf-8", "surrogateescape")
        )

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
            if array or truncated():
                raise fail("file ends inside the array (truncated?)")
            return
        start = pos
        while True:
            try:
                obj, end = decoder.raw_decode(buf, pos)
                if end == len(buf) and not eof and buf[pos] not in '{["':
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
