"""The head of the distributed mode: the orchestrator that sends cycles to Ray workers.

    python -m bot cluster run [--workers N] [--address auto|HOST:PORT] [--until-empty]

:class:`ClusterOrchestrator` is the same scheduler as :class:`bot.orchestrator.Orchestrator`
(same SQLite queue, triggers, chat entry point, status) with another way of running a job:
up to one cycle per worker at once, each on a worker actor. For each job it

1. grants the user's lease (``store.acquire_lease``: a new, larger fencing token),
2. sends a :class:`bot.cluster.jobs.CycleJob` (a snapshot of the user's exchanges, replay
   buffer, current weights and settings) to a free :class:`bot.cluster.actors.SleepWorker`,
3. renews the lease while the worker answers pings; a worker that dies (its process killed)
   or stops answering until the lease runs out is given up on: a replacement actor starts,
   and the job runs again on another worker under a new token,
4. commits what comes back (:func:`sleep.pipeline.commit_cycle`) with the job's token: the
   store registers the promotion only while that token is the user's current lease, so a
   result that comes back after it was given up on is refused (counted as ``fenced``),
5. publishes the new version on the :class:`bot.cluster.actors.PromotionBoard`.

Only this process opens SQLite and writes the users' checkpoint folders. On a cluster with
GPUs each worker holds 1/``workers_per_gpu`` of a GPU, so every GPU runs that many cycles.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from bot import recovery
from bot.cluster.actors import (
    ChatReplica,
    PromotionBoard,
    SleepWorker,
    tensors_from_bytes,
)
from bot.cluster.jobs import CheckpointFiles, CycleJob, CycleResult
from bot.engine import Engine
from bot.orchestrator import Orchestrator, Progress, UserState, _Queued, _Running
from memory.store import LeaseLost, SleepKind
from runtime.config import ClusterConfig, Config
from runtime.thread import BACKGROUND
from sleep.pipeline import CycleReport, commit_cycle

log = logging.getLogger(__name__)

NAMESPACE = "sleepbot"
BOARD_NAME = "sleepbot-promotions"
CPU_WORKERS = 2  # cluster.workers = 0 (auto) on a cluster without GPUs


class WorkerLost(RuntimeError):
    """The worker running a job died or stopped answering until its lease expired."""


def pool_size(workers: int, workers_per_gpu: int, gpus: float) -> int:
    """How many sleep workers: ``workers`` when set; auto (0) is ``workers_per_gpu`` per GPU
    on a cluster with GPUs, 2 without (as before the auto setting)."""
    if workers > 0:
        return workers
    if gpus > 0:
        return max(1, int(gpus)) * workers_per_gpu
    return CPU_WORKERS


def gpu_share(size: int, workers_per_gpu: int, gpus: float) -> float:
    """The part of a GPU each of ``size`` workers asks Ray for: 1/``workers_per_gpu``
    (Ray then puts that many on each GPU and sets their CUDA_VISIBLE_DEVICES), smaller when
    ``size`` was set above what the GPUs hold at that rate; 0 on a cluster without GPUs.
    Rounded down to Ray's 0.0001 unit, so that exactly that many fit on one GPU."""
    if gpus <= 0:
        return 0.0
    per_gpu = max(workers_per_gpu, math.ceil(size / max(1, int(gpus))))
    return math.floor(10_000 / per_gpu) / 10_000


def local_gpus() -> int:
    """The GPUs a local Ray cluster started here will find (Ray's own detection: NVML,
    limited by CUDA_VISIBLE_DEVICES); 0 when there are none or it cannot tell."""
    try:
        from ray._private import accelerators

        manager = accelerators.get_accelerator_manager_for_resource("GPU")
        count = manager.get_current_node_num_accelerators()
        visible = manager.get_current_process_visible_accelerator_ids()
        return min(count, len(visible)) if visible is not None else count
    except Exception:  # a private API of Ray's: the CPU sizing below is the fallback
        log.debug("cannot count this machine's GPUs", exc_info=True)
        return 0


def connect(cc: ClusterConfig, num_cpus: int | None = None, *, num_gpus: int | None = None,
            workers_per_gpu: int = 1) -> bool:
    """Join the Ray cluster at ``cc.address``, or start a local one (one laptop: no broker,
    no server to install). Returns whether this call started Ray here (then shut it down).

    The local cluster has the GPUs Ray finds here unless ``num_gpus`` says how many (Ray
    also accepts logical GPUs on a machine without any: the tests)."""
    if cc.address:
        # nodes started by `python -m bot cluster head|join` require Ray's token (read when
        # Ray is first imported)
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    import ray

    if ray.is_initialized():
        return False
    if cc.address:
        ray.init(address=cc.address, namespace=NAMESPACE, log_to_driver=False)
    else:
        if num_cpus is None:
            # logical CPUs, not cores: room for a replacement while a stalled worker is kept
            gpus = num_gpus
            if gpus is None:  # the GPU count sizes only the auto pool
                gpus = 0 if cc.workers else local_gpus()
            num_cpus = max(2, 2 * pool_size(cc.workers, workers_per_gpu, gpus))
        # num_gpus None: Ray counts the GPUs itself (never 0 on a GPU host)
        gpu_option = {} if num_gpus is None else {"num_gpus": num_gpus}
        # address="local": a new cluster of our own even when another runs on this machine
        ray.init(address="local", num_cpus=num_cpus, **gpu_option,
                 include_dashboard=False, object_store_memory=cc.object_store_mb << 20,
                 log_to_driver=False, namespace=NAMESPACE)
    return True


def _ray_future(ref) -> asyncio.Future:
    return asyncio.wrap_future(ref.future())


@dataclass
class WorkerSlot:
    """One place in the pool: the actor now in it and what it did."""

    index: int
    name: str
    actor: Any
    pid: int = 0
    busy: bool = False
    jobs: int = 0
    seconds: float = 0.0
    generation: int = 0


class WorkerPool:
    """``size`` sleep-worker actors; a dead or stalled one is replaced by a fresh one.

    ``size`` 0 (or None) is auto: :func:`pool_size` of the connected cluster's GPUs. On a
    cluster with GPUs each actor holds :func:`gpu_share` of one (``gpu_share`` here)."""

    def __init__(self, cfg: Config, size: int | None = None):
        self.cfg, self.size = cfg, size or 0
        self.gpu_share = 0.0
        self.slots: list[WorkerSlot] = []
        self._free = asyncio.Condition()
        self.replaced = 0
        self.history: dict[str, dict] = {}  # worker name → jobs, seconds, pid (all ever)

    def _spawn(self, index: int, generation: int) -> WorkerSlot:
        import ray

        name = f"sleep-worker-{index}" + (f".{generation}" if generation else "")
        gpu = {"num_gpus": self.gpu_share} if self.gpu_share else {}
        actor = ray.remote(SleepWorker).options(num_cpus=1, max_restarts=0, **gpu).remote(
            self.cfg, name)
        return WorkerSlot(index, name, actor, generation=generation)

    def plan(self) -> None:
        """Size the pool (auto) and each worker's GPU share on the connected cluster."""
        import ray

        gpus = ray.cluster_resources().get("GPU", 0)
        self.size = pool_size(self.size, self.cfg.workers_per_gpu, gpus)
        self.gpu_share = gpu_share(self.size, self.cfg.workers_per_gpu, gpus)

    async def start(self) -> None:
        self.plan()
        self.slots = [self._spawn(i, 0) for i in range(self.size)]
        pids = await asyncio.gather(*(_ray_future(s.actor.start.remote()) for s in self.slots))
        places = await asyncio.gather(*(_ray_future(s.actor.where.remote())
                                        for s in self.slots))
        for slot, pid, place in zip(self.slots, pids, places, strict=True):
            slot.pid = pid
            self.history[slot.name] = {"pid": pid, "node": place["node"], "jobs": 0,
                                       "seconds": 0.0}
        log.info("cluster: %d sleep worker(s) ready (pids %s)%s", self.size, pids,
                 f", {self.gpu_share:g} GPU each" if self.gpu_share else "")

    def free(self) -> int:
        return sum(1 for s in self.slots if not s.busy)

    async def take(self) -> WorkerSlot:
        async with self._free:
            await self._free.wait_for(lambda: self.free() > 0)
            slot = next(s for s in self.slots if not s.busy)
            slot.busy = True
            return slot

    async def give_back(self, slot: WorkerSlot, seconds: float | None = None) -> None:
        if seconds is not None:
            slot.jobs += 1
            slot.seconds += seconds
            self.history[slot.name]["jobs"] += 1
            self.history[slot.name]["seconds"] += seconds
        async with self._free:
            slot.busy = False
            self._free.notify_all()

    async def replace(self, slot: WorkerSlot, *, kill: bool = True) -> Any:
        """Put a fresh actor in ``slot``'s place; returns the old actor (killed unless
        ``kill`` is False: a stalled one is kept until its late result is dealt with, except
        when the GPUs have no free share for its replacement)."""
        import ray

        old = slot.actor
        if not kill and self.gpu_share:
            kill = ray.available_resources().get("GPU", 0) < self.gpu_share - 1e-6
        if kill:
            with contextlib.suppress(Exception):
                ray.kill(old, no_restart=True)
        new = self._spawn(slot.index, slot.generation + 1)
        try:
            new.pid = await _ray_future(new.actor.start.remote())
        except Exception:  # keep the place: the next job on it fails fast and tries again
            log.exception("cluster: replacement for %s failed to start", slot.name)
            slot.actor, slot.generation = new.actor, new.generation
            await self.give_back(slot)
            raise
        slot.name, slot.actor, slot.pid, slot.generation = (new.name, new.actor, new.pid,
                                                           new.generation)
        place = await _ray_future(new.actor.where.remote())
        self.history[slot.name] = {"pid": new.pid, "node": place["node"], "jobs": 0,
                                   "seconds": 0.0}
        self.replaced += 1
        log.warning("cluster: %s replaced the lost worker (pid %d)", slot.name, new.pid)
        await self.give_back(slot)
        return old

    def pids(self) -> dict[str, int]:
        return {s.name: s.pid for s in self.slots}

    def shutdown(self) -> None:
        import ray

        # idle workers remove their scratch folders first; a busy or lost one's is swept by
        # the next worker on its host
        closing = []
        for slot in self.slots:
            with contextlib.suppress(Exception):
                closing.append(slot.actor.close.remote())
        with contextlib.suppress(Exception):
            ray.wait(closing, num_returns=len(closing), timeout=5)
        for slot in self.slots:
            with contextlib.suppress(Exception):
                ray.kill(slot.actor, no_restart=True)


@dataclass
class ClusterStats:
    """What the head saw: attempts, workers lost, results refused by the fence."""

    attempts: int = 0
    workers_lost: int = 0  # attempts whose worker died or stalled past its lease
    fenced: int = 0  # results refused at commit: their lease was no longer current
    late_results: int = 0  # results that came back from a worker already given up on
    late_promoted: int = 0  # of those, promoted anyway (the fence failed): must stay 0
    lost_reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class ClusterOrchestrator(Orchestrator):
    """The orchestrator of the head: one queue, cycles computed on a pool of workers."""

    def __init__(self, engine: Engine, pool: WorkerPool, board: Any = None, **kwargs: Any):
        super().__init__(engine, **kwargs)
        self.pool = pool
        self.board = board
        self.cluster = engine.cfg.cluster
        self._runs: dict[str, _Running] = {}
        self._late: set[asyncio.Task] = set()
        self.stats = ClusterStats()
        # tests: a job's first attempt keeps its result this long on the worker (a slow
        # worker, so that it can be killed or frozen at a known point of its job)
        self.hold_first_seconds = 0.0
        self.owns_ray = False  # orchestrator_for started Ray here: stop() shuts it down

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self, *, worker: bool = True, triggers: bool = True) -> None:
        await super().start(worker=worker, triggers=triggers)
        if self.board is not None:  # whoever answers learns every user's current version
            for user_id in await self.engine.store.list_users():
                await self._publish(user_id)

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        tasks = [r.task for r in self._runs.values() if r.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        for task in list(self._late):
            task.cancel()
        await super().stop(timeout)
        if self.owns_ray:
            import ray

            self.pool.shutdown()
            ray.shutdown()

    # -- what runs ------------------------------------------------------------------------
    def state(self, user_id: str) -> UserState:
        run = self._runs.get(user_id)
        if run is not None:
            return UserState(user_id, "sleeping", run.stage, run.job_id)
        return super().state(user_id)

    def _is_running(self, user_id: str) -> bool:
        return user_id in self._runs

    def _any_running(self) -> bool:
        return bool(self._runs)

    async def request_sleep(self, user_id: str, kind: SleepKind = "light",
                            progress: Progress | None = None) -> int:
        job_id = await self.engine.store.enqueue_sleep(user_id, kind)
        if progress is not None:
            self._listeners.setdefault(job_id, []).append(progress)
        run = self._runs.get(user_id)
        if run is None or run.job_id != job_id:
            queued = self._queued.get(user_id)
            if queued is None or queued.job_id != job_id:
                self._queued[user_id] = _Queued(job_id, kind)
            elif kind == "deep":
                queued.kind = "deep"
        self._call(progress, "queued", {"position": self.queue_position(user_id),
                                        "job_id": job_id})
        self._wake.set()
        return job_id

    async def wait_for_job(self, job_id: int, timeout: float | None = None
                           ) -> CycleReport | None:
        if job_id in self._results:
            return self._results[job_id]
        pending = {q.job_id for q in self._queued.values()} | {
            r.job_id for r in self._runs.values()}
        if job_id not in pending:
            return None
        fut = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, []).append(fut)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        finally:
            waiters = self._waiters.get(job_id)
            if waiters is not None and fut in waiters and not fut.done():
                waiters.remove(fut)

    def snapshot(self) -> dict[str, Any]:
        out = super().snapshot()
        cycles = [{"job_id": r.job_id, "user_id": r.user_id, "kind": r.kind,
                   "stage": r.stage, "seconds": round(time.monotonic() - r.started, 1)}
                  for r in self._runs.values()]
        out["running"] = cycles[0] if cycles else None  # what `bot status` has always read
        out["cycles"] = cycles  # every cycle running on the workers
        out["workers"] = self.pool.pids() if self.pool.slots else {}
        return out

    # -- the work loop: one job per free worker --------------------------------------------
    async def _work(self) -> None:
        backoff = 1.0
        while not self._stopping:
            self._wake.clear()
            try:
                rows = await self._sync_queue()
                async with self._changed:
                    self._changed.notify_all()  # wait_idle re-reads the mirror
                while len(self._runs) < self.pool.size:
                    row = self._choose([r for r in rows if r.user_id not in self._runs])
                    if row is None:
                        break
                    rows.remove(row)
                    self._last_kind = row.kind  # the next choice looks past a deep one
                    run = self._register(row.id, row.user_id, row.kind)
                    run.task = asyncio.create_task(self._job(run), name=f"cluster-{row.id}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cluster scheduler error; retrying in %.0fs", backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), backoff)
                backoff = min(backoff * 2, self.poll_seconds)

    def _register(self, job_id: int, user_id: str, kind: SleepKind) -> _Running:
        run = self._runs[user_id] = _Running(job_id, user_id, kind)
        self._queued.pop(user_id, None)
        self.spans.append([user_id, run.started, None])
        return run

    async def _run_job(self, job_id: int, user_id: str, kind: SleepKind) -> None:
        """One job now, in this task (``run_now`` without the work loop)."""
        await self._job(self._register(job_id, user_id, kind))

    async def _job(self, run: _Running) -> None:
        store = self.engine.store
        try:
            run.kind = await self._cycle_kind(run.user_id, run.kind)
            await store.set_job_kind(run.job_id, run.kind)
            await store.set_job_state(run.job_id, "running")
            self._write_status()
            run.seen_up_to = await store.max_exchange_id(run.user_id)
            try:
                await recovery.repair_checkpoint(self.engine, run.user_id)
            except Exception:
                log.exception("user %s: cannot repair the checkpoint before the cycle",
                              run.user_id)
            try:
                report = await self._remote_cycle(run)
            except asyncio.CancelledError:
                await self._interrupted(run)
                raise
            await self._finished(run, report)
        except asyncio.CancelledError:
            pass  # stop(): the job is back in the queue
        finally:
            for span in reversed(self.spans):
                if span[0] == run.user_id and span[1] == run.started:
                    span[2] = time.monotonic()
                    break
            self._runs.pop(run.user_id, None)
            self._write_status()
            async with self._changed:
                self._changed.notify_all()
            self._wake.set()

    # -- one cycle on the workers ---------------------------------------------------------
    async def _remote_cycle(self, run: _Running) -> CycleReport:
        store, user_id = self.engine.store, run.user_id
        report = CycleReport(user_id, run.kind)
        report.cycle_id = await store.start_cycle(user_id, run.kind)
        tic = time.perf_counter()
        attempts: list[dict] = []
        progress = self._progress_for(run)
        try:
            for _ in range(self.cluster.max_attempts):
                slot = await self.pool.take()
                lease = await store.acquire_lease(user_id, slot.name,
                                                  self.cluster.lease_seconds, force=True)
                attempt = {"worker": slot.name, "pid": slot.pid, "lease": lease.token}
                attempts.append(attempt)
                self.stats.attempts += 1
                run.stage = f"curation (on {slot.name})"
                self._write_status()
                try:
                    job = await self._snapshot(run, report.cycle_id, lease.token)
                    job.hold_seconds = self.hold_first_seconds if len(attempts) == 1 else 0.0
                except BaseException:
                    await self.pool.give_back(slot)
                    raise
                try:
                    result = await self._await_result(slot, job)
                except WorkerLost as exc:
                    attempt["lost"] = str(exc)
                    self.stats.workers_lost += 1
                    self.stats.lost_reasons.append(str(exc))
                    log.warning("user %s: %s; the job runs again elsewhere", user_id, exc)
                    continue
                await self.pool.give_back(slot, result.seconds)
                report = self._merge(report, result)
                for name, info in result.report.get("stages", {}).items():
                    progress(name, info)
                try:
                    await self._commit(report, result, progress)
                except LeaseLost as exc:
                    attempt["fenced"] = str(exc)
                    self.stats.fenced += 1
                    continue
                await store.release_lease(user_id, lease.token)
                break
            else:
                report.status = "failed"
                report.reason = (f"no worker finished the cycle in {len(attempts)} attempts")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            report.status, report.reason = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("user %s cycle %s failed on the head", user_id, report.cycle_id)
        report.seconds = round(time.perf_counter() - tic, 2)
        report.accepted = report.status == "accepted"
        report.checkpoint = self.engine.checkpoint_label(user_id)
        report.stages["cluster"] = {"attempts": attempts}
        await store.finish_cycle(report.cycle_id, report.status, report.to_dict())
        return report

    async def _snapshot(self, run: _Running, cycle_id: int, token: int) -> CycleJob:
        """What the cycle reads, as of now (the head is the only door to SQLite)."""
        store, engine, user_id = self.engine.store, self.engine, run.user_id
        current = (await engine.resolve_checkpoint(user_id)).path
        paths = engine.paths(user_id)
        identity = paths.identity.read_bytes() if paths.identity.is_file() else None
        # ~100 MB read and hashed for the bundled model: off the event loop (chat goes on)
        files = (await asyncio.to_thread(CheckpointFiles.read, current)
                 if current is not None else None)
        cfg = engine.cfg
        return CycleJob(run.job_id, user_id, run.kind, cycle_id, token,
                        await store.exchanges(user_id), await store.replay_items(user_id),
                        files, identity, cfg.sleep, cfg.chat.system_prompt, cfg.chat.bot_name,
                        cfg.model)

    @staticmethod
    def _merge(report: CycleReport, result: CycleResult) -> CycleReport:
        r = result.report
        report.status, report.reason = r["status"], r["reason"]
        report.examples, report.facts = r["examples"], r["facts"]
        report.stages.update(r["stages"])
        report.validation = r["validation"]
        return report

    async def _await_result(self, slot: WorkerSlot, job: CycleJob) -> CycleResult:
        """The worker's result; :class:`WorkerLost` once it died, or stopped answering and
        its lease ran out (then a replacement takes its place in the pool)."""
        from ray.exceptions import RayError

        store, lease_s = self.engine.store, self.cluster.lease_seconds
        fut = _ray_future(slot.actor.run.remote(job))
        interval = max(0.2, lease_s / 4)
        while True:
            done, _ = await asyncio.wait({fut}, timeout=interval)
            if done:
                try:
                    return fut.result()
                except RayError as exc:  # the actor's process died (killed, OOM, crash)
                    lost = f"{slot.name} (pid {slot.pid}) died: {type(exc).__name__}"
                    await self.pool.replace(slot)
                    raise WorkerLost(lost) from None
            try:
                await asyncio.wait_for(_ray_future(slot.actor.ping.remote()), interval)
                alive = True
            except (TimeoutError, RayError):
                alive = False
            if alive and await store.renew_lease(job.user_id, job.lease_token, lease_s):
                continue
            lease = await store.lease(job.user_id)
            if not alive and lease is not None and lease.token == job.lease_token and (
                    lease.expires_at > time.time()):
                continue  # not answering: it keeps the job until its lease runs out
            # given up on: keep its actor until its result (if any) comes, then refuse it
            lost = (f"{slot.name} (pid {slot.pid}) stopped answering; lease "
                    f"{job.lease_token} expired")
            old = await self.pool.replace(slot, kill=False)
            self._watch_late(old, fut, job)
            raise WorkerLost(lost)

    def _watch_late(self, actor: Any, fut: asyncio.Future, job: CycleJob) -> None:
        """A result from a worker already given up on goes through the same commit, with
        its old token: the store refuses it (the fence); then the actor is ended."""

        async def late() -> None:
            import ray

            try:
                result = await fut
            except Exception:
                return
            finally:
                with contextlib.suppress(Exception):
                    ray.kill(actor, no_restart=True)
            self.stats.late_results += 1
            report = CycleReport(job.user_id, job.kind, cycle_id=job.cycle_id)
            try:
                if await self._commit(self._merge(report, result), result, None):
                    self.stats.late_promoted += 1
                    log.error("user %s: a late result was promoted", job.user_id)
            except LeaseLost as exc:
                self.stats.fenced += 1
                log.info("user %s: late result of %s refused: %s", job.user_id,
                         result.worker, exc)

        task = asyncio.create_task(late(), name=f"late-{job.job_id}")
        self._late.add(task)
        task.add_done_callback(self._late.discard)

    async def _commit(self, report: CycleReport, result: CycleResult,
                      progress: Progress | None) -> bool:
        """Stage 7 on the head under the result's lease token; True if it promoted."""
        store, user_id = self.engine.store, result.user_id
        if result.exchange_ids is None:
            return False  # rejected or failed: nothing changes
        await store.check_lease(user_id, result.lease_token)  # an empty cycle too
        tensors = None
        if result.delta is not None:
            tensors = await self.engine.runtime.run(tensors_from_bytes, result.delta,
                                                    priority=BACKGROUND)
        if progress is not None:
            progress("validation", report.stages.get("validation", {}))
        cc = self.engine.cycle_context(user_id)
        await commit_cycle(cc, report, result.outcome(tensors), progress,
                           lease_token=result.lease_token)
        if report.status != "accepted":
            return False  # an empty cycle: its exchanges are marked, nothing promoted
        report.reason = report.reason or result.report.get("reason", "")
        await self._publish(user_id)
        return True

    async def _publish(self, user_id: str) -> None:
        """Tell every host the user's current version (and hand it the files)."""
        if self.board is None:
            return
        path = (await self.engine.resolve_checkpoint(user_id)).path
        files = await asyncio.to_thread(CheckpointFiles.read, path) if path else None
        await _ray_future(self.board.publish.remote(user_id, files.version if files else 0,
                                                    files))

    async def late_results(self, timeout: float = 60.0) -> None:
        """Wait for the results of workers given up on (tests, the bench)."""
        if self._late:
            await asyncio.wait(set(self._late), timeout=timeout)


def start_board() -> Any:
    """The promotion board (one per cluster, named so any process of it can find it)."""
    import ray

    return ray.remote(PromotionBoard).options(name=BOARD_NAME, num_cpus=0,
                                              get_if_exists=True).remote()


def start_replica(cfg: Config, name: str, board: Any) -> Any:
    """A chat replica actor (answers ``answer(user, question)`` from promoted weights)."""
    import ray

    return ray.remote(ChatReplica).options(name=name, num_cpus=0).remote(cfg, name, board)


async def orchestrator_for(engine: Engine, **kwargs: Any) -> Orchestrator:
    """The orchestrator this configuration asks for: the single-host one (the default), or,
    with ``cluster.enabled``, a :class:`ClusterOrchestrator` on a pool of Ray workers (the
    cluster at ``cluster.address``, or a local one started here)."""
    cc = engine.cfg.cluster
    if not cc.enabled:
        return Orchestrator(engine, **kwargs)
    started = connect(cc, workers_per_gpu=engine.cfg.workers_per_gpu)
    pool = WorkerPool(engine.cfg, cc.workers)  # 0: auto, sized on the cluster's GPUs
    await pool.start()
    orch = ClusterOrchestrator(engine, pool, start_board(), **kwargs)
    orch.owns_ray = started
    return orch
