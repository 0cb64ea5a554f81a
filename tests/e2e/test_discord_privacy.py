"""End to end, privacy: what reaches the model's prompt in each place (DMs, channels, threads),
reply chains, and one user talking in two channels at once.

The prompts are recorded on their way to the tiny model (``prompts`` fixture), so the tests
check what the model was given, not what a random model happened to say.

    .venv/bin/python -m pytest -q tests/e2e/test_discord_privacy.py
"""

from __future__ import annotations

import asyncio

import pytest
from discord_env import (
    SECRET,
    Env,
    as_json,
    dm_and_wait,
    e2e_config,
    guild_and_wait,
    guild_replies,
    log_records,
    start_bot,
    stop_bot,
)
from fake_discord import FakeDiscord


@pytest.mark.asyncio
async def test_a_dm_secret_never_reaches_a_guild_prompt(env: Env, prompts) -> None:
    fake = env.fake
    alice = fake.make_user("alice")
    public_note = env.cfg.chat.public_note
    await dm_and_wait(env, alice, f"Just between us: my password is {SECRET}.")
    await guild_and_wait(env, alice, "Hello everyone, what do you know about me?")
    public = prompts.having("what do you know about me?")
    assert SECRET not in as_json(public)
    assert public_note in public[0]["content"]  # the model is asked not to volunteer it
    # back in the DM the conversation goes on where it was, and no note is needed
    await dm_and_wait(env, alice, "What did I tell you about my password?")
    private = prompts.having("What did I tell you about my password?")
    assert SECRET in as_json(private) and public_note not in as_json(private)
    assert "Hello everyone" not in as_json(private)
    # one log and one memory per user, whatever the place
    assert [r["user"] for r in log_records(env, alice)] == [
        f"Just between us: my password is {SECRET}.",
        "Hello everyone, what do you know about me?",
        "What did I tell you about my password?"]


@pytest.mark.asyncio
async def test_a_reply_brings_the_replied_message_into_the_prompt(env: Env, prompts) -> None:
    fake = env.fake
    bob, carol = fake.make_user("bob"), fake.make_user("carol")
    # bob's message is not for the bot; carol replies to it and mentions the bot
    said = await fake.guild_message(bob, "The meeting moved to Thursday at noon.", mention=False)
    await guild_and_wait(env, carol, "When is it now?", reply_to=said)
    prompt = prompts.having("When is it now?")
    assert "The meeting moved to Thursday at noon." in prompt[-1]["content"]
    assert "a message from bob" in prompt[-1]["content"]
    assert [r["user"] for r in log_records(env, carol)] == ["When is it now?"]  # not bob's
    assert log_records(env, bob) == []
    # a reply to the bot's own message, without a mention: answered, with that message
    answer = guild_replies(env)[-1]
    await guild_and_wait(env, carol, "Thanks!", mention=False, reply_to=answer)
    assert answer["content"] in prompts.having("Thanks!")[-1]["content"]
    assert "your own earlier message" in prompts.having("Thanks!")[-1]["content"]
    # the quote was for one prompt only: the next one does not carry bob's words again
    await guild_and_wait(env, carol, "One more question.")
    assert "Thursday at noon" not in prompts.having("One more question.")[-1]["content"]


@pytest.mark.asyncio
async def test_a_reply_whose_message_discord_left_out_is_fetched(env: Env, prompts) -> None:
    fake = env.fake
    bob, carol = fake.make_user("bob"), fake.make_user("carol")
    said = await fake.guild_message(bob, "Bring the blue folder.", mention=False)
    await guild_and_wait(env, carol, "What should I bring?", reply_to=said, referenced=False)
    assert fake.calls_to("GET", rf"/channels/{fake.channel_id}/messages/{said['id']}$")
    assert "Bring the blue folder." in prompts.having("What should I bring?")[-1]["content"]


@pytest.mark.asyncio
async def test_a_reply_to_a_deleted_message_is_answered_without_it(env: Env, prompts) -> None:
    fake = env.fake
    bob, carol = fake.make_user("bob"), fake.make_user("carol")
    gone = await fake.guild_message(bob, "Words that will vanish.", mention=False)
    await fake.delete_user_message(gone)
    # Discord sends a null referenced_message for a deleted one ...
    await guild_and_wait(env, carol, "What did he say?", reply_to=gone)
    assert "vanish" not in as_json(prompts.having("What did he say?"))
    # ... or leaves it out, and fetching it answers 404
    await guild_and_wait(env, carol, "Anything else?", reply_to=gone, referenced=False)
    assert "vanish" not in as_json(prompts.having("Anything else?"))
    [fetch] = fake.calls_to("GET", rf"/messages/{gone['id']}$")
    assert fetch.status == 404
    assert [r["user"] for r in log_records(env, carol)] == ["What did he say?", "Anything else?"]


@pytest.mark.asyncio
async def test_one_user_in_two_channels_at_once(env: Env, prompts) -> None:
    fake = env.fake
    alice = fake.make_user("alice")
    general, other = fake.channel_id, await fake.create_channel(name="other")
    await asyncio.gather(
        guild_and_wait(env, alice, "Here I say that I like tea.", channel_id=general),
        guild_and_wait(env, alice, "There I say that I like coffee.", channel_id=other))
    await asyncio.gather(
        guild_and_wait(env, alice, "In general: what do I like?", channel_id=general),
        guild_and_wait(env, alice, "In the other: what do I like?", channel_id=other))
    here = prompts.having("In general: what do I like?")
    there = prompts.having("In the other: what do I like?")
    assert "tea" in as_json(here) and "coffee" not in as_json(here)
    assert "coffee" in as_json(there) and "tea" not in as_json(there)
    assert len(guild_replies(env, general)) == 2 and len(guild_replies(env, other)) == 2
    assert len(log_records(env, alice)) == 4  # one memory: both channels feed the same user


@pytest.mark.asyncio
async def test_threads_have_their_own_context_and_permissions(tmp_path, tiny_model_dir,
                                                              tiny_runtime, monkeypatch
                                                              ) -> None:
    from discord_env import record_prompts

    prompts = record_prompts(monkeypatch)
    fake = FakeDiscord()
    thread = fake.add_channel(thread_of=fake.channel_id, name="a thread")
    cfg = e2e_config(tmp_path, tiny_model_dir)
    cfg.discord.allowed_channels = [fake.channel_id]  # the parent: its threads are allowed
    env = await start_bot(cfg, tiny_runtime, fake)
    try:
        alice = fake.make_user("alice")
        await guild_and_wait(env, alice, "In the channel: my cat is Tom.")
        await guild_and_wait(env, alice, "In the thread: hello.", channel_id=thread)
        assert "Tom" not in as_json(prompts.having("In the thread: hello."))
        assert guild_replies(env, thread)  # the reply went to the thread
        # the bot may post in the channel but not in its threads: the thread is not tried
        await fake.deny_bot(fake.channel_id, "send_messages_in_threads")
        await fake.wait_for(lambda: not env.bot.get_channel(fake.channel_id).permissions_for(
            env.bot.get_guild(fake.guild_id).me).send_messages_in_threads)
        posts = len(fake.calls_to("POST", rf"/channels/{thread}/messages$"))
        await fake.guild_message(alice, "Still there?", channel_id=thread)
        await guild_and_wait(env, alice, "And here?")  # handled after the thread message
        assert len(fake.calls_to("POST", rf"/channels/{thread}/messages$")) == posts
        assert "Still there?" not in [r["user"] for r in log_records(env, alice)]
        assert not fake.refused()  # it never asked Discord for what it knew it could not do
    finally:
        await stop_bot(env)
