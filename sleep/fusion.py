"""Stage 7: fusion. Promote validated weights to the user's new checkpoint, atomically.

Runs only after validation accepted the cycle. The adapter was already fused into dense
tensors of the touched modules by :mod:`sleep.training`; here they are written as version
``n+1`` (temporary folder, fsync, manifest last, rename), ``CURRENT`` is switched, and the
registry in SQLite follows. A crash before the registry write leaves the previous version
current: at the next start ``bot.recovery.reconcile`` puts ``CURRENT`` back on the registered
version and removes the unregistered folder, and the re-queued cycle runs again.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mlx.core as mx

from memory import checkpoints
from memory.store import Store
from runtime import faults
from runtime.thread import ModelContext

log = logging.getLogger(__name__)


def write_checkpoint(ctx: ModelContext, root: Path, version: int,
                     tensors: dict[str, mx.array], meta: dict) -> Path:
    """Model job (safetensors writing evaluates MLX arrays): save version ``version``."""
    return checkpoints.save_checkpoint(root, version, tensors, meta)


async def promote(runtime, store: Store, user_id: str, root: Path,
                  tensors: dict[str, mx.array], meta: dict, cycle_id: int) -> int:
    """Write, switch ``CURRENT`` and register; returns the new version number."""
    from runtime.thread import BACKGROUND

    parent = checkpoints.current_version(root)
    version = max([parent, *checkpoints.versions(root)]) + 1
    path = await runtime.run(write_checkpoint, root, version, tensors, meta,
                             priority=BACKGROUND)
    faults.checkpoint("fusion-written")
    checkpoints.set_current(root, version)  # live from here; committed once registered
    faults.checkpoint("fusion-switched")
    await store.register_checkpoint(user_id, version, str(path), parent or None, cycle_id)
    checkpoints.prune(root, keep_last=2)
    log.info("user %s: promoted checkpoint %s", user_id, path.name)
    return version
