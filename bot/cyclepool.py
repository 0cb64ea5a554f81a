"""Several users' sleep cycles at once on one GPU: a pool of worker processes.

A cycle of a small model leaves an H200 idle most of the time: it is a few thousand short
kernels one after another, and the GPU waits on their launches. Worker processes each run a
different user's whole cycle (their own model thread, MLX stream and data directory), and
their launches interleave on the GPU. Each user's cycle is the same code on the same weights
as when it runs alone, so it takes the same gate decisions (``bench throughput --alone``
checks it). ``workers_per_gpu`` (``SLEEPBOT_WORKERS_PER_GPU``) is how many workers one GPU
gets; with one, cycles run in the calling process, exactly as before (the CPU gains nothing
from more: its cores are already busy).

The pool knows nothing of Ray; the queue packs cycles the same way in the cluster mode
(bot/cluster/head.py: each Ray worker actor holds 1/``workers_per_gpu`` of a GPU).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing as mp
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from runtime.config import Config

log = logging.getLogger(__name__)

REPLY = "Thanks, I'll remember that."


@dataclass
class CycleJob:
    """One user's cycle; ``turns`` are logged first (ingested, no generation) when given."""

    user_id: str
    kind: str = "light"
    turns: list[str] = field(default_factory=list)


@dataclass
class CycleResult:
    user_id: str
    status: str
    accepted: bool
    examples: int
    seconds: float  # the cycle alone (run_cycle), not the logging of its turns
    validation: dict
    checkpoint: str | None  # the user's current checkpoint folder after the cycle
    worker: int  # the worker process's id (0: the calling process)


async def run_job(engine, job: CycleJob) -> CycleResult:
    """Log ``job.turns`` for the user, run the cycle, report it (in this process)."""
    from bot.wake import ChatService
    from memory import checkpoints
    from sleep.pipeline import run_cycle

    if job.turns:
        chat = ChatService(engine)
        session = (await chat.conversation(job.user_id)).session_id
        for text in job.turns:
            await chat.save(job.user_id, text, REPLY, session, "ingest")
    report = await run_cycle(engine.cycle_context(job.user_id), job.kind)
    current = checkpoints.current_path(engine.paths(job.user_id).checkpoints)
    return CycleResult(job.user_id, report.status, report.accepted, report.examples,
                       report.seconds, report.validation, str(current) if current else None,
                       os.getpid())


def _worker_main(cfg: Config, jobs: mp.Queue, results: mp.Queue) -> None:
    """A worker process: load the model once, then run jobs until it gets ``None``."""
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_worker(cfg, jobs, results))


async def _worker(cfg: Config, jobs: mp.Queue, results: mp.Queue) -> None:
    from bot.engine import open_engine

    try:
        async with open_engine(cfg) as engine:
            await engine.runtime.run(lambda ctx: None)  # the model is loaded
            results.put(("ready", os.getpid(), None))
            loop = asyncio.get_running_loop()
            while (item := await loop.run_in_executor(None, jobs.get)) is not None:
                index, job = item
                try:
                    results.put(("done", index, await run_job(engine, job)))
                except Exception as exc:  # reported to the caller, the worker goes on
                    log.exception("cycle of %s failed in worker %s", job.user_id, os.getpid())
                    results.put(("error", index, f"{type(exc).__name__}: {exc}"))
    except Exception as exc:
        results.put(("error", -1, f"worker {os.getpid()}: {type(exc).__name__}: {exc}"))


class PoolError(RuntimeError):
    """A worker could not start or a job raised; the message says which and why."""


class CyclePool:
    """``workers`` processes on this machine's GPU, each with its own data directory under
    ``root`` (``root/w0``, ``root/w1``, …); one worker runs in the calling process.

    Use as a context manager; :meth:`run` hands the jobs out as workers become free and
    returns the results in the jobs' order.
    """

    def __init__(self, cfg: Config, workers: int, root: Path):
        self.cfg, self.workers, self.root = cfg, max(1, workers), Path(root)
        self.startup_seconds = 0.0  # starting the workers and loading their models
        self.run_seconds = 0.0  # the last run(), its jobs alone
        self._procs: list = []
        self._jobs: mp.Queue | None = None
        self._results: mp.Queue | None = None

    def __enter__(self) -> CyclePool:
        if self.workers > 1:
            self._start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def data_dir(self, worker: int) -> Path:
        return self.root / f"w{worker}"

    def _start(self) -> None:
        ctx = mp.get_context("spawn")  # MLX state is never forked
        self._jobs, self._results = ctx.Queue(), ctx.Queue()
        tic = time.perf_counter()
        for i in range(self.workers):
            cfg = dataclasses.replace(self.cfg, data_dir=self.data_dir(i))
            proc = ctx.Process(target=_worker_main, args=(cfg, self._jobs, self._results),
                               name=f"sleepbot-cycle-worker-{i}", daemon=True)
            proc.start()
            self._procs.append(proc)
        for _ in range(self.workers):
            kind, _, detail = self._results.get(timeout=1800)
            if kind != "ready":
                self.close()
                raise PoolError(detail)
        self.startup_seconds = time.perf_counter() - tic

    def run(self, jobs: list[CycleJob]) -> list[CycleResult]:
        if self.workers == 1:
            return asyncio.run(self._run_here(jobs))
        tic = time.perf_counter()
        for item in enumerate(jobs):
            self._jobs.put(item)
        out: list[CycleResult | None] = [None] * len(jobs)
        for _ in jobs:
            kind, index, detail = self._results.get()
            if kind != "done":
                raise PoolError(f"job {index}: {detail}")
            out[index] = detail
        self.run_seconds = time.perf_counter() - tic
        return out

    async def _run_here(self, jobs: list[CycleJob]) -> list[CycleResult]:
        from bot.engine import open_engine

        cfg = dataclasses.replace(self.cfg, data_dir=self.data_dir(0))
        tic = time.perf_counter()
        async with open_engine(cfg) as engine:
            await engine.runtime.run(lambda ctx: None)
            self.startup_seconds = time.perf_counter() - tic
            results = []
            for job in jobs:
                result = await run_job(engine, job)
                result.worker = 0
                results.append(result)
            self.run_seconds = time.perf_counter() - tic - self.startup_seconds
            return results

    def close(self) -> None:
        if self._jobs is not None:
            for _ in self._procs:
                self._jobs.put(None)
        for proc in self._procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
        self._procs.clear()
