"""Stage 7: fusion. Promote validated weights to the user's new checkpoint, atomically.

Runs only after validation accepted the cycle. The adapter was already fused into dense
tensors of the touched modules by :mod:`sleep.training`; here they are written as version
``n+1`` (temporary folder, fsync, manifest last, rename), ``CURRENT`` is switched, and the
registry in SQLite follows. A crash before the registry write leaves the previous version
current: at the next start ``bot.recovery.reconcile`` puts ``CURRENT`` back on the registered
version and removes the unregistered folder, and the re-queued cycle runs again.

In the distributed mode (``bot/cluster/``) the promotion carries the cycle's lease token: it
is checked before anything is written and again in the registry's own transaction, and a
promotion whose lease was lost (its worker was given up on) is undone before it returns.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import mlx.core as mx

from memory import checkpoints
from memory.store import LeaseLost, Store
from runtime import faults
from runtime.thread import ModelContext

log = logging.getLogger(__name__)


def write_checkpoint(ctx: ModelContext, root: Path, version: int,
                     tensors: dict[str, mx.array], meta: dict) -> Path:
    """Model job (safetensors writing evaluates MLX arrays): save version ``version``."""
    return checkpoints.save_checkpoint(root, version, tensors, meta)


async def promote(runtime, store: Store, user_id: str, root: Path,
                  tensors: dict[str, mx.array], meta: dict, cycle_id: int,
                  lease_token: int | None = None) -> int:
    """Write, switch ``CURRENT`` and register; returns the new version number.

    ``lease_token`` (distributed mode): promote only while it is the user's current lease;
    else :class:`memory.store.LeaseLost` and the user's checkpoint is as it was."""
    from runtime.thread import BACKGROUND

    if lease_token is not None:
        await store.check_lease(user_id, lease_token)  # refuse early: nothing written yet
    parent = checkpoints.current_version(root)
    version = max([parent, *checkpoints.versions(root)]) + 1
    path = await runtime.run(write_checkpoint, root, version, tensors, meta,
                             priority=BACKGROUND)
    faults.checkpoint("fusion-written")
    checkpoints.set_current(root, version)  # live from here; committed once registered
    faults.checkpoint("fusion-switched")
    try:
        await store.register_checkpoint(user_id, version, str(path), parent or None, cycle_id,
                                        lease_token=lease_token)
    except LeaseLost:  # the lease ran out between the check and the registry: undo the switch
        checkpoints.set_current(root, parent or None)
        shutil.rmtree(path, ignore_errors=True)
        raise
    checkpoints.prune(root, keep_last=2)
    log.info("user %s: promoted checkpoint %s", user_id, path.name)
    return version
