"""The append-only per-user conversation log (one JSON object per line).

The log is the durable record of what a user said: every append is flushed and fsync'd
before it returns. Reading tolerates damage (a torn last line after a crash, bad bytes):
unreadable lines are skipped with a warning and the rest survive.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiofiles

log = logging.getLogger(__name__)


class MemoryWriteError(OSError):
    """The conversation log could not be written (read-only directory, disk full, ...)."""


def _write_error(path: Path, exc: OSError) -> MemoryWriteError:
    message = (
        f"cannot write conversation log {path}: {exc.strerror or exc} "
        "(is the directory read-only or the disk full?)"
    )
    # OSError's two-argument form keeps errno, so callers can still tell ENOSPC from EROFS.
    return MemoryWriteError(exc.errno, message) if exc.errno else MemoryWriteError(message)


def fsync_path(path: Path) -> None:
    """fsync a file or a directory by path (a new or replaced file's directory entry is only
    durable once the directory is synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def parse_records(data: bytes, path: Path) -> list[dict[str, Any]]:
    """Parse JSONL bytes, skipping (with one warning each) lines that are not a JSON object."""
    records: list[dict[str, Any]] = []
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            log.warning("skipping unreadable line %d in %s (%s)", lineno, path, type(exc).__name__)
            continue
        if not isinstance(record, dict):
            log.warning("skipping line %d in %s: not a JSON object", lineno, path)
            continue
        records.append(record)
    return records


class ConversationLog:
    """An append-only JSONL file of conversation records for one user."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = asyncio.Lock()
        # False until we know the file ends with a newline (a crash may leave a torn line).
        self._tail_ok = False

    async def append(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one line; it is on disk (fsync'd) when this returns."""
        # Encode first so a bad record fails before any byte is written.
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        async with self._lock:
            try:
                await self._append_bytes(data)
            except OSError as exc:
                self._tail_ok = False
                raise _write_error(self.path, exc) from exc

    async def _append_bytes(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        if not self._tail_ok:
            data = await self._tail_separator() + data
        loop = asyncio.get_running_loop()
        async with aiofiles.open(self.path, "ab") as f:
            await f.write(data)
            await f.flush()
            await loop.run_in_executor(None, os.fsync, f.fileno())
        if created:
            await loop.run_in_executor(None, fsync_path, self.path.parent)
        self._tail_ok = True

    async def _tail_separator(self) -> bytes:
        """A newline if the file ends mid-line, so the next record starts on its own line."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return b""
        async with aiofiles.open(self.path, "rb") as f:
            await f.seek(-1, os.SEEK_END)
            last = await f.read(1)
        return b"" if last == b"\n" else b"\n"

    def read(self) -> list[dict[str, Any]]:
        """All readable records, in order (an absent file reads as empty)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        return parse_records(data, self.path)

    async def aread(self) -> list[dict[str, Any]]:
        """Async :meth:`read`; waits for in-flight appends so no half line is seen."""
        async with self._lock:
            return await self._read_unlocked()

    async def _read_unlocked(self) -> list[dict[str, Any]]:
        try:
            async with aiofiles.open(self.path, "rb") as f:
                data = await f.read()
        except FileNotFoundError:
            return []
        return parse_records(data, self.path)

    async def rewrite(self, keep: Callable[[dict[str, Any]], bool]) -> int:
        """Keep only records for which ``keep`` is true; return how many were removed.

        The new log is written to a temp file in the same directory, fsync'd and swapped in
        with ``os.replace``, so a crash leaves either the old or the new log, never a mix.
        Unreadable lines are dropped by the rewrite.
        """
        async with self._lock:
            records = await self._read_unlocked()
            kept = [r for r in records if keep(r)]
            removed = len(records) - len(kept)
            if removed == 0:
                return 0
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(None, self._replace_with, kept)
            except OSError as exc:
                raise _write_error(self.path, exc) from exc
            self._tail_ok = True
            return removed

    def _replace_with(self, records: list[dict[str, Any]]) -> None:
        fd, tmp_name = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(fd, "wb") as f:
                for record in records:
                    f.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_name, self.path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        fsync_path(self.path.parent)
