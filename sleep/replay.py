"""Stage 2 (paper's numbering: replay buffer integration): spaced repetition of old facts.

The buffer (SQLite ``replay_items``) holds extracted Q&A pairs, not raw exchanges. Each cycle
mixes the highest-priority items of *this user* into the batch so that they make up
``replay_ratio`` of it, and multiplies each replayed item's priority by ``replay_decay``.
"""

from __future__ import annotations

import math

from memory.store import ReplayItem, Store
from sleep.types import QAPair

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
                        retired: list[ReplayItem] = ()) -> list[ReplayItem]:
    """The items to replay beside ``n_new`` new pairs; ``retired`` ones (replaced by a newer
    statement) never come back."""
    gone = {i.id for i in retired}
    items = [i for i in await store.replay_items(user_id) if i.id not in gone]
    k = replay_count(n_new, ratio, len(items))
    return spread_over_facts(items, k) if k else []


def spread_over_facts(items: list[ReplayItem], k: int) -> list[ReplayItem]:
    """The ``k`` items to replay, taken round-robin over facts (one answer = one fact).

    Each fact has several phrasings in the buffer; the plain top-k by priority would replay
    every phrasing of the oldest facts and none of the rest. Within a fact, and between
    facts of one round, higher priority (then older) goes first.
    """
    by_fact: dict[str, list[ReplayItem]] = {}
    for item in sorted(items, key=lambda i: (-i.priority, i.id)):
        by_fact.setdefault(" ".join(item.answer.lower().split()), []).append(item)
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
