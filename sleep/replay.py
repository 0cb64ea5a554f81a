"""Stage 2 (paper's numbering: replay buffer integration): spaced repetition of old facts.

The buffer (SQLite ``replay_items``) holds extracted Q&A pairs, not raw exchanges. Each cycle
mixes items of *this user* into the batch so that they make up ``replay_ratio`` of it, one
phrasing per fact first, and multiplies each replayed item's priority by ``replay_decay``.
Which facts: the highest priority (the paper's order), or, with ``replay_scored`` > 0 and
more facts than slots, the ones whose answers the user's current weights have lost most
(the pipeline scores one answer per fact, :func:`fact_probes`).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

from memory.store import ReplayItem, Store
from sleep.types import QAPair

Scorer = Callable[[list[QAPair]], Awaitable[list[float]]]
T = TypeVar("T")

REPLAY_ONLY_CAP = 32  # a cycle with no new facts replays at most this many items


def replay_count(n_new: int, ratio: float, available: int) -> int:
    """How many replay items make them ``ratio`` of a batch with ``n_new`` new pairs."""
    if available <= 0 or ratio <= 0:
        return 0
    if n_new == 0:
        return min(available, REPLAY_ONLY_CAP)
    if ratio >= 1:
        return available
    return min(available, math.ceil(n_new * ratio / (1 - ratio)))


async def select_replay(store: Store, user_id: str, n_new: int, ratio: float,
                        retired: list[ReplayItem] = (), score: Scorer | None = None,
                        scored: int = 0) -> list[ReplayItem]:
    """The items to replay beside ``n_new`` new pairs; ``retired`` ones (replaced by a newer
    statement) never come back. With ``score`` (answer losses of pairs on the user's current
    weights) and more facts than slots, up to ``scored`` facts are scored and the most
    forgotten go first."""
    gone = {i.id for i in retired}
    items = [i for i in await store.replay_items(user_id) if i.id not in gone]
    k = replay_count(n_new, ratio, len(items))
    if not k:
        return []
    forgetting: dict[str, float] = {}
    probes = fact_probes(items, scored) if score and scored else []
    if len(probes) > k:  # more facts than replay slots: which ones matters
        losses = await score(as_pairs(probes))
        forgetting = {fact_key(i.answer): x
                      for i, x in zip(probes, losses, strict=True) if math.isfinite(x)}
    return spread_over_facts(items, k, forgetting)


def fact_key(answer: str) -> str:
    """One answer = one fact (case and spacing aside)."""
    return " ".join(answer.lower().split())


def fact_probes(items: list[ReplayItem], limit: int) -> list[ReplayItem]:
    """One item per fact (its highest-priority phrasing), at most ``limit`` facts spread
    evenly over the buffer: what is scored to see which facts are being forgotten."""
    first: dict[str, ReplayItem] = {}
    for item in sorted(items, key=lambda i: (-i.priority, i.id)):
        first.setdefault(fact_key(item.answer), item)
    return spread_evenly(sorted(first.values(), key=lambda i: i.id), limit)


def spread_evenly(items: list[T], limit: int) -> list[T]:
    """All of ``items``, or ``limit`` of them taken at even steps from first to last."""
    if len(items) <= limit:
        return items
    return [items[n * len(items) // limit] for n in range(limit)]


def spread_over_facts(items: list[ReplayItem], k: int,
                      forgetting: dict[str, float] | None = None) -> list[ReplayItem]:
    """The ``k`` items to replay, taken round-robin over facts (one answer = one fact).

    Each fact has several phrasings in the buffer; the plain top-k by priority would replay
    every phrasing of the oldest facts and none of the rest. Within a fact, and between
    facts of one round, higher priority (then older) goes first. With ``forgetting`` (fact
    key → the answer's loss on the current weights), the facts being forgotten go first:
    highest loss first, unscored facts after the scored ones.
    """
    by_fact: dict[str, list[ReplayItem]] = {}
    for item in sorted(items, key=lambda i: (-i.priority, i.id)):
        by_fact.setdefault(fact_key(item.answer), []).append(item)
    if forgetting:
        order = sorted(by_fact, key=lambda f: (f not in forgetting, -forgetting.get(f, 0.0)))
        by_fact = {f: by_fact[f] for f in order}
    queues = list(by_fact.values())
    chosen: list[ReplayItem] = []
    depth = 0
    while len(chosen) < k and any(depth < len(q) for q in queues):
        chosen += [q[depth] for q in queues if depth < len(q)][: k - len(chosen)]
        depth += 1
    return chosen


def as_pairs(items: list[ReplayItem]) -> list[QAPair]:
    return [QAPair(i.question, i.answer, list(i.source_exchange_ids), "replay") for i in items]


async def after_cycle(store: Store, user_id: str, replayed: list[ReplayItem],
                      new_pairs: list[QAPair], decay: float, cycle_id: int,
                      retired: list[ReplayItem] | None = None) -> int:
    """Decay what was replayed, drop what a newer statement replaced; add this cycle's fact
    pairs at full priority."""
    if replayed:
        await store.decay_replay([i.id for i in replayed], decay)
    if retired:
        await store.retire_replay(user_id, [i.id for i in retired])
    items = [(p.question, p.answer, list(p.source_exchange_ids)) for p in new_pairs]
    return await store.add_replay_items(user_id, items, 1.0, cycle_id) if items else 0
