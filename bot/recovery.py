"""Crash recovery and the sleep queue's lock: repair what a kill (``runtime.faults``) left.

The process that runs the sleep queue holds ``<data>/queue.lock`` (:func:`hold_data_dir`), so
no other process mistakes its live cycle for a crash leftover.

Recovery (:func:`reconcile`, called by ``Engine.recover`` at every start) makes the files
agree with SQLite, which is the record of what was committed:

* an exchange committed to SQLite but missing from the end of the JSONL log (a kill between
  the two writes of ``ChatService.save``) is appended to the log again;
* a ``CURRENT`` pointer at a version the store never registered (a kill between the switch
  and the registry) is put back on the registered version, and complete but unregistered
  version folders newer than every registered one are removed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.engine import Engine

log = logging.getLogger(__name__)

LOCK_FILE = "queue.lock"  # held (flock) by the process that runs the sleep queue
_held: dict[Path, int] = {}  # data dir → fd of the lock this process holds


def hold_data_dir(data_dir: Path) -> bool:
    """Take the data directory's queue lock (False: another orchestrator, in this process or
    another, has it). The kernel drops the lock when the holder dies, even by SIGKILL."""
    data_dir = Path(data_dir).resolve()
    if data_dir in _held:
        return False
    try:
        fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a read-only data dir: nothing to protect from a second writer
        log.warning("cannot take the queue lock in %s: %s", data_dir, exc)
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _held[data_dir] = fd
    return True


def release_data_dir(data_dir: Path) -> None:
    fd = _held.pop(Path(data_dir).resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the only descriptor releases the flock


def data_dir_in_use(data_dir: Path) -> bool:
    """Whether another live process runs the sleep queue on ``data_dir`` (so its cycle and
    its half-written files are not leftovers of a crash)."""
    data_dir = Path(data_dir).resolve()
    if data_dir in _held or not (data_dir / LOCK_FILE).exists():
        return False
    if not hold_data_dir(data_dir):
        return True
    release_data_dir(data_dir)
    return False


@dataclass
class RecoveryReport:
    log_records_restored: int = 0
    checkpoints_restored: list[str] = field(default_factory=list)
    orphans_removed: list[str] = field(default_factory=list)


async def reconcile_logs(engine: Engine) -> int:
    """Append to each user's JSONL log the committed exchanges it lacks; return how many."""
    restored = 0
    for user_id in await engine.store.list_users():
        exchanges = await engine.store.exchanges(user_id)
        if not exchanges:
            continue
        clog = engine.conversation_log(user_id)
        logged = {r.get("id") for r in await clog.aread()}
        # Only past the log's newest record: a kill between the two writes of a save loses the
        # newest lines; an older gap is someone's deliberate removal (forget), never undone.
        newest = max((i for i in logged if isinstance(i, int)), default=0)
        missing = [ex for ex in exchanges if ex.id > newest]
        try:
            for ex in missing:
                await clog.append({"id": ex.id, "ts": ex.ts, "source": ex.source,
                                   "user": ex.user_text, "assistant": ex.assistant_text,
                                   "recovered": True})
                restored += 1
        except OSError as exc:  # read-only or full disk: keep running, try again next start
            log.error("user %s: cannot restore %d log records: %s", user_id, len(missing), exc)
            continue
        if missing:
            log.warning("user %s: re-appended %d exchanges missing from the log", user_id,
                        len(missing))
    return restored


async def reconcile_checkpoints(engine: Engine, user_id: str, report: RecoveryReport) -> None:
    """Put ``CURRENT`` back on the store's registered version after an interrupted promotion."""
    from memory import checkpoints as ck

    root = engine.paths(user_id).checkpoints
    if not root.is_dir():
        return
    records = await engine.store.checkpoints(user_id)
    registered = {r.version for r in records}
    current = await engine.store.current_checkpoint(user_id)
    try:
        on_disk = ck.current_version(root)
    except ck.CheckpointError:
        on_disk = -1  # CURRENT names a folder that is not complete: restore too
    if on_disk != 0 and on_disk not in registered:
        back = current.version if current and ck.is_complete(root / ck.version_name(
            current.version)) else None
        ck.set_current(root, back)
        report.checkpoints_restored.append(f"{user_id}: v{on_disk} -> {back or 'base'}")
        log.warning("user %s: CURRENT pointed at an unregistered checkpoint; restored", user_id)
    newest = max(registered, default=0)
    for version in ck.versions(root):
        if version > newest and version not in registered:
            shutil.rmtree(root / ck.version_name(version), ignore_errors=True)
            report.orphans_removed.append(f"{user_id}/{ck.version_name(version)}")
            log.warning("user %s: removed unregistered checkpoint v%d", user_id, version)


async def reconcile(engine: Engine) -> RecoveryReport:
    """Make the logs and checkpoint pointers agree with SQLite (run once at start)."""
    report = RecoveryReport()
    report.log_records_restored = await reconcile_logs(engine)
    for user_id in await engine.store.list_users():
        try:
            await reconcile_checkpoints(engine, user_id, report)
        except OSError as exc:
            log.error("user %s: cannot repair the checkpoint pointer: %s", user_id, exc)
    return report
