"""The model thread: one dedicated thread owns the model and runs every MLX call.

Since mlx 0.31.2 a stream belongs to the thread that created it, so async code must never
run MLX in a pool thread. As aiosqlite does for sqlite3, :class:`ModelRuntime` keeps a queue
of ``(future, job)`` pairs worked by one thread. A job is a function of a :class:`ModelContext`;
a job that is a generator runs one step per ``next()`` and goes back into the queue between
steps, so chat (priority ``CHAT``) always runs before the next step of a sleep cycle
(priority ``BACKGROUND``).

Per-user weights are module overrides: the base model stays loaded once; a user's changed
modules are swapped in for each request from a bounded LRU cache. How a checkpoint folder is
read is the storage layer's business: the runtime is handed a ``delta_loader`` (the engine
passes ``memory.checkpoints.load_delta``) and never imports the layers above it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import heapq
import inspect
import itertools
import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_unflatten

from runtime.models import LoadedModel

T = TypeVar("T")

log = logging.getLogger(__name__)

CHAT = 0
DeltaLoader = Callable[[Path], dict[str, mx.array]]  # checkpoint folder → changed tensors
BACKGROUND = 10
_STOP = object()


class RuntimeClosed(RuntimeError):
    """The runtime was shut down before the job ran."""


class JobCancelled(RuntimeError):
    """The job was cancelled between two of its steps."""


def module_paths(model: nn.Module) -> dict[str, nn.Module]:
    return dict(model.named_modules())


class ModelContext:
    """What a job sees: the model, the tokenizer, and the weights-swapping helpers.

    Only ever touched from the model thread.
    """

    def __init__(self, loaded: LoadedModel, device: str, cache_size: int = 8,
                 delta_loader: DeltaLoader | None = None):
        self.loaded = loaded
        self._delta_loader = delta_loader
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.device = device
        self._base: dict[str, nn.Module] = {}
        self._active: dict[str, nn.Module] = {}
        self._cache: OrderedDict[tuple, dict[str, nn.Module]] = OrderedDict()
        self._cache_size = cache_size
        self.active_user: str | None = None
        self.active_checkpoint: str | None = None
        # what jobs derive from the base model alone (e.g. the drift reference of
        # sleep.validation), computed once per loaded model
        self.memo: dict[str, object] = {}

    # -- swapping -------------------------------------------------------------------------
    def base_module(self, path: str) -> nn.Module:
        """The base model's module at ``path`` (as loaded, before any override)."""
        if path in self._base:
            return self._base[path]
        return module_paths(self.model)[path]

    def use(self, overrides: dict[str, nn.Module] | None) -> None:
        """Make the model compute with ``overrides`` (path → module) on top of the base."""
        overrides = overrides or {}
        if self._active is overrides or (not overrides and not self._active):
            return
        current = module_paths(self.model)
        updates = []
        for path in self._active:
            if path not in overrides:
                updates.append((path, self._base[path]))
        for path, module in overrides.items():
            if path not in self._base:
                self._base[path] = current[path]
            updates.append((path, module))
        if updates:
            self.model.update_modules(tree_unflatten(updates))
        self._active = overrides

    def use_base(self) -> None:
        self.use(None)
        self.active_user, self.active_checkpoint = None, None

    def user_overrides(self, user_id: str, checkpoint: Path | None) -> dict[str, nn.Module]:
        """The user's changed modules, from the LRU cache or the checkpoint on disk."""
        if checkpoint is None:
            return {}
        # the folder's inode and mtime too: a version rebuilt under the same name (after a
        # crash, a forget or a damaged file set aside) is other weights
        try:
            st = Path(checkpoint).stat()
            key = (user_id, str(checkpoint), st.st_ino, st.st_mtime_ns)
        except OSError:
            key = (user_id, str(checkpoint), 0, 0)  # the loader says what is wrong
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        if self._delta_loader is None:
            raise RuntimeError("this runtime was started without a checkpoint loader")
        modules = modules_from_tensors(self._delta_loader(checkpoint))
        self._cache[key] = modules
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return modules

    def use_user(self, user_id: str, checkpoint: Path | None) -> None:
        """Compute with ``user_id``'s weights at ``checkpoint`` (None: the base model)."""
        self.use(self.user_overrides(user_id, checkpoint))
        self.active_user = user_id
        self.active_checkpoint = str(checkpoint) if checkpoint else None

    def forget_cached(self, user_id: str) -> None:
        for key in [k for k in self._cache if k[0] == user_id]:
            del self._cache[key]


def run_to_end(steps: Generator[Any, None, T]) -> T:
    """The value of a generator job run in one go (inside another job, or a benchmark)."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def modules_from_tensors(tensors: dict[str, mx.array]) -> dict[str, nn.Module]:
    """Dense ``nn.Linear`` modules from ``{"<path>.weight": w, "<path>.bias": b}`` tensors."""
    grouped: dict[str, dict[str, mx.array]] = {}
    for name, value in tensors.items():
        path, _, leaf = name.rpartition(".")
        grouped.setdefault(path, {})[leaf] = value
    modules: dict[str, nn.Module] = {}
    for path, leaves in grouped.items():
        weight = leaves["weight"]
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias="bias" in leaves)
        linear.weight = weight
        if "bias" in leaves:
            linear.bias = leaves["bias"]
        linear.freeze()
        modules[path] = linear
    return modules


def _serve(ref: weakref.ref[ModelRuntime]) -> None:
    """The model thread: run jobs until ``close()``, then park until the process exits.

    When a thread exits, MLX frees its compile cache, which takes the GIL; if that races the
    interpreter's shutdown the process aborts ("terminate called without an active exception",
    ml-explore/mlx#4327). A parked daemon thread never exits; it drops the runtime, so the model
    is freed with it.
    """
    runtime = ref()
    if runtime is None:
        return
    stopped = runtime._stopped
    try:
        runtime._main()
    finally:
        del runtime
        stopped.set()
    threading.Event().wait()


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    fn: Callable[[ModelContext], Any] = field(compare=False)
    future: concurrent.futures.Future = field(compare=False)
    on_item: Callable[[Any], None] | None = field(compare=False, default=None)
    gen: Iterator | None = field(compare=False, default=None)
    cancelled: threading.Event = field(compare=False, default_factory=threading.Event)


class ModelRuntime:
    """Owns the model thread. ``start()`` loads the model there; ``close()`` stops it."""

    def __init__(self, loader: Callable[[], LoadedModel], device: str | None = None,
                 cache_size: int = 8, delta_loader: DeltaLoader | None = None):
        self._loader = loader
        self._delta_loader = delta_loader
        self._device = device
        self._cache_size = cache_size
        self._heap: list[_Job] = []
        self._cv = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._ready = concurrent.futures.Future()
        self._stopped = threading.Event()
        self.ctx: ModelContext | None = None
        self.steps_run = 0

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> ModelRuntime:
        """Start the thread and block until the model is loaded (re-raising load errors)."""
        if self._thread is None:
            self._thread = threading.Thread(target=_serve, args=(weakref.ref(self),),
                                            name="mlx-model", daemon=True)
            self._thread.start()
        self._ready.result()
        return self

    async def astart(self) -> ModelRuntime:
        if self._thread is None:
            self._thread = threading.Thread(target=_serve, args=(weakref.ref(self),),
                                            name="mlx-model", daemon=True)
            self._thread.start()
        await asyncio.wrap_future(self._ready)
        return self

    def close(self, timeout: float = 30.0) -> None:
        """Stop after the job step in progress; queued jobs fail with RuntimeClosed."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._stopped.wait(timeout)  # the thread parks instead of exiting: see _serve

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    @property
    def loaded(self) -> LoadedModel:
        self._ready.result()
        return self.ctx.loaded

    # -- submitting -----------------------------------------------------------------------
    def submit(self, fn: Callable[..., Any], *args: Any, priority: int = CHAT,
               on_item: Callable[[Any], None] | None = None) -> concurrent.futures.Future:
        """Queue ``fn(ctx, *args)``; returns a future for its result (or generator return)."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        job = _Job(priority, next(self._seq), lambda ctx: fn(ctx, *args), fut, on_item)
        fut.job = job  # lets callers cancel a stepped job between steps
        with self._cv:
            if self._closed:
                raise RuntimeClosed("the model runtime is closed")
            heapq.heappush(self._heap, job)
            self._cv.notify()
        return fut

    def call(self, fn: Callable[..., Any], *args: Any, priority: int = CHAT) -> Any:
        """Run ``fn(ctx, *args)`` on the model thread and wait (for sync code)."""
        if threading.current_thread() is self._thread:
            return fn(self.ctx, *args)
        return self.submit(fn, *args, priority=priority).result()

    async def run(self, fn: Callable[..., Any], *args: Any, priority: int = CHAT,
                  on_item: Callable[[Any], None] | None = None) -> Any:
        """Await ``fn(ctx, *args)`` run on the model thread."""
        fut = self.submit(fn, *args, priority=priority, on_item=on_item)
        try:
            return await asyncio.wrap_future(fut)
        except asyncio.CancelledError:
            fut.job.cancelled.set()
            raise

    async def stream(self, fn: Callable[..., Iterator[Any]], *args: Any,
                     priority: int = CHAT) -> AsyncIterator[Any]:
        """Iterate, from async code, over what generator job ``fn(ctx, *args)`` yields."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        fut = self.submit(fn, *args, priority=priority,
                          on_item=lambda item: loop.call_soon_threadsafe(queue.put_nowait, item))
        fut.add_done_callback(lambda _f: loop.call_soon_threadsafe(queue.put_nowait, _STOP))
        try:
            while True:
                item = await queue.get()
                if item is _STOP:
                    break
                yield item
            fut.result()  # re-raise the job's error, if any
        finally:
            fut.job.cancelled.set()

    # -- the thread -----------------------------------------------------------------------
    def _main(self) -> None:
        try:
            loaded = self._loader()
            from runtime.platform import backend

            self.ctx = ModelContext(loaded, self._device or backend(), self._cache_size,
                                    self._delta_loader)
        except BaseException as exc:  # surface load errors to start()
            self._ready.set_exception(exc)
            return
        self._ready.set_result(self)
        while True:
            with self._cv:
                while not self._heap and not self._closed:
                    self._cv.wait()
                if self._closed:
                    self._fail_pending()
                    return
                job = heapq.heappop(self._heap)
            self._step(job)

    def _fail_pending(self) -> None:
        for job in self._heap:
            if job.gen is not None:
                job.gen.close()
            if not job.future.done():
                job.future.set_exception(RuntimeClosed("the model runtime closed first"))
        self._heap.clear()

    def _step(self, job: _Job) -> None:
        # A stepped job whose step finds nothing else queued takes its next step at once: the
        # same order as pushing it back and popping it again, without the round trip per
        # token (a decode step on a GPU is a few milliseconds)
        while self._step_once(job):
            pass

    def _step_once(self, job: _Job) -> bool:
        """One step of ``job``; True when it should step again right away."""
        if job.cancelled.is_set():
            if job.gen is not None:
                job.gen.close()
            if not job.future.done():
                job.future.set_exception(JobCancelled("cancelled"))
            return
        # RUNNING from here: a later cancel() of the future fails instead of making the
        # set_result below raise InvalidStateError on (and kill) the model thread.
        if job.gen is None and not job.future.set_running_or_notify_cancel():
            return  # cancelled before it started
        try:
            if job.gen is None:
                result = job.fn(self.ctx)
                if not inspect.isgenerator(result):
                    job.future.set_result(result)
                    return
                job.gen = result
            item = next(job.gen)
        except StopIteration as stop:
            job.future.set_result(stop.value)
            return
        except BaseException as exc:
            log.debug("job failed", exc_info=True)
            job.future.set_exception(exc)
            return
        self.steps_run += 1
        if job.on_item is not None:
            try:
                job.on_item(item)
            except BaseException as exc:  # e.g. the consumer's event loop closed: fail the job,
                job.gen.close()  # not the model thread
                job.future.set_exception(exc)
                return
        with self._cv:  # back into the queue: anything more urgent goes first
            if not self._heap and not self._closed:
                return True
            heapq.heappush(self._heap, job)
            self._cv.notify()
        return False
