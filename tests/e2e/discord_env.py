"""Shared helpers of the Discord end-to-end tests: start the real bot against the fake, wait
for what it sends, see what reached the model. Fixtures built on them are in ``conftest.py``.

    export LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0
    .venv/bin/python -m pytest -q tests/e2e
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path

from fake_discord import FakeDiscord, FakeInteraction

TOKEN = "fake-token-must-never-be-logged-0123456789"
SECRET = "Zorbanella"


@dataclass
class Env:
    fake: FakeDiscord
    bot: object  # bot.discord.client.SleepBot
    cfg: object
    task: asyncio.Task

    @property
    def engine(self):
        return self.bot.engine

    @property
    def orch(self):
        return self.bot.orchestrator


def e2e_config(tmp_path: Path, model_dir: Path):
    from runtime.config import load_config

    cfg = load_config(data_dir=tmp_path / "data", model=str(model_dir), env={})
    cfg.chat.max_tokens = 12
    cfg.discord.edit_interval = 0.05
    cfg.sleep.turn_threshold = 1000  # tests ask for sleep themselves
    cfg.sleep.idle_minutes = 0
    # a tiny-model cycle that is quick and accepted: these tests check the flow, not recall
    cfg.sleep.tau = 0.0
    cfg.sleep.deep_every = 0
    cfg.sleep.phrasings_per_fact = 1
    cfg.sleep.lora.layers = 1
    cfg.sleep.train.learning_rate = 1e-3
    cfg.sleep.train.max_seq_len = 64
    return cfg


async def start_bot(cfg, runtime=None, fake: FakeDiscord | None = None) -> Env:
    from bot.discord.client import SleepBot

    fake = fake or FakeDiscord()
    await fake.start()
    fake.install()
    bot = SleepBot(cfg, runtime=runtime, guild_ready_timeout=0.05)
    task = asyncio.create_task(bot.start(TOKEN))
    waiter = asyncio.create_task(bot.wait_until_ready())
    done, _ = await asyncio.wait({task, waiter}, timeout=120,
                                 return_when=asyncio.FIRST_COMPLETED)
    if task in done:  # start() ended before ready: surface its error
        waiter.cancel()
        task.result()
    assert waiter in done, "the bot did not get ready"
    return Env(fake, bot, cfg, task)


async def stop_bot(env: Env) -> None:
    await env.bot.close()
    await asyncio.wait({env.task}, timeout=30)
    env.fake.uninstall()
    await env.fake.stop()
    assert env.fake.unknown == [], [f"{c.method} {c.path}" for c in env.fake.unknown]
    assert_never_pings(env.fake)


def assert_never_pings(fake: FakeDiscord) -> None:
    """Everything the bot sent with text in it (messages, edits, interaction responses,
    follow-ups) carried allowed_mentions with parse: [] (AllowedMentions.none())."""
    for call in fake.calls:
        body = call.body if isinstance(call.body, dict) else {}
        payload = body.get("data", body) if call.path.endswith("/callback") else body
        if isinstance(payload, dict) and "content" in payload:
            assert payload.get("allowed_mentions", {}).get("parse") == [], (call.method,
                                                                             call.path)


def dm_replies(env: Env, user: dict) -> list[dict]:
    return env.fake.bot_messages(env.fake.dm_channel(user))


def final(msg: dict) -> bool:
    """A reply message whose streaming is over (no longer the placeholder or a preview)."""
    from bot.discord.cogs.chat import PLACEHOLDER

    return msg["content"] != PLACEHOLDER and not msg["content"].endswith(" …")


async def dm_and_wait(env: Env, user: dict, text: str, n_before: int | None = None) -> dict:
    """Send a DM and wait for the bot's finished reply to it (the first part, if split)."""
    before = len(dm_replies(env, user)) if n_before is None else n_before
    await env.fake.dm(user, text)
    user_id = user["id"]

    def done():
        replies = dm_replies(env, user)[before:]
        saved = env.engine.conversation_log(user_id).read()
        return replies[0] if replies and final(replies[0]) and saved else None

    return await env.fake.wait_for(done)


def log_records(env: Env, user: dict) -> list[dict]:
    return env.engine.conversation_log(user["id"]).read()


async def wait_response(env: Env, interaction: FakeInteraction, predicate,
                        timeout: float = 120.0) -> str:
    """Wait until the interaction's response content satisfies ``predicate``."""
    return await env.fake.wait_for(
        lambda: interaction.content if interaction.original and predicate(interaction.content)
        else None, timeout)



def grep_data_dir(root: Path, phrase: str) -> list[str]:
    needle = phrase.lower().encode("utf-8")
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes().lower()]


def guild_replies(env: Env, channel_id: int | None = None) -> list[dict]:
    """The bot's finished messages in a guild channel (the default one), oldest first."""
    return [m for m in env.fake.bot_messages(channel_id or env.fake.channel_id) if final(m)]


async def guild_and_wait(env: Env, user: dict, text: str, **options) -> dict:
    """Post in a guild channel (mentioning the bot unless told otherwise) and wait for the
    bot's finished reply to that message and for the exchange in the user's log."""
    before = len(log_records(env, user))
    msg = await env.fake.guild_message(user, text, **options)

    def done():
        if len(log_records(env, user)) <= before:
            return None
        replies = [m for m in guild_replies(env, int(msg["channel_id"]))
                   if str(m.get("message_reference", {}).get("message_id")) == msg["id"]]
        return replies[0] if replies else None

    return await env.fake.wait_for(done)


class Prompts(list):
    """Every prompt (list of chat messages) that reached the model, in order."""

    def having(self, text: str) -> list[dict]:
        """The last prompt whose last message contains ``text``."""
        for messages in reversed(self):
            if text in messages[-1]["content"]:
                return messages
        raise AssertionError(f"no prompt ends with a message containing {text!r}")


def record_prompts(monkeypatch) -> Prompts:
    """Record every chat prompt on its way to the model (the model still answers)."""
    import bot.wake as wake

    seen = Prompts()
    real = wake.stream_reply

    def recording(ctx, user_id, checkpoint, messages, *args):
        seen.append(messages)
        return (yield from real(ctx, user_id, checkpoint, messages, *args))

    monkeypatch.setattr(wake, "stream_reply", recording)
    return seen


def script_replies(monkeypatch, text: str, *, piece: int = 40, pause: float = 0.0) -> None:
    """The model answers every message with ``text``, in pieces of ``piece`` characters,
    ``pause`` seconds apart (on the model thread, as real generation takes time)."""
    import bot.wake as wake

    def scripted(ctx, user_id, checkpoint, messages, *args):
        for start in range(0, len(text), piece):
            if pause:
                time.sleep(pause)
            yield text[start:start + piece]

    monkeypatch.setattr(wake, "stream_reply", scripted)


def as_json(value) -> str:
    return json.dumps(value, ensure_ascii=False)
