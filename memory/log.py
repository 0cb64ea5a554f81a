"""The append-only per-user conversation log (one JSON object per line).

The log is the durable record of what a user said: every append is flushed and fsync'd
before it returns. Reading tolerates damage (a torn last line after a crash, bad bytes):
unreadable lines are skipped with a warning and the rest survive.

Several processes may append to one log (a chat, and crash recovery in another process
re-appending what SQLite has and the log lacks): appends hold an exclusive ``flock`` on the
file, and a record whose ``id`` is already at the end of the log is not written again, so
each exchange is logged exactly once whichever process gets there first.
"""

from __future__ import annotations

import asyncio
import fcntl
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


def _tail_has_id(f, size: int, record_id: int) -> bool:
    """Whether a record with ``record_id`` is at the end of the open log: lines are read
    backwards until one with a smaller id (ids only grow along a log)."""
    pos, carry = size, b""
    while pos > 0:
        step = min(1 << 16, pos)
        pos -= step
        f.seek(pos)
        lines = (f.read(step) + carry).split(b"\n")
        carry = lines.pop(0) if pos > 0 else b""  # maybe half a line: joined to the next read
        for raw in reversed(lines):
            try:
                rid = json.loads(raw.decode("utf-8")).get("id")
            except (ValueError, AttributeError):  # torn, undecodable or not an object
                continue
            if rid == record_id:
                return True
            if isinstance(rid, int) and rid < record_id:
                return False
    return False


class ConversationLog:
    """An append-only JSONL file of conversation records for one user."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = asyncio.Lock()

    async def append(self, record: dict[str, Any]) -> bool:
        """Append ``record`` as one line; it is on disk (fsync'd) when this returns. Returns
        False when a record with the same ``id`` was already there (another process logged it
        first): nothing is written then."""
        # Encode first so a bad record fails before any byte is written.
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        record_id = record.get("id") if isinstance(record.get("id"), int) else None
        async with self._lock:
            try:
                return await asyncio.get_running_loop().run_in_executor(
                    None, self._append_locked, data, record_id)
            except OSError as exc:
                raise _write_error(self.path, exc) from exc

    def _open_locked(self, mode: str):
        """The log opened and flock'ed; reopened if a rewrite replaced the file meanwhile."""
        while True:
            f = open(self.path, mode)
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
                if os.fstat(f.fileno()).st_ino == os.stat(self.path).st_ino:
                    return f
            except FileNotFoundError:  # replaced and not yet there: open again
                pass
            except BaseException:
                f.close()
                raise
            f.close()

    def _append_locked(self, data: bytes, record_id: int | None) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        with self._open_locked("a+b") as f:  # closing the file releases the flock
            size = os.fstat(f.fileno()).st_size
            if record_id is not None and size and _tail_has_id(f, size, record_id):
                return False
            if size:  # a crash may have left a torn last line: start on a line of our own
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    data = b"\n" + data
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if created:
            fsync_path(self.path.parent)
        return True

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
            return removed

    def _replace_with(self, records: list[dict[str, Any]]) -> None:
        # Hold the old file's flock: an append in another process waits, then sees the new
        # file (its inode changed) and appends there.
        with self._open_locked("rb"):
            fd, tmp_name = tempfile.mkstemp(
                dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
            )
            try:
                with os.fdopen(fd, "wb") as f:
                    for record in records:
                        f.write((json.dumps(record, ensure_ascii=False) + "\n").encode())
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp_name, self.path)
            except BaseException:
                Path(tmp_name).unlink(missing_ok=True)
                raise
        fsync_path(self.path.parent)
