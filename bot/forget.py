"""Forgetting: remove what a user asks to forget from everywhere it lives, then rebuild weights.

    python -m bot forget --user U (--all | --match PHRASE) [--yes]     (also /forget in Discord)

A phrase matches an exchange when the user's or the bot's text contains it, ignoring case.
Forgetting chosen facts (Discord's ``/memory facts``) removes those replay items and the
exchanges they were extracted from.
The matching exchanges go from the JSONL log (rewritten atomically) and from SQLite, with the
replay items derived from them or containing the phrase. Every checkpoint might have been
trained on them, so the user is reset to the base model (``CURRENT`` cleared, version folders
and registry rows deleted, cycle reports dropped: they list the facts), the remaining
exchanges are marked unconsolidated, and one sleep cycle re-learns what remains. Session
summaries are cleared (they may paraphrase what went), and the database is vacuumed and its
WAL truncated so no deleted text lingers in free pages. Nothing of the forgotten text is left
under the data directory; nothing of it is logged either.

:func:`forget_and_rebuild` is what the front ends call: the removal runs inside
``Orchestrator.run_exclusive`` (no cycle of the user runs meanwhile) and the rebuild is an
ordinary cycle requested through the orchestrator's queue, like every other cycle.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from bot.engine import Engine
from bot.retrying import retry_io
from bot.wake import clean_text
from memory import checkpoints
from memory.store import Exchange, ReplayItem
from runtime.thread import ModelContext

if TYPE_CHECKING:
    from bot.orchestrator import Orchestrator
    from bot.wake import ChatService

log = logging.getLogger(__name__)

Progress = Callable[[str, dict], None]


class ForgetError(ValueError):
    """The request names nothing to forget (no phrase and not everything)."""


@dataclass
class ForgetPlan:
    """What a request would remove; shown to the user before they confirm."""

    user_id: str
    everything: bool
    phrase: str | None
    exchange_ids: list[int] = field(default_factory=list)
    replay_ids: list[int] = field(default_factory=list)
    exchanges_kept: int = 0
    checkpoints: int = 0
    log_records: int = 0  # log lines to remove (normally one per exchange)
    fact_ids: list[int] = field(default_factory=list)  # forgetting chosen facts

    @property
    def empty(self) -> bool:
        return not (self.exchange_ids or self.replay_ids or self.log_records
                    or (self.everything and self.checkpoints))

    def describe(self) -> str:
        what = "everything you told me" if self.everything else "what matches your phrase"
        if self.empty:
            return "Nothing I remember matches that."
        if self.fact_ids:
            what = "that fact and what you said that taught it to me"
        text = (f"This will forget {what}: {len(self.exchange_ids)} exchange(s) and "
                f"{len(self.replay_ids)} stored fact(s)")
        if self.everything or not self.exchanges_kept:
            return text + ", and reset your memory to the base model."
        return (text + f", then rebuild your memory from the {self.exchanges_kept} "
                "exchange(s) that remain.")


@dataclass
class ForgetResult:
    user_id: str
    everything: bool
    exchanges_removed: int = 0
    log_records_removed: int = 0
    replay_removed: int = 0
    checkpoints_removed: int = 0
    cycles_removed: int = 0
    exchanges_kept: int = 0
    rebuild: dict[str, Any] | None = None  # the rebuild cycle's report (CycleReport.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def nothing_forgotten(self) -> bool:
        return not (self.exchanges_removed or self.replay_removed or self.log_records_removed
                    or self.checkpoints_removed)

    def summary(self) -> str:
        if self.nothing_forgotten:
            return "Nothing I remember matched, so nothing was forgotten."
        text = (f"Forgot {self.exchanges_removed} exchange(s) and {self.replay_removed} stored "
                f"fact(s); {self.checkpoints_removed} checkpoint(s) deleted.")
        if self.rebuild is None:
            return text + " Your memory is back to the base model."
        r = self.rebuild
        return (text + f" Rebuilt from the {self.exchanges_kept} remaining exchange(s): "
                f"cycle {r.get('status')}, now answering from {r.get('checkpoint')}.")


def matches(text: str, phrase: str) -> bool:
    """Case-insensitive containment (casefold handles ß, Σ and friends)."""
    return phrase.casefold() in text.casefold()


def _normalize_phrase(phrase: str | None, everything: bool) -> str | None:
    if everything:
        return None
    cleaned = clean_text(phrase or "")
    if not cleaned:
        raise ForgetError("say what to forget: everything, or a phrase to match")
    return cleaned


def _doomed_exchange(e: Exchange, phrase: str | None) -> bool:
    return phrase is None or matches(e.user_text, phrase) or matches(e.assistant_text, phrase)


def _doomed_replay(item: ReplayItem, phrase: str | None, exchange_ids: set[int]) -> bool:
    if phrase is None or exchange_ids.intersection(item.source_exchange_ids):
        return True
    return matches(item.question, phrase) or matches(item.answer, phrase)


async def plan(engine: Engine, user_id: str, *, phrase: str | None = None,
               everything: bool = False, fact_ids: list[int] | None = None) -> ForgetPlan:
    """What ``forget`` would remove (read-only). ``fact_ids``: replay items of the user to
    forget, with the exchanges they came from (instead of a phrase)."""
    if fact_ids:
        return await _plan_facts(engine, user_id, fact_ids)
    phrase = _normalize_phrase(phrase, everything)
    store = engine.store
    exchanges = await retry_io("read exchanges", store.exchanges, user_id)
    doomed = [e.id for e in exchanges if _doomed_exchange(e, phrase)]
    ids = set(doomed)
    items = await retry_io("read replay items", store.replay_items, user_id)
    replay = [i.id for i in items if _doomed_replay(i, phrase, ids)]
    n_checkpoints = len(checkpoints.versions(engine.paths(user_id).checkpoints))
    records = await retry_io("read the log", engine.conversation_log(user_id).aread)
    n_log = sum(1 for r in records if not _keep_record(r, phrase, ids, everything))
    return ForgetPlan(user_id, everything, phrase, doomed, replay,
                      len(exchanges) - len(doomed), n_checkpoints, n_log)


async def _plan_facts(engine: Engine, user_id: str, fact_ids: list[int]) -> ForgetPlan:
    """The chosen items, the exchanges they came from, and every other item learned from
    those exchanges (the words that taught it are gone; the rebuild must not replay it)."""
    store = engine.store
    wanted = set(fact_ids)
    every = await retry_io("read replay items", store.replay_items, user_id)
    chosen = [i for i in every if i.id in wanted]  # the user's own: another's id matches none
    sources = {e for i in chosen for e in i.source_exchange_ids}
    items = [i for i in every if i.id in wanted or sources.intersection(i.source_exchange_ids)]
    exchanges = await retry_io("read exchanges", store.exchanges, user_id)
    doomed = [e.id for e in exchanges if e.id in sources]
    records = await retry_io("read the log", engine.conversation_log(user_id).aread)
    n_log = sum(1 for r in records if r.get("id") in sources)
    n_checkpoints = len(checkpoints.versions(engine.paths(user_id).checkpoints))
    return ForgetPlan(user_id, False, None, doomed, [i.id for i in items],
                      len(exchanges) - len(doomed), n_checkpoints, n_log,
                      fact_ids=[i.id for i in chosen])


def _drop_cached_weights(ctx: ModelContext, user_id: str) -> None:
    """Model job: no cached or active module of this user may survive the reset."""
    ctx.forget_cached(user_id)
    if ctx.active_user == user_id:
        ctx.use_base()


async def forget(engine: Engine, user_id: str, *, phrase: str | None = None,
                 everything: bool = False, chat: ChatService | None = None,
                 progress: Progress | None = None, fact_ids: list[int] | None = None
                 ) -> ForgetResult:
    """Remove everything or what matches ``phrase`` (see the module doc) and reset the user to
    the base model; the rebuild is the caller's (:func:`forget_and_rebuild`). Not re-entrant:
    call it where no sleep cycle of ``user_id`` can run (``Orchestrator.run_exclusive``).

    ``chat``, if given, loses the user's working memory.
    """
    p = await plan(engine, user_id, phrase=phrase, everything=everything, fact_ids=fact_ids)
    result = ForgetResult(user_id, everything, exchanges_kept=p.exchanges_kept)
    if chat is not None:
        chat.reset(user_id)  # the context window may quote what is being forgotten
    if p.empty:
        log.info("user %s: forget matched nothing", user_id)
        return result

    def step(name: str, **info) -> None:
        log.info("user %s: forget %s %s", user_id, name, info)
        if progress:
            progress(name, info)

    # SQLite first: at the next start, recovery re-appends to the log exchanges that SQLite
    # has and the log lacks, so the other order could bring back what a crash interrupted.
    result.exchanges_removed, result.replay_removed = await retry_io(
        "delete records", engine.store.forget_rows, user_id, p.exchange_ids, p.replay_ids,
        everything=p.everything)
    result.log_records_removed = await _scrub_log(engine, user_id, p)
    step("records", exchanges=result.exchanges_removed, replay=result.replay_removed,
         log_lines=result.log_records_removed)
    result.checkpoints_removed, result.cycles_removed = await _reset_weights(engine, user_id)
    step("weights", checkpoints=result.checkpoints_removed, cycles=result.cycles_removed)
    await retry_io("vacuum the database", engine.store.compact)
    step("compact")
    return result


async def forget_and_rebuild(orch: Orchestrator, user_id: str, *, phrase: str | None = None,
                             everything: bool = False, progress: Progress | None = None,
                             hold: AbstractAsyncContextManager | None = None,
                             rebuild_timeout: float | None = None,
                             fact_ids: list[int] | None = None) -> ForgetResult:
    """Forget while no cycle of the user runs, then rebuild through the sleep queue.

    ``hold`` (e.g. the Discord front end's per-user lock) is held during the removal only:
    the rebuild reads the store, so chat goes on meanwhile. The rebuild is never retried: a
    failed one leaves the user on the base model, which has forgotten correctly, and the
    next sleep re-learns the rest (the exchanges stay unconsolidated).
    """

    async def remove() -> ForgetResult:
        async with hold or contextlib.nullcontext():
            return await forget(orch.engine, user_id, phrase=phrase, everything=everything,
                                chat=orch.chat, progress=progress, fact_ids=fact_ids)

    result = await orch.run_exclusive(user_id, remove)
    if not everything and not result.nothing_forgotten and await _has_material(orch.engine,
                                                                               user_id):
        report = await orch.run_now(user_id, "light", progress=progress,
                                    timeout=rebuild_timeout)
        if report is not None:
            result.rebuild = report.to_dict()
            log.info("user %s: forget rebuild %s, now %s", user_id, report.status,
                     report.checkpoint)
    return result


def _keep_record(record: dict, phrase: str | None, ids: set[int], everything: bool) -> bool:
    """Whether a log record survives: not everything goes, not forgotten by id, and no text
    field matches the phrase (if there is one)."""
    if everything or record.get("id") in ids:
        return False
    if phrase is None:  # forgetting chosen facts: by id only
        return True
    return not any(matches(v, phrase) for v in record.values() if isinstance(v, str))


async def _scrub_log(engine: Engine, user_id: str, p: ForgetPlan) -> int:
    ids = set(p.exchange_ids)
    conv_log = engine.conversation_log(user_id)
    return await retry_io("rewrite the conversation log", conv_log.rewrite,
                          lambda record: _keep_record(record, p.phrase, ids, p.everything))


async def _reset_weights(engine: Engine, user_id: str) -> tuple[int, int]:
    """Back to the base model: CURRENT cleared, version folders, registry rows, reports gone."""
    root = engine.paths(user_id).checkpoints
    checkpoints.set_current(root, None)  # first: from here on the user reads the base model
    await engine.runtime.run(_drop_cached_weights, user_id)
    removed = 0
    for path in sorted(root.iterdir()):
        if path.name == checkpoints.CURRENT:
            continue
        if path.is_dir():
            shutil.rmtree(path)
            removed += path.name.startswith("v")
        else:
            path.unlink()
    _, cycles = await retry_io("delete the checkpoint registry", engine.store.forget_weights,
                               user_id)
    return removed, cycles


async def _has_material(engine: Engine, user_id: str) -> bool:
    store = engine.store
    return bool(await store.exchanges(user_id) or await store.replay_items(user_id))
