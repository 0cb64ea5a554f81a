"""Tests for memory.store: migrations, WAL, exchanges, replay, cycles, checkpoints, queue."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from memory.store import MIGRATIONS, Store, StoreError
from tests.conftest import unwritable_dir


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "db" / "sleepbot.db")
    try:
        yield s
    finally:
        await s.close()


@pytest.mark.asyncio
async def test_open_applies_migrations_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "sleepbot.db"
    async with await Store.open(path) as s:
        assert await s.schema_version() == len(MIGRATIONS)
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        con.close()
    assert {
        "users",
        "sessions",
        "exchanges",
        "replay_items",
        "cycles",
        "checkpoints",
        "sleep_queue",
        "schema_version",
    } <= tables


@pytest.mark.asyncio
async def test_reopen_is_idempotent_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "sleepbot.db"
    async with await Store.open(path) as s:
        await s.add_exchange("u1", "hello", "hi")
        version = await s.schema_version()
    async with await Store.open(path) as s:
        assert await s.schema_version() == version
        assert [e.user_text for e in await s.exchanges("u1")] == ["hello"]
    con = sqlite3.connect(path)
    try:
        assert con.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 1
    finally:
        con.close()


@pytest.mark.asyncio
async def test_reopen_applies_only_newer_migrations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sleepbot.db"
    async with await Store.open(path) as s:
        await s.add_exchange("u1", "hello", "hi")
    extra = "ALTER TABLE users ADD COLUMN note TEXT;"
    monkeypatch.setattr("memory.store.MIGRATIONS", [*MIGRATIONS, extra])
    async with await Store.open(path) as s:
        assert await s.schema_version() == len(MIGRATIONS) + 1
        assert await s.list_users() == ["u1"]
    async with await Store.open(path) as s:  # a third open must not re-run the ALTER
        assert await s.schema_version() == len(MIGRATIONS) + 1


@pytest.mark.asyncio
async def test_newer_schema_than_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sleepbot.db"
    async with await Store.open(path):
        pass
    con = sqlite3.connect(path)
    con.execute("UPDATE schema_version SET version = 99")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer than this code"):
        await Store.open(path)


@pytest.mark.asyncio
async def test_unwritable_directory_raises_store_error(tmp_path: Path) -> None:
    path = unwritable_dir(tmp_path) / "sleepbot.db"
    with pytest.raises(StoreError, match="cannot open the database") as info:
        await Store.open(path)
    assert str(path) in str(info.value)


@pytest.mark.asyncio
async def test_parent_is_a_file_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="read-only"):
        await Store.open(blocker / "sleepbot.db")


@pytest.mark.asyncio
async def test_add_exchange_counts_turns(store: Store) -> None:
    assert await store.user_status("u1") is None
    first = await store.add_exchange("u1", "a", "b", ts=100.0)
    second = await store.add_exchange("u1", "c", "d", ts=200.0)
    status = await store.user_status("u1")
    assert status is not None
    assert status.turns_since_sleep == 2
    assert status.last_message_at == 200.0
    cycle = await store.start_cycle("u1", "light")
    await store.mark_consolidated([first], cycle)  # the second came while the cycle ran
    await store.record_sleep("u1")
    status = await store.user_status("u1")
    assert status is not None
    assert (status.turns_since_sleep, status.cycles_done) == (1, 1)  # it still counts
    await store.mark_consolidated([second], cycle)
    assert await store.recount_turns("u1") == 0
    assert status.last_sleep_at is not None
    await store.add_exchange("u1", "e", "f")
    await store.reset_turns("u1")
    status = await store.user_status("u1")
    assert status is not None
    assert (status.turns_since_sleep, status.cycles_done) == (0, 1)


@pytest.mark.asyncio
async def test_sessions_and_exchange_fields(store: Store) -> None:
    sid = await store.start_session("u1")
    await store.set_session_summary(sid, "talked about cats")
    eid = await store.add_exchange("u1", "q", "a", session_id=sid, source="ingest", ts=5.0)
    (ex,) = await store.exchanges("u1")
    assert (ex.id, ex.user_id, ex.ts, ex.session_id, ex.source) == (eid, "u1", 5.0, sid, "ingest")
    assert ex.consolidated_cycle is None


@pytest.mark.asyncio
async def test_unconsolidated_filter_and_mark(store: Store) -> None:
    ids = [await store.add_exchange("u1", f"q{i}", f"a{i}") for i in range(3)]
    cycle = await store.start_cycle("u1", "light")
    await store.mark_consolidated(ids[:2], cycle)
    pending = await store.exchanges("u1", unconsolidated_only=True)
    assert [e.id for e in pending] == [ids[2]]
    every = await store.exchanges("u1")
    assert [e.id for e in every] == ids
    assert [e.consolidated_cycle for e in every] == [cycle, cycle, None]


@pytest.mark.asyncio
async def test_undelivered_exchanges_are_kept_but_never_consolidated(store: Store) -> None:
    """A reply Discord refused is stored flagged: /export and /forget see it, sleep does not,
    and it is no turn towards the next sleep."""
    seen = await store.add_exchange("u1", "seen", "a")
    late = await store.add_exchange("u1", "refused later", "b")
    early = await store.add_exchange("u1", "refused at once", "c", undelivered=True)
    assert (await store.user_status("u1")).turns_since_sleep == 2
    assert await store.mark_undelivered("u1", late)
    assert not await store.mark_undelivered("u1", late)  # already flagged: counted once
    assert not await store.mark_undelivered("u2", seen)  # another user's exchange: untouched
    assert (await store.user_status("u1")).turns_since_sleep == 1
    assert [e.id for e in await store.exchanges("u1", unconsolidated_only=True)] == [seen]
    every = await store.exchanges("u1")
    assert [(e.id, e.undelivered) for e in every] == [(seen, False), (late, True), (early, True)]
    await store.forget_rows("u1", [seen], [], everything=False)
    assert (await store.user_status("u1")).turns_since_sleep == 0  # only delivered ones count


@pytest.mark.asyncio
async def test_sessions_list_their_summaries(store: Store) -> None:
    first, second = await store.start_session("u1"), await store.start_session("u1")
    await store.start_session("u2")
    await store.set_session_summary(second, "likes cats")
    assert [(s.id, s.summary) for s in await store.sessions("u1")] == [(first, None),
                                                                       (second, "likes cats")]


@pytest.mark.asyncio
async def test_forget_rows_is_user_scoped_and_one_transaction(store: Store) -> None:
    a = await store.add_exchange("A", "qa", "aa")
    a2 = await store.add_exchange("A", "qa2", "aa2")
    b = await store.add_exchange("B", "qb", "ab")
    await store.mark_consolidated([a2], await store.start_cycle("A", "light"))
    await store.add_replay_items("A", [("q", "a", [a])], 1.0, 1)
    [item] = await store.replay_items("A")
    assert await store.forget_rows("A", [a, b], [item.id], everything=False) == (1, 1)
    assert [e.id for e in await store.exchanges("A")] == [a2]
    assert (await store.exchanges("A"))[0].consolidated_cycle is None  # to be re-learnt
    assert (await store.user_status("A")).turns_since_sleep == 1
    assert [e.id for e in await store.exchanges("B")] == [b]
    assert await store.replay_items("A") == []


@pytest.mark.asyncio
async def test_replay_dedup_ordering_and_decay(store: Store) -> None:
    added = await store.add_replay_items("u1", [("q1", "a1", [1]), ("q2", "a2", [2])], 1.0, 1)
    assert added == 2
    again = await store.add_replay_items("u1", [("q1", "a1", [9]), ("q3", "a3", [3])], 2.0, 2)
    assert again == 1
    items = await store.replay_items("u1")
    assert [(i.question, i.priority, i.source_exchange_ids) for i in items] == [
        ("q1", 1.0, [1]),
        ("q2", 1.0, [2]),
        ("q3", 2.0, [3]),
    ]

    q1 = items[0].id
    await store.decay_replay([q1], 0.85)
    await store.decay_replay([q1], 0.85)
    item = next(i for i in await store.replay_items("u1") if i.id == q1)
    assert item.priority == pytest.approx(0.7225)
    assert item.times_replayed == 2

    assert await store.forget_rows("u1", [], [q1], everything=False) == (0, 1)
    assert [i.question for i in await store.replay_items("u1")] == ["q2", "q3"]


@pytest.mark.asyncio
async def test_cycles(store: Store) -> None:
    c1 = await store.start_cycle("u1", "light")
    c2 = await store.start_cycle("u1", "deep")
    await store.finish_cycle(c1, "accepted", {"pairs": 3, "note": "ok"})
    cycles = await store.cycles("u1")
    assert [(c.id, c.status) for c in cycles] == [(c1, "accepted"), (c2, "running")]
    assert cycles[0].report == {"pairs": 3, "note": "ok"}
    assert cycles[0].finished_at is not None
    assert [c.id for c in await store.running_cycles()] == [c2]
    with pytest.raises(ValueError):
        await store.finish_cycle(c2, "bogus", {})


@pytest.mark.asyncio
async def test_checkpoints_current_and_rollback(store: Store) -> None:
    assert await store.current_checkpoint("u1") is None
    await store.register_checkpoint("u1", 1, "/ck/1", None, 1)
    await store.register_checkpoint("u1", 2, Path("/ck/2"), 1, 2)
    current = await store.current_checkpoint("u1")
    assert current is not None
    assert (current.version, current.path, current.parent_version) == (2, "/ck/2", 1)
    assert [c.is_current for c in await store.checkpoints("u1")] == [False, True]

    await store.register_checkpoint("u1", 3, "/ck/3", 2, 3, make_current=False)
    current = await store.current_checkpoint("u1")
    assert current is not None and current.version == 2

    await store.set_current("u1", 1)
    assert [c.is_current for c in await store.checkpoints("u1")] == [True, False, False]
    with pytest.raises(KeyError):
        await store.set_current("u1", 42)

    await store.finish_cycle(await store.start_cycle("u1", "light"), "accepted", {})
    assert await store.forget_weights("u1") == (3, 1)
    assert await store.checkpoints("u1") == [] and await store.cycles("u1") == []


async def next_queued(store: Store) -> tuple[int, str, str] | None:
    """The job the queue's FIFO order puts first, as (id, user, kind)."""
    job = next((j for j in await store.queue_snapshot() if j.state == "queued"), None)
    return (job.id, job.user_id, job.kind) if job else None


@pytest.mark.asyncio
async def test_enqueue_merges_and_upgrades(store: Store) -> None:
    j1 = await store.enqueue_sleep("u1", "light")
    assert await store.enqueue_sleep("u1", "light") == j1
    assert await store.enqueue_sleep("u1", "deep") == j1
    assert await next_queued(store) == (j1, "u1", "deep")
    # a deep job is never downgraded
    assert await store.enqueue_sleep("u1", "light") == j1
    assert await next_queued(store) == (j1, "u1", "deep")
    assert len(await store.queue_snapshot()) == 1


@pytest.mark.asyncio
async def test_running_job_is_not_upgraded_and_fifo(store: Store) -> None:
    a = await store.enqueue_sleep("A", "light")
    b = await store.enqueue_sleep("B", "light")
    assert await next_queued(store) == (a, "A", "light")
    await store.set_job_state(a, "running")
    assert await next_queued(store) == (b, "B", "light")
    assert await store.enqueue_sleep("A", "deep") == a  # merged into the running job
    snap = await store.queue_snapshot()
    assert [(j.id, j.state, j.kind) for j in snap] == [
        (a, "running", "light"),
        (b, "queued", "light"),
    ]
    await store.set_job_state(a, "done")
    a2 = await store.enqueue_sleep("A", "deep")  # finished: a new job is queued
    assert a2 != a
    assert [j.id for j in await store.queue_snapshot()] == [b, a2]


@pytest.mark.asyncio
async def test_requeue_running(store: Store) -> None:
    a = await store.enqueue_sleep("A", "light")
    b = await store.enqueue_sleep("B", "deep")
    await store.set_job_state(a, "running")
    await store.set_job_state(b, "running")
    assert await next_queued(store) is None
    assert await store.requeue_running() == 2
    assert await next_queued(store) == (a, "A", "light")
    assert all(j.state == "queued" for j in await store.queue_snapshot())
    assert await store.requeue_running() == 0


@pytest.mark.asyncio
async def test_user_isolation(store: Store) -> None:
    await store.add_exchange("A", "my dog is Rex", "noted")
    await store.add_replay_items("A", [("dog?", "Rex", [1])], 1.0, 1)
    await store.register_checkpoint("A", 1, "/a/1", None, 1)
    await store.start_cycle("A", "light")
    await store.add_exchange("B", "hello", "hi")
    assert [e.user_text for e in await store.exchanges("B")] == ["hello"]
    assert await store.replay_items("B") == []
    assert await store.checkpoints("B") == []
    assert await store.current_checkpoint("B") is None
    assert await store.cycles("B") == []
    assert await store.forget_rows("B", [1], [1], everything=True) == (0, 0)
    assert await store.forget_weights("B") == (0, 0)
    assert len(await store.exchanges("A")) == 1
    assert len(await store.replay_items("A")) == 1 and len(await store.checkpoints("A")) == 1


@pytest.mark.asyncio
async def test_concurrent_writers_share_one_connection(store: Store) -> None:
    await asyncio.gather(
        *(store.add_exchange("u1", f"q{i}", "a") for i in range(50)),
        *(store.enqueue_sleep("u1", "light") for _ in range(10)),
    )
    status = await store.user_status("u1")
    assert status is not None and status.turns_since_sleep == 50
    assert len(await store.exchanges("u1")) == 50
    assert len(await store.queue_snapshot()) == 1
