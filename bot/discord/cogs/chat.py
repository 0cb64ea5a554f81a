"""Chat over Discord: answer DMs, and guild messages that mention the bot or reply to it.

Each author is their own memory partition (``str(author.id)``), in DMs and channels alike.
A reply streams: a placeholder message at once, edits at most every ``edit_interval`` seconds
while the model writes (with the typing indicator on), then the final text, split into several
messages past 2,000 characters (``bot.discord.text.split_message``). Nothing sent can ping
anyone. Rules for what is not answered: messages from bots (this one included) and webhooks,
system messages, guilds/channels outside the allow-lists, guild messages that neither mention
nor reply to the bot. Empty or attachment-only messages get a short explanation; a user over
the rate limit gets one polite notice per window and their extra messages are dropped (not
logged: they were never answered).

Added by :class:`bot.discord.client.SleepBot` (``python -m bot run``); tested end to end in
``tests/e2e/test_discord_e2e.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import discord
from discord.ext import commands

from bot.discord.text import split_message, strip_mentions
from bot.wake import EmptyMessage, clean_text

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
PLACEHOLDER = "💭 …"
EMPTY_REPLY = ("I got a message with no text I can read. (If you did write something: the "
               "bot's owner needs to turn on the Message Content intent.)")
ATTACHMENTS_REPLY = "I can only read text for now, not attachments. Tell me in words?"
NOTHING_SAID = "(I had nothing to say to that. Could you put it another way?)"
ERROR_REPLY = "Sorry, something went wrong on my side and I couldn't answer. Please try again."
RATE_LIMITED = ("You're sending messages faster than I can think! Please wait about {seconds} "
                "seconds; I skipped the messages in between.")
REPLY_LIMIT = 1990  # leaves room for the " …" that marks a part still being written
TRUNCATED_NOTE = "-# (Your message was long: I read the first {chars} characters.)"


@dataclass
class RateLimiter:
    """At most ``limit`` messages per user in any ``window`` seconds (sliding window)."""

    limit: int
    window: float
    clock: Callable[[], float] = time.monotonic
    _hits: dict[str, deque[float]] = field(default_factory=dict)
    _warned: dict[str, float] = field(default_factory=dict)

    def allow(self, key: str) -> bool:
        now = self.clock()
        hits = self._hits.setdefault(key, deque())
        while hits and now - hits[0] >= self.window:
            hits.popleft()
        if self.limit > 0 and len(hits) >= self.limit:
            return False
        hits.append(now)
        if len(self._hits) > 10_000:  # bounded: forget users idle for a whole window
            self._prune(now)
        return True

    def should_warn(self, key: str) -> bool:
        """True once per window for a limited user: one notice, not one per message."""
        now = self.clock()
        if now - self._warned.get(key, -self.window) < self.window:
            return False
        self._warned[key] = now
        return True

    def retry_after(self, key: str) -> float:
        hits = self._hits.get(key)
        return max(0.0, self.window - (self.clock() - hits[0])) if hits else 0.0

    def _prune(self, now: float) -> None:
        for key in [k for k, h in self._hits.items() if not h or now - h[-1] >= self.window]:
            del self._hits[key]
            self._warned.pop(key, None)


class KeyedLocks:
    """One asyncio.Lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __call__(self, key: str) -> _Held:
        return _Held(self, key)


class _Held:
    def __init__(self, owner: KeyedLocks, key: str) -> None:
        self.owner, self.key = owner, key

    async def __aenter__(self) -> None:
        lock, users = self.owner._locks.get(self.key, (asyncio.Lock(), 0))
        self.owner._locks[self.key] = (lock, users + 1)
        await lock.acquire()

    async def __aexit__(self, *exc) -> None:
        lock, users = self.owner._locks[self.key]
        lock.release()
        if users <= 1:
            del self.owner._locks[self.key]
        else:
            self.owner._locks[self.key] = (lock, users - 1)


class ChatCog(commands.Cog):
    """Answers messages through the orchestrator (see the module doc)."""

    def __init__(self, bot) -> None:
        self.bot = bot
        self.cfg = bot.cfg.discord
        self.limiter = RateLimiter(self.cfg.rate_limit_messages, self.cfg.rate_limit_seconds)
        self._locks = KeyedLocks()
        self._inflight: set[asyncio.Task] = set()
        self._warned_empty = False

    def user_lock(self, user_id: str) -> _Held:
        """Held while a reply to ``user_id`` is written (and by /forget while it scrubs)."""
        return self._locks(user_id)

    # -- which messages --------------------------------------------------------------------
    def allowed_place(self, guild_id: int | None, channel: object) -> bool:
        """DMs always; in guilds, the allow-lists (empty: everywhere)."""
        if guild_id is None:
            return True
        if self.cfg.allowed_guilds and guild_id not in self.cfg.allowed_guilds:
            return False
        if self.cfg.allowed_channels:
            ids = {getattr(channel, "id", None), getattr(channel, "parent_id", None)}
            return bool(ids & set(self.cfg.allowed_channels))
        return True

    def addressed(self, message: discord.Message) -> bool:
        """Whether the bot should answer ``message`` at all (see the module doc)."""
        me = self.bot.user
        if me is None or message.author.bot or message.author.id == me.id:
            return False
        if message.webhook_id is not None or message.type not in (
                discord.MessageType.default, discord.MessageType.reply):
            return False
        if message.guild is None:
            return True
        if not self.allowed_place(message.guild.id, message.channel):
            return False
        if any(user.id == me.id for user in message.mentions):
            return True
        ref = message.reference
        resolved = ref.resolved if ref is not None else None
        return isinstance(resolved, discord.Message) and resolved.author.id == me.id

    # -- handling --------------------------------------------------------------------------
    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if self.bot.closing or not self.addressed(message):
            return
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            await self._handle(message)
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _handle(self, message: discord.Message) -> None:
        user_id = str(message.author.id)
        where = "dm" if message.guild is None else f"guild {message.guild.id}"
        if not self.limiter.allow(user_id):
            log.info("user %s: message %s in %s dropped by the rate limit", user_id, message.id,
                     where)
            if self.limiter.should_warn(user_id):
                seconds = max(1, round(self.limiter.retry_after(user_id)))
                await self._send(message, RATE_LIMITED.format(seconds=seconds))
            return
        text = strip_mentions(message.content, self.bot.user.id)
        if not clean_text(text):  # nothing but spaces, control or zero-width characters
            self._note_empty(message)
            await self._send(message, ATTACHMENTS_REPLY if message.attachments else EMPTY_REPLY)
            return
        log.info("user %s: message %s in %s (%d chars)", user_id, message.id, where, len(text))
        log.debug("user %s: message text %r", user_id, text)
        async with self.user_lock(user_id):  # one reply at a time per user, in order
            await self._answer(message, user_id, text)

    def _note_empty(self, message: discord.Message) -> None:
        log.info("user %s: message %s has no text (%d attachment(s))", message.author.id,
                 message.id, len(message.attachments))
        if not message.attachments and not self._warned_empty:
            self._warned_empty = True
            log.warning("a message arrived with empty content: is the Message Content intent "
                        "enabled for this bot in the Discord developer portal?")

    async def _answer(self, message: discord.Message, user_id: str, text: str) -> None:
        placeholder = await self._send(message, PLACEHOLDER)
        if placeholder is None:
            return  # cannot post in this channel: don't spend the model on it
        stream = Streamer(placeholder, self.cfg.edit_interval)
        reply_stream = self.bot.orchestrator.handle_message(user_id, text)
        typing = asyncio.create_task(keep_typing(message.channel))
        try:
            # aclosing: if anything fails mid-reply, generation stops now, not at GC time
            async with contextlib.aclosing(reply_stream) as pieces:
                async for piece in pieces:
                    await stream.add(piece)
        except EmptyMessage:  # only control or zero-width characters
            await stream.finish(EMPTY_REPLY)
            return
        except Exception:
            log.exception("user %s: reply to message %s failed", user_id, message.id)
            await stream.finish(ERROR_REPLY)
            return
        finally:
            typing.cancel()
        reply = reply_stream.reply
        final = (reply.text if reply else stream.text).strip() or NOTHING_SAID
        notes = []
        if reply is not None and reply.truncated_input:
            notes.append(TRUNCATED_NOTE.format(chars=self.bot.cfg.chat.max_message_chars))
        if reply is not None and getattr(reply, "warning", ""):
            notes.append(f"-# {reply.warning}")
        await stream.finish("\n".join([final, *notes]))

    async def _send(self, message: discord.Message, text: str) -> discord.Message | None:
        """Send ``text`` in reply to ``message`` (a reference in guilds, plain in DMs)."""
        kwargs: dict = {"allowed_mentions": NO_MENTIONS}
        if message.guild is not None:
            kwargs |= {"reference": message.to_reference(fail_if_not_exists=False),
                       "mention_author": False}
        try:
            return await message.channel.send(text, **kwargs)
        except discord.HTTPException as exc:
            log.warning("user %s: cannot send to channel %s (%s %s)", message.author.id,
                        message.channel.id, exc.status, exc.code)
            return None

    async def drain(self, timeout: float) -> None:
        """Wait for the replies in flight (at shutdown)."""
        pending = {t for t in self._inflight if not t.done()}
        if pending:
            await asyncio.wait(pending, timeout=timeout)


async def keep_typing(channel: discord.abc.Messageable, every: float = 8.0) -> None:
    """Show "typing…" until cancelled (Discord shows it for about 10 s per request)."""
    while True:
        try:
            await channel.typing()  # awaited (not entered): one typing request
        except discord.HTTPException as exc:  # cosmetic: never fail a reply over it
            log.debug("typing indicator failed (%s)", exc.status)
            return
        await asyncio.sleep(every)


class Streamer:
    """Shows a reply as it is written: edits its messages at most every ``interval`` seconds.

    The reply is split as it grows; a part that is complete (a later part exists) is set to
    its final text and the next part goes to a new message, so a long reply streams across
    several messages instead of freezing at the 2,000-character mark.
    """

    def __init__(self, placeholder: discord.Message, interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.messages: list[discord.Message] = [placeholder]
        self.shown: list[str] = [PLACEHOLDER]
        self.channel = placeholder.channel
        self.interval = interval
        self.clock = clock
        self.pieces: list[str] = []
        self.last_edit = clock()

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    async def add(self, piece: str) -> None:
        self.pieces.append(piece)
        if self.clock() - self.last_edit >= self.interval:
            parts = split_message(self.text.strip(), REPLY_LIMIT)
            if parts:
                await self._show(parts[:-1] + [parts[-1] + " …"])
            self.last_edit = self.clock()

    async def finish(self, text: str) -> None:
        """Show the final text (split into parts); extra preview messages are removed."""
        parts = split_message(text, REPLY_LIMIT) or [NOTHING_SAID]
        await self._show(parts)
        for message in self.messages[len(parts):]:  # the final text came out shorter
            try:
                await message.delete()
            except discord.HTTPException as exc:
                log.warning("cannot delete message %s (%s)", message.id, exc.status)
        del self.messages[len(parts):], self.shown[len(parts):]

    async def _show(self, parts: list[str]) -> None:
        for i, part in enumerate(parts):
            if i < len(self.messages):
                if part != self.shown[i] and not await self._edit(i, part):
                    return
            elif not await self._send(part):
                return

    async def _edit(self, i: int, content: str) -> bool:
        try:
            await self.messages[i].edit(content=content, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.warning("cannot edit message %s (%s)", self.messages[i].id, exc.status)
            if exc.status == 404 and i == len(self.messages) - 1:  # deleted: post it anew
                del self.messages[i], self.shown[i]
                return await self._send(content)
            return False
        self.shown[i] = content
        return True

    async def _send(self, content: str) -> bool:
        try:
            message = await self.channel.send(content, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.warning("cannot send part of a reply to channel %s (%s)", self.channel.id,
                        exc.status)
            return False
        self.messages.append(message)
        self.shown.append(content)
        return True
