"""The Ray actors of the distributed mode: a sleep worker, the promotion board, a chat replica.

Plain classes here; :mod:`bot.cluster.head` wraps them with ``ray.remote`` and starts them
(``python -m bot cluster run`` or ``python -m bot bench cluster``). Each worker and replica
owns one model thread (:class:`runtime.thread.ModelRuntime`, loaded once per process) and a
scratch folder for the users' weights it was sent; neither ever opens the head's database.

* :class:`SleepWorker` runs the compute half of a cycle (stages 1-6,
  :func:`sleep.pipeline.compute_cycle`) on a :class:`bot.cluster.jobs.CycleJob` and returns
  a :class:`bot.cluster.jobs.CycleResult`; the head commits it under the user's lease.
* :class:`PromotionBoard` holds each user's promoted version number and its files: the head
  publishes after every promotion, and whoever answers for a user asks it first.
* :class:`ChatReplica` answers recall questions on any host: it checks the user's promoted
  version on the board before every answer (one actor call) and reloads when it is stale.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import mlx.core as mx

from bot.cluster.jobs import CheckpointFiles, CycleJob, CycleResult, SnapshotStore
from memory import checkpoints
from memory.paths import user_paths
from runtime.config import Config
from runtime.thread import BACKGROUND, ModelContext

log = logging.getLogger(__name__)


def tensors_to_bytes(ctx: ModelContext, tensors: dict[str, mx.array]) -> bytes:
    """Model job: the tensors as one safetensors file's bytes (evaluates them)."""
    fd, name = tempfile.mkstemp(suffix=".safetensors")
    os.close(fd)
    try:
        mx.save_safetensors(name, tensors)
        return Path(name).read_bytes()
    finally:
        os.unlink(name)


def tensors_from_bytes(ctx: ModelContext, data: bytes) -> dict[str, mx.array]:
    """Model job: the tensors of safetensors bytes, evaluated (the file is gone after)."""
    fd, name = tempfile.mkstemp(suffix=".safetensors")
    try:
        os.write(fd, data)
        os.close(fd)
        tensors = mx.load(name)
        mx.eval(list(tensors.values()))
        return tensors
    finally:
        os.unlink(name)


OWNER_FILE = ".owner"  # "<host> <pid>" of the actor whose scratch folder this is


def sweep_stale_scratch(root: Path) -> list[Path]:
    """Remove the scratch folders under ``root`` of this host's actors that died without
    cleaning up (``ray.kill`` ends a process at once): the users' weights and words they held
    must not outlive them, nor escape a later ``forget``. Returns what was removed."""
    host, gone = socket.gethostname(), []
    for folder in root.glob("sleepbot-*"):
        try:
            owner_host, pid = (folder / OWNER_FILE).read_text().split()
            if owner_host != host:
                continue
            os.kill(int(pid), 0)  # alive (or not ours to judge): kept
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
            gone.append(folder)
        except (OSError, ValueError):
            continue
    return gone


class _ModelOwner:
    """A process's model thread, started on first use, and its scratch folder (removed by
    :meth:`close`, or by the next actor on this host when this one was killed)."""

    def __init__(self, cfg: Config, name: str):
        self.cfg, self.name = cfg, name
        sweep_stale_scratch(Path(tempfile.gettempdir()))
        self.scratch = Path(tempfile.mkdtemp(prefix=f"sleepbot-{name}-"))
        (self.scratch / OWNER_FILE).write_text(f"{socket.gethostname()} {os.getpid()}")
        self.runtime = None

    def close(self) -> None:
        """Remove the scratch folder (the head calls this before it stops the actor)."""
        shutil.rmtree(self.scratch, ignore_errors=True)

    async def start(self) -> int:
        """Load the model (once); returns this process's pid."""
        if self.runtime is None:
            from bot.engine import model_runtime

            runtime = model_runtime(self.cfg)
            await runtime.astart()
            self.runtime = runtime
        return os.getpid()

    async def ping(self) -> int:
        return os.getpid()

    def where(self) -> dict:
        """This process, the Ray node (host) it runs on, and what Ray gave it (``{"CPU": 1,
        "GPU": 0.125}``) with the GPUs it sees (CUDA_VISIBLE_DEVICES)."""
        import ray

        ctx = ray.get_runtime_context()
        return {"pid": os.getpid(), "node": ctx.get_node_id(), "host": socket.gethostname(),
                "resources": ctx.get_assigned_resources(),
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


class SleepWorker(_ModelOwner):
    """Runs stages 1-6 of users' cycles; never writes the store, never promotes."""

    def __init__(self, cfg: Config, name: str):
        super().__init__(cfg, name)
        self.general_scores: dict[str, float] = {}
        self.cycles = 0

    async def run(self, job: CycleJob) -> CycleResult:
        from sleep.pipeline import CycleContext, CycleReport, compute_cycle
        from sleep.training import TrainingDiverged

        tic = time.perf_counter()
        await self.start()
        paths = user_paths(self.scratch, job.user_id)
        # what the head sent is the truth: no file of an earlier job of this user is kept
        shutil.rmtree(paths.root, ignore_errors=True)
        paths.root.mkdir(parents=True)
        if job.checkpoint is not None:
            job.checkpoint.install(paths.checkpoints)
        if job.identity is not None:
            paths.identity.write_bytes(job.identity)
        cc = CycleContext(self.runtime, SnapshotStore(job), job.user_id, paths, job.sleep,
                          job.system_prompt, job.bot_name, job.base_model, self.general_scores)
        report = CycleReport(job.user_id, job.kind, cycle_id=job.cycle_id)
        outcome = None
        try:
            outcome = await compute_cycle(cc, report, None, job.seed)
        except TrainingDiverged as exc:
            report.status, report.reason = "rejected", str(exc)
        except Exception as exc:  # the head records it as the cycle's failure
            report.status, report.reason = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("worker %s: cycle %s of user %s failed", self.name, job.cycle_id,
                          job.user_id)
        delta = None
        if outcome is not None and outcome.tensors is not None:
            delta = await self.runtime.run(tensors_to_bytes, outcome.tensors,
                                           priority=BACKGROUND)
        if job.hold_seconds:
            await asyncio.sleep(job.hold_seconds)
        self.cycles += 1
        shutil.rmtree(paths.root, ignore_errors=True)
        result = CycleResult(job.job_id, job.user_id, job.lease_token, self.name, os.getpid(),
                             report.to_dict(), seconds=round(time.perf_counter() - tic, 3))
        if outcome is not None:
            result.exchange_ids = outcome.exchange_ids
            result.replayed, result.new_pairs = outcome.replayed, outcome.new_pairs
            result.retired, result.delta = outcome.retired, delta
            result.general_post = outcome.general_post
        return result


class PromotionBoard:
    """Each user's newest promoted version and its files (published by the head)."""

    def __init__(self) -> None:
        self._files: dict[str, CheckpointFiles | None] = {}
        self._versions: dict[str, int] = {}
        self.published = 0

    def publish(self, user_id: str, version: int, files: CheckpointFiles | None) -> int:
        """Record ``version`` (never going back: a late, older notice is ignored)."""
        if version >= self._versions.get(user_id, 0):
            self._versions[user_id], self._files[user_id] = version, files
            self.published += 1
        return self._versions[user_id]

    def version(self, user_id: str) -> int:
        return self._versions.get(user_id, 0)

    def fetch(self, user_id: str) -> CheckpointFiles | None:
        return self._files.get(user_id)

    def versions(self) -> dict[str, int]:
        return dict(self._versions)


class ChatReplica(_ModelOwner):
    """Answers from a user's newest promoted weights, on whichever host it runs."""

    def __init__(self, cfg: Config, name: str, board):
        super().__init__(cfg, name)
        self.board = board
        self.loaded: dict[str, int] = {}  # user → version installed here
        self.reloads = 0

    async def _sync(self, user_id: str) -> tuple[Path | None, bool]:
        """The user's weights here, reloaded first when the board has a newer version."""
        root = user_paths(self.scratch, user_id).checkpoints
        version = await self.board.version.remote(user_id)
        if version == self.loaded.get(user_id, 0):
            return checkpoints.current_path(root), False
        files = await self.board.fetch.remote(user_id)
        if files is None:
            checkpoints.set_current(root, None)
        else:
            files.install(root)
            checkpoints.prune(root, keep_last=2)
        self.loaded[user_id] = version
        self.reloads += 1
        log.info("replica %s: user %s now on v%d", self.name, user_id, version)
        return checkpoints.current_path(root), True

    async def answer(self, user_id: str, question: str) -> dict:
        """One recall answer (system prompt only) and which version gave it."""
        from bot.wake import bound_input, clean_text
        from runtime.generation import complete_batch

        await self.start()
        checkpoint, reloaded = await self._sync(user_id)
        system = {"role": "system", "content": self.cfg.chat.system_prompt}
        text = bound_input(clean_text(question), self.cfg.chat.max_message_chars)[0]
        answers = await self.runtime.run(complete_batch, user_id, checkpoint,
                                         [[system, {"role": "user", "content": text}]],
                                         self.cfg.chat.max_tokens)
        return {"answer": answers[0], "version": self.loaded.get(user_id, 0),
                "reloaded": reloaded, "replica": self.name, "pid": os.getpid()}
