"""Chat over Discord: answer DMs, and guild messages that mention the bot or reply to it.

Each author is their own memory partition (``str(author.id)``), in DMs and channels alike;
their working memory is kept per place (the DM, each channel, each thread), so what they
said in a DM never enters a prompt in a channel (``bot.wake``). A reply to a message brings
that message into the prompt, from the same place only (llmcord's reply chains, one link).

A reply streams: a placeholder message at once, edits at most every ``edit_interval`` seconds
while the model writes (with the typing indicator on), then the final text, split into several
messages past 2,000 characters (``bot.discord.text.split_message``). Nothing sent can ping
anyone. When Discord refuses (a missing permission, DMs closed, a deleted channel) the bot
stops at once, remembers the channel for ``refused_seconds``, and stores the exchange as
undelivered: a reply the user never saw is never trained into the weights. It checks its
permissions before the placeholder, so a channel it cannot post in costs no model time.

Not answered: messages from bots (this one included) and webhooks, system messages, users and
places the access settings refuse (``bot.discord.access``), guild messages that neither
mention nor reply to the bot. Empty or attachment-only messages get a short explanation; a
user over the rate limit gets one polite notice per window and their extra messages are
dropped (not logged: they were never answered).

Added by :class:`bot.discord.client.SleepBot` (``python -m bot run``); tested end to end in
``tests/e2e/test_discord_e2e.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import discord
from discord.ext import commands

from bot.discord.access import NETWORK_ERRORS, RateLimiter
from bot.discord.text import DISCORD_LIMIT, split_message, strip_mentions
from bot.wake import EmptyMessage, clean_text

__all__ = ["ChatCog", "RateLimiter", "Streamer"]

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
PLACEHOLDER = "💭 …"
MORE = " …"  # marks a part still being written
EMPTY_REPLY = ("I got a message with no text I can read. (If you did write something: the "
               "bot's owner needs to turn on the Message Content intent.)")
NEED_MENTION = ("I can only read messages that mention me here (my owner runs me without "
                "the Message Content intent). Please @mention me in your message.")
ATTACHMENTS_REPLY = "I can only read text for now, not attachments. Tell me in words?"
NOTHING_SAID = "(I had nothing to say to that. Could you put it another way?)"
ERROR_REPLY = "Sorry, something went wrong on my side and I couldn't answer. Please try again."
RATE_LIMITED = ("You're sending messages faster than I can think! Please wait about {seconds} "
                "seconds; I skipped the messages in between.")
TRUNCATED_NOTE = "-# (Your message was long: I read the first {chars} characters.)"
QUOTE_CHARS = 1500  # of a replied-to message, in the prompt
RETRY_DELAY = 0.5  # before the one retry of a final edit that failed on the network
DELIVERY_ERRORS = (discord.HTTPException, *NETWORK_ERRORS)


def is_refusal(exc: BaseException) -> bool:
    """Discord will keep saying no here: a missing permission or access (403, incl. 50007
    DMs closed) or a channel that no longer exists (404 10003)."""
    return isinstance(exc, discord.Forbidden) or (
        isinstance(exc, discord.NotFound) and exc.code == 10003)


def describe(exc: BaseException) -> str:
    """An error for the log: HTTP status and Discord code, or the network error's type."""
    if isinstance(exc, discord.HTTPException):
        return f"{exc.status} {exc.code}"
    return type(exc).__name__


def place_of(message: discord.Message) -> str:
    """The working-memory place: the DM, or the channel or thread."""
    return "dm" if message.guild is None else f"channel:{message.channel.id}"


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
        self.limiter: RateLimiter = bot.limiter
        self._locks = KeyedLocks()
        self._inflight: set[asyncio.Task] = set()
        self._warned_empty = False
        # channel id → (monotonic time until which it is skipped, its guild id)
        self._refused: dict[int, tuple[float, int | None]] = {}

    def user_lock(self, user_id: str) -> _Held:
        """Held while a reply to ``user_id`` is written (and by /forget while it scrubs)."""
        return self._locks(user_id)

    # -- which messages --------------------------------------------------------------------
    def addressed(self, message: discord.Message) -> bool:
        """Whether ``message`` is for the bot at all (see the module doc)."""
        me = self.bot.user
        if me is None or message.author.bot or message.author.id == me.id:
            return False
        if message.webhook_id is not None or message.type not in (
                discord.MessageType.default, discord.MessageType.reply):
            return False
        if message.guild is None or self.mentions_me(message):
            return True
        ref = message.reference
        resolved = ref.resolved if ref is not None else None
        return isinstance(resolved, discord.Message) and resolved.author.id == me.id

    def mentions_me(self, message: discord.Message) -> bool:
        return any(user.id == self.bot.user.id for user in message.mentions)

    # -- channels that said no -------------------------------------------------------------
    def refused_recently(self, channel_id: int) -> bool:
        entry = self._refused.get(channel_id)
        if entry is None:
            return False
        if entry[0] <= time.monotonic():
            del self._refused[channel_id]
            return False
        return True

    def remember_refusal(self, channel: discord.abc.Messageable, exc: BaseException) -> None:
        guild = getattr(channel, "guild", None)
        self._refused[channel.id] = (time.monotonic() + self.cfg.refused_seconds,
                                     guild.id if guild else None)
        log.warning("channel %s refused a reply (%s); skipping it for %.0f s", channel.id,
                    describe(exc), self.cfg.refused_seconds)

    @commands.Cog.listener()
    async def on_guild_channel_update(self, _before, after: discord.abc.GuildChannel) -> None:
        self._refused.pop(after.id, None)  # its permissions may have changed: try again

    @commands.Cog.listener()
    async def on_guild_role_update(self, _before, after: discord.Role) -> None:
        for channel_id in [c for c, (_, g) in self._refused.items() if g == after.guild.id]:
            del self._refused[channel_id]

    def can_post(self, message: discord.Message) -> bool:
        """Whether the bot's permissions allow the reply (and its reference) here."""
        channel = message.channel
        if message.guild is None or isinstance(channel, discord.PartialMessageable):
            return True  # DMs have no permissions; an uncached channel: Discord will say
        perms = channel.permissions_for(message.guild.me)
        send = (perms.send_messages_in_threads if isinstance(channel, discord.Thread)
                else perms.send_messages)
        return perms.view_channel and send and perms.read_message_history

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
        refusal = await self.bot.access.refusal(self.bot, message.author, message.guild,
                                                message.channel)
        if refusal is not None:
            log.info("user %s: message %s in %s ignored (%s)", user_id, message.id, where,
                     refusal)
            return
        if self.refused_recently(message.channel.id) or not self.can_post(message):
            log.info("user %s: message %s in channel %s not answered: I cannot post there",
                     user_id, message.id, message.channel.id)
            return
        if not self.limiter.allow(user_id):
            log.info("user %s: message %s in %s dropped by the rate limit", user_id, message.id,
                     where)
            if self.limiter.should_warn(user_id):
                seconds = max(1, round(self.limiter.retry_after(user_id)))
                await self._send(message, RATE_LIMITED.format(seconds=seconds))
            return
        text = strip_mentions(message.content, self.bot.user.id)
        if not clean_text(text):  # nothing but spaces, control or zero-width characters
            await self._send(message, self._empty_note(message))
            return
        log.info("user %s: message %s in %s (%d chars)", user_id, message.id, where, len(text))
        log.debug("user %s: message text %r", user_id, text)
        quote = await self.quote(message)
        async with self.user_lock(user_id):  # one reply at a time per user, in order
            await self._answer(message, user_id, text, quote)

    def _empty_note(self, message: discord.Message) -> str:
        log.info("user %s: message %s has no text (%d attachment(s))", message.author.id,
                 message.id, len(message.attachments))
        if message.attachments:
            return ATTACHMENTS_REPLY
        if message.guild is not None and not self.mentions_me(message) and \
                not self.bot.intents.message_content:
            return NEED_MENTION  # without the intent Discord blanks a reply with no mention
        if not self._warned_empty:
            self._warned_empty = True
            log.warning("a message arrived with empty content: is the Message Content intent "
                        "enabled for this bot in the Discord developer portal?")
        return EMPTY_REPLY

    async def quote(self, message: discord.Message) -> str | None:
        """The message ``message`` replies to, for the prompt: same place only, never a
        deleted or unreadable one."""
        ref = message.reference
        if ref is None or ref.message_id is None or ref.channel_id != message.channel.id:
            return None
        resolved = ref.resolved
        if isinstance(resolved, discord.DeletedReferencedMessage):
            return None
        if not isinstance(resolved, discord.Message):  # Discord did not include it: fetch
            try:
                resolved = await message.channel.fetch_message(ref.message_id)
            except DELIVERY_ERRORS as exc:
                log.info("message %s: cannot read the message it replies to (%s)", message.id,
                         describe(exc))
                return None
        text = clean_text(strip_mentions(resolved.content, self.bot.user.id))
        if not text or text == PLACEHOLDER:
            return None
        who = ("your own earlier message" if resolved.author.id == self.bot.user.id
               else f"a message from {resolved.author.display_name}")
        return f'(This replies to {who}: "{text[:QUOTE_CHARS]}")'

    async def _answer(self, message: discord.Message, user_id: str, text: str,
                      quote: str | None) -> None:
        placeholder = await self._send(message, PLACEHOLDER)
        if placeholder is None:
            return  # cannot post in this channel: don't spend the model on it
        place = place_of(message)
        stream = Streamer(placeholder, self.cfg.edit_interval)
        reply_stream = self.bot.orchestrator.handle_message(
            user_id, text, place=place, public=message.guild is not None, quote=quote)
        typing = asyncio.create_task(keep_typing(message.channel),
                                     name=f"typing-{message.id}")
        try:
            # aclosing: if anything fails mid-reply, generation stops now, not at GC time
            async with contextlib.aclosing(reply_stream) as pieces:
                async for piece in pieces:
                    if stream.refusal is not None:
                        continue  # abandoned: the stream ends at its next piece, stored
                    await stream.add(piece)
                    if stream.refusal is not None:
                        self.remember_refusal(message.channel, stream.refusal)
                        reply_stream.abandon()
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
        if stream.refusal is not None:
            log.info("user %s: reply to message %s not delivered; stored as undelivered",
                     user_id, message.id)
            return
        final = (reply.text if reply else stream.text).strip() or NOTHING_SAID
        notes = []
        if reply is not None and reply.truncated_input:
            notes.append(TRUNCATED_NOTE.format(chars=self.bot.cfg.chat.max_message_chars))
        if reply is not None and reply.warning:
            notes.append(f"-# {reply.warning}")
        if await stream.finish("\n".join([final, *notes])):
            return
        if stream.refusal is not None:
            self.remember_refusal(message.channel, stream.refusal)
        if reply is not None and reply.saved and reply.exchange_id:
            log.info("user %s: final reply to message %s not delivered; flagged", user_id,
                     message.id)
            await self.bot.orchestrator.mark_undelivered(user_id, reply.exchange_id, place)

    async def _send(self, message: discord.Message, text: str) -> discord.Message | None:
        """Send ``text`` in reply to ``message`` (a reference in guilds, plain in DMs)."""
        kwargs: dict = {"allowed_mentions": NO_MENTIONS}
        if message.guild is not None:
            kwargs |= {"reference": message.to_reference(fail_if_not_exists=False),
                       "mention_author": False}
        try:
            return await message.channel.send(text, **kwargs)
        except DELIVERY_ERRORS as exc:
            if is_refusal(exc):
                self.remember_refusal(message.channel, exc)
            else:
                log.warning("user %s: cannot send to channel %s (%s)", message.author.id,
                            message.channel.id, describe(exc))
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
        except DELIVERY_ERRORS as exc:  # cosmetic: never fail a reply over it
            log.debug("typing indicator failed (%s)", describe(exc))
            return
        await asyncio.sleep(every)


class Streamer:
    """Shows a reply as it is written: edits its messages at most every ``interval`` seconds.

    The reply is split as it grows; a part that is complete (a later part exists) is set to
    its final text and the next part goes to a new message, so a long reply streams across
    several messages instead of freezing at the 2,000-character mark. Previews keep room for
    the " …" marker; the final parts use all 2,000 characters. The first refusal
    (:func:`is_refusal`) stops it for good (``refusal``); a network error skips one preview,
    and a final edit is retried once.
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
        self.refusal: BaseException | None = None
        self._final = False

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    async def add(self, piece: str) -> None:
        self.pieces.append(piece)
        if self.refusal is None and self.clock() - self.last_edit >= self.interval:
            parts = split_message(self.text.strip(), DISCORD_LIMIT - len(MORE))
            if parts:
                await self._show(parts[:-1] + [parts[-1] + MORE])
            self.last_edit = self.clock()

    async def finish(self, text: str) -> bool:
        """Show the final text (split into parts; extra preview messages are removed).
        Returns whether every part reached Discord."""
        if self.refusal is not None:
            return False
        self._final = True
        parts = split_message(text, DISCORD_LIMIT) or [NOTHING_SAID]
        if not await self._show(parts):
            return False
        for message in self.messages[len(parts):]:  # the final text came out shorter
            try:
                await message.delete()
            except DELIVERY_ERRORS as exc:
                log.warning("cannot delete message %s (%s)", message.id, describe(exc))
        del self.messages[len(parts):], self.shown[len(parts):]
        return True

    async def _show(self, parts: list[str]) -> bool:
        for i, part in enumerate(parts):
            if i < len(self.messages):
                if part != self.shown[i] and not await self._edit(i, part):
                    return False
            elif not await self._send(part):
                return False
        return True

    async def _edit(self, i: int, content: str) -> bool:
        for attempt in (1, 2):
            try:
                await self.messages[i].edit(content=content, allowed_mentions=NO_MENTIONS)
            except DELIVERY_ERRORS as exc:
                if self._failed(exc, f"edit message {self.messages[i].id}", attempt):
                    await asyncio.sleep(RETRY_DELAY)
                    continue
                if isinstance(exc, discord.NotFound) and exc.code == 10008 \
                        and i == len(self.messages) - 1:  # deleted by someone: post it anew
                    del self.messages[i], self.shown[i]
                    return await self._send(content)
                return False
            self.shown[i] = content
            return True
        return False

    async def _send(self, content: str) -> bool:
        for attempt in (1, 2):
            try:
                message = await self.channel.send(content, allowed_mentions=NO_MENTIONS)
            except DELIVERY_ERRORS as exc:
                if self._failed(exc, f"send a part to channel {self.channel.id}", attempt):
                    await asyncio.sleep(RETRY_DELAY)
                    continue
                return False
            self.messages.append(message)
            self.shown.append(content)
            return True
        return False

    def _failed(self, exc: BaseException, what: str, attempt: int) -> bool:
        """Record a failed call; True if it is worth one retry (the final text, on a
        network error)."""
        log.warning("cannot %s (%s)", what, describe(exc))
        if is_refusal(exc):
            self.refusal = exc
            return False
        return self._final and attempt == 1 and not isinstance(exc, discord.HTTPException)
