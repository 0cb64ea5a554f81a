"""The orchestrator: one host, many users, one model thread; sleep never blocks chat.

    orch = Orchestrator(engine)          # inside ``async with open_engine(cfg) as engine``
    await orch.start()                   # take queue.lock, re-queue interrupted jobs,
                                         # start the worker and the triggers
    stream = orch.handle_message(user, text)
    async for piece in stream: ...       # then stream.reply (saved? warning?)
    await orch.stop()                    # SIGINT/SIGTERM: current step ends, queue is kept

It is the only scheduler: every cycle, whoever asks for it (the turn threshold, idle,
nightly, ``/sleep`` in Discord or the terminal, the CLI ``sleep`` verb, the rebuild after a
forget), is a job in its queue, run by the process that holds ``<data>/queue.lock``. A
process that only needs one cycle (the CLI) starts it with ``worker=False`` and calls
:meth:`Orchestrator.run_now`. Whether a cycle is light or deep is decided here too: a
requested kind, upgraded to deep every ``deep_every``-th cycle; the kind that ran is recorded.

Each user's lifecycle (``python -m bot status`` shows it)::

              turn threshold · /sleep · idle · nightly (deep)
    awake ─────────────────────────────────────────────▶ queued   (row in SQLite sleep_queue)
      ▲                                                     │ the worker takes the oldest job;
      │ done: accepted → new checkpoint is live             │ after a deep one, a light one first
      │       rejected/empty/failed → weights unchanged     ▼
      └──────────── sleeping: curation → extraction → replay → dreaming (deep) → training
                    → validation → fusion (write vN, switch CURRENT, register in SQLite)

    chat for every user — the sleeper too, on their current weights — goes between the
    steps of the sleep job on the model thread (CHAT before BACKGROUND priority).

The queue lives in SQLite: one pending job per user (a second request merges into it), FIFO
across users, one cycle at a time. A crash leaves the running job in state ``running``;
:meth:`Orchestrator.start` puts it back in the queue (``Engine.recover`` has already removed
half-written checkpoints and repaired the logs). :meth:`Orchestrator.stop` cancels the cycle
between two model steps and puts its job back in the queue at its old place.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import signal
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from bot import recovery
from bot.engine import Engine
from bot.wake import ChatService, ReplyStream
from memory import checkpoints
from memory.paths import user_paths
from memory.store import SleepJob, SleepKind, Store
from runtime.config import SleepConfig, parse_time_of_day
from sleep.pipeline import CycleReport, run_cycle

log = logging.getLogger(__name__)

T = TypeVar("T")
Progress = Callable[[str, dict], None]

STAGES = ("curation", "extraction", "replay", "dreaming", "training", "validation", "fusion")
STATUS_FILE = "orchestrator.json"  # what the running process is doing, for `bot status`
KINDS = ("light", "deep")


class QueueBusy(RuntimeError):
    """Another live process already runs the sleep queue on this data directory."""


State = Literal["awake", "queued", "sleeping"]


@dataclass
class UserState:
    user_id: str
    state: State
    stage: str | None  # current sleep stage while sleeping ("curation", "training", ...)
    job_id: int | None


@dataclass
class _Running:
    job_id: int
    user_id: str
    kind: SleepKind
    stage: str = STAGES[0]
    started: float = field(default_factory=time.monotonic)
    task: asyncio.Task | None = None
    seen_up_to: int = 0  # the user's newest exchange id when the cycle started


@dataclass
class _Queued:
    job_id: int
    kind: SleepKind


def next_stage(done: str, info: dict) -> str:
    """The stage in progress once ``done`` reported (run_cycle reports stages as they end)."""
    if done == "training" and "step" in info:  # a progress report from inside training
        return "training"
    if done in STAGES and done != STAGES[-1]:
        return STAGES[STAGES.index(done) + 1]
    return done


def next_nightly(after: float, hhmm: str) -> float:
    """The first local ``hh:mm`` strictly after the timestamp ``after``."""
    h, m = parse_time_of_day(hhmm)  # load_config has checked it
    now = dt.datetime.fromtimestamp(after)
    at = now.replace(hour=h, minute=m, second=0, microsecond=0)
    if at.timestamp() <= after:
        at = (at + dt.timedelta(days=1)).replace(hour=h, minute=m)
    return at.timestamp()


class Orchestrator:
    """Per-user sleep queue, triggers and chat entry point over one :class:`Engine`."""

    def __init__(self, engine: Engine, chat: ChatService | None = None, *,
                 clock: Callable[[], float] = time.time, poll_seconds: float = 30.0):
        self.engine = engine
        self.chat = chat or ChatService(engine)
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.cfg = engine.cfg.sleep
        self._queued: OrderedDict[str, _Queued] = OrderedDict()  # mirror of SQLite, FIFO
        self._running: _Running | None = None
        self._listeners: dict[int, list[Progress]] = {}
        self._waiters: dict[int, list[asyncio.Future]] = {}
        self._results: OrderedDict[int, CycleReport] = OrderedDict()
        self._exclusive: set[str] = set()  # users inside run_exclusive
        self._changed = asyncio.Condition()
        self._wake = asyncio.Event()
        self._stopping = False
        self._paused = False
        self._last_kind: SleepKind = "light"
        self._idle_fired: dict[str, float] = {}  # user → last_message_at that fired idle
        self._next_nightly: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: asyncio.Task | None = None
        self._trigger: asyncio.Task | None = None
        # (user, start, end or None) on the monotonic clock, for the load benchmark
        self.spans: deque[list] = deque(maxlen=10_000)

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self, *, worker: bool = True, triggers: bool = True) -> None:
        """Take the queue lock, re-queue interrupted jobs, then start the worker and the
        trigger tasks. Without the worker, jobs run only through :meth:`run_now`.

        Raises :class:`QueueBusy` when another live process holds the lock."""
        self._loop = asyncio.get_running_loop()
        if not recovery.hold_data_dir(self.engine.cfg.data_dir):
            raise QueueBusy(f"another process (a bot, a worker or a chat) runs the sleep queue "
                            f"on {self.engine.cfg.data_dir}")
        self._stopping = False
        await self.engine.recover()  # idempotent: cycles left running → failed, files repaired
        requeued = await self.engine.store.requeue_running()
        if requeued:
            log.warning("re-queued %d sleep job(s) interrupted by a crash or shutdown", requeued)
        await self._sync_queue()
        self._next_nightly = next_nightly(self.clock(), self.cfg.nightly_time)
        if worker:
            self._worker = asyncio.create_task(self._work(), name="sleep-worker")
        if triggers:
            self._trigger = asyncio.create_task(self._trigger_loop(), name="sleep-triggers")
        self._write_status()
        log.info("orchestrator started: %d job(s) queued", len(self._queued))

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop taking work; cancel the cycle between two steps; keep the queue in SQLite."""
        self._stopping = True
        if self._trigger is not None:
            self._trigger.cancel()
        run = self._running
        if run is not None and run.task is not None and not run.task.done():
            if run.stage == "fusion":  # promotion is short: finish it rather than roll back
                await asyncio.wait({run.task}, timeout=timeout / 2)
            run.task.cancel()
        self._wake.set()
        if self._worker is not None:
            done, _ = await asyncio.wait({self._worker}, timeout=timeout)
            if not done:
                self._worker.cancel()
                await asyncio.wait({self._worker}, timeout=1.0)
        await self._model_barrier(timeout)
        for job_id in list(self._waiters):
            self._resolve(job_id, None)
        self._write_status()
        recovery.release_data_dir(self.engine.cfg.data_dir)
        log.info("orchestrator stopped; %d job(s) stay queued", len(self._queued))

    async def _model_barrier(self, timeout: float) -> None:
        """Wait until the model thread finished the step it is in (a chat job goes next)."""
        from runtime.thread import RuntimeClosed

        try:
            await asyncio.wait_for(self.engine.runtime.run(lambda _ctx: None), timeout)
        except (RuntimeClosed, TimeoutError):
            pass

    # -- chat -----------------------------------------------------------------------------
    def handle_message(self, user_id: str, text: str, *, place: str = "",
                       public: bool = False, quote: str | None = None) -> ReplyStream:
        """Stream the reply (the user's accepted weights, even while they sleep); then count
        the turn and queue a light cycle at the turn threshold. The stream's ``reply`` has
        ``saved`` False (with a ``warning``) when memory could not be written. ``place``,
        ``public`` and ``quote``: see :meth:`ChatService.stream`; ``abandon()`` on the
        returned stream stores the exchange as undelivered (never consolidated)."""
        inner = self.chat.stream(user_id, text, place=place, public=public, quote=quote)

        async def produce(out: ReplyStream) -> AsyncIterator[str]:
            async for piece in inner:
                yield piece
                if out.abandoned:
                    inner.abandon()
            out.reply = inner.reply
            if inner.reply is not None and inner.reply.saved and inner.reply.delivered:
                await self._count_turn(user_id)

        return ReplyStream(produce)

    async def mark_undelivered(self, user_id: str, exchange_id: int, place: str = "") -> None:
        """The reply of exchange ``exchange_id`` never reached the user after all: it is kept
        flagged and no cycle will learn it (see :meth:`ChatService.mark_undelivered`)."""
        await self.chat.mark_undelivered(user_id, exchange_id, place)

    async def _count_turn(self, user_id: str) -> None:
        try:
            status = await self.engine.store.user_status(user_id)
            # Without a worker here (another process runs the queue) the in-memory mirror
            # never learns that a job ended: ask SQLite, where a request merges into the
            # user's pending job anyway.
            if (status and status.turns_since_sleep >= self.cfg.turn_threshold
                    and (self._worker is None or not self._pending(user_id))):
                await self.request_sleep(user_id, "light")
        except Exception:  # a full or read-only store must not break the chat
            log.exception("user %s: could not count the turn", user_id)

    # -- the queue ------------------------------------------------------------------------
    async def request_sleep(self, user_id: str, kind: SleepKind = "light",
                            progress: Progress | None = None) -> int:
        """Queue a cycle (merging into the user's pending one); return its job id."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        job_id = await self.engine.store.enqueue_sleep(user_id, kind)
        if progress is not None:
            self._listeners.setdefault(job_id, []).append(progress)
        run = self._running
        if run is not None and run.job_id == job_id:
            self._call(progress, "queued", {"position": 0, "job_id": job_id, "stage": run.stage})
        else:
            queued = self._queued.get(user_id)
            if queued is None or queued.job_id != job_id:
                self._queued[user_id] = _Queued(job_id, kind)
            elif kind == "deep":
                queued.kind = "deep"
            self._call(progress, "queued", {"position": self.queue_position(user_id),
                                            "job_id": job_id})
        log.info("user %s: %s sleep queued as job %d", user_id, kind, job_id)
        self._wake.set()
        return job_id

    async def wait_for_job(self, job_id: int, timeout: float | None = None
                           ) -> CycleReport | None:
        """The cycle report once job ``job_id`` ends; None when the orchestrator stops (the
        job stays queued) or the job is unknown. Raises :class:`TimeoutError` after
        ``timeout`` seconds: the job is still queued or running."""
        if job_id in self._results:
            return self._results[job_id]
        pending = {q.job_id for q in self._queued.values()}
        if self._running is not None:
            pending.add(self._running.job_id)
        if job_id not in pending:
            return None
        fut = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, []).append(fut)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        finally:  # a waiter that timed out (or was cancelled) is not resolved later
            waiters = self._waiters.get(job_id)
            if waiters is not None and fut in waiters and not fut.done():
                waiters.remove(fut)

    def watch(self, job_id: int, progress: Progress) -> None:
        """Send job ``job_id``'s progress (stages, then "done") to ``progress`` as well."""
        self._listeners.setdefault(job_id, []).append(progress)

    async def run_now(self, user_id: str, kind: SleepKind = "light",
                      progress: Progress | None = None, timeout: float | None = None
                      ) -> CycleReport | None:
        """Queue a cycle of ``user_id`` and return its report once it ran: in this task when
        no worker runs (the CLI), else by waiting for the worker (None on timeout or stop)."""
        job_id = await self.request_sleep(user_id, kind, progress)
        if self._worker is not None and not self._worker.done():
            try:
                return await self.wait_for_job(job_id, timeout)
            except TimeoutError:
                return None
        queued = self._queued.get(user_id)
        if queued is not None and queued.job_id == job_id:
            await self._run_job(job_id, user_id, queued.kind)
        return self._results.get(job_id)

    def state(self, user_id: str) -> UserState:
        run = self._running
        if run is not None and run.user_id == user_id:
            return UserState(user_id, "sleeping", run.stage, run.job_id)
        queued = self._queued.get(user_id)
        if queued is not None:
            return UserState(user_id, "queued", None, queued.job_id)
        return UserState(user_id, "awake", None, None)

    def queue_position(self, user_id: str) -> int | None:
        """0 while the user's cycle runs, 1.. in the queue (FIFO), None when awake."""
        if self._is_running(user_id):
            return 0
        for n, user in enumerate(self._queued, 1):
            if user == user_id:
                return n
        return None

    def _is_running(self, user_id: str) -> bool:
        """Whether a cycle of ``user_id`` runs now (the cluster head runs several at once)."""
        return self._running is not None and self._running.user_id == user_id

    def _any_running(self) -> bool:
        return self._running is not None

    def _pending(self, user_id: str) -> bool:
        return user_id in self._queued or self._is_running(user_id)

    async def _sync_queue(self) -> list[SleepJob]:
        """Refresh the in-memory mirror from SQLite (the truth); return the queued jobs."""
        rows = [r for r in await self.engine.store.queue_snapshot() if r.state == "queued"]
        self._queued = OrderedDict((r.user_id, _Queued(r.id, r.kind)) for r in rows)
        return rows

    def _choose(self, rows: list[SleepJob]) -> SleepJob | None:
        """FIFO, except that after a deep cycle the oldest light one goes first: a night of
        deep cycles never holds back a light cycle by more than one deep cycle."""
        rows = [r for r in rows if r.user_id not in self._exclusive]
        if not rows or self._paused:
            return None
        if self._last_kind == "deep":
            light = next((r for r in rows if r.kind == "light"), None)
            if light is not None:
                return light
        return rows[0]

    def pause(self) -> None:
        """Start no new cycle until :meth:`resume` (the running one finishes; requests queue)."""
        self._paused = True
        self._write_status()

    def resume(self) -> None:
        self._paused = False
        self._wake.set()
        self._write_status()

    # -- the worker -----------------------------------------------------------------------
    async def _work(self) -> None:
        backoff = 1.0
        while not self._stopping:
            self._wake.clear()
            try:
                row = self._choose(await self._sync_queue())
                if row is None:  # woken by a request here; polled for other processes' rows
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                    continue
                await self._run_job(row.id, row.user_id, row.kind)
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except Exception:  # e.g. the database went read-only: retry later, keep chatting
                log.exception("sleep worker error; retrying in %.0fs", backoff)
                try:
                    await asyncio.wait_for(self._wake.wait(), backoff)
                except TimeoutError:
                    pass
                backoff = min(backoff * 2, self.poll_seconds)

    async def _cycle_kind(self, user_id: str, kind: SleepKind) -> SleepKind:
        """The kind that runs: as requested, and deep every ``deep_every``-th cycle."""
        if kind == "deep" or self.cfg.deep_every <= 0:
            return kind
        status = await self.engine.store.user_status(user_id)
        done = status.cycles_done if status else 0
        return "deep" if (done + 1) % self.cfg.deep_every == 0 else kind

    async def _run_job(self, job_id: int, user_id: str, kind: SleepKind) -> None:
        run = self._running = _Running(job_id, user_id, kind)  # before any await: exclusive
        self._queued.pop(user_id, None)
        span = [user_id, run.started, None]
        self.spans.append(span)
        try:
            run.kind = await self._cycle_kind(user_id, kind)
            if run.kind != kind:
                await self.engine.store.set_job_kind(job_id, run.kind)
            await self.engine.store.set_job_state(job_id, "running")
            self._write_status()
            # exchanges newer than this came while the cycle ran: they still count as turns
            run.seen_up_to = await self.engine.store.max_exchange_id(user_id)
            try:  # a damaged checkpoint is set aside first: the cycle re-learns what it held
                await recovery.repair_checkpoint(self.engine, user_id)
            except Exception:  # the cycle reports what it finds; other users go on
                log.exception("user %s: cannot repair the checkpoint before the cycle", user_id)
            log.info("user %s: %s cycle (job %d) starts", user_id, run.kind, job_id)
            run.task = asyncio.create_task(
                run_cycle(self.engine.cycle_context(user_id), run.kind,
                          progress=self._progress_for(run)),
                name=f"sleep-cycle-{job_id}")
            try:
                report = await run.task
            except asyncio.CancelledError:
                await self._interrupted(run)
                if run.task.cancelled() and not _self_cancelled():
                    return  # stop() cancelled the cycle only: the worker loop ends itself
                raise
            await self._finished(run, report)
        finally:
            span[2] = time.monotonic()
            self._running = None
            self._write_status()
            async with self._changed:
                self._changed.notify_all()

    async def _finished(self, run: _Running, report: CycleReport) -> None:
        store = self.engine.store
        try:
            await store.set_job_state(run.job_id,
                                      "failed" if report.status == "failed" else "done")
            # Count only the turns the cycle never saw (they came while it ran). What it saw
            # and did not consolidate (rejected, failed) waits for the next trigger (turns,
            # idle or nightly) instead of re-triggering at once.
            turns = await store.recount_turns(run.user_id, run.seen_up_to)
        except Exception:  # the job stays 'running' in SQLite: the next start re-queues it
            log.exception("user %s: could not close job %d", run.user_id, run.job_id)
            turns = 0
        self._last_kind = run.kind
        self._results[run.job_id] = report
        while len(self._results) > 512:
            self._results.popitem(last=False)
        log.info("user %s: cycle (job %d) %s in %.1fs", run.user_id, run.job_id, report.status,
                 report.seconds)
        self._emit(run.job_id, "done", {
            "job_id": run.job_id, "kind": report.kind, "status": report.status,
            "accepted": report.accepted, "reason": report.reason,
            "checkpoint": report.checkpoint, "version": report.version,
            "seconds": report.seconds, "facts": len(report.facts)})
        self._resolve(run.job_id, report)
        if turns >= self.cfg.turn_threshold and not self._stopping:
            await self.request_sleep(run.user_id, "light")  # enough came during the cycle

    async def _interrupted(self, run: _Running) -> None:
        """Shutdown mid-cycle: the job goes back to the queue (same place), the cycle row
        is closed as failed; the user's weights were never touched before promotion."""
        store = self.engine.store
        try:
            await store.set_job_state(run.job_id, "queued")
            for cycle in await store.running_cycles():
                if cycle.user_id == run.user_id:
                    await store.finish_cycle(cycle.id, "failed", {"error": "interrupted"})
        except Exception:  # the next start re-queues it anyway (requeue_running)
            log.exception("user %s: could not re-queue job %d", run.user_id, run.job_id)
        self._queued[run.user_id] = _Queued(run.job_id, run.kind)
        self._queued.move_to_end(run.user_id, last=False)
        self._emit(run.job_id, "interrupted", {"job_id": run.job_id, "requeued": True})
        self._resolve(run.job_id, None)
        log.info("user %s: cycle (job %d) interrupted, job kept in the queue", run.user_id,
                 run.job_id)

    # -- progress -------------------------------------------------------------------------
    def _progress_for(self, run: _Running) -> Progress:
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()

        def on_progress(stage: str, info: dict) -> None:
            # training progress arrives on the model thread: hand it to the event loop
            if threading.get_ident() != loop_thread:
                loop.call_soon_threadsafe(on_progress, stage, info)
                return
            if stage == "done":
                return  # the orchestrator sends its own "done" once the job is closed
            stage_now = next_stage(stage, info)
            if stage_now != run.stage:
                run.stage = stage_now
                self._write_status()
            self._emit(run.job_id, stage, dict(info))

        return on_progress

    def _emit(self, job_id: int, stage: str, info: dict) -> None:
        for cb in list(self._listeners.get(job_id, [])):
            self._call(cb, stage, info)

    @staticmethod
    def _call(cb: Progress | None, stage: str, info: dict) -> None:
        if cb is None:
            return
        try:
            cb(stage, info)
        except Exception:  # a listener's bug must not stop the queue
            log.exception("progress listener failed on %s", stage)

    def _resolve(self, job_id: int, report: CycleReport | None) -> None:
        for fut in self._waiters.pop(job_id, []):
            if not fut.done():
                fut.set_result(report)
        self._listeners.pop(job_id, None)

    # -- exclusive work (forget) ----------------------------------------------------------
    async def run_exclusive(self, user_id: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()`` while no cycle of ``user_id`` runs: waits for the user's running cycle
        to end, and the worker does not start the user's queued cycle until ``fn`` returns.
        Other users' cycles go on meanwhile. Not re-entrant for the same user."""
        async with self._changed:
            await self._changed.wait_for(
                lambda: user_id not in self._exclusive and not self._is_running(user_id))
            self._exclusive.add(user_id)
        try:
            return await fn()
        finally:
            self._exclusive.discard(user_id)
            async with self._changed:
                self._changed.notify_all()
            self._wake.set()

    # -- triggers -------------------------------------------------------------------------
    async def _trigger_loop(self) -> None:
        while not self._stopping:
            try:
                await self.check_triggers()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sleep trigger check failed")
            await asyncio.sleep(self.poll_seconds)

    async def check_triggers(self) -> list[int]:
        """Queue idle and nightly cycles that are due at ``clock()``; return the job ids."""
        now = self.clock()
        jobs = await self._idle_jobs(now)
        if self._next_nightly is None:
            self._next_nightly = next_nightly(now, self.cfg.nightly_time)
        if now >= self._next_nightly:
            self._next_nightly = next_nightly(now, self.cfg.nightly_time)
            jobs += await self._nightly_jobs()
        return jobs

    async def _idle_jobs(self, now: float) -> list[int]:
        """Light cycles for users silent for ``idle_minutes`` with unconsolidated exchanges;
        once per silence (a rejected cycle is not retried until the user speaks again)."""
        store, jobs = self.engine.store, []
        if self.cfg.idle_minutes <= 0:
            return jobs
        for user_id in await store.list_users():
            status = await store.user_status(user_id)
            last = status.last_message_at if status else None
            if (last is None or now - last < self.cfg.idle_minutes * 60
                    or self._idle_fired.get(user_id) == last or self._pending(user_id)
                    or (status.last_sleep_at or 0) >= last):
                continue
            if not await store.exchanges(user_id, unconsolidated_only=True):
                continue
            self._idle_fired[user_id] = last
            log.info("user %s: idle for %.0f min, queueing a light cycle", user_id,
                     (now - last) / 60)
            jobs.append(await self.request_sleep(user_id, "light"))
        return jobs

    async def _nightly_jobs(self) -> list[int]:
        """The nightly deep cycle (replay and dreaming) of every user with new exchanges."""
        store, jobs = self.engine.store, []
        for user_id in await store.list_users():
            if await store.exchanges(user_id, unconsolidated_only=True):
                jobs.append(await self.request_sleep(user_id, "deep"))
        log.info("nightly: %d deep cycle(s) queued", len(jobs))
        return jobs

    # -- status ---------------------------------------------------------------------------
    async def status(self, user_id: str) -> dict[str, Any]:
        """What ``/memory`` and ``bot status --user`` show for one user."""
        info = await user_status_dict(self.engine.store, self.engine.cfg.data_dir, user_id)
        state = self.state(user_id)
        position = self.queue_position(user_id)
        info.update(state=state.state, stage=state.stage, job_id=state.job_id,
                    queue_position=position,
                    next_sleep=next_sleep_text(self.cfg, state.state, state.stage, position,
                                               info["turns_since_sleep"]))
        return info

    def reports(self) -> list[CycleReport]:
        """Reports of the cycles this process finished (the latest 512), oldest first."""
        return list(self._results.values())

    async def wait_idle(self) -> None:
        """Return once no cycle runs and nothing is queued."""
        async with self._changed:
            await self._changed.wait_for(
                lambda: not self._any_running() and not self._queued)

    def snapshot(self) -> dict[str, Any]:
        """The running job and the queue, from memory (cheap; for logs and status)."""
        run = self._running
        return {
            "pid": os.getpid(),
            "updated": time.time(),
            "stopping": self._stopping,
            "paused": self._paused,
            "running": None if run is None else {
                "job_id": run.job_id, "user_id": run.user_id, "kind": run.kind,
                "stage": run.stage, "seconds": round(time.monotonic() - run.started, 1)},
            "queued": [{"job_id": q.job_id, "user_id": u, "kind": q.kind}
                       for u, q in self._queued.items()],
        }

    def _write_status(self) -> None:
        """``<data_dir>/orchestrator.json``: lets ``bot status`` in another process see the
        stage of the running cycle. Best effort: a read-only disk must not stop the queue."""
        path = self.engine.cfg.data_dir / STATUS_FILE
        tmp = path.with_name(f".{STATUS_FILE}.tmp")
        try:  # no fsync: a hint for other processes, not state (and this is the event loop)
            tmp.write_text(json.dumps(self.snapshot()))
            os.replace(tmp, path)
        except OSError as exc:
            log.debug("cannot write the status file: %s", exc)


def _self_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def next_sleep_text(cfg: SleepConfig, state: str, stage: str | None, position: int | None,
                    turns: int) -> str:
    """When the user's next cycle comes, in words."""
    if state == "sleeping":
        return f"now (sleeping: {stage})"
    if state == "queued":
        return f"soon (queued, position {position})"
    parts = [f"after {max(0, cfg.turn_threshold - turns)} more turns"]
    if cfg.idle_minutes > 0 and turns:
        parts.append(f"after {cfg.idle_minutes:g} min without messages")
    parts.append(f"at the nightly deep cycle ({cfg.nightly_time})")
    return ", or ".join(parts)


async def user_status_dict(store: Store, data_dir: Path, user_id: str) -> dict[str, Any]:
    """The stored side of a user's status: counters, replay size and checkpoint."""
    status = await store.user_status(user_id)
    facts = len(await store.replay_items(user_id)) if status else 0
    root = user_paths(data_dir, user_id).checkpoints
    records = await store.checkpoints(user_id)
    current = next((r.version for r in records if r.is_current), None)
    # verified (once per file version): a damaged delta is reported, never shown as fine
    choice = checkpoints.choose_checkpoint(root, [r.version for r in records], current)
    path = choice.path
    problem = choice.problem or checkpoints.recent_damage(root, path)  # repaired, not rebuilt
    try:
        size = (path / checkpoints.DELTA).stat().st_size if path else 0
    except OSError:
        size = 0
    return {
        "checkpoint_problem": problem,
        "user_id": user_id,
        "turns_since_sleep": status.turns_since_sleep if status else 0,
        "cycles_done": status.cycles_done if status else 0,
        "facts_consolidated": facts,
        "checkpoint": f"{user_id}/{path.name}" if path else "base",
        "checkpoint_version": int(path.name[1:]) if path else 0,
        "checkpoint_bytes": size,
        "last_message_at": status.last_message_at if status else None,
        "last_sleep_at": status.last_sleep_at if status else None,
    }


def install_shutdown_handlers(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set ``stop`` (the caller then awaits ``Orchestrator.stop()``)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread / not supported
            pass
