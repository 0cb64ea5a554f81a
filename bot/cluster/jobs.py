"""What travels between the head and a worker: a cycle job (a snapshot of everything one
user's cycle reads) and its result (the report and the validated weights, as bytes).

Used by :mod:`bot.cluster.head` (builds jobs, commits results) and :mod:`bot.cluster.actors`
(runs them); plain dataclasses, pickled by Ray through its object store. Nothing here opens
SQLite on a worker: the head stays the only door to the database, and a worker reads the
snapshot through :class:`SnapshotStore`, which answers the two queries the compute half of a
cycle makes (``exchanges`` and ``replay_items``) for that one user and refuses writes.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memory import checkpoints
from memory.store import Exchange, ReplayItem
from runtime.config import SleepConfig
from sleep.pipeline import CycleOutcome
from sleep.types import QAPair

CHECKPOINT_FILES = (checkpoints.DELTA, checkpoints.MANIFEST, "config.json")


@dataclass
class CheckpointFiles:
    """One checkpoint version's files (delta, manifest, config) as bytes."""

    version: int
    files: dict[str, bytes]

    @property
    def sha256(self) -> str:
        import json

        return json.loads(self.files[checkpoints.MANIFEST])["sha256"]

    @classmethod
    def read(cls, folder: Path) -> CheckpointFiles:
        """The files of a complete, verified version folder."""
        checkpoints.verify_checkpoint(folder)
        files = {name: (folder / name).read_bytes() for name in CHECKPOINT_FILES
                 if (folder / name).is_file()}
        return cls(int(folder.name[1:]), files)

    def install(self, root: Path) -> Path:
        """Write this version under ``root`` (once; verified) and point ``CURRENT`` at it."""
        folder = root / checkpoints.version_name(self.version)
        if not checkpoints.is_complete(folder):
            root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-install-", dir=root))
            for name, data in self.files.items():
                (tmp / name).write_bytes(data)
            if folder.exists():  # a half-written copy from a killed process
                import shutil

                shutil.rmtree(folder)
            os.replace(tmp, folder)
        checkpoints.verify_checkpoint(folder)
        checkpoints.set_current(root, self.version)
        return folder


@dataclass
class CycleJob:
    """Everything one cycle of one user reads, as of when the head sent it."""

    job_id: int
    user_id: str
    kind: str
    cycle_id: int
    lease_token: int
    exchanges: list[Exchange]  # all of the user's (the compute half filters them)
    replay: list[ReplayItem]
    checkpoint: CheckpointFiles | None  # the user's current weights; None: the base model
    identity: bytes | None  # the user's identity dataset file, if any
    sleep: SleepConfig
    system_prompt: str
    bot_name: str
    base_model: str
    seed: int = 0
    hold_seconds: float = 0.0  # tests and the bench: keep the result this long (a slow worker)


@dataclass
class CycleResult:
    """What a worker sends back: the cycle's report, and for an accepted (or empty) cycle
    what the commit half needs, the weights as safetensors bytes."""

    job_id: int
    user_id: str
    lease_token: int
    worker: str
    pid: int
    report: dict[str, Any]
    exchange_ids: list[int] | None = None  # None: nothing to commit (rejected, failed)
    replayed: list[ReplayItem] = field(default_factory=list)
    new_pairs: list[QAPair] = field(default_factory=list)
    retired: list[ReplayItem] = field(default_factory=list)
    delta: bytes | None = None
    general_post: float = float("nan")
    seconds: float = 0.0

    def outcome(self, tensors: dict | None) -> CycleOutcome | None:
        if self.exchange_ids is None:
            return None
        return CycleOutcome(self.exchange_ids, self.replayed, self.new_pairs, self.retired,
                            tensors, self.general_post)


class SnapshotStore:
    """The store as a worker sees it: one user's exchanges and replay items as of the job,
    read-only (the compute half of a cycle never writes; the head commits)."""

    def __init__(self, job: CycleJob):
        self._job = job

    def _own(self, user_id: str) -> None:
        if user_id != self._job.user_id:  # one user's data never reaches another's cycle
            raise PermissionError(f"this job holds only user {self._job.user_id}'s data")

    async def exchanges(self, user_id: str, *, unconsolidated_only: bool = False
                        ) -> list[Exchange]:
        self._own(user_id)
        rows = self._job.exchanges
        if unconsolidated_only:
            rows = [e for e in rows if e.consolidated_cycle is None and not e.undelivered]
        return list(rows)

    async def replay_items(self, user_id: str) -> list[ReplayItem]:
        self._own(user_id)
        return list(self._job.replay)

    def __getattr__(self, name: str):
        raise AttributeError(f"a worker's snapshot store has no {name!r}: only the head "
                             "writes to the database")
