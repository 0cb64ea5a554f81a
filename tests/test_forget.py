"""The forgetting service (bot/forget.py) and `python -m bot forget`, on the tiny model.

Real SQLite, real JSONL, real checkpoints and a real sleep cycle; after forgetting, the whole
data directory is grepped for the forgotten phrase.

    pytest tests/test_forget.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

SECRET = "Zorbanella"
KEPT = [
    "I live in Lisbon.",
    "My dog is named Rex.",
    "I work as a carpenter.",
]
DOOMED = [
    f"My sister is called {SECRET}.",
    f"{SECRET} lives in Porto.",
]


def grep_data_dir(root: Path, phrase: str) -> list[str]:
    """Every file under ``root`` whose bytes contain ``phrase`` (case-insensitive)."""
    needle = phrase.lower().encode("utf-8")
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes().lower()]


def learnable(cfg):
    """Settings under which a tiny-model cycle is accepted (tiny random weights)."""
    cfg.sleep.tau = 0.0
    cfg.sleep.train.learning_rate = 1e-3
    cfg.sleep.train.max_seq_len = 96
    cfg.sleep.deep_every = 0
    cfg.sleep.phrasings_per_fact = 2  # fewer steps: these tests check bookkeeping, not recall
    cfg.sleep.lora.layers = 2
    return cfg


async def seed(engine, user: str, cycle: bool = True) -> None:
    """Exchanges (one with a generated reply), a summary and one accepted cycle."""
    from bot.wake import ChatService
    from sleep.pipeline import run_cycle

    chat = ChatService(engine)
    conv = await chat.conversation(user)
    for text in DOOMED + KEPT:
        await chat.save(user, text, f"Thanks for telling me: {text}", conv.session_id)
    await chat.reply(user, f"Do you remember {SECRET}?")
    await engine.store.set_session_summary(conv.session_id, f"The user's sister is {SECRET}.")
    if not cycle:
        return
    report = await run_cycle(engine.cycle_context(user))
    assert report.status == "accepted", report.reason
    assert any(SECRET in f for f in report.facts)


@pytest.mark.asyncio
async def test_forget_phrase_removes_it_everywhere_and_rebuilds(tiny_config) -> None:
    from bot.engine import open_engine
    from bot.forget import forget, forget_and_rebuild, plan
    from bot.orchestrator import Orchestrator

    cfg = learnable(tiny_config)
    async with open_engine(cfg) as engine:
        await seed(engine, "alice")
        await seed(engine, "bob", cycle=False)  # another user's copy of the phrase stays
        assert grep_data_dir(cfg.data_dir, SECRET)
        orch = Orchestrator(engine)
        await orch.start(triggers=False)  # the rebuild goes through the sleep queue
        chat = orch.chat
        await chat.conversation("alice")

        p = await plan(engine, "alice", phrase=SECRET.lower())
        assert len(p.exchange_ids) == 3 and p.exchanges_kept == 3
        assert "3 exchange(s)" in p.describe()

        result = await forget_and_rebuild(orch, "alice", phrase=SECRET.upper())
        await orch.stop()
        assert result.exchanges_removed == 3 and result.log_records_removed == 3
        assert result.replay_removed >= 1 and result.checkpoints_removed == 1
        assert result.exchanges_kept == 3
        assert result.rebuild is not None and result.rebuild["status"] == "accepted"
        assert not any(SECRET in f for f in result.rebuild["facts"])
        assert any("Lisbon" in f for f in result.rebuild["facts"])
        assert not any(user == "alice" for user, _place in chat._conversations)

        remaining = await engine.store.exchanges("alice")
        assert [e.user_text for e in remaining] == KEPT
        assert all(e.consolidated_cycle is not None for e in remaining)
        items = await engine.store.replay_items("alice")
        assert items and not any(SECRET.lower() in (i.question + i.answer).lower() for i in items)
        assert [r["user"] for r in engine.conversation_log("alice").read()] == KEPT
        assert engine.checkpoint_label("alice") == "alice/v0001"  # rebuilt from the base
        cycles = await engine.store.cycles("alice")
        assert [c.status for c in cycles] == ["accepted"]

        bob_files = [f for f in grep_data_dir(cfg.data_dir, SECRET) if "/users/bob/" in f]
        alice_files = [f for f in grep_data_dir(cfg.data_dir, SECRET) if "/users/alice/" in f]
        assert bob_files and not alice_files
        assert len(await engine.store.exchanges("bob")) == 6
    # bob still has it in the database; alice has nothing of it anywhere
    async with open_engine(cfg) as engine:
        bob = await forget(engine, "bob", phrase=SECRET)
        assert bob.exchanges_removed == 3 and bob.rebuild is None
        assert "back to the base model" in bob.summary()
    assert grep_data_dir(cfg.data_dir, SECRET) == []


@pytest.mark.asyncio
async def test_forget_chosen_facts_takes_their_source_exchanges_only(tiny_config) -> None:
    """/memory facts: one fact goes, with the exchanges it was extracted from; the rest of
    the log and the other facts stay; another user's fact id forgets nothing."""
    from bot.engine import open_engine
    from bot.forget import forget, plan

    cfg = learnable(tiny_config)
    async with open_engine(cfg) as engine:
        await seed(engine, "alice")
        items = await engine.store.replay_items("alice")
        sister = next(i for i in items if SECRET in i.answer and "sister" in i.question.lower())
        sources = set(sister.source_exchange_ids)
        assert sources
        assert (await plan(engine, "bob", fact_ids=[sister.id])).empty
        p = await plan(engine, "alice", fact_ids=[sister.id])
        assert set(p.exchange_ids) == sources and p.fact_ids == [sister.id]
        assert "that fact" in p.describe()
        siblings = {i.id for i in items if sources & set(i.source_exchange_ids)}
        assert set(p.replay_ids) == siblings  # every item learned from the same words
        result = await forget(engine, "alice", fact_ids=[sister.id])
        assert result.exchanges_removed == len(sources)
        assert result.replay_removed == len(siblings)
        left = await engine.store.exchanges("alice")
        assert left and not sources & {e.id for e in left}
        assert {r["id"] for r in engine.conversation_log("alice").read()} == {e.id for e in left}
        assert not siblings & {i.id for i in await engine.store.replay_items("alice")}
        assert engine.checkpoint_label("alice") == "base"  # the rebuild is the caller's


@pytest.mark.asyncio
async def test_forget_everything_resets_to_base(tiny_config) -> None:
    from bot.engine import open_engine
    from bot.forget import forget

    cfg = learnable(tiny_config)
    async with open_engine(cfg) as engine:
        await seed(engine, "carol")
        result = await forget(engine, "carol", everything=True)
        assert result.exchanges_removed == 6 and result.rebuild is None
        assert await engine.store.exchanges("carol") == []
        assert await engine.store.replay_items("carol") == []
        assert await engine.store.cycles("carol") == []
        assert await engine.store.checkpoints("carol") == []
        assert engine.checkpoint_label("carol") == "base"
        assert engine.conversation_log("carol").read() == []
        for phrase in (SECRET, "Lisbon", "carpenter"):
            assert grep_data_dir(cfg.data_dir, phrase) == []
        # the user can go on chatting and sleeping afterwards
        from bot.wake import ChatService

        reply = await ChatService(engine).reply("carol", "I live in Oslo.")
        assert reply.checkpoint == "base"


@pytest.mark.asyncio
async def test_forget_nothing_and_bad_requests(tiny_config) -> None:
    from bot.engine import open_engine
    from bot.forget import ForgetError, forget, plan
    from bot.wake import ChatService

    async with open_engine(tiny_config) as engine:
        chat = ChatService(engine)
        await chat.save("dave", "I like tea.", "Nice.")
        result = await forget(engine, "dave", phrase="coffee")
        assert result.exchanges_removed == 0 and "Nothing" in result.summary()
        assert len(await engine.store.exchanges("dave")) == 1
        assert (await plan(engine, "dave", phrase="coffee")).empty
        for bad in ("", "   ", "\u200b\u0007"):
            with pytest.raises(ForgetError):
                await forget(engine, "dave", phrase=bad)
        unseen = await forget(engine, "nobody", everything=True)
        assert unseen.exchanges_removed == 0


def seed_dir(cfg) -> None:
    from bot.engine import open_engine

    async def main() -> None:
        async with open_engine(cfg) as engine:
            await seed(engine, "erin", cycle=False)

    asyncio.run(main())


def test_forget_cli(tiny_config, tiny_model_dir, cli) -> None:
    cfg = learnable(tiny_config)
    # the CLI reads the same settings from the data dir's config file
    (cfg.data_dir).mkdir(parents=True, exist_ok=True)
    (cfg.data_dir / "config.toml").write_text(
        "[sleep]\ntau = 0.0\ndeep_every = 0\nphrasings_per_fact = 2\n[sleep.lora]\nlayers = 2\n"
        "[sleep.train]\nlearning_rate = 1e-3\nmax_seq_len = 96\n")
    seed_dir(cfg)
    args = dict(data_dir=cfg.data_dir, model=tiny_model_dir)

    out = cli("forget", "--user", "erin", "--match", SECRET, input="n\n", **args)
    assert out.returncode == 1, out.stderr
    assert "3 exchange(s)" in out.stdout and "cancelled" in out.stdout.lower()
    assert grep_data_dir(cfg.data_dir, SECRET)

    out = cli("forget", "--user", "erin", **args)
    assert out.returncode == 2 and "--all or --match" in out.stderr

    out = cli("forget", "--user", "erin", "--match", SECRET, "--yes", **args)
    assert out.returncode == 0, out.stderr
    assert "Forgot 3 exchange(s)" in out.stdout and "Rebuilt from the 3 remaining" in out.stdout
    assert grep_data_dir(cfg.data_dir, SECRET) == []
    assert SECRET not in out.stderr  # nothing of it in the logs either

    out = cli("forget", "--user", "erin", "--all", input="y\n", **args)
    assert out.returncode == 0, out.stderr
    for phrase in KEPT:
        assert grep_data_dir(cfg.data_dir, phrase.rstrip(".")) == []


@pytest.mark.asyncio
async def test_forget_finishes_an_interrupted_forget(tiny_config) -> None:
    """A crash after the rows went but before the log was rewritten: forgetting again
    still finds the lines in the log, and a restart does not bring the rows back."""
    from bot.engine import open_engine
    from bot.forget import forget

    async with open_engine(tiny_config) as engine:
        await seed(engine, "fay", cycle=False)
        doomed = [e.id for e in await engine.store.exchanges("fay") if SECRET in e.user_text]
        # the crash: only SQLite done
        await engine.store.forget_rows("fay", doomed, [], everything=False)
    async with open_engine(tiny_config) as engine:  # recovery must not resurrect them
        assert len(doomed) == 3 and len(await engine.store.exchanges("fay")) == 3
        result = await forget(engine, "fay", phrase=SECRET)
        assert result.log_records_removed == 3 and result.exchanges_removed == 0
    assert grep_data_dir(tiny_config.data_dir, SECRET) == []


@pytest.mark.asyncio
async def test_retry_io_retries_transient_errors_only(caplog) -> None:
    import errno
    import sqlite3

    from bot.retrying import retry_io

    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise sqlite3.OperationalError("database is locked")
        return "ok"

    assert await retry_io("flaky read", flaky) == "ok" and len(calls) == 3
    assert sum("flaky read failed" in r.getMessage() for r in caplog.records) == 2

    async def full_disk() -> None:
        calls.append(1)
        raise OSError(errno.ENOSPC, "No space left on device")

    calls.clear()
    with pytest.raises(OSError):
        await retry_io("write", full_disk)
    assert len(calls) == 1  # not transient: no retry

    async def always_busy() -> None:
        calls.append(1)
        raise OSError(errno.EBUSY, "busy")

    calls.clear()
    with pytest.raises(OSError):
        await retry_io("busy", always_busy, attempts=3)
    assert len(calls) == 3  # bounded
