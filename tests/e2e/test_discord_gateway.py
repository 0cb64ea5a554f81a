"""End to end, the connection itself: the gateway asking the bot to reconnect (op 7) or
identify again (op 9), and Discord checking the slash-command schemas at sync.

    .venv/bin/python -m pytest -q tests/e2e/test_discord_gateway.py
"""

from __future__ import annotations

import logging

import pytest
from discord_env import (
    Env,
    dm_and_wait,
    e2e_config,
    log_records,
    start_bot,
    stop_bot,
    wait_response,
)
from fake_discord import validate_commands


@pytest.mark.asyncio
async def test_reconnect_resumes_and_delivers_what_was_missed(env: Env) -> None:
    fake = env.fake
    alice = fake.make_user("alice")
    await dm_and_wait(env, alice, "Before.")
    await fake.reconnect()
    await fake.dm(alice, "Sent while the bot was reconnecting.")  # replayed on RESUME
    await fake.wait_for(lambda: len(log_records(env, alice)) == 2)
    assert fake.resumes == 1 and fake.identifies == 1  # the same session
    await dm_and_wait(env, alice, "After.")
    assert [r["user"] for r in log_records(env, alice)] == [
        "Before.", "Sent while the bot was reconnecting.", "After."]


@pytest.mark.asyncio
async def test_an_invalid_session_makes_the_bot_identify_again(env: Env) -> None:
    async def no_pause(_shard_id, *, initial=False) -> None:
        """discord.py waits 5 s before identifying again (Discord's identify limit)."""

    env.bot.before_identify_hook = no_pause
    fake = env.fake
    alice = fake.make_user("alice")
    await fake.invalidate_session(resumable=False)
    await fake.wait_for(lambda: fake.identifies == 2 and fake.connected)
    await env.bot.wait_until_ready()
    await dm_and_wait(env, alice, "Are you back?")
    memory = await fake.slash(alice, "memory", sub="status")
    assert "Turns since the last sleep: 1" in await wait_response(env, memory,
                                                                  lambda c: "Turns" in c)


@pytest.mark.asyncio
async def test_the_commands_pass_discords_schema_checks(env: Env) -> None:
    fake = env.fake
    synced = {c["name"]: c for c in fake.commands}
    assert set(synced) == {"sleep", "recall", "forget", "memory", "export"}
    subcommands = {o["name"] for o in synced["memory"]["options"] if o["type"] == 1}
    assert subcommands == {"status", "facts"}
    assert all(set(c["contexts"]) == {0, 1, 2} for c in fake.commands)  # DMs too


@pytest.mark.asyncio
async def test_a_refused_sync_keeps_the_bot_running(tmp_path, tiny_model_dir, tiny_runtime,
                                                    monkeypatch, caplog) -> None:
    from bot.discord.cogs.memory import MemoryCog

    caplog.set_level(logging.WARNING)
    recall = next(c for c in MemoryCog.__cog_app_commands__ if c.name == "recall")
    monkeypatch.setattr(recall, "description", "x" * 101)  # Discord allows 100
    env = await start_bot(e2e_config(tmp_path, tiny_model_dir), tiny_runtime)
    try:
        fake = env.fake
        [sync] = fake.calls_to("PUT", r"/applications/\d+/commands$")
        assert sync.status == 400 and sync.code == 50035 and fake.commands == []
        assert any("could not sync slash commands" in r.getMessage() for r in caplog.records)
        await dm_and_wait(env, fake.make_user("alice"), "Chat still works.")
    finally:
        await stop_bot(env)


def test_the_fake_rejects_what_discord_rejects() -> None:
    """The schema checks themselves (what the sync test relies on)."""
    def command(**fields):
        return {"name": "ok", "type": 1, "description": "fine", "options": []} | fields

    option = {"name": "q", "type": 3, "description": "a question"}
    assert validate_commands([command()]) == {}
    bad = [command(name="Upper"), command(description=""),
           command(options=[option | {"required": False}, option | {"name": "r",
                                                                     "required": True}]),
           command(options=[option | {"name": f"o{i}"} for i in range(26)]),
           command(options=[{"name": "sub", "type": 1, "description": "s"}, option]),
           command(options=[option | {"choices": [{"name": str(i), "value": i}
                                                  for i in range(26)]}])]
    for cmd in bad:
        assert validate_commands([cmd]), cmd
    assert validate_commands([command(), command()])  # the same name twice
