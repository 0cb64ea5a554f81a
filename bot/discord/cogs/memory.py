"""Slash commands about the caller's memory: /sleep, /recall, /forget, /memory, /export.

Every command acts on the caller's own partition (``str(user.id)``), works in DMs and guilds
(subject to the access settings, ``bot.discord.access``) and answers ephemerally, since
memories are private. Every command answers or defers before it reads anything (Discord
drops an interaction not acknowledged within 3 seconds), and stops editing its response
after ``interaction_seconds`` (13 minutes: the token dies at 15), saying where to look then.
``/recall``, ``/sleep`` and ``/export`` share the per-user rate limit with messages.

* ``/sleep [deep]``: queue a cycle, edit the response with each stage as it runs (at most
  every ``edit_interval`` s), end with the report.
* ``/recall question:``: answer from the caller's weights only (no history), naming the
  checkpoint that answered.
* ``/forget phrase: | all:``: show what would go, confirm with a button, then forget (inside
  ``Orchestrator.run_exclusive``) and rebuild the weights from what remains.
* ``/memory status``: turns since the last sleep, cycles, facts, checkpoint, next sleep.
* ``/memory facts``: the facts consolidated into the caller's weights, a page at a time, each
  with a button that forgets just that fact (and rebuilds the weights without it).
* ``/export``: everything kept about the caller (log, facts, session summaries, cycles) as a
  JSON attachment.

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
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.access import NETWORK_ERRORS, REFUSED
from bot.retrying import retry_io

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
STAGE_NAMES = {
    "queued": "waiting in the queue", "curation": "choosing what matters",
    "extraction": "extracting facts", "replay": "mixing in older memories",
    "dreaming": "dreaming", "training": "training", "validation": "checking nothing broke",
    "fusion": "saving the new memory", "records": "removing records",
    "weights": "resetting your weights", "compact": "compacting the database",
}
SHUTTING_DOWN = ("I couldn't finish that sleep cycle now (the bot is restarting); it stays "
                 "queued and runs later. `/memory status` shows where it is.")
STILL_SLEEPING = ("💤 Your sleep cycle is still running, longer than Discord lets me update "
                  "this message. It goes on without it: `/memory status` shows where it is, "
                  "and your cycle count there goes up when it is done.")
STILL_FORGETTING = ("🧹 Still forgetting and rebuilding, longer than Discord lets me update "
                    "this message. It goes on without it: `/memory status` shows where it is.")
SLOW_DOWN = "You're asking faster than I can keep up: please wait about {seconds} seconds."
NO_FACTS = ("I haven't consolidated any facts about you yet. Tell me about yourself, then "
            "`/sleep` (or wait for me to sleep by myself).")
FACTS_PER_PAGE = 5
FACT_CHARS = 180


class NotAllowedHere(app_commands.CheckFailure):
    """The command may not run here, for this user, or now; ``text`` says why."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def user_key(user: discord.abc.User) -> str:
    return str(user.id)


def format_report(report) -> str:
    """A cycle report (``sleep.pipeline.CycleReport``) for Discord, under 2,000 characters."""
    if report is None:
        return SHUTTING_DOWN
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


class Deadline:
    """Until when an interaction's response may still be edited (its token lasts 15 min;
    we stop at ``seconds``, counted from when the command arrived)."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    @property
    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())


class ProgressMessage:
    """Shows stage progress by editing an interaction's response, at most every ``interval``,
    and never after ``deadline``. ``stop`` ends it by a flag and waits for an edit in flight
    (cancelling one could let it land after the final text).

    ``update`` may be called from any thread (training progress comes from the model thread).
    """

    def __init__(self, interaction: discord.Interaction, header: str, interval: float,
                 deadline: Deadline) -> None:
        self.interaction = interaction
        self.header = header
        self.interval = interval
        self.deadline = deadline
        self.lines: dict[str, str] = {}
        self.loop = asyncio.get_running_loop()
        self._dirty = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"progress-{interaction.id}")
        self.edits = 0

    def update(self, stage: str, info: dict) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # another thread
            self.loop.call_soon_threadsafe(self.update, stage, info)
            return
        if stage in ("done", "interrupted") or self._stopping.is_set():
            return
        self.lines[stage] = describe_stage(stage, info)
        self._dirty.set()

    def render(self) -> str:
        return "\n".join([self.header, *(f"• {line}" for line in self.lines.values())])[:2000]

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if self._stopping.is_set() or not self.deadline.left:
                return
            try:
                await self.interaction.edit_original_response(content=self.render(),
                                                              allowed_mentions=NO_MENTIONS)
                self.edits += 1
            except (discord.HTTPException, *NETWORK_ERRORS) as exc:
                log.warning("cannot show progress (%s)", getattr(exc, "status", exc))
            with contextlib.suppress(TimeoutError):  # the pause between edits ends at stop
                await asyncio.wait_for(self._stopping.wait(), self.interval)

    async def stop(self) -> None:
        self._stopping.set()
        self._dirty.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 30.0)
        except TimeoutError:  # an edit hung on the network: give up on it
            self._task.cancel()


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


class OwnerView(discord.ui.View):
    """Buttons only the person who ran the command may press."""

    def __init__(self, owner_id: int, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.owner_id = owner_id

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message("Only the person who asked can use these "
                                                    "buttons.", ephemeral=True)
            return False
        return True


class ConfirmView(OwnerView):
    """Forget / Cancel."""

    def __init__(self, owner_id: int, timeout: float = 120.0) -> None:
        super().__init__(owner_id, timeout)
        self.confirmed: bool | None = None

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


def group_facts(items: list) -> list[list]:
    """Replay items grouped by the exchanges they were learned from (one fact, several
    phrasings and directions), in order of first appearance; an item without a source is
    its own group."""
    groups: dict[object, list] = {}
    for item in items:
        key = frozenset(item.source_exchange_ids) or ("item", item.id)
        groups.setdefault(key, []).append(item)
    return list(groups.values())


class FactsView(OwnerView):
    """The caller's consolidated facts, ``FACTS_PER_PAGE`` at a time: a "Forget n" button per
    fact, Previous / Next, and a confirmation step (listing everything that goes with it)
    before anything is forgotten."""

    def __init__(self, owner_id: int, items: list, timeout: float) -> None:
        super().__init__(owner_id, timeout)
        self.items = items
        self.facts = group_facts(items)
        self.page = 0
        self.chosen: list | None = None  # the fact awaiting confirmation
        self.confirmed: list | None = None  # the items to forget, once confirmed
        self._build()

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.facts) // FACTS_PER_PAGE))

    def _on_page(self) -> list[list]:
        start = self.page * FACTS_PER_PAGE
        return self.facts[start:start + FACTS_PER_PAGE]

    @staticmethod
    def fact_text(group: list) -> str:
        first = group[0]
        more = f" (+{len(group) - 1} other phrasing(s))" if len(group) > 1 else ""
        return f"{first.question} → {first.answer}"[:FACT_CHARS] + more

    def going(self, group: list) -> list:
        """Every item that goes with ``group``: all learned from the same exchanges."""
        sources = {e for item in group for e in item.source_exchange_ids}
        ids = {item.id for item in group}
        return [i for i in self.items if i.id in ids or sources & set(i.source_exchange_ids)]

    def render(self) -> str:
        if self.chosen is not None:
            going = self.going(self.chosen)
            lines = ["Forget this fact?", *(f"> {i.question} → {i.answer}"[:FACT_CHARS]
                                           for i in going[:10])]
            if len(going) > 10:
                lines.append(f"> … and {len(going) - 10} more")
            lines.append("I'll delete it and what you said that taught it to me, reset your "
                         "weights and re-learn everything else in one sleep cycle. This "
                         "cannot be undone.")
            return "\n".join(lines)[:2000]
        lines = [f"**What I've consolidated about you** ({len(self.facts)} fact(s), page "
                 f"{self.page + 1}/{self.pages}). Only you can see this."]
        first = self.page * FACTS_PER_PAGE
        lines += [f"{first + n}. {self.fact_text(group)}"
                  for n, group in enumerate(self._on_page(), 1)]
        lines.append("-# Press a number to forget that fact.")
        return "\n".join(lines)[:2000]

    def _button(self, label: str, custom_id: str, style: discord.ButtonStyle, row: int,
                callback, disabled: bool = False) -> None:
        button = discord.ui.Button(label=label, custom_id=custom_id, style=style, row=row,
                                   disabled=disabled)
        button.callback = callback
        self.add_item(button)

    def _build(self) -> None:
        self.clear_items()
        if self.chosen is not None:
            self._button("Forget it", "facts:confirm", discord.ButtonStyle.danger, 0,
                         self._confirm)
            self._button("Back", "facts:back", discord.ButtonStyle.secondary, 0, self._back)
            return
        first = self.page * FACTS_PER_PAGE
        for n, group in enumerate(self._on_page(), 1):
            self._button(f"Forget {first + n}", f"facts:forget:{group[0].id}",
                         discord.ButtonStyle.danger, 0, self._choose_callback(group))
        if self.pages > 1:
            self._button("◀ Previous", "facts:prev", discord.ButtonStyle.secondary, 1,
                         self._prev, disabled=self.page == 0)
            self._button("Next ▶", "facts:next", discord.ButtonStyle.secondary, 1,
                         self._next, disabled=self.page >= self.pages - 1)

    async def _redraw(self, interaction: discord.Interaction) -> None:
        self._build()
        await interaction.response.edit_message(content=self.render(), view=self,
                                                allowed_mentions=NO_MENTIONS)

    def _choose_callback(self, group: list):
        async def choose(interaction: discord.Interaction) -> None:
            self.chosen = group
            await self._redraw(interaction)
        return choose

    async def _prev(self, interaction: discord.Interaction) -> None:
        self.page = max(0, self.page - 1)
        await self._redraw(interaction)

    async def _next(self, interaction: discord.Interaction) -> None:
        self.page = min(self.pages - 1, self.page + 1)
        await self._redraw(interaction)

    async def _back(self, interaction: discord.Interaction) -> None:
        self.chosen = None
        await self._redraw(interaction)

    async def _confirm(self, interaction: discord.Interaction) -> None:
        self.confirmed = self.chosen
        await interaction.response.edit_message(content="Forgetting…", view=None)
        self.stop()


EVERYWHERE = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True)
GUILD_INSTALL = app_commands.AppInstallationType(guild=True, user=False)


def everywhere(cmd: app_commands.Command) -> app_commands.Command:
    """Usable in guild channels and in DMs with the bot."""
    cmd = app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)(cmd)
    return app_commands.allowed_installs(guilds=True, users=False)(cmd)


class MemoryCog(commands.Cog):
    """The slash commands (see the module doc)."""

    memory = app_commands.Group(name="memory", description="What I remember about you",
                                allowed_contexts=EVERYWHERE, allowed_installs=GUILD_INSTALL)

    def __init__(self, bot) -> None:
        self.bot = bot
        self.cfg = bot.cfg.discord
        self._inflight: set[asyncio.Task] = set()

    async def drain(self, timeout: float) -> None:
        """Give commands in flight ``timeout`` seconds to finish (at shutdown)."""
        pending = {t for t in self._inflight if not t.done()}
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    def _track(self, task: asyncio.Task) -> None:
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

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
        """Runs in each command's task before the command: tracking, then the access rules
        (no store read here: the command must acknowledge within 3 seconds)."""
        task = asyncio.current_task()
        if task is not None:
            self._track(task)
        if self.bot.closing or self.orch is None:  # no new work while shutting down
            raise NotAllowedHere("I'm restarting right now; please try again in a minute.")
        reason = await self.bot.access.refusal(self.bot, interaction.user, interaction.guild,
                                               interaction.channel)
        if reason is not None:
            log.info("user %s: /%s refused (%s)", interaction.user.id,
                     interaction.command and interaction.command.name, reason)
            raise NotAllowedHere(REFUSED[reason])
        return True

    async def _limited(self, interaction: discord.Interaction) -> bool:
        """Over the per-user rate limit (shared with messages): say so and return True."""
        user = user_key(interaction.user)
        limiter = self.bot.limiter
        if limiter.allow(user):
            return False
        log.info("user %s: /%s dropped by the rate limit", user,
                 interaction.command and interaction.command.name)
        seconds = max(1, round(limiter.retry_after(user)))
        await interaction.response.send_message(SLOW_DOWN.format(seconds=seconds),
                                                ephemeral=True)
        return True

    async def _edit(self, interaction: discord.Interaction, text: str, **kwargs: Any) -> None:
        try:
            await interaction.edit_original_response(content=text[:2000],
                                                     allowed_mentions=NO_MENTIONS, **kwargs)
        except (discord.HTTPException, *NETWORK_ERRORS) as exc:
            log.warning("user %s: cannot edit the response (%s)", interaction.user.id,
                        getattr(exc, "status", type(exc).__name__))

    # -- /sleep ----------------------------------------------------------------------------
    @everywhere
    @app_commands.command(name="sleep", description="Consolidate what you told me into my "
                                                    "long-term memory now")
    @app_commands.describe(deep="Also dream: recombine older memories (slower)")
    async def sleep(self, interaction: discord.Interaction, deep: bool = False) -> None:
        deadline = Deadline(self.cfg.interaction_seconds)
        if await self._limited(interaction):
            return
        user = user_key(interaction.user)
        await interaction.response.defer(ephemeral=True, thinking=True)
        state = self.orch.state(user)
        log.info("user %s: /sleep (%s; now %s)", user, "deep" if deep else "light", state.state)
        header = ("💤 Your sleep cycle is already running; following it:" if state.state ==
                  "sleeping" else "💤 Going to sleep on what you told me…")
        progress = ProgressMessage(interaction, header, self.cfg.edit_interval, deadline)
        try:
            job = await self.orch.request_sleep(user, "deep" if deep else "light",
                                                progress=progress.update)
            report = await self.orch.wait_for_job(job, timeout=deadline.left)
        except TimeoutError:
            log.info("user %s: /sleep outlived its interaction; the cycle goes on", user)
            text = STILL_SLEEPING
        else:
            text = format_report(report)
        finally:
            await progress.stop()
        await self._edit(interaction, text)

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
        if await self._limited(interaction):
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
        from bot.forget import ForgetError, plan

        deadline = Deadline(self.cfg.interaction_seconds)
        user = user_key(interaction.user)
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            p = await plan(self.engine, user, phrase=phrase, everything=everything)
        except ForgetError:
            await self._edit(interaction, "Tell me what to forget: `/forget phrase: <words>` "
                                          "or `/forget all: True`.")
            return
        log.info("user %s: /forget (%s, %d exchanges)", user,
                 "all" if everything else "phrase", len(p.exchange_ids))
        if p.empty:
            await self._edit(interaction, p.describe())
            return
        view = ConfirmView(interaction.user.id, timeout=self.cfg.confirm_seconds)
        await self._edit(interaction, f"{p.describe()} This cannot be undone.", view=view)
        if await view.wait() or not view.confirmed:  # wait() is True on timeout
            if view.confirmed is None:  # no answer: take the buttons away
                await self._edit(interaction, "No answer: nothing was forgotten.", view=None)
            return
        await self._forget_and_rebuild(interaction, user, deadline, phrase=p.phrase,
                                       everything=everything)

    async def _forget_and_rebuild(self, interaction: discord.Interaction, user: str,
                                  deadline: Deadline, **what: Any) -> None:
        """Forget ``what`` (see ``bot.forget.forget_and_rebuild``), showing progress on the
        interaction's response until its deadline; the work goes on past it."""
        from bot.forget import forget_and_rebuild

        if self.orch.state(user).state == "sleeping":
            await self._edit(interaction, "Waiting for your current sleep cycle to end…")
        progress = ProgressMessage(interaction, "🧹 Forgetting…", self.cfg.edit_interval,
                                   deadline)
        # No reply of this user may be written while their records are scrubbed; the
        # rebuild after it (through the sleep queue) only reads the store.
        work = asyncio.create_task(
            forget_and_rebuild(self.orch, user, progress=progress.update,
                               hold=self.user_lock(user), **what), name=f"forget-{user}")
        self._track(work)  # shutdown waits for it: a half-done forget must finish
        try:
            result = await asyncio.wait_for(asyncio.shield(work), deadline.left)
        except TimeoutError:
            log.info("user %s: /forget outlived its interaction; it goes on", user)
            await progress.stop()
            await self._edit(interaction, STILL_FORGETTING)
            return
        finally:
            await progress.stop()
        await self._edit(interaction, result.summary())

    # -- /memory status, /memory facts -----------------------------------------------------
    @memory.command(name="status", description="What I remember about you, in numbers")
    async def memory_status(self, interaction: discord.Interaction) -> None:
        user = user_key(interaction.user)
        await interaction.response.defer(ephemeral=True, thinking=True)
        log.info("user %s: /memory status", user)
        status = await retry_io("read the status", self.orch.status, user)
        await self._edit(interaction, format_status(status))

    @memory.command(name="facts", description="The facts I've learned about you; forget any "
                                              "of them")
    async def memory_facts(self, interaction: discord.Interaction) -> None:
        deadline = Deadline(self.cfg.interaction_seconds)
        user = user_key(interaction.user)
        await interaction.response.defer(ephemeral=True, thinking=True)
        items = await retry_io("read the facts", self.engine.store.replay_items, user)
        log.info("user %s: /memory facts (%d)", user, len(items))
        if not items:
            await self._edit(interaction, NO_FACTS)
            return
        view = FactsView(interaction.user.id, items,
                         timeout=min(self.cfg.confirm_seconds * 3, deadline.left))
        await self._edit(interaction, view.render(), view=view)
        if await view.wait() or view.confirmed is None:  # timed out: take the buttons away
            await self._edit(interaction, view.render() + "\n-# These buttons have expired: "
                             "run `/memory facts` again.", view=None)
            return
        log.info("user %s: forgetting one fact", user)
        await self._forget_and_rebuild(interaction, user, deadline,
                                       fact_ids=[item.id for item in view.confirmed])

    # -- /export ---------------------------------------------------------------------------
    @everywhere
    @app_commands.command(name="export", description="Download everything I keep about you")
    async def export(self, interaction: discord.Interaction) -> None:
        if await self._limited(interaction):
            return
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
            f"{len(data['facts'])} fact(s), {len(data['sessions'])} session(s).", file=file,
            ephemeral=True, allowed_mentions=NO_MENTIONS)


def split_first(text: str) -> str:
    from bot.discord.text import split_message

    parts = split_message(text)
    return parts[0] if parts else "(empty)"


async def export_user_data(engine, user_id: str) -> dict:
    """Everything kept about the user: their log (replies they never received marked), the
    facts extracted from it, their sessions' summaries (they hold facts too), their cycles,
    counters and checkpoint."""
    store = engine.store
    records = await engine.conversation_log(user_id).aread()
    undelivered = {e.id for e in await store.exchanges(user_id) if e.undelivered}
    for record in records:
        if record.get("id") in undelivered:
            record["undelivered"] = True
    facts = [{"question": i.question, "answer": i.answer, "priority": round(i.priority, 4),
              "times_replayed": i.times_replayed, "source_exchange_ids": i.source_exchange_ids}
             for i in await store.replay_items(user_id)]
    sessions = [{"id": s.id, "started_at": s.started_at, "summary": s.summary}
                for s in await store.sessions(user_id)]
    cycles = [{"id": c.id, "kind": c.kind, "status": c.status, "started_at": c.started_at,
               "finished_at": c.finished_at, "facts": c.report.get("facts", [])}
              for c in await store.cycles(user_id)]
    status = await store.user_status(user_id)
    return {"user_id": user_id, "exported_at": time.time(),
            "checkpoint": engine.checkpoint_label(user_id),
            "status": None if status is None else {
                "turns_since_sleep": status.turns_since_sleep,
                "cycles_done": status.cycles_done, "last_message_at": status.last_message_at,
                "last_sleep_at": status.last_sleep_at},
            "exchanges": records, "facts": facts, "sessions": sessions, "cycles": cycles}
