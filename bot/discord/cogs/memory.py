"""Slash commands about the caller's memory: /sleep, /recall, /forget, /memory, /export.

Every command acts on the caller's own partition (``str(user.id)``), works in DMs and guilds
(subject to the allow-lists) and answers ephemerally, since memories are private.

* ``/sleep [deep]``: defer at once, queue a cycle, edit the response with each stage as it
  runs (at most every ``edit_interval`` s), end with the report.
* ``/recall question:``: answer from the caller's weights only (no history), naming the
  checkpoint that answered.
* ``/forget phrase: | all:``: show what would go, confirm with a button, then forget (inside
  ``Orchestrator.run_exclusive``) and rebuild the weights from what remains.
* ``/memory``: turns since the last sleep, cycles, facts, checkpoint, next sleep.
* ``/export``: the caller's log and extracted facts as a JSON attachment.

Added by :class:`bot.discord.client.SleepBot` (``python -m bot run``); tested end to end in
``tests/e2e/test_discord_e2e.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import json
import logging
import time

import discord
from discord import app_commands
from discord.ext import commands

from bot.retrying import retry_io

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
INTERACTION_LIFETIME = 14 * 60  # interaction tokens last 15 minutes
STAGE_NAMES = {
    "queued": "waiting in the queue", "curation": "choosing what matters",
    "extraction": "extracting facts", "replay": "mixing in older memories",
    "dreaming": "dreaming", "training": "training", "validation": "checking nothing broke",
    "fusion": "saving the new memory", "records": "removing records",
    "weights": "resetting your weights", "compact": "compacting the database",
}


class NotAllowedHere(app_commands.CheckFailure):
    """The command came from a guild or channel outside the allow-lists."""


def user_key(user: discord.abc.User) -> str:
    return str(user.id)


def format_report(report) -> str:
    """A cycle report (``sleep.pipeline.CycleReport``) for Discord, under 2,000 characters."""
    if report is None:
        return ("I couldn't finish that sleep cycle now (the bot may be restarting); it stays "
                "queued and runs later. /memory shows where it is.")
    verdict = {"accepted": "✅ accepted: your new memory is live",
               "rejected": "↩️ rolled back: your memory is unchanged",
               "empty": "💤 nothing new to consolidate",
               "failed": "⚠️ failed: your memory is unchanged"}.get(report.status, report.status)
    lines = [f"**Sleep cycle {report.cycle_id} ({report.kind})**: {verdict} "
             f"({report.seconds:.1f} s)"]
    if report.reason:
        lines.append(f"Why: {report.reason[:300]}")
    facts = list(report.facts)
    if facts:
        shown = "; ".join(f[:120] for f in facts[:8])
        more = f" (+{len(facts) - 8} more)" if len(facts) > 8 else ""
        lines.append(f"Facts consolidated ({len(facts)}): {shown}{more}")
    v = report.validation or {}
    if "general_pre" in v:
        lines.append(f"General ability: {v['general_pre']:.3f} → {v['general_post']:.3f} "
                     f"(must stay ≥ {v.get('tau', 0):g} × before)")
    if v.get("fact_loss_pre") is not None and v.get("fact_loss_post") is not None:
        lines.append(f"Recall loss on the new facts: {v['fact_loss_pre']:.3f} → "
                     f"{v['fact_loss_post']:.3f} (lower is better)")
    lines.append(f"Answering from: {report.checkpoint}")
    return "\n".join(lines)[:2000]


def format_status(s: dict) -> str:
    size = s.get("checkpoint_bytes") or 0
    state = s.get("state", "awake")
    if s.get("stage"):
        state += f" ({STAGE_NAMES.get(s['stage'], s['stage'])})"
    return "\n".join([
        "**Your memory**",
        f"State: {state}",
        f"Turns since the last sleep: {s.get('turns_since_sleep', 0)}",
        f"Sleep cycles done: {s.get('cycles_done', 0)}",
        f"Facts consolidated: {s.get('facts_consolidated', 0)}",
        f"Checkpoint: {s.get('checkpoint', 'base')} (version {s.get('checkpoint_version', 0)}, "
        f"{size / 1e6:.1f} MB)",
        f"Next sleep: {s.get('next_sleep') or 'not scheduled'}",
    ])


class ProgressMessage:
    """Shows stage progress by editing an interaction's response, at most every ``interval``.

    ``update`` may be called from any thread (training progress comes from the model thread).
    """

    def __init__(self, interaction: discord.Interaction, header: str, interval: float) -> None:
        self.interaction = interaction
        self.header = header
        self.interval = interval
        self.lines: dict[str, str] = {}
        self.loop = asyncio.get_running_loop()
        self._dirty = asyncio.Event()
        self._task = asyncio.create_task(self._run())
        self.edits = 0

    def update(self, stage: str, info: dict) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # another thread
            self.loop.call_soon_threadsafe(self.update, stage, info)
            return
        if stage in ("done", "interrupted"):
            return
        self.lines[stage] = describe_stage(stage, info)
        self._dirty.set()

    def render(self) -> str:
        return "\n".join([self.header, *(f"• {line}" for line in self.lines.values())])[:2000]

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.interaction.edit_original_response(content=self.render())
                self.edits += 1
            except discord.HTTPException as exc:
                log.warning("cannot show progress (%s)", exc.status)
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def describe_stage(stage: str, info: dict) -> str:
    name = STAGE_NAMES.get(stage, stage)
    if stage == "queued":
        pos = info.get("position")
        return f"{name} (position {pos})" if pos else "starting"
    if stage == "training" and "step" in info:
        return f"{name}: step {info['step']}/{info['total']}, loss {info['loss']:.3f}"
    shown = ", ".join(f"{k} {v}" for k, v in info.items()
                      if k not in ("seconds", "reason") and not isinstance(v, (dict, list)))
    return f"{name} done" + (f": {shown}" if shown else "")


class ConfirmView(discord.ui.View):
    """Forget / Cancel buttons that only the person who asked may press."""

    def __init__(self, owner_id: int, timeout: float = 120.0) -> None:
        super().__init__(timeout=timeout)
        self.owner_id = owner_id
        self.confirmed: bool | None = None

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message("Only the person who asked can confirm.",
                                                    ephemeral=True)
            return False
        return True

    async def _decide(self, interaction: discord.Interaction, yes: bool, text: str) -> None:
        self.confirmed = yes
        await interaction.response.edit_message(content=text, view=None)
        self.stop()

    @discord.ui.button(label="Forget", style=discord.ButtonStyle.danger, custom_id="forget:yes")
    async def yes(self, interaction: discord.Interaction, _button: discord.ui.Button) -> None:
        await self._decide(interaction, True, "Forgetting…")

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary,
                       custom_id="forget:no")
    async def no(self, interaction: discord.Interaction, _button: discord.ui.Button) -> None:
        await self._decide(interaction, False, "Cancelled: nothing was forgotten.")


def everywhere(cmd: app_commands.Command) -> app_commands.Command:
    """Usable in guild channels and in DMs with the bot."""
    cmd = app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)(cmd)
    return app_commands.allowed_installs(guilds=True, users=False)(cmd)


class MemoryCog(commands.Cog):
    """The slash commands (see the module doc)."""

    def __init__(self, bot) -> None:
        self.bot = bot
        self.cfg = bot.cfg.discord
        self._inflight: set[asyncio.Task] = set()

    async def drain(self, timeout: float) -> None:
        """Give commands in flight ``timeout`` seconds to finish (at shutdown)."""
        pending = {t for t in self._inflight if not t.done()}
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    def user_lock(self, user_id: str):
        """The chat cog's per-user lock (a no-op without the chat cog)."""
        chat = self.bot.get_cog("ChatCog")
        return chat.user_lock(user_id) if chat is not None else contextlib.nullcontext()

    @property
    def orch(self):
        return self.bot.orchestrator

    @property
    def engine(self):
        return self.bot.engine

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Runs in each command's task before the command: the allow-lists, and tracking."""
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        if self.bot.closing or self.orch is None:  # no new work while shutting down
            raise NotAllowedHere("shutting down")
        chat = self.bot.get_cog("ChatCog")
        if chat is not None and not chat.allowed_place(interaction.guild_id, interaction.channel):
            raise NotAllowedHere("not in this channel")
        return True

    async def _edit(self, interaction: discord.Interaction, text: str) -> None:
        try:
            await interaction.edit_original_response(content=text[:2000],
                                                     allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.warning("user %s: cannot edit the response (%s)", interaction.user.id,
                        exc.status)

    # -- /sleep ----------------------------------------------------------------------------
    @everywhere
    @app_commands.command(name="sleep", description="Consolidate what you told me into my "
                                                    "long-term memory now")
    @app_commands.describe(deep="Also dream: recombine older memories (slower)")
    async def sleep(self, interaction: discord.Interaction, deep: bool = False) -> None:
        user = user_key(interaction.user)
        await interaction.response.defer(ephemeral=True, thinking=True)
        state = self.orch.state(user)
        log.info("user %s: /sleep (%s; now %s)", user, "deep" if deep else "light", state.state)
        header = ("💤 Your sleep cycle is already running; following it:" if state.state ==
                  "sleeping" else "💤 Going to sleep on what you told me…")
        progress = ProgressMessage(interaction, header, self.cfg.edit_interval)
        try:
            job = await self.orch.request_sleep(user, "deep" if deep else "light",
                                                progress=progress.update)
            report = await self.orch.wait_for_job(job, timeout=INTERACTION_LIFETIME)
        finally:
            await progress.stop()
        await self._edit(interaction, format_report(report))

    # -- /recall ---------------------------------------------------------------------------
    @everywhere
    @app_commands.command(name="recall", description="Answer from my long-term memory of you "
                                                     "only (no chat history)")
    @app_commands.describe(question="What to ask, e.g. Where do I live?")
    async def recall(self, interaction: discord.Interaction, question: str) -> None:
        from bot.recall import recall_answer
        from bot.wake import clean_text

        user = user_key(interaction.user)
        if not clean_text(question):
            await interaction.response.send_message(
                "Ask me something, e.g. `/recall question: Where do I live?`", ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        log.info("user %s: /recall", user)
        answer, label = await recall_answer(self.engine, user, question[:2000])
        note = ""
        if self.orch.state(user).state == "sleeping":
            note = " (a sleep cycle is running; its result isn't live yet)"
        text = f"{answer or '(no answer)'}\n-# answered from your weights only: {label}{note}"
        await self._edit(interaction, split_first(text))

    # -- /forget ---------------------------------------------------------------------------
    @everywhere
    @app_commands.command(name="forget", description="Make me forget everything, or what "
                                                     "matches a phrase")
    @app_commands.describe(phrase="Forget the exchanges containing this (any case)",
                           everything="Forget everything you ever told me")
    @app_commands.rename(everything="all")
    async def forget(self, interaction: discord.Interaction, phrase: str | None = None,
                     everything: bool = False) -> None:
        from bot.forget import ForgetError, forget_and_rebuild, plan

        user = user_key(interaction.user)
        try:
            p = await plan(self.engine, user, phrase=phrase, everything=everything)
        except ForgetError:
            await interaction.response.send_message(
                "Tell me what to forget: `/forget phrase: <words>` or `/forget all: True`.",
                ephemeral=True)
            return
        log.info("user %s: /forget (%s, %d exchanges)", user,
                 "all" if everything else "phrase", len(p.exchange_ids))
        if p.empty:
            await interaction.response.send_message(p.describe(), ephemeral=True)
            return
        view = ConfirmView(interaction.user.id)
        await interaction.response.send_message(f"{p.describe()} This cannot be undone.",
                                                view=view, ephemeral=True)
        if await view.wait() or not view.confirmed:  # wait() is True on timeout
            if view.confirmed is None:
                await self._edit(interaction, "No answer: nothing was forgotten.")
            return
        if self.orch.state(user).state == "sleeping":
            await self._edit(interaction, "Waiting for your current sleep cycle to end…")
        progress = ProgressMessage(interaction, "🧹 Forgetting…", self.cfg.edit_interval)

        try:
            # No reply of this user may be written while their records are scrubbed; the
            # rebuild after it (through the sleep queue) only reads the store.
            result = await forget_and_rebuild(self.orch, user, phrase=p.phrase,
                                              everything=everything, progress=progress.update,
                                              hold=self.user_lock(user))
        finally:
            await progress.stop()
        await self._edit(interaction, result.summary())

    # -- /memory ---------------------------------------------------------------------------
    @everywhere
    @app_commands.command(name="memory", description="What I remember about you, in numbers")
    async def memory(self, interaction: discord.Interaction) -> None:
        user = user_key(interaction.user)
        log.info("user %s: /memory", user)
        status = await retry_io("read the status", self.orch.status, user)
        await interaction.response.send_message(format_status(status), ephemeral=True)

    # -- /export ---------------------------------------------------------------------------
    @everywhere
    @app_commands.command(name="export", description="Download everything I keep about you")
    async def export(self, interaction: discord.Interaction) -> None:
        user = user_key(interaction.user)
        await interaction.response.defer(ephemeral=True, thinking=True)
        log.info("user %s: /export", user)
        data = await retry_io("export", export_user_data, self.engine, user)
        blob = json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8")
        name = f"sleepbot-{user}.json"
        if len(blob) > interaction.filesize_limit:  # chat logs compress about tenfold
            blob, name = gzip.compress(blob), name + ".gz"
        if len(blob) > interaction.filesize_limit:
            await self._edit(interaction, "Your data is larger than Discord allows in one file, "
                             "even compressed. The bot's owner can copy it for you: it is the "
                             f"folder `users/{user}` and your rows of `sleepbot.db` in the "
                             "bot's data directory.")
            return
        file = discord.File(io.BytesIO(blob), filename=name)
        await interaction.followup.send(
            f"Everything I keep about you: {len(data['exchanges'])} exchange(s), "
            f"{len(data['facts'])} fact(s).", file=file, ephemeral=True,
            allowed_mentions=NO_MENTIONS)


def split_first(text: str) -> str:
    from bot.discord.text import split_message

    parts = split_message(text)
    return parts[0] if parts else "(empty)"


async def export_user_data(engine, user_id: str) -> dict:
    """The user's own data: their log, the facts extracted from it, and their cycles."""
    store = engine.store
    records = await engine.conversation_log(user_id).aread()
    facts = [{"question": i.question, "answer": i.answer, "priority": round(i.priority, 4),
              "times_replayed": i.times_replayed, "source_exchange_ids": i.source_exchange_ids}
             for i in await store.replay_items(user_id)]
    cycles = [{"id": c.id, "kind": c.kind, "status": c.status, "started_at": c.started_at,
               "finished_at": c.finished_at, "facts": c.report.get("facts", [])}
              for c in await store.cycles(user_id)]
    return {"user_id": user_id, "exported_at": time.time(),
            "checkpoint": engine.checkpoint_label(user_id),
            "exchanges": records, "facts": facts, "cycles": cycles}

