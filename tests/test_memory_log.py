"""Tests for memory.log.ConversationLog: durable appends, damage-tolerant reads, rewrite."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import pytest

from memory.log import ConversationLog, MemoryWriteError
from tests.conftest import unwritable_dir


@pytest.mark.asyncio
async def test_append_fsyncs_then_reads_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    path = tmp_path / "deep" / "dir" / "conversation.jsonl"
    clog = ConversationLog(path)
    await clog.append({"role": "user", "text": "héllo ✓"})
    assert synced, "append returned without fsync"
    await clog.append({"role": "assistant", "text": "hi"})
    assert "héllo ✓" in path.read_text(encoding="utf-8")  # ensure_ascii=False
    expected = [{"role": "user", "text": "héllo ✓"}, {"role": "assistant", "text": "hi"}]
    assert clog.read() == expected
    assert await clog.aread() == expected
    assert ConversationLog(path).read() == expected


@pytest.mark.asyncio
async def test_missing_file_reads_empty(tmp_path: Path) -> None:
    clog = ConversationLog(tmp_path / "none.jsonl")
    assert clog.read() == []
    assert await clog.aread() == []


@pytest.mark.asyncio
async def test_concurrent_appends_do_not_interleave(tmp_path: Path) -> None:
    clog = ConversationLog(tmp_path / "c.jsonl")
    await asyncio.gather(*(clog.append({"i": i, "pad": "x" * 5000}) for i in range(50)))
    records = clog.read()
    assert sorted(r["i"] for r in records) == list(range(50))


def test_bad_lines_in_the_middle_are_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(
        b'{"n": 1}\n'
        b'{"n": \xff\xfe 2}\n'  # invalid UTF-8
        b'{"n": 3, "broken\n'  # invalid JSON
        b"[4]\n"  # valid JSON, not an object
        b'{"n": 5}\n'
    )
    with caplog.at_level(logging.WARNING, logger="memory.log"):
        assert ConversationLog(path).read() == [{"n": 1}, {"n": 5}]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    for lineno, msg in zip((2, 3, 4), warnings, strict=True):
        assert f"line {lineno}" in msg and str(path) in msg


@pytest.mark.asyncio
async def test_torn_last_line_does_not_swallow_next_append(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'{"n": 1}\n{"n": 2, "te')  # crash mid-write
    clog = ConversationLog(path)
    with caplog.at_level(logging.WARNING, logger="memory.log"):
        assert clog.read() == [{"n": 1}]
        await clog.append({"n": 3})
        assert await clog.aread() == [{"n": 1}, {"n": 3}]
    assert any("line 2" in r.getMessage() for r in caplog.records)


@pytest.mark.asyncio
async def test_rewrite_removes_matching_records(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    clog = ConversationLog(path)
    for i in range(5):
        await clog.append({"n": i, "topic": "cats" if i % 2 else "dogs"})
    removed = await clog.rewrite(lambda r: r["topic"] != "cats")
    assert removed == 2
    assert [r["n"] for r in clog.read()] == [0, 2, 4]
    assert await clog.rewrite(lambda r: True) == 0
    await clog.append({"n": 5, "topic": "dogs"})
    assert [r["n"] for r in clog.read()] == [0, 2, 4, 5]
    assert [p.name for p in tmp_path.iterdir()] == ["c.jsonl"]  # no temp files left


@pytest.mark.asyncio
async def test_rewrite_missing_file(tmp_path: Path) -> None:
    assert await ConversationLog(tmp_path / "none.jsonl").rewrite(lambda r: False) == 0


@pytest.mark.asyncio
async def test_unwritable_directory_raises_memory_write_error(tmp_path: Path) -> None:
    path = unwritable_dir(tmp_path) / "sleepbot-test-conversation.jsonl"
    with pytest.raises(MemoryWriteError, match="cannot write conversation log") as info:
        await ConversationLog(path).append({"n": 1})
    assert isinstance(info.value, OSError)
    assert str(path) in str(info.value)
    assert not path.exists()


@pytest.mark.asyncio
async def test_parent_is_a_file_raises_memory_write_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(MemoryWriteError, match="read-only or the disk full"):
        await ConversationLog(blocker / "c.jsonl").append({"n": 1})


@pytest.mark.asyncio
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
async def test_disk_full_raises_memory_write_error() -> None:
    with pytest.raises(MemoryWriteError, match="disk full") as info:
        await ConversationLog(Path("/dev/full")).append({"n": 1})
    assert info.value.errno is not None


@pytest.mark.asyncio
async def test_unserialisable_record_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    clog = ConversationLog(path)
    await clog.append({"n": 1})
    with pytest.raises(TypeError):
        await clog.append({"bad": object()})
    assert json.loads(path.read_text()) == {"n": 1}
