"""Memory that cannot be written: the bot keeps chatting, says so, and loses nothing saved.

    LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0 .venv/bin/python -m pytest -q \
        tests/test_readonly.py

Two real failures (as root, chmod would not stop a write):

* the database turns read-only under the running bot (``PRAGMA query_only``: every write
  fails inside SQLite with "attempt to write a readonly database");
* the disk is full for the conversation log (the user's log is a link to ``/dev/full``: every
  write fails in the kernel with ENOSPC).
"""

from __future__ import annotations

import pytest

from bot.engine import open_engine
from bot.orchestrator import Orchestrator


async def say(orch: Orchestrator, user: str, text: str):
    stream = orch.handle_message(user, text)
    pieces = [p async for p in stream]
    assert stream.reply.text == "".join(pieces).strip()
    return stream.reply


@pytest.mark.asyncio
async def test_read_only_database_keeps_chatting_and_loses_nothing(tiny_config, tiny_runtime):
    cfg = tiny_config
    cfg.sleep.turn_threshold = 3
    log_path = None
    async with open_engine(cfg, runtime=tiny_runtime) as engine:
        orch = Orchestrator(engine)
        first = [await say(orch, "alice", t) for t in ("My dog is called Biscuit.",
                                                        "I live in Porto.")]
        assert all(r.saved and not r.warning for r in first)
        log_path = engine.paths("alice").log
        saved_log = log_path.read_bytes()

        await engine.store._db.execute("PRAGMA query_only = ON")  # noqa: SLF001 (I/O layer)
        unsaved = await say(orch, "alice", "My sister is called Mia.")  # 3rd turn: threshold
        stranger = await say(orch, "carol", "Hello, I am new here.")  # no session possible
        for reply in (unsaved, stranger):
            assert not reply.saved and "not being saved" in reply.warning
        assert orch.state("alice").state == "awake"  # nothing unsaved is queued for sleep
        assert log_path.read_bytes() == saved_log  # what was saved is untouched

        await engine.store._db.execute("PRAGMA query_only = OFF")  # noqa: SLF001
        back = await say(orch, "alice", "I am back.")
        assert back.saved
        ids = [r.exchange_id for r in first] + [back.exchange_id]

    async with open_engine(cfg, runtime=tiny_runtime) as engine:  # a restart
        rows = await engine.store.exchanges("alice")
        logged = engine.conversation_log("alice").read()
        assert [e.id for e in rows] == ids == [r["id"] for r in logged]
        assert [e.user_text for e in rows] == ["My dog is called Biscuit.", "I live in Porto.",
                                               "I am back."]
        assert await engine.store.exchanges("carol") == []


@pytest.mark.asyncio
async def test_full_disk_for_the_log_is_reported_and_repaired_at_restart(tiny_config,
                                                                         tiny_runtime):
    cfg = tiny_config
    async with open_engine(cfg, runtime=tiny_runtime) as engine:
        orch = Orchestrator(engine)
        log_path = engine.paths("dave").log
        log_path.parent.mkdir(parents=True)
        log_path.symlink_to("/dev/full")
        reply = await say(orch, "dave", "My cat is called Tom.")
        assert not reply.saved and "not being saved" in reply.warning
        # chatting goes on, with the context kept in memory
        assert not (await say(orch, "dave", "And my cat is black.")).saved
        assert len((await orch.chat.conversation("dave")).messages) == 4

    log_path.unlink()  # space again
    async with open_engine(cfg, runtime=tiny_runtime) as engine:  # recovery re-appends
        rows = await engine.store.exchanges("dave")
        logged = engine.conversation_log("dave").read()
        assert [(r["id"], r["user"], r.get("recovered")) for r in logged] == \
            [(e.id, e.user_text, True) for e in rows]
        assert [e.user_text for e in rows] == ["My cat is called Tom.", "And my cat is black."]


def test_terminal_chat_says_memory_is_not_saved(tiny_config, tiny_model_dir, cli):
    data = tiny_config.data_dir
    log_path = data / "users" / "erin" / "conversation.jsonl"
    log_path.parent.mkdir(parents=True)
    log_path.symlink_to("/dev/full")
    (data / "config.toml").write_text("[chat]\nmax_tokens = 8\n")
    out = cli("chat", "--user", "erin", data_dir=data, model=tiny_model_dir,
              input="Hello there\n/quit\n")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "memory is not being saved" in out.stdout
