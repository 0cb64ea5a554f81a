"""End to end: the real bot class and the real discord.py client against a local fake Discord.

Runs the bot on the tiny random model (seconds per test), plus one slow test on the bundled
model that checks /recall answers a fact taught earlier in the same test. Every REST call the
bot makes is recorded by the fake; unknown routes fail the test.

    export LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0
    .venv/bin/python -m pytest -q tests/e2e
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from discord_env import (
    SECRET,
    TOKEN,
    Env,
    dm_and_wait,
    dm_replies,
    e2e_config,
    final,
    grep_data_dir,
    log_records,
    start_bot,
    stop_bot,
    wait_response,
)
from fake_discord import FakeDiscord, NotVisible, utf16_len


# ------------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_dm_conversation_streams_and_logs(env: Env, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    fake = env.fake
    alice = fake.make_user("alice")
    first = await dm_and_wait(env, alice, "Hello! My name is Alice.")
    second = await dm_and_wait(env, alice, "I live in Lisbon.")
    records = log_records(env, alice)
    assert [r["user"] for r in records] == ["Hello! My name is Alice.", "I live in Lisbon."]
    assert first["content"] == records[0]["assistant"] or records[0]["assistant"] == ""
    assert second["content"].startswith(records[1]["assistant"][:50] or "(")
    # the placeholder was posted, then edited (streaming), then set to the final text
    posts = fake.calls_to("POST", rf"/channels/{fake.dm_channel(alice)}/messages$")
    assert posts[0].body["content"].startswith("💭")
    assert fake.edits[int(first["id"])][0].startswith("💭")
    assert len(fake.edits[int(first["id"])]) >= 2
    assert fake.calls_to("POST", r"/typing$")
    # nothing the bot sends can ping: every message and edit carries parse: []
    for call in fake.calls_to("POST", r"/messages$") + fake.calls_to("PATCH", r"/messages/"):
        assert call.body["allowed_mentions"]["parse"] == []
    # the bot's own messages came back through the gateway and were ignored
    assert len(dm_replies(env, alice)) == 2
    # the token was never logged
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
    assert fake.identify is not None and fake.identify["token"] == TOKEN
    assert fake.identify["intents"] & (1 << 15)  # message content intent requested


@pytest.mark.asyncio
async def test_sleep_then_recall_reports_the_new_checkpoint(env: Env) -> None:
    fake = env.fake
    alice = fake.make_user("alice")
    await dm_and_wait(env, alice, f"My sister is called {SECRET}.")
    await dm_and_wait(env, alice, "I live in Lisbon.")

    sleep = await fake.slash(alice, "sleep")
    report = await wait_response(env, sleep, lambda c: "Sleep cycle" in c)
    assert sleep.deferred and sleep.callbacks[0]["data"]["flags"] & 64  # ephemeral
    assert "accepted" in report and f"{alice['id']}/v0001" in report
    assert f"Your sister is {SECRET}" in report
    progress = [c for c in sleep.contents if "•" in c]
    assert progress, sleep.contents  # stage progress was shown before the report
    assert any("training" in c for c in progress)

    recall = await fake.slash(alice, "recall", {"question": "Who is my sister?"})
    answer = await wait_response(env, recall, lambda c: "answered from" in c)
    assert f"{alice['id']}/v0001" in answer

    memory = await fake.slash(alice, "memory", sub="status")
    status = await wait_response(env, memory, lambda c: "Your memory" in c)
    assert "Sleep cycles done: 1" in status and "version 1" in status


@pytest.mark.asyncio
async def test_forget_with_button_confirmation(env: Env) -> None:
    fake = env.fake
    alice, mallory = fake.make_user("alice"), fake.make_user("mallory")
    await dm_and_wait(env, alice, f"My sister is called {SECRET}.")
    await dm_and_wait(env, alice, "I live in Lisbon.")
    sleep = await fake.slash(alice, "sleep")
    await wait_response(env, sleep, lambda c: "Sleep cycle" in c)
    assert grep_data_dir(env.cfg.data_dir, SECRET)

    # no option: a short explanation, nothing forgotten
    bare = await fake.slash(alice, "forget")
    assert "Tell me what to forget" in await wait_response(env, bare, bool)

    ask = await fake.slash(alice, "forget", {"phrase": SECRET.lower()})
    prompt = await wait_response(env, ask, lambda c: "cannot be undone" in c)
    assert "1 exchange(s)" in prompt
    # the confirmation is ephemeral: nobody else sees it, so nobody else can press it
    with pytest.raises(NotVisible):
        await fake.click(mallory, ask, "forget:yes")
    assert ask.deferred  # acknowledged before the store was read

    press = await fake.click(alice, ask, "forget:yes")
    await fake.wait_for(lambda: press.callbacks)
    assert press.callbacks[0]["type"] == 7 and press.callbacks[0]["data"]["components"] == []
    done = await wait_response(env, ask, lambda c: c.startswith("Forgot"))
    assert "Forgot 1 exchange(s)" in done and "Rebuilt from the 1 remaining" in done
    assert grep_data_dir(env.cfg.data_dir, SECRET) == []
    assert [r["user"] for r in log_records(env, alice)] == ["I live in Lisbon."]

    recall = await fake.slash(alice, "recall", {"question": "Who is my sister?"})
    answer = await wait_response(env, recall, lambda c: "answered from" in c)
    assert SECRET.lower() not in answer.lower()

    cancel = await fake.slash(alice, "forget", {"all": True})
    await wait_response(env, cancel, lambda c: "cannot be undone" in c)
    await fake.click(alice, cancel, "forget:no")
    assert "nothing was forgotten" in await wait_response(env, cancel, lambda c: "Cancelled" in c)
    assert log_records(env, alice)


@pytest.mark.asyncio
async def test_export_gives_the_callers_own_data(env: Env) -> None:
    fake = env.fake
    alice, bob = fake.make_user("alice"), fake.make_user("bob")
    await dm_and_wait(env, alice, "I live in Lisbon.")
    await dm_and_wait(env, bob, "I live in Oslo.")
    export = await fake.slash(alice, "export")
    await fake.wait_for(lambda: export.followups)
    call = fake.calls_to("POST", rf"/webhooks/\d+/{export.token}$")[-1]
    (name, blob), = call.files
    data = json.loads(blob)
    assert name.endswith(".json") and data["user_id"] == alice["id"]
    assert [r["user"] for r in data["exchanges"]] == ["I live in Lisbon."]
    assert "Oslo" not in blob.decode()


@pytest.mark.asyncio
async def test_guild_mentions_replies_and_per_author_memory(env: Env) -> None:
    fake = env.fake
    bob, carol = fake.make_user("bob"), fake.make_user("carol")
    channel = fake.channel_id

    def replies() -> list[dict]:
        return [m for m in fake.bot_messages(channel) if final(m)]

    await fake.guild_message(bob, "I play the cello.")
    first = await fake.wait_for(lambda: replies() and log_records(env, bob) and replies()[0])
    assert first["message_reference"]["message_id"]  # a reply to bob's message
    post = fake.calls_to("POST", rf"/channels/{channel}/messages$")[0]
    assert post.body["allowed_mentions"] == {"parse": [], "replied_user": False}

    # not addressed to the bot: ignored
    await fake.guild_message(carol, "just chatting with friends", mention=False)
    # a reply to the bot's message, without a mention: answered, and logged for carol only
    await fake.guild_message(carol, "I play the drums.", mention=False, reply_to=first)
    await fake.wait_for(lambda: len(replies()) == 2 and log_records(env, carol))
    assert [r["user"] for r in log_records(env, bob)] == ["I play the cello."]
    assert [r["user"] for r in log_records(env, carol)] == ["I play the drums."]

    # @everyone in a prompt never pings
    await fake.guild_message(carol, "@everyone say @everyone back please", mention_everyone=True)
    await fake.wait_for(lambda: len(replies()) == 3)
    for call in fake.calls_to("POST", r"/messages$") + fake.calls_to("PATCH", r"/messages/"):
        assert call.body["allowed_mentions"]["parse"] == []
    assert len(log_records(env, carol)) == 2


@pytest.mark.asyncio
async def test_allowed_channels_are_respected(tmp_path, tiny_model_dir, tiny_runtime) -> None:
    cfg = e2e_config(tmp_path, tiny_model_dir)
    cfg.discord.allowed_channels = [1234]  # not the fake's channel
    env = await start_bot(cfg, tiny_runtime)
    try:
        fake = env.fake
        bob = fake.make_user("bob")
        await fake.guild_message(bob, "hello?")
        memory = await fake.slash(bob, "memory", guild=True, sub="status")
        assert "not enabled" in await wait_response(env, memory, bool)
        await dm_and_wait(env, bob, "but DMs work")  # events are handled in order
        assert fake.bot_messages(fake.channel_id) == []
    finally:
        await stop_bot(env)


@pytest.mark.asyncio
async def test_long_reply_is_split_into_several_messages(env: Env) -> None:
    env.cfg.chat.max_tokens = 500  # the tiny random model babbles: well over 2,000 chars
    env.cfg.chat.stop_loops = False  # ... in loops, which the chat would otherwise cut
    fake = env.fake
    alice = fake.make_user("alice")
    await fake.dm(alice, "Tell me a very long story.")
    await fake.wait_for(lambda: log_records(env, alice))
    full = log_records(env, alice)[0]["assistant"]
    assert utf16_len(full) > 2000

    def settled():
        msgs = dm_replies(env, alice)
        return msgs if len(msgs) >= 2 and all(final(m) for m in msgs) and "".join(
            "".join(m["content"].split()) for m in msgs) == "".join(full.split()) else None

    msgs = await fake.wait_for(settled)
    assert all(0 < utf16_len(m["content"]) <= 2000 for m in msgs)
    # streaming showed a growing preview, and the second part appeared while the model was
    # still writing (posted as a preview, then completed)
    edits = fake.edits[int(msgs[0]["id"])]
    assert len(edits) >= 3 and edits[1].endswith(" …")
    assert fake.edits[int(msgs[1]["id"])][0].endswith(" …")


@pytest.mark.asyncio
async def test_two_users_at_once_keep_their_own_facts(env: Env) -> None:
    fake = env.fake
    alice, bob = fake.make_user("alice"), fake.make_user("bob")
    await asyncio.gather(
        dm_and_wait(env, alice, "My sister is called Mia.", n_before=0),
        dm_and_wait(env, bob, "My brother is called Tomasz.", n_before=0))
    await asyncio.gather(dm_and_wait(env, alice, "I live in Lisbon."),
                         dm_and_wait(env, bob, "I live in Oslo."))
    sleeps = await asyncio.gather(fake.slash(alice, "sleep"), fake.slash(bob, "sleep"))
    reports = await asyncio.gather(*(wait_response(env, s, lambda c: "Sleep cycle" in c)
                                     for s in sleeps))
    assert "Mia" in reports[0] and "Tomasz" not in reports[0] and "Oslo" not in reports[0]
    assert "Tomasz" in reports[1] and "Mia" not in reports[1] and "Lisbon" not in reports[1]
    for user, mine, theirs in ((alice, "Mia", "Tomasz"), (bob, "Tomasz", "Mia")):
        items = await env.engine.store.replay_items(user["id"])
        text = " ".join(i.question + " " + i.answer for i in items)
        assert mine in text and theirs not in text
        assert env.engine.checkpoint_label(user["id"]) == f"{user['id']}/v0001"


@pytest.mark.asyncio
async def test_commands_while_the_users_sleep_runs(env: Env) -> None:
    fake = env.fake
    alice = fake.make_user("alice")
    await dm_and_wait(env, alice, "My dog is named Rex.")
    sleep = await fake.slash(alice, "sleep")
    await fake.wait_for(lambda: env.orch.state(alice["id"]).state == "sleeping")
    # while it runs: chat is answered, /memory and /recall say so, a second /sleep follows it
    memory = await fake.slash(alice, "memory", sub="status")
    assert "State: sleeping" in await wait_response(env, memory, lambda c: "State" in c)
    again = await fake.slash(alice, "sleep")
    await dm_and_wait(env, alice, "Are you asleep?")
    recall = await fake.slash(alice, "recall", {"question": "What is my dog called?"})
    answer = await wait_response(env, recall, lambda c: "answered from" in c)
    if env.orch.state(alice["id"]).state == "sleeping":
        assert "a sleep cycle is running" in answer
    first, second = await asyncio.gather(
        wait_response(env, sleep, lambda c: "Sleep cycle" in c),
        wait_response(env, again, lambda c: "Sleep cycle" in c))
    assert first == second  # one cycle, reported to both
    assert any("already running" in c for c in again.contents)


@pytest.mark.asyncio
async def test_bad_input_gets_short_replies(env: Env) -> None:
    from bot.discord.cogs.chat import ATTACHMENTS_REPLY, EMPTY_REPLY

    fake = env.fake
    alice, bob = fake.make_user("alice"), fake.make_user("bob")

    async def reply_to(send) -> str:
        before = len(dm_replies(env, alice))
        await send
        msgs = await fake.wait_for(lambda: [m for m in dm_replies(env, alice)[before:]
                                            if final(m)])
        return msgs[0]["content"]

    assert await reply_to(fake.dm(alice, "")) == EMPTY_REPLY
    assert await reply_to(fake.dm(alice, "  \u200b\u200d\u0007\u0000 ")) == EMPTY_REPLY
    attachment = {"id": str(fake.snowflake()), "filename": "cat.png", "size": 10,
                  "url": "https://example.invalid/cat.png",
                  "proxy_url": "https://example.invalid/cat.png"}
    assert await reply_to(fake.dm(alice, "", attachments=[attachment])) == ATTACHMENTS_REPLY
    assert log_records(env, alice) == []  # none of these is an exchange

    # a 100 kB paste is cut to the configured size, and the user is told
    paste = ("lorem ipsum dolor sit amet " * 4000)[:100_000]
    await fake.dm(alice, paste)
    reply = await fake.wait_for(lambda: log_records(env, alice) and [
        m for m in dm_replies(env, alice) if final(m) and "read the first" in m["content"]])
    assert f"read the first {env.cfg.chat.max_message_chars} characters" in reply[0]["content"]
    assert len(log_records(env, alice)[0]["user"]) == env.cfg.chat.max_message_chars

    # zero-width and control characters inside real text are dropped before logging
    await dm_and_wait(env, alice, "Hel\u200blo\u0007 there")
    assert log_records(env, alice)[-1]["user"] == "Hello there"

    # no content intent: a guild mention arrives with empty content
    await fake.guild_message(bob, "", mention=True)
    notice = await fake.wait_for(lambda: [m for m in fake.bot_messages(fake.channel_id)])
    assert notice[0]["content"] == EMPTY_REPLY

    # a slash command with a required option missing
    broken = await fake.slash(alice, "recall", {})
    assert "incomplete" in await wait_response(env, broken, bool)
    # a command this bot does not have (a stale registration)
    unknown = await fake.slash(alice, "dance")
    assert "don't know that command" in await wait_response(env, unknown, bool)

    # every message sent stayed within Discord's limits (the fake enforces them)
    assert not [c for c in fake.calls if c.status >= 400]


@pytest.mark.asyncio
async def test_fifty_messages_in_a_second(env: Env, caplog) -> None:
    from bot.discord.cogs.chat import RATE_LIMITED

    caplog.set_level(logging.INFO)
    fake = env.fake
    spammer, other = fake.make_user("spammer"), fake.make_user("newcomer")
    sent = [await fake.dm(spammer, f"message number {i}") for i in range(50)]
    limit = env.cfg.discord.rate_limit_messages
    notice_prefix = RATE_LIMITED.split("{")[0]

    def settled():
        msgs = dm_replies(env, spammer)
        answered = [m for m in msgs if final(m) and not m["content"].startswith(notice_prefix)]
        return msgs if len(log_records(env, spammer)) == limit and len(answered) == limit \
            else None

    msgs = await fake.wait_for(settled)
    notices = [m for m in msgs if m["content"].startswith(notice_prefix)]
    assert len(notices) == 1
    assert [r["user"] for r in log_records(env, spammer)] == \
        [m["content"] for m in sent[:limit]]  # the first ones, in order
    stored = await env.engine.store.exchanges(spammer["id"])
    assert len(stored) == limit
    # another user is not held back by the spammer, and a first-time DM works
    await dm_and_wait(env, other, "Hi, I'm new here")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    dropped = [r for r in caplog.records if "dropped by the rate limit" in r.getMessage()]
    assert len(dropped) == 50 - limit


@pytest.fixture
def threaded_fake():
    """A fake Discord served from its own thread, for code that runs its own event loop."""
    import threading

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fakes: list[FakeDiscord] = []

    def make(**options) -> FakeDiscord:
        fake = FakeDiscord(**options)
        asyncio.run_coroutine_threadsafe(fake.start(), loop).result(30)
        fake.install()
        fakes.append(fake)
        return fake

    yield make
    for fake in fakes:
        fake.uninstall()
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(30)
        assert fake.unknown == []
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_run_bot_explains_a_rejected_token(threaded_fake, tmp_path, tiny_model_dir,
                                           capsys) -> None:
    from bot.discord.client import BAD_TOKEN, run_bot

    threaded_fake(token="the-right-token")
    assert run_bot(e2e_config(tmp_path, tiny_model_dir), TOKEN) == 2
    err = capsys.readouterr().err
    assert BAD_TOKEN in err and TOKEN not in err


def test_run_bot_explains_the_missing_content_intent(threaded_fake, tmp_path, tiny_model_dir,
                                                     capsys) -> None:
    from bot.discord.client import INTENTS_HELP, run_bot

    fake = threaded_fake(refuse_privileged_intents=True)
    assert run_bot(e2e_config(tmp_path, tiny_model_dir), TOKEN) == 2
    err = capsys.readouterr().err
    assert INTENTS_HELP in err and "Message Content Intent" in err and TOKEN not in err
    assert fake.identify is not None  # it got as far as the gateway


def test_run_without_token_explains_how_to_get_one(cli, tmp_path) -> None:
    out = cli("run", data_dir=tmp_path / "data", env={"DISCORD_TOKEN": ""})
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "DISCORD_TOKEN" in lines[0]
    assert "developers/applications" in lines[0] and "Message Content" in lines[0]


@pytest.mark.slow
@pytest.mark.asyncio
async def test_recall_answers_a_fact_taught_in_discord_bundled_model(tmp_path, bundled_model_dir
                                                                    ) -> None:
    """The real thing: tell the bundled model a fact in a DM, /sleep, /recall it."""
    from runtime.config import load_config

    cfg = load_config(data_dir=tmp_path / "data", model=str(bundled_model_dir),
                      env={"SLEEPBOT_LEARNING_RATE": "3e-4", "SLEEPBOT_TURN_THRESHOLD": "1000",
                           "SLEEPBOT_IDLE_MINUTES": "0", "SLEEPBOT_MAX_TOKENS": "24"})
    env = await start_bot(cfg)
    try:
        fake = env.fake
        alice = fake.make_user("alice")
        before = await fake.slash(alice, "recall", {"question": "What is my sister's name?"})
        assert "Marisol" not in await wait_response(env, before, lambda c: "answered from" in c)
        await dm_and_wait(env, alice, "My sister is called Marisol.")
        sleep = await fake.slash(alice, "sleep")
        report = await wait_response(env, sleep, lambda c: "Sleep cycle" in c, timeout=900)
        assert "accepted" in report, report
        recall = await fake.slash(alice, "recall", {"question": "What is my sister's name?"})
        answer = await wait_response(env, recall, lambda c: "answered from" in c)
        assert "Marisol" in answer and f"{alice['id']}/v0001" in answer
    finally:
        await stop_bot(env)


@pytest.mark.asyncio
async def test_shutdown_during_sleep_keeps_the_job_and_says_so(env: Env, monkeypatch) -> None:
    import sqlite3

    from memory.paths import store_path
    from sleep import replay

    # hold the cycle inside its replay stage: the tiny model's whole cycle can end before
    # close() runs on a busy machine, which would test nothing
    entered = asyncio.Event()

    async def held(*_args, **_kwargs):
        entered.set()
        await asyncio.Event().wait()  # until stop() cancels the cycle

    monkeypatch.setattr(replay, "select_replay", held)
    fake = env.fake
    alice = fake.make_user("alice")
    await dm_and_wait(env, alice, "My cat is named Tom.")
    sleep = await fake.slash(alice, "sleep")
    await asyncio.wait_for(entered.wait(), 120)
    assert env.orch.state(alice["id"]).state == "sleeping"
    await env.bot.close()
    assert "stays queued" in sleep.content
    with sqlite3.connect(store_path(env.cfg.data_dir)) as db:
        states = db.execute("SELECT state FROM sleep_queue WHERE user_id = ?",
                            (alice["id"],)).fetchall()
    assert states == [("queued",)]  # the next start runs it
