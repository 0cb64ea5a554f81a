"""End to end, when Discord says no: missing permissions, closed DMs, deleted channels, network
errors, rate limits, the interaction deadlines, and shutdown in the middle of a reply.

A reply the user never received must not be trained into their weights: it is stored flagged
(``undelivered``) and left out of what sleep reads.

    .venv/bin/python -m pytest -q tests/e2e/test_discord_refusals.py
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from discord_env import (
    Env,
    dm_and_wait,
    dm_replies,
    e2e_config,
    guild_and_wait,
    guild_replies,
    log_records,
    script_replies,
    start_bot,
    stop_bot,
    wait_response,
)
from fake_discord import FakeDiscord

STORY = " ".join(f"word{i}" for i in range(120))  # ~1,000 characters, in 25 pieces


async def stored(env: Env, user: dict):
    return await env.engine.store.exchanges(user["id"])


def calls_to_channel(env: Env, channel_id: int):
    return [c for c in env.fake.calls if c.path.startswith(f"/channels/{channel_id}/")]


def message_calls(env: Env, channel_id: int):
    """The bot's message calls in a channel (the typing indicator runs on its own)."""
    return [c for c in calls_to_channel(env, channel_id) if "/messages" in c.path]


@pytest.mark.asyncio
async def test_no_permission_means_no_placeholder_and_no_model(env: Env, prompts, caplog
                                                               ) -> None:
    caplog.set_level(logging.INFO)
    fake = env.fake
    bob = fake.make_user("bob")
    await fake.deny_bot(fake.channel_id, "send_messages")  # the bot is told (CHANNEL_UPDATE)
    await fake.wait_for(lambda: not env.bot.get_channel(fake.channel_id).permissions_for(
        env.bot.get_guild(fake.guild_id).me).send_messages)
    await fake.guild_message(bob, "Can you hear me?")
    await dm_and_wait(env, bob, "Hello in private.")  # handled after the guild message
    assert calls_to_channel(env, fake.channel_id) == []  # nothing tried: no 403 either
    assert [r["user"] for r in log_records(env, bob)] == ["Hello in private."]
    assert not [p for p in prompts if "Can you hear me?" in p[-1]["content"]]
    assert any("cannot post there" in r.getMessage() for r in caplog.records)


@pytest.mark.asyncio
@pytest.mark.parametrize("refusal", ["permission revoked", "channel deleted", "DMs closed"])
async def test_a_refused_reply_stops_and_is_never_consolidated(env: Env, monkeypatch,
                                                               refusal: str) -> None:
    long_story = STORY + " " + STORY + " " + STORY  # past 2,000 characters: a second part
    script_replies(monkeypatch, long_story, piece=40, pause=0.02)
    fake = env.fake
    bob = fake.make_user("bob")
    if refusal == "DMs closed":
        channel = fake.dm_channel(bob)
        await fake.dm(bob, "Tell me a long story.")
    else:
        channel = fake.channel_id
        await fake.guild_message(bob, "Tell me a long story.")
    await fake.wait_for(lambda: fake.bot_messages(channel))  # the placeholder is up
    if refusal == "permission revoked":  # the bot is not told: its cache still says yes
        await fake.deny_bot(channel, "view_channel", tell_bot=False)
    elif refusal == "channel deleted":
        await fake.delete_channel(channel)
    else:
        fake.close_dms(bob)  # the next part, a new message, is refused with 50007
    row = await _wait_stored(env, bob)
    assert row.undelivered and len(row.assistant_text) < len(long_story)  # stopped early
    sent = message_calls(env, channel)
    refused = [c for c in sent if c.status >= 400]
    assert refused and refused[0].code in (50001, 10003, 50007)
    assert sent[-1] is refused[0]  # streaming stopped at the first refusal
    # never consolidated, not a turn towards sleep, and the sleep that follows has nothing
    assert await env.engine.store.exchanges(bob["id"], unconsolidated_only=True) == []
    assert (await env.engine.store.user_status(bob["id"])).turns_since_sleep == 0
    sleep = await fake.slash(bob, "sleep")
    assert "nothing new" in await wait_response(env, sleep, lambda c: "Sleep cycle" in c)
    if refusal != "DMs closed":  # the channel is remembered: the next message costs nothing
        await fake.guild_message(bob, "Hello again?")
        await dm_and_wait(env, bob, "Are you there?")
        assert message_calls(env, channel)[-1] is refused[0]


async def _wait_stored(env: Env, user: dict):
    """The user's first exchange, once it is in the store."""
    for _ in range(2400):
        rows = await stored(env, user)
        if rows:
            return rows[0]
        await asyncio.sleep(0.05)
    raise AssertionError("the exchange was never stored")


@pytest.mark.asyncio
async def test_a_refused_final_edit_flags_the_exchange_after_all(env: Env, monkeypatch) -> None:
    script_replies(monkeypatch, "A short answer.", pause=0.3)
    env.cfg.discord.edit_interval = 100.0  # no preview: the final edit is the first one
    fake = env.fake
    bob = fake.make_user("bob")
    await fake.guild_message(bob, "Hi!")
    await fake.wait_for(lambda: fake.bot_messages(fake.channel_id))
    await fake.deny_bot(fake.channel_id, "view_channel", tell_bot=False)
    row = await _wait_stored(env, bob)
    await fake.wait_for(lambda: [c for c in fake.refused() if c.code == 50001])
    await dm_and_wait(env, bob, "Did you answer?")  # the first reply's handling is over
    rows = await stored(env, bob)
    assert rows[0].id == row.id and rows[0].undelivered and not rows[1].undelivered
    assert [e.user_text for e in await env.engine.store.exchanges(
        bob["id"], unconsolidated_only=True)] == ["Did you answer?"]


@pytest.mark.asyncio
async def test_network_errors_are_survived(env: Env, monkeypatch) -> None:
    script_replies(monkeypatch, STORY, piece=40, pause=0.02)
    fake = env.fake
    alice = fake.make_user("alice")
    channel = fake.dm_channel(alice)
    # the placeholder's connection drops: no reply, nothing saved, nothing crashes
    fake.drop_next("POST", rf"/channels/{channel}/messages$")
    await fake.dm(alice, "First try.")
    await fake.wait_for(lambda: [c for c in fake.calls if c.status == 599])
    # a preview's connection drops: streaming goes on with the next one
    fake.drop_next("PATCH", rf"/channels/{channel}/messages/\d+$")
    reply = await dm_and_wait(env, alice, "Second try.", n_before=0)
    assert reply["content"] == STORY
    # the final edit's connection drops (no previews this time): it is retried once
    env.cfg.discord.edit_interval = 100.0
    fake.drop_next("PATCH", rf"/channels/{channel}/messages/\d+$")
    reply = await dm_and_wait(env, alice, "Third try.")
    assert reply["content"] == STORY
    rows = await stored(env, alice)
    assert [r.user_text for r in rows] == ["Second try.", "Third try."]
    assert not any(r.undelivered for r in rows)
    assert len([c for c in fake.calls if c.status == 599]) == 3


@pytest.mark.asyncio
async def test_the_final_text_uses_all_2000_characters(env: Env, monkeypatch) -> None:
    text = ("x" * 99 + " ") * 19 + "y" * 95  # 1,995 characters, no paragraph to cut at
    assert len(text) == 1995
    script_replies(monkeypatch, text, piece=100)
    alice = env.fake.make_user("alice")
    await dm_and_wait(env, alice, "Fill a whole message.")
    [message] = dm_replies(env, alice)
    assert message["content"] == text  # one message: previews kept room for " …", not this


@pytest.mark.asyncio
async def test_shutdown_in_the_middle_of_a_streamed_reply(env: Env, monkeypatch) -> None:
    script_replies(monkeypatch, STORY, piece=40, pause=0.05)
    fake = env.fake
    alice = fake.make_user("alice")
    await fake.dm(alice, "Tell me a story.")
    await fake.wait_for(lambda: any(len(fake.edits[int(m["id"])]) >= 2
                                    for m in dm_replies(env, alice)))  # it is streaming
    await env.bot.close()  # SIGTERM: the reply in flight is finished first
    [message] = dm_replies(env, alice)
    assert message["content"] == STORY
    [record] = log_records(env, alice)  # the store is closed now; the log is on disk
    assert record["assistant"] == STORY and "undelivered" not in record
    assert not fake.refused()


@pytest.mark.asyncio
@pytest.mark.parametrize("scope", ["route", "global"])
async def test_a_429_is_waited_out(env: Env, scope: str) -> None:
    fake = env.fake
    alice = fake.make_user("alice")
    channel = fake.dm_channel(alice)
    fake.rate_limit_next("POST", rf"/channels/{channel}/messages$", retry_after=0.1,
                         global_=scope == "global")
    fake.rate_limit_next("PATCH", rf"/channels/{channel}/messages/\d+$", retry_after=0.1)
    reply = await dm_and_wait(env, alice, "Hello there")
    assert reply["content"]
    statuses = [c.status for c in fake.calls if c.path.startswith(f"/channels/{channel}/mess")]
    assert statuses.count(429) == 2 and statuses[-1] == 200
    assert len(log_records(env, alice)) == 1


@pytest.mark.asyncio
async def test_rate_limit_buckets_are_respected(env: Env, monkeypatch) -> None:
    """The fake's X-RateLimit-* headers announce a small bucket for edits: discord.py waits
    instead of sending into an empty bucket, and the reply still arrives whole."""
    script_replies(monkeypatch, STORY, piece=100, pause=0.01)
    env.cfg.discord.edit_interval = 0.0  # try to edit on every piece
    fake = env.fake
    alice = fake.make_user("alice")
    channel = fake.dm_channel(alice)
    fake.bucket("PATCH", rf"/channels/{channel}/messages/\d+$", limit=2, window=0.3)
    reply = await dm_and_wait(env, alice, "Stream fast, please.")
    assert reply["content"] == STORY
    edits = fake.calls_to("PATCH", rf"/channels/{channel}/messages/")
    assert len(edits) >= 3 and fake.violations == []


@pytest.mark.asyncio
async def test_commands_acknowledge_before_they_read_the_store(env: Env, monkeypatch) -> None:
    """Discord drops an interaction not acknowledged within 3 s: every command defers before
    it touches the store, however slow the store is (here: stopped until released)."""
    from bot.discord.cogs.memory import NO_FACTS

    env.cfg.discord.confirm_seconds = 0.5  # the /forget below is never confirmed
    fake = env.fake
    alice = fake.make_user("alice")
    await dm_and_wait(env, alice, "I live in Lisbon.")
    store = env.engine.store
    gate = asyncio.Event()
    for name in ("_fetchall", "_fetchone"):
        real = getattr(store, name)

        async def gated(*args, _real=real, **kwargs):
            await gate.wait()
            return await _real(*args, **kwargs)

        monkeypatch.setattr(store, name, gated)
    commands = [("memory", {}, "status", "Your memory"), ("memory", {}, "facts", NO_FACTS[:20]),
                ("forget", {"phrase": "Lisbon"}, None, "cannot be undone"),
                ("export", {}, None, "")]
    for name, options, sub, expected in commands:
        gate.clear()
        interaction = await fake.slash(alice, name, options, sub=sub)
        await fake.wait_for(lambda i=interaction: i.callbacks)
        assert interaction.deferred and interaction.callbacks[0]["data"]["flags"] & 64
        gate.set()
        if name == "export":
            await fake.wait_for(lambda i=interaction: i.followups)
        else:
            await wait_response(env, interaction, lambda c, e=expected: e in c and c)
    assert not [c for c in fake.calls if c.code == 10062]


@pytest.mark.asyncio
async def test_an_interaction_discord_no_longer_knows_is_survived(env: Env) -> None:
    fake = env.fake
    alice = fake.make_user("alice")
    fake.ack_deadline = 0.0  # every acknowledgement comes too late: 10062
    late = await fake.slash(alice, "memory", sub="status")
    await fake.wait_for(lambda: [c for c in fake.calls if c.code == 10062])
    assert late.callbacks == []
    fake.ack_deadline = 3.0
    await dm_and_wait(env, alice, "Still alive?")
    ok = await fake.slash(alice, "memory", sub="status")
    assert "Your memory" in await wait_response(env, ok, lambda c: "Your memory" in c)


@pytest.mark.asyncio
async def test_a_sleep_that_outlives_its_interaction_stops_editing(tmp_path, tiny_model_dir,
                                                                   tiny_runtime, monkeypatch
                                                                   ) -> None:
    from bot.discord.cogs.memory import STILL_SLEEPING
    from sleep import replay

    real, entered, release = replay.select_replay, asyncio.Event(), asyncio.Event()

    async def held(*args, **kwargs):  # the cycle waits in its replay stage until released
        entered.set()
        await release.wait()
        return await real(*args, **kwargs)

    monkeypatch.setattr(replay, "select_replay", held)
    cfg = e2e_config(tmp_path, tiny_model_dir)
    cfg.discord.interaction_seconds = 1.0  # 13 of Discord's 15 minutes, scaled down
    env = await start_bot(cfg, tiny_runtime, FakeDiscord(token_lifetime=4.0))
    try:
        fake = env.fake
        alice = fake.make_user("alice")
        await dm_and_wait(env, alice, "My dog is called Rex.")
        sleep = await fake.slash(alice, "sleep")
        await asyncio.wait_for(entered.wait(), 120)
        assert STILL_SLEEPING in await wait_response(env, sleep, lambda c: "/memory" in c)
        assert env.orch.state(alice["id"]).state == "sleeping"  # it goes on, unwatched
        release.set()
        await fake.wait_for(lambda: env.orch.state(alice["id"]).state == "awake")
        status = await fake.slash(alice, "memory", sub="status")
        assert "Sleep cycles done: 1" in await wait_response(env, status,
                                                             lambda c: "Sleep cycles" in c)
        # nothing edited it after the window (an edit would show here, or as a 401 50027
        # once the fake's token had died)
        assert sleep.contents[-1] == STILL_SLEEPING
        assert not [c for c in fake.calls if c.code == 50027]
    finally:
        release.set()
        await stop_bot(env)


@pytest.mark.asyncio
async def test_the_forget_confirmation_expires_without_its_buttons(env: Env) -> None:
    env.cfg.discord.confirm_seconds = 0.2
    fake = env.fake
    alice = fake.make_user("alice")
    await dm_and_wait(env, alice, "I live in Lisbon.")
    ask = await fake.slash(alice, "forget", {"phrase": "Lisbon"})
    await wait_response(env, ask, lambda c: "cannot be undone" in c)
    assert ask.buttons == ["forget:yes", "forget:no"]
    assert "No answer" in await wait_response(env, ask, lambda c: "No answer" in c)
    assert ask.buttons == []  # nothing left to press
    assert [r["user"] for r in log_records(env, alice)] == ["I live in Lisbon."]


@pytest.mark.asyncio
async def test_progress_waits_for_its_last_edit(env: Env) -> None:
    """Progress edits are slow (the fake answers them after 0.2 s): when the cycle ends, the
    report waits for the edit in flight instead of cancelling it, so no two edits of the
    response overlap and the report is the last word."""
    fake = env.fake
    alice = fake.make_user("alice")
    await dm_and_wait(env, alice, "My sister is called Mia.")
    fake.delay("PATCH", r"/webhooks/\d+/[^/]+/messages/@original$", 0.2)
    sleep = await fake.slash(alice, "sleep")
    report = await wait_response(env, sleep, lambda c: "Sleep cycle" in c)
    await fake.settled()
    edits = fake.calls_to("PATCH", rf"/webhooks/\d+/{sleep.token}/messages/@original$")
    assert len(edits) >= 2 and all(c.status == 200 for c in edits)
    for earlier, later in zip(edits, edits[1:], strict=False):
        assert earlier.ended <= later.started  # one at a time: none cancelled mid-flight
    assert sleep.content == report


@pytest.mark.asyncio
async def test_guild_replies_are_unaffected_by_a_refusing_dm(env: Env) -> None:
    """A user whose DMs are closed is still answered in a guild channel."""
    fake = env.fake
    bob = fake.make_user("bob")
    fake.close_dms(bob)
    await fake.dm(bob, "Hello?")
    await fake.wait_for(lambda: [c for c in fake.refused() if c.code == 50007])
    await guild_and_wait(env, bob, "Hello here?")
    assert len(guild_replies(env)) == 1
    assert [r["user"] for r in log_records(env, bob)] == ["Hello here?"]


@pytest.mark.asyncio
async def test_a_forget_that_outlives_its_interaction_goes_on(tmp_path, tiny_model_dir,
                                                              tiny_runtime, monkeypatch) -> None:
    from bot.discord.cogs.memory import STILL_FORGETTING
    from sleep import replay

    real, hold, entered, release = (replay.select_replay, asyncio.Event(), asyncio.Event(),
                                    asyncio.Event())

    async def held(*args, **kwargs):  # the rebuild waits in its replay stage until released
        if hold.is_set():
            entered.set()
            await release.wait()
        return await real(*args, **kwargs)

    monkeypatch.setattr(replay, "select_replay", held)
    cfg = e2e_config(tmp_path, tiny_model_dir)
    env = await start_bot(cfg, tiny_runtime, FakeDiscord(token_lifetime=5.0))
    try:
        fake = env.fake
        alice = fake.make_user("alice")
        await dm_and_wait(env, alice, "My sister is called Mia.")
        await dm_and_wait(env, alice, "I live in Lisbon.")
        sleep = await fake.slash(alice, "sleep")
        await wait_response(env, sleep, lambda c: "accepted" in c)
        # the short window only from here: the first cycle must not outlive its own
        # interaction on a loaded machine (read at each command)
        cfg.discord.interaction_seconds = 2.0
        hold.set()
        ask = await fake.slash(alice, "forget", {"phrase": "Mia"})
        await wait_response(env, ask, lambda c: "cannot be undone" in c)
        await fake.click(alice, ask, "forget:yes")
        await asyncio.wait_for(entered.wait(), 120)  # removed; the rebuild is under way
        assert STILL_FORGETTING in await wait_response(env, ask, lambda c: "Still" in c)
        assert "My sister is called Mia." not in [r["user"] for r in log_records(env, alice)]
        release.set()
        await fake.wait_for(lambda: env.orch.state(alice["id"]).state == "awake")
        await fake.wait_for(lambda: env.engine.checkpoint_label(alice["id"]).endswith("v0001"))
        assert ask.contents[-1] == STILL_FORGETTING
        assert not [c for c in fake.calls if c.code == 50027]
    finally:
        release.set()
        await stop_bot(env)
