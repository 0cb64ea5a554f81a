"""The engine: the resources one process owns (config, SQLite store, model thread).

Everything above it (terminal chat, the CLI verbs, the Discord bot, benchmarks) opens one
engine with :func:`open_engine` and calls services on it; it owns nothing else.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from memory import checkpoints
from memory.log import ConversationLog
from memory.paths import UserPaths, models_dir, store_path, user_paths
from memory.store import Store
from runtime.config import Config
from runtime.models import LoadedModel, load_model, resolve_model
from runtime.platform import backend
from runtime.thread import ModelRuntime
from sleep.pipeline import CycleContext

log = logging.getLogger(__name__)


class DataDirError(RuntimeError):
    """The data directory cannot be created or written."""


def model_loader(cfg: Config) -> Callable[[], LoadedModel]:
    """A function that resolves and loads ``cfg.model`` (run on the model thread)."""

    def load() -> LoadedModel:
        device = backend()
        path = resolve_model(cfg.model, models_dir(cfg.data_dir))
        return load_model(path, cfg.model, device, cfg.compute)

    return load


def model_runtime(cfg: Config, **kwargs) -> ModelRuntime:
    """A model thread for ``cfg.model`` that reads users' checkpoints from this data layout."""
    return ModelRuntime(model_loader(cfg), delta_loader=checkpoints.load_delta, **kwargs)


@dataclass
class Engine:
    cfg: Config
    store: Store
    runtime: ModelRuntime
    _logs: dict[str, ConversationLog] = field(default_factory=dict)
    # built-in validation score per set of weights: a cycle's "before" score is the score
    # its previous cycle measured "after" (checkpoints are never rewritten in place)
    general_scores: dict[str, float] = field(default_factory=dict)
    # user → what was last found wrong with their checkpoint (logged once; shown by status)
    checkpoint_problems: dict[str, str] = field(default_factory=dict)

    def paths(self, user_id: str) -> UserPaths:
        return user_paths(self.cfg.data_dir, user_id)

    def conversation_log(self, user_id: str) -> ConversationLog:
        if user_id not in self._logs:
            self._logs[user_id] = ConversationLog(self.paths(user_id).log)
        return self._logs[user_id]

    def checkpoint(self, user_id: str) -> Path | None:
        """The user's accepted checkpoint folder, or None for the base model (verified; from
        the files alone: services answering a user call :meth:`resolve_checkpoint`)."""
        return checkpoints.choose_checkpoint(self.paths(user_id).checkpoints).path

    async def resolve_checkpoint(self, user_id: str) -> checkpoints.Choice:
        """The weights ``user_id`` answers with: ``CURRENT``'s version once it verified (the
        usual case, without a registry query), else the registered one, the newest intact
        registered one, or the base model. Damage is logged once per process, shown by
        ``status``, and a rebuild cycle is queued; the process that runs the queue repairs the
        files before it runs that cycle (``bot.recovery.repair_checkpoint``)."""
        root = self.paths(user_id).checkpoints
        pointer = checkpoints.read_pointer(root)
        if pointer.state == "base":
            return checkpoints.Choice(None)
        if pointer.state == "version":
            folder = root / checkpoints.version_name(pointer.version)
            try:
                checkpoints.verify_checkpoint(folder)
                return checkpoints.Choice(folder, wanted=pointer.version)
            except checkpoints.CheckpointError:
                pass
        try:
            records = await self.store.checkpoints(user_id)
        except (OSError, sqlite3.Error) as exc:  # keep answering: from the files alone
            log.error("user %s: cannot read the checkpoint registry: %s", user_id, exc)
            return checkpoints.choose_checkpoint(root)
        if pointer.state == "missing" and not records:
            return checkpoints.Choice(None)  # never slept
        current = next((r.version for r in records if r.is_current), None)
        choice = checkpoints.choose_checkpoint(root, [r.version for r in records], current)
        if choice.problem and self.checkpoint_problems.get(user_id) != choice.problem:
            self.checkpoint_problems[user_id] = choice.problem
            log.warning("user %s: %s; answering from %s until a rebuild cycle replaces it",
                        user_id, choice.problem, choice.name)
            if choice.wanted is not None and choice.version != choice.wanted:
                try:  # the queue's holder repairs the files and re-learns what was lost
                    await self.store.enqueue_sleep(user_id, "light")
                except (OSError, sqlite3.Error) as exc:
                    log.error("user %s: cannot queue the rebuild: %s", user_id, exc)
        return choice

    weights_key = staticmethod(checkpoints.weights_key)

    def cycle_context(self, user_id: str) -> CycleContext:
        """What a sleep cycle of ``user_id`` needs from this process (see sleep.pipeline)."""
        return CycleContext(self.runtime, self.store, user_id, self.paths(user_id),
                            self.cfg.sleep, self.cfg.chat.system_prompt, self.cfg.chat.bot_name,
                            self.cfg.model, self.general_scores)

    def checkpoint_label(self, user_id: str) -> str:
        path = self.checkpoint(user_id)
        return f"{user_id}/{path.name}" if path else "base"

    async def recover(self) -> None:
        """Clean up after an interrupted run: half-written checkpoints, running cycles, logs
        and pointers (``bot.recovery``). Runs under the data dir's lock: while another live
        process holds it (runs the queue, or recovers), its cycle is no crash leftover and
        nothing is touched here."""
        from bot import recovery  # logs and CURRENT follow SQLite

        data_dir = self.cfg.data_dir
        own = recovery.holds(data_dir)
        if not own and not recovery.hold_for_recovery(data_dir):
            log.info("another process runs the sleep queue here: no crash recovery")
            return
        try:
            users_root = data_dir / "users"
            if users_root.is_dir():
                for user_dir in users_root.iterdir():
                    try:
                        checkpoints.cleanup_incomplete(user_dir / "checkpoints")
                    except OSError as exc:
                        log.error("cannot clean %s: %s", user_dir, exc)
            for cycle in await self.store.running_cycles():
                await self.store.finish_cycle(cycle.id, "failed", {"error": "interrupted"})
                log.warning("cycle %s of user %s was interrupted; marked failed", cycle.id,
                            cycle.user_id)
            await recovery.reconcile(self)
        finally:
            if not own:
                recovery.release_data_dir(data_dir)


def ensure_data_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"cannot create the data directory {path}: {exc}") from exc


@asynccontextmanager
async def open_engine(
    cfg: Config, runtime: ModelRuntime | None = None
) -> AsyncIterator[Engine]:
    """Open the store and start the model thread; close both on exit."""
    ensure_data_dir(cfg.data_dir)
    store = await Store.open(store_path(cfg.data_dir))
    own_runtime = runtime is None
    runtime = runtime or model_runtime(cfg)
    try:
        await runtime.astart()
        engine = Engine(cfg, store, runtime)
        await engine.recover()
        yield engine
    finally:
        if own_runtime:
            await runtime.aclose()
        await store.close()
