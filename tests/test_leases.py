"""Per-user leases and fencing tokens (the distributed mode's promotion guard), on real SQLite.

    pytest -q tests/test_leases.py

A promotion carries the token of the lease its cycle was computed under; the store registers
it only while that token is the user's current, unexpired lease. Here: tokens grow, a held
lease is refused to another holder, an expired or superseded token cannot register a
checkpoint, and ``fusion.promote`` with a lost lease leaves the user's files as they were.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import mlx.core as mx
import pytest

from memory import checkpoints
from memory.store import LeaseLost, Store


@pytest.mark.asyncio
async def test_tokens_grow_and_a_held_lease_is_refused(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "db.sqlite") as store:
        first = await store.acquire_lease("alice", "worker-1", 30)
        assert first is not None and first.token == 1
        assert await store.acquire_lease("alice", "worker-2", 30) is None  # held elsewhere
        forced = await store.acquire_lease("alice", "worker-2", 30, force=True)
        assert forced.token == 2  # the scheduler gave up on worker-1: fenced out
        with pytest.raises(LeaseLost, match="superseded"):
            await store.check_lease("alice", first.token)
        assert not await store.renew_lease("alice", first.token, 30)
        assert await store.renew_lease("alice", forced.token, 30)
        await store.release_lease("alice", forced.token)
        again = await store.acquire_lease("alice", "worker-3", 30)
        assert again.token == 3
        # other users' tokens are their own
        assert (await store.acquire_lease("bob", "worker-1", 30)).token == 1
        assert (await store.lease("alice")).holder == "worker-3"


@pytest.mark.asyncio
async def test_expired_or_superseded_token_cannot_register(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "db.sqlite") as store:
        lease = await store.acquire_lease("alice", "w1", 0.2)
        await store.register_checkpoint("alice", 1, "v0001", None, 1, lease_token=lease.token)
        await asyncio.sleep(0.3)
        with pytest.raises(LeaseLost, match="expired"):
            await store.register_checkpoint("alice", 2, "v0002", 1, 2,
                                            lease_token=lease.token)
        assert not await store.renew_lease("alice", lease.token, 30)  # never revived
        newer = await store.acquire_lease("alice", "w2", 30)
        with pytest.raises(LeaseLost, match="superseded"):
            await store.register_checkpoint("alice", 2, "v0002", 1, 2,
                                            lease_token=lease.token)
        await store.register_checkpoint("alice", 2, "v0002", 1, 2, lease_token=newer.token)
        records = await store.checkpoints("alice")
        assert [(r.version, r.is_current) for r in records] == [(1, False), (2, True)]


class _NoModelThread:
    """fusion.promote runs its file write through ``runtime.run``; here, in this thread."""

    async def run(self, fn, *args, priority=0):
        return fn(None, *args)


@pytest.mark.asyncio
async def test_promote_with_a_lost_lease_leaves_the_files(tmp_path: Path) -> None:
    from sleep import fusion

    root = tmp_path / "checkpoints"
    tensors = {"model.layers.0.mlp.up_proj.weight": mx.ones((4, 4))}
    async with await Store.open(tmp_path / "db.sqlite") as store:
        lease = await store.acquire_lease("alice", "w1", 30)
        assert await fusion.promote(_NoModelThread(), store, "alice", root, tensors, {}, 1,
                                    lease.token) == 1
        stale = lease.token
        await store.acquire_lease("alice", "w2", 30, force=True)
        before = (root / checkpoints.CURRENT).read_text()
        with pytest.raises(LeaseLost):
            await fusion.promote(_NoModelThread(), store, "alice", root, tensors, {}, 2, stale)
        assert (root / checkpoints.CURRENT).read_text() == before == "v0001"
        assert checkpoints.versions(root) == [1]
        assert [r.version for r in await store.checkpoints("alice")] == [1]
        # a lease that expires between the early check and the registry: the switch is undone
        short = await store.acquire_lease("alice", "w3", 30, force=True)
        real_register = store.register_checkpoint

        async def late_register(*args, **kwargs):
            await store.renew_lease("alice", short.token, -1)  # runs out right here
            time.sleep(0.01)
            return await real_register(*args, **kwargs)

        store.register_checkpoint = late_register
        with pytest.raises(LeaseLost, match="expired"):
            await fusion.promote(_NoModelThread(), store, "alice", root, tensors, {}, 3,
                                 short.token)
        assert (root / checkpoints.CURRENT).read_text() == "v0001"
        assert checkpoints.versions(root) == [1]
