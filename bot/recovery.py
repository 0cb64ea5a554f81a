"""Crash recovery and the sleep queue's lock: repair what a kill (``runtime.faults``) left.

The process that runs the sleep queue holds ``<data>/queue.lock`` (:func:`hold_data_dir`), so
no other process mistakes its live cycle for a crash leftover. Recovery itself runs under the
same lock (:func:`hold_for_recovery`): a process that finds the lock taken recovers nothing.
The holder writes ``<pid> queue`` or ``<pid> recovering`` into the file: ``bot status`` trusts
a running orchestrator only while its lock is held (a pid alone may have been reused), and a
queue that starts while another process recovers waits for it instead of refusing.

Recovery (:func:`reconcile`, called by ``Engine.recover`` at every start) makes the files
agree with SQLite, which is the record of what was committed, one user at a time (one user's
damaged files are reported for that user and never stop the others):

* an exchange committed to SQLite but missing from the end of the JSONL log (a kill between
  the two writes of ``ChatService.save``) is appended to the log again;
* ``CURRENT`` is put back on the registered version when it points at a version the store
  never registered (a kill between the switch and the registry), and rewritten from the
  registry when it is missing or junk; complete but unregistered version folders newer than
  every registered one are removed;
* a version that fails its sha256 check (or is gone) is set aside, the user falls back to the
  newest intact registered version (or the base model), the exchanges only the lost weights
  held become unconsolidated again and a rebuild cycle is queued (:func:`repair_checkpoint`).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from memory import checkpoints as ck

if TYPE_CHECKING:
    from bot.engine import Engine

log = logging.getLogger(__name__)

LOCK_FILE = "queue.lock"  # held (flock) by the process that runs the sleep queue
_held: dict[Path, int] = {}  # data dir → fd of the lock this process holds
QUEUE, RECOVERING = "queue", "recovering"  # what the holder writes after its pid
# A queue that starts while another process recovers waits this long for it; a status probe
# or a holder that has not yet written its role is waited for a moment only.
RECOVERY_WAIT_S, PROBE_WAIT_S = 120.0, 2.0


def _try_lock(data_dir: Path, shared: bool = False) -> int | None:
    """The lock file's fd with the flock taken (None: someone else holds it). OSError when
    the file cannot be opened (a read-only data dir)."""
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


def _write_role(fd: int, role: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {role}\n".encode(), 0)


def lock_holder(data_dir: Path) -> tuple[int, str] | None:
    """(pid, role) the lock file names, or None when unreadable or empty (only meaningful
    while the lock is held)."""
    try:
        pid, role = (Path(data_dir) / LOCK_FILE).read_text().split()
        return int(pid), role
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def hold_data_dir(data_dir: Path) -> bool:
    """Take the data directory's queue lock (False: another orchestrator, in this process or
    another, has it). The kernel drops the lock when the holder dies, even by SIGKILL. While
    another process only recovers (or probes the lock for ``bot status``), wait for it."""
    data_dir = Path(data_dir).resolve()
    if data_dir in _held:
        return False
    started = time.monotonic()
    while True:
        try:
            fd = _try_lock(data_dir)
        except OSError as exc:  # a read-only data dir: nothing to protect from a second writer
            log.warning("cannot take the queue lock in %s: %s", data_dir, exc)
            return True
        if fd is not None:
            _write_role(fd, QUEUE)
            _held[data_dir] = fd
            return True
        holder = lock_holder(data_dir)
        waited = time.monotonic() - started
        if holder is not None and holder[1] == QUEUE and _alive(holder[0]):
            return False
        if waited > (RECOVERY_WAIT_S if holder and holder[1] == RECOVERING else PROBE_WAIT_S):
            return False
        time.sleep(0.05)


def hold_for_recovery(data_dir: Path) -> bool:
    """Take the lock to recover (never waits): False when another process holds it."""
    data_dir = Path(data_dir).resolve()
    if data_dir in _held:
        return False
    try:
        fd = _try_lock(data_dir)
    except OSError as exc:
        log.warning("cannot take the queue lock in %s: %s", data_dir, exc)
        return False
    if fd is None:
        return False
    _write_role(fd, RECOVERING)
    _held[data_dir] = fd
    return True


def holds(data_dir: Path) -> bool:
    """Whether this process holds the data directory's lock."""
    return Path(data_dir).resolve() in _held


def release_data_dir(data_dir: Path) -> None:
    fd = _held.pop(Path(data_dir).resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the only descriptor releases the flock


def queue_holder(data_dir: Path) -> int | None:
    """The pid of the live process that runs the sleep queue on ``data_dir``, or None. Probes
    with a shared lock, so it never blocks the queue for longer than the probe."""
    data_dir = Path(data_dir).resolve()
    if data_dir in _held:
        return os.getpid()
    try:
        fd = _try_lock(data_dir, shared=True)
    except OSError:
        return None
    if fd is not None:  # nobody holds it
        os.close(fd)
        return None
    holder = lock_holder(data_dir)
    return holder[0] if holder is not None and holder[1] == QUEUE else None


def data_dir_in_use(data_dir: Path) -> bool:
    """Whether another live process holds the data dir's lock (runs the sleep queue, or
    recovers): its cycle and half-written files are not leftovers of a crash."""
    data_dir = Path(data_dir).resolve()
    if data_dir in _held or not (data_dir / LOCK_FILE).exists():
        return False
    try:
        fd = _try_lock(data_dir, shared=True)
    except OSError:
        return False
    if fd is None:
        return True
    os.close(fd)
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
            for ex in missing:  # a chat in another process may log it first: then it skips
                restored += await clog.append({
                    "id": ex.id, "ts": ex.ts, "source": ex.source, "user": ex.user_text,
                    "assistant": ex.assistant_text, "recovered": True})
        except OSError as exc:  # read-only or full disk: keep running, try again next start
            log.error("user %s: cannot restore %d log records: %s", user_id, len(missing), exc)
            continue
        if missing:
            log.warning("user %s: re-appended %d exchanges missing from the log", user_id,
                        len(missing))
    return restored


async def repair_checkpoint(engine: Engine, user_id: str,
                            report: RecoveryReport | None = None) -> str | None:
    """Make the user's ``CURRENT``, version folders and registry agree; returns what was
    repaired, in words (None: nothing was wrong). Only the lock holder may call it.

    When the wanted weights are lost (damaged or gone), the newest intact registered version
    (or the base model) takes over, the lost version is set aside and unregistered, the
    exchanges only it held become unconsolidated again, and a rebuild cycle is queued.
    """
    store, root = engine.store, engine.paths(user_id).checkpoints
    records = await store.checkpoints(user_id)
    if not records and not root.exists():
        return None  # never slept: nothing to repair
    registered = {r.version: r for r in records}
    registry_current = next((r.version for r in records if r.is_current), None)
    choice = ck.choose_checkpoint(root, registered, registry_current, pointer_registered=True)
    pointer = ck.read_pointer(root)
    target = choice.path and choice.version
    lost = list(choice.damaged)
    if choice.wanted and choice.wanted != target and choice.wanted not in lost:
        lost.append(choice.wanted)  # registered, but its folder is gone
    for version in lost:
        moved = ck.set_aside(root, version)
        if version in registered:
            await store.drop_checkpoint(user_id, version)
        log.warning("user %s: %s set aside%s", user_id, ck.version_name(version),
                    f" in {moved}" if moved else " (its folder is gone)")
    if pointer.state != ("version" if target else "base") or (
            target and pointer.version != target):
        ck.set_current(root, target)
    if registry_current != target and (target is None or target in registered):
        await store.set_current(user_id, target)
    if choice.wanted is not None and target != choice.wanted:
        since = registered[target].cycle_id if target else None
        relearn = await store.unconsolidate_after(user_id, since)
        await store.enqueue_sleep(user_id, "light")
        log.warning("user %s: %d exchange(s) will be learned again by a rebuild cycle "
                    "(queued)", user_id, relearn)
    if report is not None and choice.problem:
        report.checkpoints_restored.append(f"{user_id}: {choice.problem} -> {choice.name}")
    newest = max(registered, default=0)
    for version in ck.versions(root):
        if version > newest and version not in registered and version != target:
            shutil.rmtree(root / ck.version_name(version), ignore_errors=True)
            if report is not None:
                report.orphans_removed.append(f"{user_id}/{ck.version_name(version)}")
            log.warning("user %s: removed unregistered checkpoint v%d", user_id, version)
    if choice.problem:
        log.warning("user %s: %s; now answering from %s", user_id, choice.problem, choice.name)
        return f"{choice.problem}; now answering from {choice.name}"
    return None


async def reconcile_checkpoints(engine: Engine, user_id: str, report: RecoveryReport) -> None:
    """Put ``CURRENT`` back on the store's registered version after an interrupted promotion,
    or a damaged one on the newest intact version (see :func:`repair_checkpoint`)."""
    await repair_checkpoint(engine, user_id, report)


async def reconcile(engine: Engine) -> RecoveryReport:
    """Make the logs and checkpoint pointers agree with SQLite (run once at start). Each
    user's damage is that user's: it is logged and the others are repaired all the same."""
    report = RecoveryReport()
    report.log_records_restored = await reconcile_logs(engine)
    for user_id in await engine.store.list_users():
        try:
            await reconcile_checkpoints(engine, user_id, report)
        except Exception as exc:  # one user's damaged files never block the others
            log.error("user %s: cannot repair the checkpoints: %s: %s", user_id,
                      type(exc).__name__, exc)
    return report
