"""End to end, who may use the bot: user and role allow/block lists (in guilds and DMs), the DM
switch, leaving guilds that are not allowed, the shared rate limit of messages and commands,
running without the Message Content intent, ignoring bots, webhooks and system messages, and
what /export and /memory facts give a user about themselves.

    .venv/bin/python -m pytest -q tests/e2e/test_discord_access.py
"""

from __future__ import annotations

import json
import logging

import pytest
from discord_env import (
    Env,
    as_json,
    dm_and_wait,
    dm_replies,
    e2e_config,
    guild_and_wait,
    guild_replies,
    log_records,
    start_bot,
    stop_bot,
    wait_response,
)
from fake_discord import CONTENT_INTENT, FakeDiscord, NotVisible


@pytest.mark.asyncio
async def test_user_and_role_lists_in_guilds_and_dms(tmp_path, tiny_model_dir,
                                                     tiny_runtime) -> None:
    from bot.discord.access import REFUSED

    fake = FakeDiscord()
    member, muted = fake.add_role("member"), fake.add_role("muted")
    alice, bob, carol, mallory, dave = (fake.make_user(n) for n in
                                        ("alice", "bob", "carol", "mallory", "dave"))
    fake.give_role(alice, member)
    fake.give_role(mallory, member)
    fake.give_role(carol, member)
    fake.give_role(carol, muted)
    fake.give_role(bob, fake.add_role("visitor"))
    cfg = e2e_config(tmp_path, tiny_model_dir)
    cfg.discord.allowed_roles = [member]
    cfg.discord.blocked_roles = [muted]
    cfg.discord.blocked_users = [int(mallory["id"])]
    env = await start_bot(cfg, tiny_runtime, fake)
    try:
        for user in (bob, carol, mallory):  # no allowed role, a blocked role, blocked
            await fake.guild_message(user, "Answer me!")
        await guild_and_wait(env, alice, "Hello, I'm a member.")  # handled after the others
        assert len(guild_replies(env)) == 1
        # in a DM the roles come from the guild (looked up once, then cached)
        await dm_and_wait(env, alice, "Hello in private.")
        await dm_and_wait(env, alice, "Again.")
        lookups = fake.calls_to("GET", rf"/guilds/{fake.guild_id}/members/{alice['id']}$")
        assert len(lookups) == 1
        for user in (bob, dave, carol):  # not a member at all (dave), a blocked role
            await fake.dm(user, "Let me in?")
        await dm_and_wait(env, alice, "Third.")
        for user in (bob, carol, mallory, dave):
            assert log_records(env, user) == [] and dm_replies(env, user) == []
        # commands say why, privately
        refused = await fake.slash(dave, "memory", sub="status")
        assert REFUSED["user"] in await wait_response(env, refused, bool)
        refused = await fake.slash(mallory, "recall", {"question": "Who am I?"}, guild=True)
        assert REFUSED["user"] in await wait_response(env, refused, bool)
        allowed = await fake.slash(alice, "memory", guild=True, sub="status")
        assert "Your memory" in await wait_response(env, allowed, bool)
    finally:
        await stop_bot(env)


@pytest.mark.asyncio
async def test_dms_can_be_switched_off(tmp_path, tiny_model_dir, tiny_runtime) -> None:
    from bot.discord.access import REFUSED

    cfg = e2e_config(tmp_path, tiny_model_dir)
    cfg.discord.allow_dms = False
    env = await start_bot(cfg, tiny_runtime)
    try:
        fake = env.fake
        alice = fake.make_user("alice")
        await fake.dm(alice, "Psst.")
        command = await fake.slash(alice, "memory", sub="status")
        assert REFUSED["dms"] in await wait_response(env, command, bool)
        await guild_and_wait(env, alice, "In public, then.")
        assert dm_replies(env, alice) == []
        assert [r["user"] for r in log_records(env, alice)] == ["In public, then."]
    finally:
        await stop_bot(env)


@pytest.mark.asyncio
async def test_guilds_not_allowed_are_left_at_start_and_on_join(tmp_path, tiny_model_dir,
                                                                tiny_runtime, caplog) -> None:
    caplog.set_level(logging.WARNING)
    fake = FakeDiscord()
    stranger = fake.add_guild("Somebody else's server")
    cfg = e2e_config(tmp_path, tiny_model_dir)
    cfg.discord.allowed_guilds = [fake.guild_id]
    env = await start_bot(cfg, tiny_runtime, fake)
    try:
        await fake.wait_for(lambda: fake.left_guilds == [stranger])
        invited = await fake.join_guild("Another server")  # someone invites the public bot
        await fake.wait_for(lambda: fake.left_guilds == [stranger, invited])
        await fake.wait_for(lambda: [g.id for g in env.bot.guilds] == [fake.guild_id])
        alice = fake.make_user("alice")
        await guild_and_wait(env, alice, "Still here?")
        # a public application is fine once the guilds are listed: no warning about it
        assert not any("Public Bot" in r.getMessage() for r in caplog.records)
    finally:
        await stop_bot(env)


@pytest.mark.asyncio
async def test_model_commands_share_the_rate_limit_with_messages(env: Env) -> None:
    from bot.discord.cogs.memory import SLOW_DOWN

    env.bot.limiter.limit = 2
    fake = env.fake
    alice, bob = fake.make_user("alice"), fake.make_user("bob")
    await dm_and_wait(env, alice, "One.")
    recall = await fake.slash(alice, "recall", {"question": "What did I say?"})
    await wait_response(env, recall, lambda c: "answered from" in c)
    for name, options in (("recall", {"question": "Again?"}), ("sleep", {}), ("export", {})):
        limited = await fake.slash(alice, name, options)
        assert SLOW_DOWN.split(":")[0] in await wait_response(env, limited, bool)
        assert not limited.deferred  # answered at once, nothing started
    status = await fake.slash(alice, "memory", sub="status")  # reads little: not limited
    assert "Your memory" in await wait_response(env, status, bool)
    await dm_and_wait(env, bob, "Others are not held back.")
    assert env.orch.state(alice["id"]).state == "awake"


@pytest.mark.asyncio
async def test_without_the_message_content_intent(tmp_path, tiny_model_dir, tiny_runtime,
                                                  monkeypatch, caplog) -> None:
    from discord_env import record_prompts

    from bot.discord.client import PUBLIC_BOT, WITHOUT_CONTENT
    from bot.discord.cogs.chat import NEED_MENTION

    caplog.set_level(logging.INFO)
    prompts = record_prompts(monkeypatch)
    cfg = e2e_config(tmp_path, tiny_model_dir)
    cfg.discord.message_content = False
    env = await start_bot(cfg, tiny_runtime)
    try:
        fake = env.fake
        assert not fake.identify["intents"] & CONTENT_INTENT
        assert any(WITHOUT_CONTENT in r.getMessage() for r in caplog.records)
        assert any(PUBLIC_BOT in r.getMessage() for r in caplog.records)  # the fake's is
        alice = fake.make_user("alice")
        await dm_and_wait(env, alice, "DMs keep their text.")
        answer = await guild_and_wait(env, alice, "So do mentions.")
        assert "So do mentions." in prompts.having("So do mentions.")[-1]["content"]
        # a reply without a mention arrives blank: the bot asks for a mention
        await fake.guild_message(alice, "A reply without a mention.", mention=False,
                                 reply_to=answer)
        notice = await fake.wait_for(lambda: [m for m in guild_replies(env)
                                              if m["content"] == NEED_MENTION])
        assert notice and len(log_records(env, alice)) == 2
    finally:
        await stop_bot(env)


@pytest.mark.asyncio
async def test_other_bots_webhooks_and_system_messages_are_ignored(env: Env) -> None:
    fake = env.fake
    other_bot, alice = fake.make_user("another bot", bot=True), fake.make_user("alice")
    await fake.guild_message(other_bot, "Hey sleepbot, talk to me!")
    await fake.guild_message(alice, "Posted through a webhook", webhook=True)
    await fake.guild_message(alice, "", kind=7, mention=False)  # alice joined the server
    await fake.dm(other_bot, "Bots talking to bots.")
    await guild_and_wait(env, alice, "A person asking.")
    assert len(guild_replies(env)) == 1 and dm_replies(env, other_bot) == []
    assert log_records(env, other_bot) == []
    assert [r["user"] for r in log_records(env, alice)] == ["A person asking."]


@pytest.mark.asyncio
async def test_export_holds_everything_kept_including_summaries(env: Env) -> None:
    env.cfg.chat.context_tokens = 120  # summarise early
    env.cfg.chat.keep_recent_turns = 1
    fake = env.fake
    alice = fake.make_user("alice")
    for text in ("My sister Mia lives in Porto and likes tea.",
                 "My brother Leo lives in Oslo and likes coffee.",
                 "My cat Tom sleeps all day on the sofa.", "And I work as a carpenter."):
        await dm_and_wait(env, alice, text)
    export = await fake.slash(alice, "export")
    await fake.wait_for(lambda: export.followups)
    (_name, blob), = fake.calls_to("POST", rf"/webhooks/\d+/{export.token}$")[-1].files
    data = json.loads(blob)
    summaries = [s["summary"] for s in data["sessions"] if s["summary"]]
    assert summaries  # what the working memory summarised is the user's data too
    stored = [s.summary for s in await env.engine.store.sessions(alice["id"]) if s.summary]
    assert summaries == stored
    assert len(data["exchanges"]) == 4 and data["status"]["turns_since_sleep"] == 4
    assert "session(s)" in export.followups[0]["content"]


@pytest.mark.asyncio
async def test_memory_facts_lists_pages_and_forgets_one_fact(env: Env) -> None:
    env.bot.limiter.limit = 0  # seven messages in a row
    fake = env.fake
    alice, mallory = fake.make_user("alice"), fake.make_user("mallory")
    told = ["My sister is called Mia.", "I live in Lisbon.", "My dog is named Rex.",
            "I work as a carpenter.", "My brother is called Leo.", "I was born in Porto.",
            "My favourite food is paella."]
    for text in told:
        await dm_and_wait(env, alice, text)
    sleep = await fake.slash(alice, "sleep")
    assert "accepted" in await wait_response(env, sleep, lambda c: "Sleep cycle" in c)
    from bot.discord.cogs.memory import group_facts

    items = await env.engine.store.replay_items(alice["id"])
    facts_told = group_facts(items)  # one per message that taught something
    assert len(facts_told) > 5  # more than one page

    facts = await fake.slash(alice, "memory", sub="facts")
    page = await wait_response(env, facts, lambda c: "What I've consolidated" in c)
    assert "page 1/" in page and facts.callbacks[0]["data"]["flags"] & 64  # only alice sees
    assert len([b for b in facts.buttons if b.startswith("facts:forget:")]) == 5
    with pytest.raises(NotVisible):
        await fake.click(mallory, facts, facts.buttons[0])
    await fake.click(alice, facts, "facts:next")
    assert "page 2/" in await wait_response(env, facts, lambda c: "page 2/" in c)
    await fake.click(alice, facts, "facts:prev")
    await wait_response(env, facts, lambda c: "page 1/" in c)

    sister = next(g for g in facts_told if any("Mia" in i.answer for i in g))[0]
    page_of = [g[0].id for g in facts_told].index(sister.id) // 5
    for _ in range(page_of):
        await fake.click(alice, facts, "facts:next")
        await wait_response(env, facts, lambda c, p=page_of: f"page {p + 1}/" in c)
    await fake.click(alice, facts, f"facts:forget:{sister.id}")
    assert "Forget this fact?" in await wait_response(env, facts, lambda c: "Forget this" in c)
    await fake.click(alice, facts, "facts:back")  # changed her mind ...
    await wait_response(env, facts, lambda c: "What I've consolidated" in c)
    await fake.click(alice, facts, f"facts:forget:{sister.id}")  # ... and back again
    await wait_response(env, facts, lambda c: "Forget this" in c)
    await fake.click(alice, facts, "facts:confirm")
    done = await wait_response(env, facts, lambda c: c.startswith("Forgot"))
    assert "Rebuilt from the" in done and facts.buttons == []
    left = await env.engine.store.replay_items(alice["id"])
    assert left and not any("Mia" in i.answer for i in left)
    assert any("Lisbon" in i.answer for i in left)
    said = [r["user"] for r in log_records(env, alice)]
    assert "My sister is called Mia." not in said and "I live in Lisbon." in said
    reports = [c.report for c in await env.engine.store.cycles(alice["id"])]
    assert reports and "Mia" not in as_json(reports)  # the rebuild's report included
