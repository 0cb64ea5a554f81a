"""One sleep cycle for one user: curation → extraction → replay → dreaming → training →
validation → fusion. Each stage is a function in its own module; this is the main loop.

    python -m bot sleep --user U [--deep] [--json]     (through the orchestrator's queue)

:func:`run_cycle` takes a :class:`CycleContext`: the model thread, the store, the user's paths
and the settings, never the process's engine, so the stage modules stay below the services.
Which kind of cycle runs (light or deep) is the orchestrator's decision. Works from the
store, never from what is in memory (the paper's code gathered only the current session after
a restart). Model work runs on the model thread at BACKGROUND priority,
so chat for any user goes first between training steps. A rejected, empty or failed cycle
leaves the user's checkpoint exactly as it was.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Literal

from memory import checkpoints
from memory.identity import load_identity
from memory.paths import UserPaths
from memory.store import Exchange, ReplayItem, Store
from runtime import faults
from runtime.config import SleepConfig
from runtime.generation import complete
from runtime.thread import BACKGROUND, ModelContext, ModelRuntime, modules_from_tensors
from sleep import curation, dreaming, fusion, replay, validation
from sleep.anchors import anchor_pairs, base_answers, with_answers
from sleep.augmentation import profile_pairs
from sleep.extraction import (
    EXTRACTION_PROMPT,
    dedupe_pairs,
    grounded,
    parse_model_extraction,
    qa_for_facts,
)
from sleep.extraction.formation import extract_turns, fit_budget, superseded_answers
from sleep.training import TrainingDiverged, build_example, scale_update, train_lora
from sleep.types import Fact, QAPair, ScoredExchange

log = logging.getLogger(__name__)

Progress = Callable[[str, dict], None]
CycleKind = Literal["light", "deep"]
CycleStatus = Literal["running", "accepted", "rejected", "empty", "failed"]


@dataclass
class CycleContext:
    """What one cycle of one user needs, handed in by the service that schedules it."""

    runtime: ModelRuntime
    store: Store
    user_id: str
    paths: UserPaths
    cfg: SleepConfig
    system_prompt: str
    bot_name: str
    base_model: str
    # built-in validation score per set of weights (:func:`memory.checkpoints.weights_key`),
    # shared by the cycles of one process: a cycle's "before" is its predecessor's "after"
    general_scores: dict[str, float] = field(default_factory=dict)

    def checkpoint(self) -> Path | None:
        return checkpoints.current_path(self.paths.checkpoints)

    def checkpoint_label(self) -> str:
        path = self.checkpoint()
        return f"{self.user_id}/{path.name}" if path else "base"


@dataclass
class CycleReport:
    user_id: str
    kind: CycleKind
    cycle_id: int = 0
    status: CycleStatus = "running"
    accepted: bool = False
    checkpoint: str | None = None  # the checkpoint current after the cycle
    version: int = 0
    examples: int = 0
    facts: list[str] = field(default_factory=list)
    stages: dict[str, dict] = field(default_factory=dict)
    validation: dict = field(default_factory=dict)
    seconds: float = 0.0
    reason: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _stage(report: CycleReport, name: str, started: float, progress: Progress | None,
           **info) -> None:
    info["seconds"] = round(time.perf_counter() - started, 3)
    report.stages[name] = info
    log.info("user %s cycle %s: %s %s", report.user_id, report.cycle_id, name, info)
    if progress:
        progress(name, info)


def _model_extract(ctx: ModelContext, user_id, checkpoint, texts: list[tuple[str, list[int]]],
                   max_tokens: int = 96) -> tuple[list[Fact], int]:
    """Model job: the model lists facts; only answers grounded in the user's text are kept."""
    kept, proposed = [], 0
    for text, ids in texts:
        out = complete(ctx, user_id, checkpoint,
                       [{"role": "user", "content": EXTRACTION_PROMPT.format(text=text)}],
                       max_tokens)
        log.debug("model extraction for exchanges %s: %r", ids, out.text)
        facts = parse_model_extraction(out.text, ids)
        proposed += len(facts)
        kept += [f for f in facts if grounded(f.value, [text])]
    return kept, proposed


def _weights(ctx: ModelContext, user_id, checkpoint, overrides) -> Callable[[], None]:
    """What a stepped scoring job re-applies before each step (chat may swap in between)."""
    if overrides is None:
        return lambda: ctx.use_user(user_id, checkpoint)
    return lambda: ctx.use(overrides)


def _score_general(ctx: ModelContext, user_id, checkpoint, overrides=None,
                   metric: str = "accuracy") -> validation.Steps:
    """Generator job: general ability on the built-in MC items (``metric``: accuracy or the
    gold choice's probability), a few sequences per step."""
    try:
        return (yield from validation.mc_accuracy_steps(
            ctx, validation.builtin_items(), _weights(ctx, user_id, checkpoint, overrides),
            metric))
    finally:
        ctx.use_user(user_id, checkpoint)


def _score_drift(ctx: ModelContext, user_id, checkpoint, overrides) -> validation.Steps:
    """Generator job: drift of ``overrides`` from the base model (sleep.validation)."""
    try:
        return (yield from validation.drift_steps(
            ctx, _weights(ctx, user_id, checkpoint, overrides)))
    finally:
        ctx.use_user(user_id, checkpoint)


def _pair_losses(ctx: ModelContext, user_id, checkpoint, system_prompt: str,
                 pairs: list[QAPair], overrides=None) -> Generator[int, None, list[float]]:
    """Generator job: each pair's answer loss (on the user's weights, or ``overrides``)."""
    try:
        return (yield from validation.pair_losses_steps(
            ctx, system_prompt, pairs, _weights(ctx, user_id, checkpoint, overrides)))
    finally:
        ctx.use_user(user_id, checkpoint)


def _score_facts(ctx: ModelContext, user_id, checkpoint, system_prompt: str,
                 pairs: list[QAPair], overrides=None) -> validation.Steps:
    """Generator job: mean answer loss of the probe pairs (NaN for none), a few per step."""
    if not pairs:
        return math.nan
    losses = yield from _pair_losses(ctx, user_id, checkpoint, system_prompt, pairs, overrides)
    return sum(losses) / len(losses)


PROBE_LIMIT = 128  # the memory gate's mean answer loss needs a sample, not every fact


def _probe_pairs(pairs: list[QAPair], limit: int = PROBE_LIMIT) -> list[QAPair]:
    """One question per distinct answer, at most ``limit`` spread evenly over the cycle: the
    memory gate's probe set (a 200-turn chat has ~450 answers; scoring all of them before
    and after training cost over a minute of a cycle on the CPU)."""
    seen, out = set(), []
    for p in pairs:
        if p.answer not in seen:
            seen.add(p.answer)
            out.append(p)
    return replay.spread_evenly(out, limit)


async def run_cycle(cc: CycleContext, kind: CycleKind = "light", *,
                    progress: Progress | None = None, seed: int = 0) -> CycleReport:
    """Run one cycle of ``kind`` now and return its report (also stored in SQLite)."""
    report = CycleReport(cc.user_id, kind)
    report.cycle_id = await cc.store.start_cycle(cc.user_id, report.kind)
    tic = time.perf_counter()
    try:
        await _run(cc, report, progress, seed)
    except TrainingDiverged as exc:
        report.status, report.reason = "rejected", str(exc)
    except Exception as exc:
        report.status, report.reason = "failed", f"{type(exc).__name__}: {exc}"
        log.exception("user %s cycle %s failed", cc.user_id, report.cycle_id)
    report.seconds = round(time.perf_counter() - tic, 2)
    report.accepted = report.status == "accepted"
    report.checkpoint = cc.checkpoint_label()
    await cc.store.finish_cycle(report.cycle_id, report.status, report.to_dict())
    if progress:
        progress("done", {"status": report.status})
    return report


@dataclass
class CyclePlan:
    """What a cycle would curate and train on, computed without changing anything: the
    dry run (``python -m bot sleep --dry-run``) prints it, and a real cycle trains on it."""

    exchanges: list[Exchange]
    scored: list[ScoredExchange]
    facts: list[Fact]
    new_pairs: list[QAPair]
    replayed: list[ReplayItem]
    replay_pairs: list[QAPair]
    stages: dict[str, dict] = field(default_factory=dict)
    retired: list[ReplayItem] = field(default_factory=list)  # replaced by a new statement
    epochs: int = 1  # the configured epochs, fewer when the cycle's budget is tight
    # the cycle's facts and replayed facts said together (sleep/augmentation.py)
    profiles: list[QAPair] = field(default_factory=list)
    profile_epochs: int = 0  # of ``epochs``, how many each profile is trained in (0: all)

    def to_dict(self) -> dict:
        """The facts and every training pair (new and replayed) as JSON-ready dicts."""
        return {
            "exchanges": len(self.exchanges),
            "curation": [{"exchange_id": s.exchange_id, "kept": s.kept, "reason": s.reason,
                          "novelty": None if math.isnan(s.novelty) else round(s.novelty, 3),
                          "importance": round(s.importance, 3),
                          "utility": round(s.utility, 3)} for s in self.scored],
            "facts": [f.statement for f in self.facts],
            "retired": [i.answer for i in self.retired],
            "epochs": self.epochs,
            "profile_epochs": own_epochs(self.profile_epochs, self.epochs),
            "pairs": [{"question": p.question, "answer": p.answer, "kind": p.kind,
                       "source_exchange_ids": list(p.source_exchange_ids)}
                      for p in self.new_pairs + self.replay_pairs + self.profiles],
            "stages": self.stages,
        }


async def plan_cycle(cc: CycleContext, progress: Progress | None = None) -> CyclePlan:
    """Curation, extraction and replay selection for ``cc.user_id``; reads only."""
    store, runtime, cfg = cc.store, cc.runtime, cc.cfg
    user_id, checkpoint = cc.user_id, cc.checkpoint()
    stages: dict[str, dict] = {}

    def stage(name: str, started: float, **info) -> None:
        info["seconds"] = round(time.perf_counter() - started, 3)
        stages[name] = info
        log.info("user %s: %s %s", user_id, name, info)
        if progress:
            progress(name, info)

    # 1. curation
    t = time.perf_counter()
    exchanges = await store.exchanges(user_id, unconsolidated_only=True)
    if cfg.novelty_threshold > 0:
        losses = await runtime.run(curation.user_text_losses_steps, user_id, checkpoint,
                                   [e.user_text for e in exchanges], priority=BACKGROUND)
    else:  # novelty decides nothing: don't spend the model on it (a real chat has hundreds)
        losses = [math.nan] * len(exchanges)
    scored = curation.score(exchanges, losses, cfg)
    kept = [s for s in scored if s.kept]
    faults.checkpoint("curation")
    stage("curation", t, exchanges=len(exchanges), kept=len(kept))

    # 2. extraction: the rules and the general path (any disclosing sentence), optionally the
    # model too; every answer grounded in the user's words
    t = time.perf_counter()
    when = {e.id: datetime.fromtimestamp(e.ts) for e in exchanges}
    turns = [(s.user_text, [s.exchange_id], when[s.exchange_id]) for s in kept]
    # pure Python, seconds for a long chat: off the event loop, so chat keeps answering
    found = await asyncio.to_thread(extract_turns, turns, cfg.phrasings_per_fact,
                                    rules=cfg.extraction in ("patterns", "both"),
                                    general=cfg.general_extraction)
    facts, new_pairs, model_proposed = found.facts, found.pairs, 0
    if cfg.extraction in ("model", "both") and turns:
        model_facts, model_proposed = await runtime.run(
            _model_extract, user_id, checkpoint, [(x, ids) for x, ids, _ in turns],
            priority=BACKGROUND)
        known = {(f.subject, f.value.lower()) for f in facts}
        model_facts = [f for f in model_facts if (f.subject, f.value.lower()) not in known]
        facts += model_facts
        new_pairs = dedupe_pairs(new_pairs + qa_for_facts(model_facts, cfg.phrasings_per_fact))
    found_pairs = len(new_pairs)
    # what a new statement replaces (a move) never comes back; the rest can be replayed
    items = await store.replay_items(user_id)
    retired = (await _superseded_items(store, user_id, turns, items)
               if cfg.general_extraction else [])
    replayable = len(items) - len(retired)
    epochs = cfg.train.epochs
    budget = training_budget(cfg, len(kept), replayable * epochs)
    if budget:
        new_pairs, epochs = fit_budget(new_pairs, epochs, budget)
    stage("extraction", t, facts=len(facts), pattern_facts=found.rule_facts,
          statements=found.statements, superseded=len(found.superseded),
          model_facts_proposed=model_proposed, pairs=len(new_pairs),
          pairs_found=found_pairs, epochs=epochs)

    # 3. replay (this user's buffer only)
    t = time.perf_counter()
    fact_losses: list[float] = []

    async def score(pairs: list[QAPair]) -> list[float]:  # on the user's current weights
        fact_losses[:] = await runtime.run(_pair_losses, user_id, checkpoint,
                                           cc.system_prompt, pairs, priority=BACKGROUND)
        return fact_losses

    replayed = await replay.select_replay(store, user_id, len(new_pairs), cfg.replay_ratio,
                                          retired, score, cfg.replay_scored)
    replay_pairs = replay.as_pairs(replayed)
    profiles = profile_pairs(new_pairs + replay_pairs, cfg.profile_repeats, cfg.profile_size,
                             entity_repeats=cfg.profile_entities)
    profiles = profiles[:profile_room(cfg, len(new_pairs), len(replay_pairs), epochs)]
    stage("replay", t, replayed=len(replay_pairs), retired=len(retired),
          scored=len(fact_losses), profiles=len(profiles))
    return CyclePlan(exchanges, scored, facts, new_pairs, replayed, replay_pairs, stages,
                     retired, epochs, profiles, cfg.profile_epochs)


def anchor_count(cfg: SleepConfig, new_pairs: int) -> int:
    """General-knowledge anchors for a cycle with ``new_pairs`` new-fact pairs."""
    if cfg.anchor_ratio <= 0:
        return cfg.anchor_pairs
    return min(cfg.anchor_pairs, max(1, round(cfg.anchor_ratio * new_pairs)))


def training_budget(cfg: SleepConfig, kept: int, replayable: int | None = None) -> int:
    """How many new-fact examples (pairs × epochs) this cycle may train; 0: no cap.

    The cap is the cycle's time; replay takes up to ``replay_ratio`` of it, but only as many
    examples as the buffer holds (``replayable``, items × epochs; None: a full share): a
    user's first cycle, with nothing to replay, spends all of it on what is new. Anchors and
    identity pairs ride along in every cycle."""
    caps = [c for c in (cfg.max_train_examples, cfg.train_examples_per_turn * kept) if c > 0]
    if not caps:
        return 0
    share = min(caps) * cfg.replay_ratio
    reserved = share if replayable is None else min(share, replayable)
    return max(1, int(min(caps) - reserved))


def own_epochs(profile_epochs: int, epochs: int) -> int:
    """In how many of a cycle's ``epochs`` a profile is trained (``sleep.profile_epochs``;
    0, or more than the cycle has: every one)."""
    return min(profile_epochs, epochs) if profile_epochs > 0 else epochs


def profile_room(cfg: SleepConfig, new: int, replayed: int, epochs: int) -> int:
    """How many profile pairs a cycle of ``new`` new-fact and ``replayed`` replay pairs at
    ``epochs`` trains: at most ``profile_share`` per new pair (in examples: twice the profiles
    when each is trained in half the epochs), so they grow with what is new and not with the
    replay buffer, and only in the room ``max_train_examples`` leaves, at ``profile_cost``
    examples per epoch each.

    Profiles come on top of what the per-exchange budget gives the facts (taking that room
    for them measured worse), but never past the cap that keeps a long cycle in its time: a
    200-turn cycle that fills its cap trains no profiles, a 10-turn one trains them all."""
    # a profile trained in fewer epochs than the facts (profile_epochs) costs that much less
    own = own_epochs(cfg.profile_epochs, epochs)
    room = 1 << 30
    if cfg.profile_share > 0:
        room = int(cfg.profile_share * new * (epochs / own))
    if cfg.max_train_examples > 0 and cfg.profile_cost > 0:
        left = cfg.max_train_examples - (new + replayed) * epochs
        room = min(room, int(left // (cfg.profile_cost * own)))
    return max(0, room)


async def _superseded_items(store: Store, user_id: str, turns: list,
                            items: list[ReplayItem]) -> list[ReplayItem]:
    """Those of the user's replay ``items`` whose answer a statement of this cycle replaces."""
    if not items or not turns:
        return []
    earlier = [(e.user_text, [e.id], datetime.fromtimestamp(e.ts))
               for e in await store.exchanges(user_id) if e.consolidated_cycle is not None]
    gone = await asyncio.to_thread(superseded_answers, earlier, turns)
    return [i for i in items if gone.covers(i.answer, i.source_exchange_ids)]


@dataclass
class CycleOutcome:
    """What the compute half of a cycle (stages 1-6) hands to its commit half (stage 7): the
    distributed mode computes on a worker and commits on the host that owns the store."""

    exchange_ids: list[int]  # what the cycle consolidates
    replayed: list[ReplayItem] = field(default_factory=list)
    new_pairs: list[QAPair] = field(default_factory=list)
    retired: list[ReplayItem] = field(default_factory=list)
    tensors: dict | None = None  # the validated weights to promote; None: an empty cycle
    general_post: float = math.nan


async def _run(cc: CycleContext, report: CycleReport, progress: Progress | None,
               seed: int) -> None:
    outcome = await compute_cycle(cc, report, progress, seed)
    if outcome is not None:
        await commit_cycle(cc, report, outcome, progress)


async def compute_cycle(cc: CycleContext, report: CycleReport, progress: Progress | None,
                        seed: int = 0) -> CycleOutcome | None:
    """Stages 1-6; reads the store (``exchanges`` and ``replay_items`` only), writes nothing.
    None when there is nothing to commit (the report says rejected)."""
    store, runtime, cfg = cc.store, cc.runtime, cc.cfg
    user_id, system_prompt = report.user_id, cc.system_prompt
    checkpoint = cc.checkpoint()

    def relay(name: str, info: dict) -> None:  # the plan's stages, in the cycle's report
        report.stages[name] = info
        log.info("user %s cycle %s: %s %s", user_id, report.cycle_id, name, info)
        if progress:
            progress(name, info)

    plan = await plan_cycle(cc, relay)
    exchanges, facts, new_pairs = plan.exchanges, plan.facts, plan.new_pairs
    replayed, replay_pairs = plan.replayed, plan.replay_pairs
    report.facts = [f.statement for f in facts]

    # 4. dreaming (deep cycles only)
    t = time.perf_counter()
    dreams: list[QAPair] = []
    proposed = 0
    if report.kind == "deep":
        stored = [i.answer for i in await store.replay_items(user_id)]
        stored += [p.answer for p in new_pairs]
        dreams, proposed = await runtime.run(dreaming.dream, user_id, checkpoint,
                                             sorted(set(stored)), priority=BACKGROUND)
    _stage(report, "dreaming", t, progress, proposed=proposed, kept=len(dreams))

    if not new_pairs and not replay_pairs:
        report.status, report.reason = "empty", "nothing to consolidate"
        return CycleOutcome([e.id for e in exchanges])

    # 5. training (identity and general-knowledge anchor pairs ride along in every cycle)
    t = time.perf_counter()
    identity = [QAPair(p.question, p.answer, [], "identity")
                for p in load_identity(cc.paths.identity, cc.bot_name)]
    anchors = anchor_pairs(anchor_count(cfg, len(new_pairs)))
    if anchors and cfg.anchor_answers == "base":  # what the base itself says (sleep/anchors)
        anchors = with_answers(anchors, await runtime.run(
            base_answers, system_prompt, [p.question for p in anchors], priority=BACKGROUND))
    dataset = dedupe_pairs(new_pairs + replay_pairs + plan.profiles + dreams + identity
                           + anchors)
    tok = runtime.loaded.tokenizer
    examples = [build_example(tok, system_prompt, p, cfg.train.max_seq_len,
                              cfg.train.salient_weight if p.kind in ("fact", "replay") else 1.0)
                for p in dataset]
    for p, e in zip(dataset, examples, strict=True):
        if p.kind == "profile":
            e.epochs = cfg.profile_epochs  # 0: every epoch, like the rest
    report.examples = len(examples)
    probe = _probe_pairs(new_pairs or replay_pairs)
    pre_key = checkpoints.weights_key(checkpoint)
    general_pre = cc.general_scores.get(pre_key)
    if general_pre is None:
        general_pre = await runtime.run(_score_general, user_id, checkpoint, None,
                                        cfg.general_metric, priority=BACKGROUND)
        cc.general_scores[pre_key] = general_pre
    general_base = None
    if cfg.tau_base:  # the floor's reference: the base model, scored once per process
        base_key = checkpoints.weights_key(None)  # the pre key too, before a first cycle
        if base_key not in cc.general_scores:
            cc.general_scores[base_key] = await runtime.run(_score_general, None, None, None,
                                                            cfg.general_metric,
                                                            priority=BACKGROUND)
        general_base = cc.general_scores[base_key]
    fact_pre = await runtime.run(_score_facts, user_id, checkpoint, system_prompt, probe,
                                 priority=BACKGROUND)

    def on_step(p) -> None:  # runs on the model thread
        faults.checkpoint("training")
        if progress and p.step and (p.step == p.total or p.step % 10 == 0):
            progress("training", {"step": p.step, "total": p.total, "loss": round(p.loss, 4)})

    train_cfg = replace(cfg.train, epochs=plan.epochs)
    result = await runtime.run(train_lora, user_id, checkpoint, examples, cfg.lora, train_cfg,
                               seed, priority=BACKGROUND, on_item=on_step)
    _stage(report, "training", t, progress, examples=len(examples), steps=result.steps,
           loss_first=round(result.losses[0], 4), loss_last=round(result.losses[-1], 4),
           tokens_per_s=round(result.tokens_per_s, 1), trainable_params=result.trainable_params)

    faults.checkpoint("after-training")

    # 6. validation (on a copy: the user's live weights are untouched until promotion). When
    # general ability fell, a smaller step of the same update (WiSE-FT interpolation) often
    # keeps it and part of what was learned, where a rejection keeps nothing.
    t = time.perf_counter()
    tensors, scale, tries = result.tensors, 1.0, 0
    drift_post = None
    while True:
        candidate = modules_from_tensors(tensors)
        general_post = await runtime.run(_score_general, user_id, checkpoint, candidate,
                                         cfg.general_metric,
                                         priority=BACKGROUND)
        faults.checkpoint("validation")
        if cfg.max_drift:
            drift_post = await runtime.run(_score_drift, user_id, checkpoint, candidate,
                                           priority=BACKGROUND)
        fact_post = await runtime.run(_score_facts, user_id, checkpoint, system_prompt, probe,
                                      candidate, priority=BACKGROUND)
        verdict = validation.gate(general_pre, general_post, cfg.tau,
                                  fact_pre if not math.isnan(fact_pre) else None, fact_post,
                                  general_base, cfg.tau_base, drift_post, cfg.max_drift)
        # a smaller step can win back general ability, not make facts learned
        if (verdict.accepted or tries >= cfg.gate_retries
                or verdict.cause not in ("general", "drift")):
            break
        tries += 1
        scale = cfg.gate_retry_scale ** tries
        log.info("user %s cycle %s: %s; validating the update scaled by %.2f", user_id,
                 report.cycle_id, verdict.reason, scale)
        tensors = await runtime.run(scale_update, user_id, checkpoint, result.tensors, scale,
                                    priority=BACKGROUND)
    report.validation = asdict(verdict) | {"tau": cfg.tau, "scale": round(scale, 4)}
    _stage(report, "validation", t, progress, accepted=verdict.accepted, reason=verdict.reason,
           general_pre=round(general_pre, 4), general_post=round(general_post, 4),
           general_base=None if general_base is None else round(general_base, 4),
           fact_loss_pre=round(fact_pre, 4), fact_loss_post=round(fact_post, 4),
           scale=round(scale, 4),
           **({} if drift_post is None else {"drift": round(drift_post, 4)}))
    if not verdict.accepted:
        report.status, report.reason = "rejected", verdict.reason
        return None
    if scale < 1:
        verdict.reason += f" (the update scaled by {scale:.2f})"
    report.reason = verdict.reason
    return CycleOutcome([e.id for e in exchanges], replayed, new_pairs, plan.retired,
                        tensors, general_post)


async def commit_cycle(cc: CycleContext, report: CycleReport, outcome: CycleOutcome,
                       progress: Progress | None = None, lease_token: int | None = None
                       ) -> None:
    """Stage 7: promote the validated weights atomically, then mark what was consolidated
    (an empty cycle only marks). ``lease_token``: see :func:`sleep.fusion.promote`."""
    store, user_id = cc.store, report.user_id
    if outcome.tensors is None:
        await store.mark_consolidated(outcome.exchange_ids, report.cycle_id)
        return
    t = time.perf_counter()
    meta = {"base_model": cc.base_model, "cycle_id": report.cycle_id,
            "sleep_config": asdict(cc.cfg), "validation": report.validation}
    report.version = await fusion.promote(cc.runtime, store, user_id,
                                          cc.paths.checkpoints, outcome.tensors,
                                          meta, report.cycle_id, lease_token)
    cc.general_scores[checkpoints.weights_key(cc.checkpoint())] = outcome.general_post
    await store.mark_consolidated(outcome.exchange_ids, report.cycle_id)
    added = await replay.after_cycle(store, user_id, outcome.replayed, outcome.new_pairs,
                                     cc.cfg.replay_decay, report.cycle_id, outcome.retired)
    await store.record_sleep(user_id)
    _stage(report, "fusion", t, progress, version=report.version, replay_added=added)
    report.status = "accepted"


def format_report(r: dict) -> str:
    """A cycle report (``CycleReport.to_dict()``) as the lines the terminal and CLI print."""
    v = r.get("validation") or {}
    lines = [f"sleep cycle {r['cycle_id']} ({r['kind']}) for {r['user_id']}: {r['status']}"
             f" in {r['seconds']:.1f}s — {r['reason']}"]
    for name, info in r["stages"].items():
        shown = ", ".join(f"{k} {val}" for k, val in info.items() if k != "seconds")
        lines.append(f"  {name:11} {info.get('seconds', 0):6.1f}s  {shown}")
    if v:
        lines.append(f"  validation: general {v['general_pre']:.3f} → {v['general_post']:.3f}"
                     f" (tau {v['tau']})")
    lines.append(f"  checkpoint now: {r['checkpoint']}")
    return "\n".join(lines)
