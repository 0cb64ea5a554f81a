"""The wake phase (bot/wake.py) on an engine with the tiny model: logging, turn counting, input
cleaning and bounding, sliding-window summarisation, and per-user separation.

    export LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0
    .venv/bin/python -m pytest -q tests/test_wake.py
"""

from __future__ import annotations

import json
import sqlite3

import pytest
import pytest_asyncio

from bot.engine import open_engine
from bot.wake import ChatService, EmptyMessage, Reply, clean_text
from memory.paths import store_path


@pytest_asyncio.fixture
async def engine(tiny_config):
    async with open_engine(tiny_config) as engine:
        yield engine


def jsonl_records(engine, user: str) -> list[dict]:
    """The user's conversation log as written on disk (parsed here, not by our reader)."""
    path = engine.paths(user).log
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def session_summary(engine, session_id: int) -> str | None:
    with sqlite3.connect(store_path(engine.cfg.data_dir)) as db:
        row = db.execute("SELECT summary FROM sessions WHERE id = ?", (session_id,)).fetchone()
    return row[0]


@pytest.mark.asyncio
async def test_a_reply_is_logged_to_sqlite_and_jsonl_with_one_id(engine):
    chat = ChatService(engine)
    reply = await chat.reply("alice", "Hello there, my name is Alice.")
    assert isinstance(reply, Reply) and reply.checkpoint == "base"
    assert reply.text and not reply.truncated_input
    [row] = await engine.store.exchanges("alice")
    assert row.id == reply.exchange_id
    assert (row.user_text, row.assistant_text, row.source) == (
        "Hello there, my name is Alice.", reply.text, "chat")
    [record] = jsonl_records(engine, "alice")
    assert record["id"] == reply.exchange_id
    assert (record["user"], record["assistant"], record["source"]) == (
        "Hello there, my name is Alice.", reply.text, "chat")


@pytest.mark.asyncio
async def test_stream_saves_before_the_iteration_ends(engine):
    chat = ChatService(engine)
    pieces = []
    stream = chat.stream("alice", "Tell me something.")
    async for piece in stream:
        pieces.append(piece)
        assert await engine.store.exchanges("alice") == []  # nothing half-saved mid-reply
        assert stream.reply is None
    assert pieces
    reply = stream.reply
    assert isinstance(reply, Reply)
    assert reply.text == "".join(pieces).strip()
    [row] = await engine.store.exchanges("alice")
    assert row.id == reply.exchange_id and jsonl_records(engine, "alice")[0]["id"] == row.id


@pytest.mark.asyncio
async def test_the_turn_counter_increments(engine):
    chat = ChatService(engine)
    for n in (1, 2, 3):
        await chat.reply("alice", f"message number {n}")
        assert (await engine.store.user_status("alice")).turns_since_sleep == n
    ids = [r["id"] for r in jsonl_records(engine, "alice")]
    assert ids == [e.id for e in await engine.store.exchanges("alice")]
    assert len(set(ids)) == 3


@pytest.mark.parametrize("text", ["", "   \n\t  ", "\u200b\u200b", "\u200b \ufeff\u2060\u200d",
                                  "\x00\x07\x1b"])
@pytest.mark.asyncio
async def test_an_empty_message_raises_and_logs_nothing(engine, text):
    chat = ChatService(engine)
    with pytest.raises(EmptyMessage):
        await chat.reply("alice", text)
    assert await engine.store.exchanges("alice") == []
    assert await engine.store.user_status("alice") is None
    assert not engine.paths("alice").log.exists()


@pytest.mark.asyncio
async def test_a_100kb_message_is_cut_and_still_answered(engine):
    chat = ChatService(engine)
    limit = engine.cfg.chat.max_message_chars
    huge = "The quick brown fox jumps over the lazy dog. " * 2300
    assert len(huge) > 100_000
    reply = await chat.reply("alice", huge)
    assert reply.truncated_input and reply.text
    [row] = await engine.store.exchanges("alice")
    assert row.user_text == huge[:limit]
    assert len(jsonl_records(engine, "alice")[0]["user"]) <= limit


@pytest.mark.asyncio
async def test_control_characters_are_stripped(engine):
    chat = ChatService(engine)
    raw = "  hel\x00lo\x07 wor\x1b[31mld\u200b!\r\nsecond\tline\u202e  "
    reply = await chat.reply("alice", raw)
    [row] = await engine.store.exchanges("alice")
    assert row.user_text == "hello wor[31mld!\nsecond\tline"
    assert jsonl_records(engine, "alice")[0]["user"] == row.user_text
    assert row.assistant_text == reply.text
    assert clean_text("tab\tand\nnewline kept") == "tab\tand\nnewline kept"


@pytest.mark.asyncio
async def test_a_small_window_is_summarised(engine):
    engine.cfg.chat.context_tokens = 200  # budget 0.8 * 200 = 160 prompt tokens
    chat = ChatService(engine)
    keep = 2 * engine.cfg.chat.keep_recent_turns
    turns = keep // 2 + 3
    for n in range(turns):
        await chat.reply("alice", f"Fact {n}: my sister Mia lives in Porto and likes tea.")
    conv = await chat.conversation("alice")
    assert conv.summary  # the model's summary of the older turns
    assert len(conv.messages) <= keep + 2 < 2 * turns  # older messages were folded away
    assert conv.messages[-2]["content"].startswith(f"Fact {turns - 1}:")  # recent ones stay
    assert session_summary(engine, conv.session_id) == conv.summary
    assert chat.system_message(conv)["content"].endswith(conv.summary)
    # The log keeps every turn: summarising only changes the working memory.
    assert len(jsonl_records(engine, "alice")) == turns
    assert len(await engine.store.exchanges("alice")) == turns


@pytest.mark.asyncio
async def test_a_large_window_is_not_summarised(engine):
    chat = ChatService(engine)
    for n in range(3):
        await chat.reply("alice", f"Fact {n}: I like tea.")
    conv = await chat.conversation("alice")
    assert conv.summary is None and len(conv.messages) == 6
    assert session_summary(engine, conv.session_id) is None


@pytest.mark.asyncio
async def test_two_users_do_not_mix(engine):
    chat = ChatService(engine)
    await chat.reply("alice", "I am Alice and I live in Lisbon.")
    await chat.reply("bob", "I am Bob and I live in Oslo.")
    await chat.reply("alice", "My cat is called Tom.")
    alice, bob = await chat.conversation("alice"), await chat.conversation("bob")
    assert alice.session_id != bob.session_id
    alice_said = [m["content"] for m in alice.messages if m["role"] == "user"]
    bob_said = [m["content"] for m in bob.messages if m["role"] == "user"]
    assert alice_said == ["I am Alice and I live in Lisbon.", "My cat is called Tom."]
    assert bob_said == ["I am Bob and I live in Oslo."]
    assert [e.user_text for e in await engine.store.exchanges("bob")] == bob_said
    assert [r["user"] for r in jsonl_records(engine, "alice")] == alice_said
    assert [r["user"] for r in jsonl_records(engine, "bob")] == bob_said
    assert engine.paths("alice").log != engine.paths("bob").log
    assert (await engine.store.user_status("bob")).turns_since_sleep == 1


@pytest.mark.asyncio
async def test_the_log_survives_a_restart(tiny_config):
    async with open_engine(tiny_config) as engine:
        first = await ChatService(engine).reply("alice", "Remember: my locker is 42.")
    async with open_engine(tiny_config) as engine:  # a new store and model thread
        chat = ChatService(engine)
        assert (await chat.conversation("alice")).messages == []  # a new session
        second = await chat.reply("alice", "What is my locker?")
        assert [e.id for e in await engine.store.exchanges("alice")] == [
            first.exchange_id, second.exchange_id]
        assert [r["id"] for r in jsonl_records(engine, "alice")] == [
            first.exchange_id, second.exchange_id]


@pytest.mark.asyncio
async def test_one_working_memory_per_place(engine, monkeypatch):
    """What a user says in one place (a DM) never reaches the prompt in another (a channel);
    a public place gets the privacy note; a quote joins that one prompt only."""
    import bot.wake as wake

    prompts: list[list[dict]] = []
    real = wake.stream_reply

    def recording(ctx, user_id, checkpoint, messages, *args):
        prompts.append(messages)
        return (yield from real(ctx, user_id, checkpoint, messages, *args))

    monkeypatch.setattr(wake, "stream_reply", recording)
    chat = ChatService(engine)
    await chat.reply("alice", "My secret password is swordfish.")  # the default place
    async for _ in chat.stream("alice", "Hello everyone!", place="guild", public=True,
                               quote="bob said: the meeting is at noon"):
        pass
    public = json.dumps(prompts[-1])
    assert "swordfish" not in public and "meeting is at noon" in public
    assert engine.cfg.chat.public_note in prompts[-1][0]["content"]
    async for _ in chat.stream("alice", "And now?", place="guild", public=True):
        pass
    assert "meeting is at noon" not in json.dumps(prompts[-1])  # the quote was for one turn
    await chat.reply("alice", "What is my password?")
    private = json.dumps(prompts[-1])
    assert "swordfish" in private and engine.cfg.chat.public_note not in private
    assert "Hello everyone" not in private
    assert [r["user"] for r in jsonl_records(engine, "alice")] == [
        "My secret password is swordfish.", "Hello everyone!", "And now?",
        "What is my password?"]  # one log per user, whatever the place
    chat.reset("alice")  # /forget: every place's working memory goes
    assert not chat._conversations


@pytest.mark.asyncio
async def test_an_abandoned_reply_is_stored_undelivered(engine):
    """The front end could not show the reply: generation stops, the exchange is stored
    flagged (never consolidated) and stays out of the working memory."""
    engine.cfg.chat.max_tokens = 64
    chat = ChatService(engine)
    stream = chat.stream("alice", "Tell me a long story.")
    pieces = []
    async for piece in stream:
        pieces.append(piece)
        stream.abandon()
    assert len(pieces) == 1 and stream.reply is not None and not stream.reply.delivered
    [row] = await engine.store.exchanges("alice")
    assert row.undelivered and row.assistant_text == pieces[0].strip()
    assert await engine.store.exchanges("alice", unconsolidated_only=True) == []
    assert jsonl_records(engine, "alice")[0]["undelivered"] is True
    assert (await chat.conversation("alice")).messages == []
    later = await chat.reply("alice", "Hello?")  # delivered, then refused after all
    await chat.mark_undelivered("alice", later.exchange_id)
    assert (await chat.conversation("alice")).messages == []
    assert await engine.store.exchanges("alice", unconsolidated_only=True) == []
