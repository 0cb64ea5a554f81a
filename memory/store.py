"""The SQLite store (via aiosqlite): users, exchanges, replay buffer, cycles, checkpoints, queue.

The database runs in WAL mode with ``synchronous=FULL`` so a committed write survives a
crash. The schema is versioned: ``MIGRATIONS`` are applied in order, each in its own
transaction, and re-opening a database applies only the newer ones. Every user-scoped
query filters by ``user_id``: one user's data is never returned for another.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import struct
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, get_args

import aiosqlite
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

log = logging.getLogger(__name__)

_SCHEMA_V1 = """
CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    display_name TEXT,
    created_at REAL NOT NULL,
    turns_since_sleep INTEGER NOT NULL DEFAULT 0,
    cycles_done INTEGER NOT NULL DEFAULT 0,
    last_message_at REAL,
    last_sleep_at REAL
);
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    started_at REAL NOT NULL,
    summary TEXT
);
CREATE INDEX ix_sessions_user ON sessions(user_id);
CREATE TABLE exchanges (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    session_id INTEGER REFERENCES sessions(id) ON DELETE SET NULL,
    ts REAL NOT NULL,
    user_text TEXT NOT NULL,
    assistant_text TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT 'chat' CHECK (source IN ('chat', 'ingest')),
    consolidated_cycle INTEGER
);
CREATE INDEX ix_exchanges_user ON exchanges(user_id, consolidated_cycle);
CREATE TABLE replay_items (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    priority REAL NOT NULL,
    times_replayed INTEGER NOT NULL DEFAULT 0,
    created_cycle INTEGER,
    source_exchange_ids TEXT NOT NULL DEFAULT '[]',
    UNIQUE (user_id, question, answer)
);
CREATE INDEX ix_replay_user_priority ON replay_items(user_id, priority DESC);
CREATE TABLE cycles (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    status TEXT NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'accepted', 'rejected', 'failed', 'empty')),
    report TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX ix_cycles_user ON cycles(user_id);
CREATE INDEX ix_cycles_status ON cycles(status);
CREATE TABLE checkpoints (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    path TEXT NOT NULL,
    parent_version INTEGER,
    created_at REAL NOT NULL,
    cycle_id INTEGER,
    is_current INTEGER NOT NULL DEFAULT 0,
    UNIQUE (user_id, version)
);
CREATE INDEX ix_checkpoints_user ON checkpoints(user_id);
CREATE TABLE sleep_queue (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    requested_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'running', 'done', 'failed')),
    started_at REAL,
    finished_at REAL
);
CREATE INDEX ix_sleep_queue_user ON sleep_queue(user_id);
CREATE INDEX ix_sleep_queue_state ON sleep_queue(state, requested_at);
-- a user has at most one pending (queued or running) sleep job
CREATE UNIQUE INDEX ux_sleep_queue_active ON sleep_queue(user_id)
    WHERE state IN ('queued', 'running');
"""

# A reply the user never received (Discord refused it: missing permission, DMs closed, a
# deleted channel) is kept, flagged, and never consolidated into the weights.
_V2_UNDELIVERED = """
ALTER TABLE exchanges ADD COLUMN undelivered INTEGER NOT NULL DEFAULT 0;
"""

# Which conversation files were ingested for a user (by content hash: no text), and how far
# an ingest got, so the same file is never logged twice and a stopped ingest continues.
_V3_INGESTS = """
CREATE TABLE ingests (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL,
    name TEXT NOT NULL,
    turns INTEGER NOT NULL,
    saved INTEGER NOT NULL DEFAULT 0,
    last_exchange_id INTEGER,
    started_at REAL NOT NULL,
    finished_at REAL,
    UNIQUE (user_id, sha256)
);
"""

# The distributed mode (bot/cluster/): one lease per user for the cycle being computed on a
# worker. ``token`` only ever grows (a fencing token); a promotion is registered only in the
# same transaction that finds its token still current and unexpired, so a worker that was
# given up on (killed, stalled past its lease) can never promote.
_V4_LEASES = """
CREATE TABLE leases (
    user_id TEXT PRIMARY KEY REFERENCES users(user_id) ON DELETE CASCADE,
    token INTEGER NOT NULL,
    holder TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""

# Append-only: never edit a released script, add a new one. Index i brings the schema to i+1.
MIGRATIONS: list[str] = [_SCHEMA_V1, _V2_UNDELIVERED, _V3_INGESTS, _V4_LEASES]

CycleStatus = Literal["running", "accepted", "rejected", "failed", "empty"]
JobState = Literal["queued", "running", "done", "failed"]
SleepKind = Literal["light", "deep"]
CYCLE_STATUSES = frozenset(get_args(CycleStatus))
JOB_STATES = frozenset(get_args(JobState))
SLEEP_KINDS = frozenset(get_args(SleepKind))


def _is_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


class StoreError(Exception):
    """The store could not be opened or migrated (read-only directory, corrupt file, ...)."""


class LeaseLost(StoreError):
    """A fencing token is no longer the user's current, unexpired lease: whoever holds it was
    given up on, and what it computed must not be promoted."""


class StoreCorrupt(StoreError, sqlite3.DatabaseError):
    """The database file (or its write-ahead log) is damaged. Nothing more is written to it;
    the message names the file and says how to restore it. A ``sqlite3.DatabaseError`` too,
    so that chat treats it like any other database that cannot be written (keeps answering,
    says that memory is not being saved)."""


RESTORE_HINT = ("stop the bot, copy the file aside, and restore it: see \"When something goes "
                "wrong\" in the README")
_CORRUPT_WORDS = ("malformed", "not a database", "file is encrypted", "corrupt")


def corrupt_error(path: Path, what: str) -> StoreCorrupt:
    return StoreCorrupt(f"the database {path} is damaged ({what}); nothing was written to it: "
                        f"{RESTORE_HINT}")


def _is_corrupt(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, StoreCorrupt) and any(
        word in str(exc).lower() for word in _CORRUPT_WORDS)


_WAL_MAGIC = (0x377F0682, 0x377F0683)


def _wal_checksum(data: bytes, big_endian: bool, s0: int = 0, s1: int = 0) -> tuple[int, int]:
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def _wal_scan(data: bytes) -> str | None:
    """What SQLite would silently drop from this write-ahead log, in words, or None.

    SQLite replays frames up to the first one whose salt or checksum is wrong and ignores the
    rest: a damaged frame followed by committed frames of the same generation (same salts)
    loses those commits without an error; a torn last frame (a crash mid-write of an
    uncommitted transaction) loses nothing.
    """
    if len(data) < 32:
        return None
    magic, _, page_size, _, salt1, salt2, c1, c2 = struct.unpack(">8I", data[:32])
    frame = 24 + page_size
    if magic not in _WAL_MAGIC or page_size < 512 or page_size & (page_size - 1):
        return "its header is damaged" if len(data) >= 32 + 24 + 512 else None
    big = bool(magic & 1)
    if _wal_checksum(data[:24], big) != (c1, c2):
        return "its header is damaged" if len(data) >= 32 + frame else None
    s0, s1, off, broken_at = c1, c2, 32, None
    while off + frame <= len(data):
        page_no, commit, f1, f2, k1, k2 = struct.unpack(">6I", data[off:off + 24])
        if (f1, f2) != (salt1, salt2):
            if broken_at is None:
                return None  # the end of this generation: older frames follow
        elif broken_at is None:
            s0, s1 = _wal_checksum(data[off:off + 8] + data[off + 24:off + frame], big, s0, s1)
            if (s0, s1) != (k1, k2) or page_no == 0:
                broken_at = off
        elif commit:
            return (f"a damaged frame at byte {broken_at} of its write-ahead log hides "
                    f"transactions committed after it")
        off += frame
    return None


def wal_problem(db_path: Path, confirm: int = 3) -> str | None:
    """:func:`_wal_scan` of ``<db>-wal``, confirmed by re-reading (a frame another process is
    writing right now can look damaged for a moment)."""
    wal = Path(f"{db_path}-wal")
    problem = None
    for attempt in range(confirm):
        try:
            problem = _wal_scan(wal.read_bytes())
        except OSError:  # none, or unreadable: SQLite's own open says what is wrong
            return None
        if problem is None:
            return None
        if attempt + 1 < confirm:
            time.sleep(0.05)
    return f"{problem} ({wal})"


@dataclass
class Exchange:
    id: int
    user_id: str
    ts: float
    user_text: str
    assistant_text: str
    source: str
    consolidated_cycle: int | None
    session_id: int | None
    undelivered: bool = False  # the user never received the reply: never consolidated


@dataclass
class Session:
    """One working-memory session of a user, with its rolling summary (if any)."""

    id: int
    user_id: str
    started_at: float
    summary: str | None


@dataclass
class ReplayItem:
    id: int
    user_id: str
    question: str
    answer: str
    priority: float
    times_replayed: int
    created_cycle: int | None
    source_exchange_ids: list[int]


@dataclass
class CheckpointRecord:
    user_id: str
    version: int
    path: str
    parent_version: int | None
    created_at: float
    cycle_id: int | None
    is_current: bool


@dataclass
class Lease:
    """Who may promote a user's next checkpoint: the holder of ``token`` until ``expires_at``
    (wall clock). Tokens grow by one at every grant."""

    user_id: str
    token: int
    holder: str
    expires_at: float


@dataclass
class CycleRecord:
    id: int
    user_id: str
    kind: SleepKind
    started_at: float
    finished_at: float | None
    status: CycleStatus
    report: dict[str, Any]


@dataclass
class SleepJob:
    """One row of the persistent sleep queue."""

    id: int
    user_id: str
    kind: SleepKind
    state: JobState
    requested_at: float
    started_at: float | None
    finished_at: float | None


@dataclass
class IngestRecord:
    """One conversation file ingested for a user (identified by its sha256, no text)."""

    id: int
    user_id: str
    sha256: str
    name: str
    turns: int
    saved: int
    last_exchange_id: int | None
    started_at: float
    finished_at: float | None


@dataclass
class UserStatus:
    user_id: str
    turns_since_sleep: int
    cycles_done: int
    last_message_at: float | None
    last_sleep_at: float | None


def _open_error(path: Path, exc: BaseException) -> StoreError:
    return StoreError(
        f"cannot open the database at {path}: {exc} "
        "(is the directory missing or read-only, or the disk full?)"
    )


def _placeholders(n: int) -> str:
    return ",".join("?" * n)


def _exchange(row: aiosqlite.Row) -> Exchange:
    return Exchange(
        id=row["id"],
        user_id=row["user_id"],
        ts=row["ts"],
        user_text=row["user_text"],
        assistant_text=row["assistant_text"],
        source=row["source"],
        consolidated_cycle=row["consolidated_cycle"],
        session_id=row["session_id"],
        undelivered=bool(row["undelivered"]),
    )


def _replay_item(row: aiosqlite.Row) -> ReplayItem:
    return ReplayItem(
        id=row["id"],
        user_id=row["user_id"],
        question=row["question"],
        answer=row["answer"],
        priority=row["priority"],
        times_replayed=row["times_replayed"],
        created_cycle=row["created_cycle"],
        source_exchange_ids=[int(i) for i in json.loads(row["source_exchange_ids"] or "[]")],
    )


def _checkpoint(row: aiosqlite.Row) -> CheckpointRecord:
    return CheckpointRecord(
        user_id=row["user_id"],
        version=row["version"],
        path=row["path"],
        parent_version=row["parent_version"],
        created_at=row["created_at"],
        cycle_id=row["cycle_id"],
        is_current=bool(row["is_current"]),
    )


def _cycle(row: aiosqlite.Row) -> CycleRecord:
    return CycleRecord(
        id=row["id"],
        user_id=row["user_id"],
        kind=row["kind"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        status=row["status"],
        report=json.loads(row["report"] or "{}"),
    )


def _ingest(row: aiosqlite.Row) -> IngestRecord:
    return IngestRecord(id=row["id"], user_id=row["user_id"], sha256=row["sha256"],
                        name=row["name"], turns=row["turns"], saved=row["saved"],
                        last_exchange_id=row["last_exchange_id"],
                        started_at=row["started_at"], finished_at=row["finished_at"])


def _job(row: aiosqlite.Row) -> SleepJob:
    return SleepJob(
        id=row["id"],
        user_id=row["user_id"],
        kind=row["kind"],
        state=row["state"],
        requested_at=row["requested_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


class Store:
    """Async access to the SQLite database. Create with ``await Store.open(path)``."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        # One connection is shared by all coroutines: serialise so transactions don't mix.
        self._lock = asyncio.Lock()
        self.corrupt: StoreCorrupt | None = None  # set once damage is seen: no more writes

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    async def open(cls, path: Path) -> Store:
        """Open (creating if needed) and migrate the database at ``path``."""
        path = Path(path)
        # Before SQLite touches it: SQLite would drop a damaged WAL's commits in silence
        problem = await asyncio.get_running_loop().run_in_executor(None, wal_problem, path)
        if problem is not None:
            raise corrupt_error(path, problem)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
            db = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise _open_error(path, exc) from exc
        db.row_factory = aiosqlite.Row
        store = cls(db, path)
        try:
            await store._check()  # read-only: a damaged file is refused before any write
            await store._configure()
            await store._migrate()
        except BaseException as exc:
            await db.close()  # don't leak the connection's worker thread
            if _is_corrupt(exc):
                raise corrupt_error(path, str(exc)) from exc
            if isinstance(exc, (OSError, sqlite3.Error)) and not isinstance(exc, StoreError):
                raise _open_error(path, exc) from exc
            raise
        return store

    async def _check(self) -> None:
        """``PRAGMA quick_check``: damaged pages are found here, not by a later query that
        would read half a table without an error."""
        cur = await self._db.execute("PRAGMA quick_check(1)")
        rows = await cur.fetchall()
        await cur.close()
        result = str(rows[0][0]) if rows else "no answer"
        if result != "ok":
            raise corrupt_error(self.path, result.replace("\n", " ").strip())

    async def close(self) -> None:
        await self._db.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _configure(self) -> None:
        # Turning a new file to WAL takes an exclusive lock: processes opening it at once can
        # get "database is locked" at once, without the busy timeout (SQLite's deadlock rule)
        async for attempt in AsyncRetrying(
                retry=retry_if_exception(_is_locked), stop=stop_after_attempt(8),
                wait=wait_exponential(multiplier=0.02, max=1.0), reraise=True):
            with attempt:
                cur = await self._db.execute("PRAGMA journal_mode=WAL")
                row = await cur.fetchone()
        if row is None or str(row[0]).lower() != "wal":
            log.warning("could not enable WAL mode on %s (got %s)", self.path, row and row[0])
        await self._db.execute("PRAGMA synchronous=FULL")
        await self._db.execute("PRAGMA foreign_keys=ON")

    async def _migrate(self) -> None:
        await self._db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)"
        )
        current = await self.schema_version()
        if current > len(MIGRATIONS):
            raise StoreError(
                f"database {self.path} has schema version {current}, newer than this code "
                f"({len(MIGRATIONS)}); upgrade the bot"
            )
        for version in range(current + 1, len(MIGRATIONS) + 1):
            try:
                await self._apply_migration(version, MIGRATIONS[version - 1])
            except sqlite3.OperationalError:
                # Two processes opening a new database at once both try each migration; the
                # one whose transaction lost finds it applied (script and version bump commit
                # together) and goes on.
                if await self.schema_version() < version:
                    raise
                log.info("schema migration %d of %s was applied by another process", version,
                         self.path)

    async def _apply_migration(self, version: int, script: str) -> None:
        bump = (
            f"INSERT INTO schema_version (id, version) VALUES (1, {int(version)}) "
            "ON CONFLICT(id) DO UPDATE SET version = excluded.version;"
        )
        try:
            await self._db.executescript(f"BEGIN IMMEDIATE;\n{script}\n{bump}\nCOMMIT;")
        except sqlite3.Error:
            if self._db.in_transaction:
                await self._db.execute("ROLLBACK")
            raise
        log.info("applied schema migration %d to %s", version, self.path)

    async def schema_version(self) -> int:
        """The schema version the database is at (0 for a fresh file)."""
        row = await self._fetchone("SELECT version FROM schema_version WHERE id = 1")
        return int(row["version"]) if row else 0

    # ------------------------------------------------------------------ helpers

    def _damaged(self, exc: BaseException) -> StoreCorrupt:
        """Remember that the file is damaged (no write reaches it from now on) and say so."""
        if self.corrupt is None:
            self.corrupt = corrupt_error(self.path, str(exc))
            log.error("%s", self.corrupt)
        return self.corrupt

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction; IMMEDIATE takes the write lock up front."""
        if self.corrupt is not None:
            raise self.corrupt
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as exc:
                if _is_corrupt(exc):
                    raise self._damaged(exc) from exc
                raise
            try:
                yield self._db
            except BaseException as exc:
                # SQLite may already have rolled back by itself (e.g. on a full disk).
                if self._db.in_transaction:
                    await self._db.execute("ROLLBACK")
                if _is_corrupt(exc):
                    raise self._damaged(exc) from exc
                raise
            await self._db.execute("COMMIT")

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with self._lock:
            try:
                cur = await self._db.execute(sql, params)
                return list(await cur.fetchall())
            except sqlite3.DatabaseError as exc:
                if _is_corrupt(exc):
                    raise self._damaged(exc) from exc
                raise

    async def _fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        async with self._lock:
            try:
                cur = await self._db.execute(sql, params)
                return await cur.fetchone()
            except sqlite3.DatabaseError as exc:
                if _is_corrupt(exc):
                    raise self._damaged(exc) from exc
                raise

    async def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement in its own transaction; return the affected row count."""
        async with self._tx() as db:
            cur = await db.execute(sql, params)
            return cur.rowcount

    @staticmethod
    async def _ensure_user(
        db: aiosqlite.Connection, user_id: str, display_name: str | None = None
    ) -> None:
        await db.execute(
            "INSERT INTO users (user_id, display_name, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT(user_id) DO UPDATE SET "
            "display_name = COALESCE(excluded.display_name, users.display_name)",
            (user_id, display_name, time.time()),
        )

    # ------------------------------------------------------------------ users

    async def user_status(self, user_id: str) -> UserStatus | None:
        row = await self._fetchone(
            "SELECT user_id, turns_since_sleep, cycles_done, last_message_at, last_sleep_at "
            "FROM users WHERE user_id = ?",
            (user_id,),
        )
        if row is None:
            return None
        return UserStatus(
            user_id=row["user_id"],
            turns_since_sleep=row["turns_since_sleep"],
            cycles_done=row["cycles_done"],
            last_message_at=row["last_message_at"],
            last_sleep_at=row["last_sleep_at"],
        )

    async def list_users(self) -> list[str]:
        rows = await self._fetchall("SELECT user_id FROM users ORDER BY user_id")
        return [r["user_id"] for r in rows]

    async def reset_turns(self, user_id: str) -> None:
        """Zero the user's turn counter (no cycle is recorded)."""
        await self._write("UPDATE users SET turns_since_sleep = 0 WHERE user_id = ?", (user_id,))

    async def recount_turns(self, user_id: str, after_exchange_id: int = 0) -> int:
        """Set the turn counter to the user's unconsolidated, delivered exchanges newer than
        ``after_exchange_id`` (what a cycle that read up to there has not seen); return it."""
        async with self._tx() as db:
            await db.execute(
                "UPDATE users SET turns_since_sleep = (SELECT COUNT(*) FROM exchanges e "
                "WHERE e.user_id = users.user_id AND e.consolidated_cycle IS NULL "
                "AND e.undelivered = 0 AND e.id > ?) WHERE user_id = ?",
                (after_exchange_id, user_id))
            cur = await db.execute("SELECT turns_since_sleep FROM users WHERE user_id = ?",
                                   (user_id,))
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def max_exchange_id(self, user_id: str) -> int:
        """The user's newest exchange id (0: none yet)."""
        row = await self._fetchone("SELECT MAX(id) AS m FROM exchanges WHERE user_id = ?",
                                   (user_id,))
        return int(row["m"] or 0) if row else 0

    async def record_sleep(self, user_id: str) -> None:
        """A sleep cycle finished: stamp the time, count the cycle, and count as turns only
        the exchanges it did not consolidate (those that came while it ran), not zero."""
        await self._write(
            "UPDATE users SET turns_since_sleep = (SELECT COUNT(*) FROM exchanges e "
            "WHERE e.user_id = users.user_id AND e.consolidated_cycle IS NULL "
            "AND e.undelivered = 0), last_sleep_at = ?, cycles_done = cycles_done + 1 "
            "WHERE user_id = ?",
            (time.time(), user_id),
        )

    # ------------------------------------------------------------------ sessions

    async def start_session(self, user_id: str) -> int:
        async with self._tx() as db:
            await self._ensure_user(db, user_id)
            cur = await db.execute(
                "INSERT INTO sessions (user_id, started_at) VALUES (?, ?)",
                (user_id, time.time()),
            )
            return int(cur.lastrowid)

    async def set_session_summary(self, session_id: int, summary: str) -> None:
        await self._write("UPDATE sessions SET summary = ? WHERE id = ?", (summary, session_id))

    async def sessions(self, user_id: str) -> list[Session]:
        """The user's sessions, oldest first (their summaries hold facts: /export shows them)."""
        rows = await self._fetchall(
            "SELECT id, user_id, started_at, summary FROM sessions WHERE user_id = ? ORDER BY id",
            (user_id,),
        )
        return [Session(r["id"], r["user_id"], r["started_at"], r["summary"]) for r in rows]

    # ------------------------------------------------------------------ exchanges

    async def add_exchange(
        self,
        user_id: str,
        user_text: str,
        assistant_text: str,
        *,
        session_id: int | None = None,
        source: str = "chat",
        ts: float | None = None,
        undelivered: bool = False,
    ) -> int:
        """Store one user/assistant turn and bump the user's turn counter, atomically
        (an ``undelivered`` turn is stored flagged and not counted)."""
        ts = time.time() if ts is None else ts
        async with self._tx() as db:
            await self._ensure_user(db, user_id)
            cur = await db.execute(
                "INSERT INTO exchanges (user_id, session_id, ts, user_text, assistant_text, "
                "source, undelivered) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (user_id, session_id, ts, user_text, assistant_text, source, int(undelivered)),
            )
            await db.execute(
                "UPDATE users SET turns_since_sleep = turns_since_sleep + ?, "
                "last_message_at = ? WHERE user_id = ?",
                (0 if undelivered else 1, ts, user_id),
            )
            return int(cur.lastrowid)

    async def mark_undelivered(self, user_id: str, exchange_id: int) -> bool:
        """Flag an exchange whose reply never reached the user (and uncount its turn); it
        stays stored (the user's words, for /export and /forget) but is never consolidated.
        Returns whether a not-yet-flagged exchange of ``user_id`` was flagged."""
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE exchanges SET undelivered = 1 WHERE user_id = ? AND id = ? "
                "AND undelivered = 0", (user_id, exchange_id))
            if cur.rowcount:
                await db.execute(
                    "UPDATE users SET turns_since_sleep = MAX(0, turns_since_sleep - 1) "
                    "WHERE user_id = ?", (user_id,))
            return cur.rowcount > 0

    async def exchanges(self, user_id: str, *, unconsolidated_only: bool = False) -> list[Exchange]:
        """The user's exchanges, oldest first. ``unconsolidated_only``: what the next sleep
        cycle may learn from, i.e. not yet consolidated and delivered to the user."""
        sql = "SELECT * FROM exchanges WHERE user_id = ?"
        if unconsolidated_only:
            sql += " AND consolidated_cycle IS NULL AND undelivered = 0"
        rows = await self._fetchall(sql + " ORDER BY id", (user_id,))
        return [_exchange(r) for r in rows]

    async def mark_consolidated(self, exchange_ids: Iterable[int], cycle_id: int) -> None:
        ids = list(exchange_ids)
        if not ids:
            return
        await self._write(
            f"UPDATE exchanges SET consolidated_cycle = ? WHERE id IN ({_placeholders(len(ids))})",
            (cycle_id, *ids),
        )

    # ------------------------------------------------------------------ replay buffer

    async def add_replay_items(
        self,
        user_id: str,
        items: Sequence[tuple[str, str, list[int]]],
        priority: float,
        cycle_id: int | None,
    ) -> int:
        """Insert (question, answer, source ids) items, ignoring duplicates; return new count."""
        added = 0
        async with self._tx() as db:
            await self._ensure_user(db, user_id)
            for question, answer, source_ids in items:
                cur = await db.execute(
                    "INSERT OR IGNORE INTO replay_items (user_id, question, answer, priority, "
                    "created_cycle, source_exchange_ids) VALUES (?, ?, ?, ?, ?, ?)",
                    (user_id, question, answer, priority, cycle_id, json.dumps(list(source_ids))),
                )
                added += cur.rowcount
        return added

    async def decay_replay(self, ids: Iterable[int], decay: float) -> None:
        """Items were replayed: multiply their priority by ``decay`` and count the replay."""
        ids = list(ids)
        if not ids:
            return
        await self._write(
            "UPDATE replay_items SET priority = priority * ?, times_replayed = times_replayed + 1 "
            f"WHERE id IN ({_placeholders(len(ids))})",
            (decay, *ids),
        )

    async def retire_replay(self, user_id: str, ids: Iterable[int]) -> int:
        """Delete replay items of ``user_id`` that a newer fact replaced; return how many."""
        ids = list(ids)
        if not ids:
            return 0
        return await self._write(
            f"DELETE FROM replay_items WHERE user_id = ? AND id IN ({_placeholders(len(ids))})",
            (user_id, *ids))

    async def replay_items(self, user_id: str) -> list[ReplayItem]:
        rows = await self._fetchall(
            "SELECT * FROM replay_items WHERE user_id = ? ORDER BY id", (user_id,)
        )
        return [_replay_item(r) for r in rows]

    # ------------------------------------------------------------------ cycles

    async def start_cycle(self, user_id: str, kind: SleepKind) -> int:
        async with self._tx() as db:
            await self._ensure_user(db, user_id)
            cur = await db.execute(
                "INSERT INTO cycles (user_id, kind, started_at, status) "
                "VALUES (?, ?, ?, 'running')",
                (user_id, kind, time.time()),
            )
            return int(cur.lastrowid)

    async def finish_cycle(self, cycle_id: int, status: CycleStatus,
                           report: dict[str, Any]) -> None:
        if status not in CYCLE_STATUSES:
            raise ValueError(f"unknown cycle status {status!r}")
        await self._write(
            "UPDATE cycles SET status = ?, finished_at = ?, report = ? WHERE id = ?",
            (status, time.time(), json.dumps(report, ensure_ascii=False), cycle_id),
        )

    async def cycles(self, user_id: str) -> list[CycleRecord]:
        rows = await self._fetchall(
            "SELECT * FROM cycles WHERE user_id = ? ORDER BY id", (user_id,)
        )
        return [_cycle(r) for r in rows]

    async def running_cycles(self) -> list[CycleRecord]:
        """Cycles still marked running (after a crash these never finished)."""
        rows = await self._fetchall("SELECT * FROM cycles WHERE status = 'running' ORDER BY id")
        return [_cycle(r) for r in rows]

    # ------------------------------------------------------------------ checkpoints

    async def register_checkpoint(
        self,
        user_id: str,
        version: int,
        path: str | Path,
        parent_version: int | None,
        cycle_id: int | None,
        make_current: bool = True,
        lease_token: int | None = None,
    ) -> None:
        """Record a new adapter checkpoint, optionally making it the user's current one.

        ``lease_token``: register only if it is still the user's current, unexpired lease
        (checked in the same transaction; else :class:`LeaseLost` and nothing is written)."""
        async with self._tx() as db:
            await self._ensure_user(db, user_id)
            if lease_token is not None:
                await self._check_lease(db, user_id, lease_token)
            if make_current:
                await db.execute(
                    "UPDATE checkpoints SET is_current = 0 WHERE user_id = ?", (user_id,)
                )
            await db.execute(
                "INSERT INTO checkpoints (user_id, version, path, parent_version, created_at, "
                "cycle_id, is_current) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    user_id,
                    version,
                    str(path),
                    parent_version,
                    time.time(),
                    cycle_id,
                    int(make_current),
                ),
            )

    # ------------------------------------------------------------------ leases (cluster)

    async def acquire_lease(self, user_id: str, holder: str, seconds: float, *,
                            force: bool = False) -> Lease | None:
        """Grant ``holder`` the user's lease for ``seconds`` with a new, larger token; None
        while another holder's lease is unexpired (``force``: take it anyway, which fences
        that holder out: the scheduler does so once it gave up on it)."""
        now = time.time()
        async with self._tx() as db:
            await self._ensure_user(db, user_id)
            cur = await db.execute("SELECT token, holder, expires_at FROM leases "
                                   "WHERE user_id = ?", (user_id,))
            row = await cur.fetchone()
            if row is not None and row["expires_at"] > now and row["holder"] != holder and (
                    not force):
                return None
            token = (row["token"] if row is not None else 0) + 1
            await db.execute(
                "INSERT INTO leases (user_id, token, holder, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(user_id) DO UPDATE SET token = excluded.token, "
                "holder = excluded.holder, expires_at = excluded.expires_at",
                (user_id, token, holder, now + seconds))
        return Lease(user_id, token, holder, now + seconds)

    async def renew_lease(self, user_id: str, token: int, seconds: float) -> bool:
        """Extend lease ``token`` by ``seconds`` from now; False once it expired or a newer
        token was granted (an expired lease is never revived: its job was given up on)."""
        now = time.time()
        return await self._write(
            "UPDATE leases SET expires_at = ? WHERE user_id = ? AND token = ? AND expires_at > ?",
            (now + seconds, user_id, token, now)) > 0

    async def release_lease(self, user_id: str, token: int) -> None:
        """End lease ``token`` now (a no-op when a newer one was granted)."""
        await self._write("UPDATE leases SET expires_at = 0 WHERE user_id = ? AND token = ?",
                          (user_id, token))

    async def lease(self, user_id: str) -> Lease | None:
        row = await self._fetchone("SELECT * FROM leases WHERE user_id = ?", (user_id,))
        return None if row is None else Lease(row["user_id"], row["token"], row["holder"],
                                              row["expires_at"])

    async def check_lease(self, user_id: str, token: int) -> None:
        """:class:`LeaseLost` unless ``token`` is the user's current, unexpired lease."""
        async with self._tx() as db:
            await self._check_lease(db, user_id, token)

    @staticmethod
    async def _check_lease(db: aiosqlite.Connection, user_id: str, token: int) -> None:
        cur = await db.execute("SELECT token, expires_at FROM leases WHERE user_id = ?",
                               (user_id,))
        row = await cur.fetchone()
        if row is None or row["token"] != token:
            newer = "no lease" if row is None else f"lease {row['token']} is current"
            raise LeaseLost(f"user {user_id}: lease {token} was superseded ({newer})")
        if row["expires_at"] <= time.time():
            raise LeaseLost(f"user {user_id}: lease {token} expired")

    async def current_checkpoint(self, user_id: str) -> CheckpointRecord | None:
        row = await self._fetchone(
            "SELECT * FROM checkpoints WHERE user_id = ? AND is_current = 1 "
            "ORDER BY version DESC LIMIT 1",
            (user_id,),
        )
        return _checkpoint(row) if row else None

    async def checkpoints(self, user_id: str) -> list[CheckpointRecord]:
        rows = await self._fetchall(
            "SELECT * FROM checkpoints WHERE user_id = ? ORDER BY version", (user_id,)
        )
        return [_checkpoint(r) for r in rows]

    async def set_current(self, user_id: str, version: int | None) -> None:
        """Make ``version`` the user's current checkpoint (e.g. a rollback; None: the base
        model)."""
        async with self._tx() as db:
            if version is not None:
                cur = await db.execute(
                    "SELECT 1 FROM checkpoints WHERE user_id = ? AND version = ?",
                    (user_id, version))
                if await cur.fetchone() is None:
                    raise KeyError(f"user has no checkpoint version {version}")
            await db.execute(
                "UPDATE checkpoints SET is_current = (version IS ?) WHERE user_id = ?",
                (version, user_id),
            )

    async def drop_checkpoint(self, user_id: str, version: int) -> bool:
        """Unregister a version (its folder was damaged and set aside); return whether it was
        registered."""
        return await self._write("DELETE FROM checkpoints WHERE user_id = ? AND version = ?",
                                 (user_id, version)) > 0

    async def unconsolidate_after(self, user_id: str, cycle_id: int | None) -> int:
        """Exchanges consolidated by cycles after ``cycle_id`` (None: by any cycle) become
        unconsolidated again, and the turn counter counts them: the weights that held them
        are gone, so the next cycle learns them again. Returns how many."""
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE exchanges SET consolidated_cycle = NULL WHERE user_id = ? AND "
                "consolidated_cycle IS NOT NULL AND consolidated_cycle > ?",
                (user_id, -1 if cycle_id is None else cycle_id))
            n = cur.rowcount
            await db.execute(
                "UPDATE users SET turns_since_sleep = (SELECT COUNT(*) FROM exchanges e "
                "WHERE e.user_id = users.user_id AND e.consolidated_cycle IS NULL "
                "AND e.undelivered = 0) WHERE user_id = ?", (user_id,))
        return n

    # ------------------------------------------------------------------ sleep queue

    async def enqueue_sleep(self, user_id: str, kind: SleepKind) -> int:
        """Queue a sleep job, merging with the user's pending one; return the job id.

        A queued 'light' job is upgraded when 'deep' is requested; a running job is left
        as it is (its id is returned).
        """
        async with self._tx() as db:
            await self._ensure_user(db, user_id)
            cur = await db.execute(
                "SELECT id, kind, state FROM sleep_queue "
                "WHERE user_id = ? AND state IN ('queued', 'running')",
                (user_id,),
            )
            row = await cur.fetchone()
            if row is not None:
                if kind == "deep" and row["kind"] == "light" and row["state"] == "queued":
                    await db.execute(
                        "UPDATE sleep_queue SET kind = 'deep' WHERE id = ?", (row["id"],)
                    )
                return int(row["id"])
            cur = await db.execute(
                "INSERT INTO sleep_queue (user_id, kind, requested_at, state) "
                "VALUES (?, ?, ?, 'queued')",
                (user_id, kind, time.time()),
            )
            return int(cur.lastrowid)

    async def set_job_kind(self, job_id: int, kind: SleepKind) -> None:
        """Record the kind a job actually runs as (the orchestrator may deepen a light one)."""
        if kind not in SLEEP_KINDS:
            raise ValueError(f"unknown sleep kind {kind!r}")
        await self._write("UPDATE sleep_queue SET kind = ? WHERE id = ?", (kind, job_id))

    async def set_job_state(self, job_id: int, state: JobState) -> None:
        """Move a job to ``state``, stamping started_at (running) or finished_at (done/failed)."""
        if state not in JOB_STATES:
            raise ValueError(f"unknown job state {state!r}")
        if state == "queued":
            await self._write(
                "UPDATE sleep_queue SET state = 'queued', started_at = NULL WHERE id = ?",
                (job_id,),
            )
            return
        column = "started_at" if state == "running" else "finished_at"
        await self._write(
            f"UPDATE sleep_queue SET state = ?, {column} = ? WHERE id = ?",
            (state, time.time(), job_id),
        )

    async def requeue_running(self) -> int:
        """Put jobs left running by a crash back in the queue; return how many."""
        return await self._write(
            "UPDATE sleep_queue SET state = 'queued', started_at = NULL WHERE state = 'running'"
        )

    async def queue_snapshot(self) -> list[SleepJob]:
        """Pending jobs: running first, then queued in FIFO order."""
        rows = await self._fetchall(
            "SELECT id, user_id, kind, requested_at, state, started_at, finished_at "
            "FROM sleep_queue WHERE state IN ('queued', 'running') "
            "ORDER BY state = 'queued', requested_at, id"
        )
        return [_job(r) for r in rows]

    # ------------------------------------------------------------------ ingests

    async def ingest_record(self, user_id: str, sha256: str) -> IngestRecord | None:
        """What an earlier ingest of the file with this content did for the user, if any."""
        row = await self._fetchone(
            "SELECT * FROM ingests WHERE user_id = ? AND sha256 = ?", (user_id, sha256))
        return _ingest(row) if row else None

    async def start_ingest(self, user_id: str, sha256: str, name: str, turns: int
                           ) -> IngestRecord:
        """Record that a file is being ingested from its start (again, if it was before);
        ``last_exchange_id`` starts at the user's newest exchange: the file's first turn is
        the next one."""
        async with self._tx() as db:
            await self._ensure_user(db, user_id)
            cur = await db.execute("SELECT COALESCE(MAX(id), 0) FROM exchanges "
                                   "WHERE user_id = ?", (user_id,))
            (before,) = await cur.fetchone()
            await db.execute(
                "INSERT INTO ingests (user_id, sha256, name, turns, saved, last_exchange_id, "
                "started_at) VALUES (?, ?, ?, ?, 0, ?, ?) ON CONFLICT(user_id, sha256) DO "
                "UPDATE SET name = excluded.name, turns = excluded.turns, saved = 0, "
                "last_exchange_id = excluded.last_exchange_id, "
                "started_at = excluded.started_at, finished_at = NULL",
                (user_id, sha256, name, turns, before, time.time()))
            cur = await db.execute("SELECT * FROM ingests WHERE user_id = ? AND sha256 = ?",
                                   (user_id, sha256))
            return _ingest(await cur.fetchone())

    async def ingest_progress(self, ingest_id: int, saved: int, last_exchange_id: int | None,
                              done: bool = False) -> None:
        """``saved`` turns of the file are stored, the last as ``last_exchange_id``."""
        await self._write(
            "UPDATE ingests SET saved = ?, last_exchange_id = COALESCE(?, last_exchange_id), "
            "finished_at = ? WHERE id = ?",
            (saved, last_exchange_id, time.time() if done else None, ingest_id))

    async def exchanges_after(self, user_id: str, exchange_id: int) -> list[Exchange]:
        """The user's exchanges newer than ``exchange_id``, oldest first."""
        rows = await self._fetchall(
            "SELECT * FROM exchanges WHERE user_id = ? AND id > ? ORDER BY id",
            (user_id, exchange_id))
        return [_exchange(r) for r in rows]

    # ------------------------------------------------------------------ forgetting

    async def forget_rows(self, user_id: str, exchange_ids: Iterable[int],
                          replay_ids: Iterable[int], *, everything: bool) -> tuple[int, int]:
        """Delete exchanges and replay items of ``user_id`` in one transaction; return the
        counts. Session summaries go too (deleted with every session when ``everything``,
        else cleared: they may paraphrase what went); the remaining exchanges become
        unconsolidated and the turn counter counts them, so the next cycle re-learns them."""
        exchange_ids, replay_ids = list(exchange_ids), list(replay_ids)
        async with self._tx() as db:
            n_ex = n_rep = 0
            if exchange_ids:
                cur = await db.execute(
                    f"DELETE FROM exchanges WHERE user_id = ? AND id IN "
                    f"({_placeholders(len(exchange_ids))})", (user_id, *exchange_ids))
                n_ex = cur.rowcount
            if replay_ids:
                cur = await db.execute(
                    f"DELETE FROM replay_items WHERE user_id = ? AND id IN "
                    f"({_placeholders(len(replay_ids))})", (user_id, *replay_ids))
                n_rep = cur.rowcount
            if everything:
                await db.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
                await db.execute("DELETE FROM ingests WHERE user_id = ?", (user_id,))
            else:
                await db.execute("UPDATE sessions SET summary = NULL WHERE user_id = ?",
                                 (user_id,))
            await db.execute("UPDATE exchanges SET consolidated_cycle = NULL WHERE user_id = ?",
                             (user_id,))
            await db.execute(
                "UPDATE users SET turns_since_sleep = (SELECT COUNT(*) FROM exchanges "
                "WHERE exchanges.user_id = users.user_id AND undelivered = 0) "
                "WHERE user_id = ?", (user_id,))
        return n_ex, n_rep

    async def forget_weights(self, user_id: str) -> tuple[int, int]:
        """Drop the user's checkpoint registry and cycle reports (they list facts) in one
        transaction; return (checkpoint rows, cycle rows) removed."""
        async with self._tx() as db:
            cur = await db.execute("DELETE FROM checkpoints WHERE user_id = ?", (user_id,))
            n_ck = cur.rowcount
            cur = await db.execute("DELETE FROM cycles WHERE user_id = ?", (user_id,))
            return n_ck, cur.rowcount

    async def compact(self) -> None:
        """VACUUM and truncate the WAL, so deleted rows leave no bytes behind on disk."""
        async with self._lock:  # one connection, shared by every coroutine
            await self._pragma("wal_checkpoint(TRUNCATE)")
            await (await self._db.execute("VACUUM")).close()
            busy, _, _ = await self._pragma("wal_checkpoint(TRUNCATE)")
            if busy:
                raise sqlite3.OperationalError("database is busy: WAL checkpoint incomplete")

    async def _pragma(self, pragma: str) -> tuple:
        # Fetch every row and close: an unfinished statement makes VACUUM fail.
        cur = await self._db.execute(f"PRAGMA {pragma}")
        rows = await cur.fetchall()
        await cur.close()
        return tuple(rows[0]) if rows else ()
