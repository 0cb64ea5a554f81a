"""The wake phase: chat with a user, keep their working memory, log every exchange.

Working memory is a sliding window per user *and per place* (paper §3.2): a front end names
the place (a Discord DM, channel or thread; the terminal has one), and what a user said in one
place never enters the prompt in another, so a remark made in a DM cannot be repeated in a
public channel. In a public place the system prompt also asks the model not to volunteer
private details (the weights, the long-term memory, are per user and answer everywhere).
When the prompt passes ``summarize_at`` of the context budget, the older turns are summarised
by the model and replaced by the summary. Every exchange is written to the user's SQLite index
and JSONL log (fsynced) before :meth:`ChatService.reply` returns, so nothing shown is ever
unsaved; a reply the front end could not deliver is stored flagged (never consolidated).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
import unicodedata
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from bot.engine import Engine
from memory.store import StoreCorrupt
from runtime import faults
from runtime.generation import GenStats, complete, stream_reply
from runtime.thread import CHAT

log = logging.getLogger(__name__)

SUMMARY_INSTRUCTION = (
    "Summarise this conversation in a few sentences. Keep every fact the user stated about "
    "themselves or others (names, places, dates, preferences)."
)
NOT_SAVED_WARNING = ("⚠ memory is not being saved right now (the data directory is read-only "
                     "or the disk is full): I can still chat, but I will not remember this.")
SAVE_ERRORS = (OSError, sqlite3.Error)  # read-only directory, full disk, locked database
# Every path that feeds the model text a person wrote (chat, recall, ingest, eval) bounds it
# by chat.max_message_chars: typed text is cut and the person told (CUT_NOTE); a file holding
# longer text is refused (InputTooLong), since cutting would change what is stored or scored.
CUT_NOTE = ("(your message was longer than {limit:,} characters: I read only the first "
            "{limit:,}, the limit set by chat.max_message_chars)")


class EmptyMessage(ValueError):
    """The message has no text to answer."""


class InputTooLong(ValueError):
    """Text in a file is longer than chat.max_message_chars (the message says where)."""


def bound_input(text: str, limit: int) -> tuple[str, int]:
    """``text`` cut to ``limit`` characters, and its length before (0 when it fitted)."""
    return (text[:limit], len(text)) if len(text) > limit else (text, 0)


def check_input(text: str, limit: int, where: str) -> str:
    """``text`` if it fits in ``limit`` characters, else :class:`InputTooLong` naming
    ``where`` (a file and line, a question number)."""
    if len(text) > limit:
        raise InputTooLong(f"{where}: the text is {len(text):,} characters long; the limit "
                           f"is {limit:,} (chat.max_message_chars in the config file)")
    return text


@dataclass
class Conversation:
    """One user's working memory in one place: a rolling summary plus the recent messages."""

    user_id: str
    session_id: int | None
    summary: str | None = None
    messages: list[dict] = field(default_factory=list)
    place: str = ""  # "" is the only place of a front end without places (the terminal)
    public: bool = False  # others can read the replies (a guild channel or thread)
    last_exchange_id: int | None = None  # the exchange behind the last two messages


@dataclass
class Reply:
    text: str
    exchange_id: int
    checkpoint: str
    truncated_input: bool
    stats: GenStats | None = None
    saved: bool = True  # False: the exchange is not (fully) in SQLite and the log
    warning: str = ""
    # False: abandoned (the front end could not show it); stored flagged, never consolidated
    delivered: bool = True


class ReplyStream:
    """The pieces of one reply as they are generated; :attr:`reply` holds the saved
    :class:`Reply` once the iteration has ended (None if it was cut short)::

        stream = chat.stream(user, text)
        async for piece in stream: show(piece)
        stream.reply.saved
    """

    def __init__(self, produce: Callable[[ReplyStream], AsyncIterator[str]]):
        self.reply: Reply | None = None
        self.abandoned = False
        self._pieces = produce(self)

    def abandon(self) -> None:
        """The user cannot receive this reply (e.g. Discord refused it): stop generating at
        the next piece; the iteration then ends with the exchange stored as undelivered."""
        self.abandoned = True

    def __aiter__(self) -> AsyncIterator[str]:
        return self._pieces

    async def aclose(self) -> None:
        await self._pieces.aclose()


def clean_text(text: str) -> str:
    """Drop control and zero-width characters (keeping newlines and tabs) and trim."""
    kept = [
        ch for ch in text
        if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    ]
    return "".join(kept).strip()


class ChatService:
    """Turns a user's message into a streamed reply, with logging and context management."""

    def __init__(self, engine: Engine, max_conversations: int = 256):
        self.engine = engine
        self.cfg = engine.cfg.chat
        self._conversations: OrderedDict[tuple[str, str], Conversation] = OrderedDict()
        self._max = max_conversations

    # -- context --------------------------------------------------------------------------
    async def conversation(self, user_id: str, place: str = "", public: bool = False
                           ) -> Conversation:
        """The working memory of ``user_id`` in ``place`` (one session each)."""
        key = (user_id, place)
        conv = self._conversations.get(key)
        if conv is None:
            try:
                session = await self.engine.store.start_session(user_id)
            except SAVE_ERRORS as exc:  # keep chatting without a stored session
                log.error("user %s: cannot start a session: %s", user_id, exc)
                session = None
            conv = self._conversations[key] = Conversation(user_id, session, place=place)
            while len(self._conversations) > self._max:  # bounded: drop the oldest
                self._conversations.popitem(last=False)
        conv.public = public
        self._conversations.move_to_end(key)
        return conv

    def reset(self, user_id: str) -> None:
        """Forget the user's working memory in every place (the context), not the log."""
        for key in [k for k in self._conversations if k[0] == user_id]:
            del self._conversations[key]

    def system_message(self, conv: Conversation | None = None) -> dict:
        text = self.cfg.system_prompt
        if conv is not None and conv.public and self.cfg.public_note:
            text += f"\n\n{self.cfg.public_note}"
        if conv is not None and conv.summary:
            text += f"\n\nEarlier in this conversation: {conv.summary}"
        return {"role": "system", "content": text}

    def prompt_tokens(self, messages: list[dict]) -> int:
        tok = self.engine.runtime.loaded.tokenizer
        return len(tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True))

    async def _maybe_summarize(self, conv: Conversation, incoming: dict) -> None:
        budget = self.cfg.context_tokens * self.cfg.summarize_at
        messages = [self.system_message(conv), *conv.messages, incoming]
        keep = 2 * self.cfg.keep_recent_turns
        if self.prompt_tokens(messages) <= budget or len(conv.messages) <= keep:
            return
        older, recent = conv.messages[:-keep] if keep else conv.messages, conv.messages[-keep:]
        transcript = "\n".join(f"{m['role']}: {m['content']}" for m in older)
        if conv.summary:
            transcript = f"(summary so far) {conv.summary}\n{transcript}"
        stats = await self.engine.runtime.run(
            complete, None, None,
            [{"role": "user", "content": f"{SUMMARY_INSTRUCTION}\n\n{transcript}"}],
            min(200, self.cfg.max_tokens),
        )
        conv.summary = stats.text.strip() or conv.summary
        conv.messages = list(recent) if keep else []
        if conv.session_id is not None:
            try:
                await self.engine.store.set_session_summary(conv.session_id, conv.summary or "")
            except SAVE_ERRORS as exc:
                log.error("user %s: cannot save the summary: %s", conv.user_id, exc)
        log.info("user %s: summarised %d older messages", conv.user_id, len(older))

    # -- replying -------------------------------------------------------------------------
    def prepare(self, text: str) -> tuple[str, bool]:
        """Clean and bound the message; raises :class:`EmptyMessage` when nothing is left."""
        text = clean_text(text)
        if not text:
            raise EmptyMessage("the message is empty")
        text, was = bound_input(text, self.cfg.max_message_chars)
        return text, bool(was)

    def stream(self, user_id: str, text: str, *, place: str = "", public: bool = False,
               quote: str | None = None) -> ReplyStream:
        """The reply as it is generated; the exchange is saved before the iteration ends,
        then the stream's ``reply`` holds the :class:`Reply`.

        ``place`` and ``public`` choose the working memory (see the module doc). ``quote``
        (e.g. the message the user replied to, from the same place) goes into this prompt
        only: it is neither logged nor kept in the working memory.
        """
        return ReplyStream(lambda out: self._stream(user_id, text, out, place, public, quote))

    async def _stream(self, user_id: str, text: str, out: ReplyStream, place: str = "",
                      public: bool = False, quote: str | None = None) -> AsyncIterator[str]:
        text, truncated = self.prepare(text)
        conv = await self.conversation(user_id, place, public)
        incoming = {"role": "user", "content": text}
        prompted = incoming
        quote = clean_text(quote or "")[:self.cfg.max_message_chars]
        if quote:
            prompted = {"role": "user", "content": f"{quote}\n\n{text}"}
        await self._maybe_summarize(conv, prompted)
        messages = [self.system_message(conv), *conv.messages, prompted]
        choice = await self.engine.resolve_checkpoint(user_id)
        checkpoint = choice.path
        pieces: list[str] = []
        tic = time.perf_counter()
        # aclosing: an abandoned reply stops the generation now (the model thread is shared)
        async with contextlib.aclosing(self.engine.runtime.stream(
            stream_reply, user_id, checkpoint, messages, self.cfg.max_tokens,
            self.cfg.temperature, self.cfg.stop_loops, priority=CHAT,
        )) as generated:
            async for piece in generated:
                pieces.append(piece)
                yield piece
                if out.abandoned:
                    break
        delivered = not out.abandoned
        reply_text = "".join(pieces).strip()
        saved, warning = True, ""
        try:
            exchange_id = await self.save(user_id, text, reply_text, conv.session_id,
                                          undelivered=not delivered)
        except SAVE_ERRORS as exc:  # keep chatting; say clearly that memory is not saved
            exchange_id, saved, warning = 0, False, NOT_SAVED_WARNING
            if isinstance(exc, StoreCorrupt):  # not a full disk: say what it is
                warning = f"⚠ memory is not being saved right now: {exc}"
            log.error("user %s: exchange not saved: %s", user_id, exc)
        if delivered:  # the user never saw an abandoned reply: not part of the conversation
            conv.messages += [incoming, {"role": "assistant", "content": reply_text}]
            conv.last_exchange_id = exchange_id or None
        label = f"{user_id}/{checkpoint.name}" if checkpoint else "base"
        log.info("user %s: exchange %d answered by %s in %.2fs%s", user_id, exchange_id, label,
                 time.perf_counter() - tic, "" if delivered else " (not delivered)")
        out.reply = Reply(reply_text, exchange_id, label, truncated, saved=saved,
                          warning=warning, delivered=delivered)

    async def mark_undelivered(self, user_id: str, exchange_id: int, place: str = "") -> None:
        """The front end could not deliver exchange ``exchange_id`` after all (e.g. its final
        edit was refused): flag it in the store, so sleep never learns it, and take it out of
        the working memory of ``place``."""
        conv = self._conversations.get((user_id, place))
        if conv is not None and conv.last_exchange_id == exchange_id and conv.messages:
            del conv.messages[-2:]
            conv.last_exchange_id = None
        if exchange_id:
            await self.engine.store.mark_undelivered(user_id, exchange_id)

    async def reply(self, user_id: str, text: str) -> Reply:
        """The whole reply at once (for ingest, tests and the load benchmark)."""
        stream = self.stream(user_id, text)
        async for _ in stream:
            pass
        assert stream.reply is not None
        return stream.reply

    async def save(self, user_id: str, user_text: str, reply_text: str,
                   session_id: int | None = None, source: str = "chat",
                   ts: float | None = None, undelivered: bool = False) -> int:
        """Index the exchange in SQLite, then append it to the JSONL log (fsynced). ``ts``
        (default now) is when it was said: an imported conversation keeps its own times,
        which sleep needs to turn "yesterday" into a date. ``undelivered``: the user never
        received the reply; it is stored flagged and never consolidated."""
        store = self.engine.store
        ts = time.time() if ts is None else ts
        exchange_id = await store.add_exchange(user_id, user_text, reply_text,
                                               session_id=session_id, source=source, ts=ts,
                                               undelivered=undelivered)
        faults.checkpoint("logging")  # kill point: in SQLite, not yet in the log
        record = {"id": exchange_id, "ts": ts, "source": source,
                  "user": user_text, "assistant": reply_text}
        if undelivered:
            record["undelivered"] = True
        await self.engine.conversation_log(user_id).append(record)
        return exchange_id
