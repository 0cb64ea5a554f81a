"""``python -m bot bench coverage``: how much of what users said reaches the training data.

For each fact set, the user's turns are logged into a temporary data directory (with their
own times, when the set has them) and a dry run of a sleep cycle (``sleep.pipeline.plan_cycle``:
curation, extraction, replay; nothing is trained) lists the training pairs. A question is
*covered* when one of its answer keys occurs in some training answer: whatever the training
does, recall cannot exceed coverage. It also reports what curation kept and how many facts and
pairs the rules and the general path made. Seconds per set, no training: the quick loop for
work on memory formation.

    python -m bot bench coverage                                  # the shipped fact sets
    python -m bot bench coverage --realtalk [DIR] --json          # + REALTALK development sets

REALTALK sets are built by ``scripts/realtalk_factsets.py`` (into ``data/factsets/realtalk``
by default); their ``.meta.json`` gives each turn's time, so "yesterday" becomes a date.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bot.engine import open_engine
from bot.wake import ChatService
from runtime.config import Config
from sleep.factsets import FactSet, bundled_factsets, load_factset, score_answer
from sleep.pipeline import plan_cycle

USER = "coverage"


@dataclass
class Timed:
    factset: FactSet
    times: list[float] | None  # epoch seconds per user turn, when the set has them


def load_timed(path: Path) -> Timed:
    fs = load_factset(path)
    meta = path.with_name(path.name.removesuffix(".json") + ".meta.json")
    times = None
    if meta.is_file():
        raw = json.loads(meta.read_text()).get("turn_times")
        if raw and len(raw) == len(fs.user_turns):
            times = [datetime.fromisoformat(t).timestamp() for t in raw]
    return Timed(fs, times)


def factset_paths(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.json") if not p.name.endswith(".meta.json"))


def covered(keys: list[str], answers: list[str]) -> bool:
    return any(score_answer(a, keys) for a in answers)


async def coverage_of(cfg: Config, timed: Timed) -> dict:
    """Log the set's turns in a fresh data dir and dry-run one cycle; score coverage."""
    fs = timed.factset
    with tempfile.TemporaryDirectory(prefix="sleepbot-coverage-") as tmp:
        run_cfg = dataclasses.replace(cfg, data_dir=Path(tmp))
        async with open_engine(run_cfg) as engine:
            chat = ChatService(engine)
            for n, turn in enumerate(fs.user_turns):
                ts = timed.times[n] if timed.times else None
                await chat.save(USER, turn, "I see.", source="ingest", ts=ts)
            plan = await plan_cycle(engine.cycle_context(USER))
    answers = [p.answer for p in plan.new_pairs]
    hits = [covered(q.keys, answers) for q in fs.questions]
    return {
        "factset": fs.name, "turns": len(fs.user_turns),
        "kept": sum(s.kept for s in plan.scored), "facts": len(plan.facts),
        "rule_facts": plan.stages["extraction"].get("pattern_facts", 0),
        "statements": plan.stages["extraction"].get("statements", 0),
        "pairs": len(plan.new_pairs), "questions": len(fs.questions),
        "coverage": sum(hits) / len(hits) if hits else 0.0,
        "uncovered": [q.question for q, h in zip(fs.questions, hits, strict=True) if not h],
    }


async def run_coverage_bench(cfg: Config, paths: list[Path]) -> dict:
    sets = [await coverage_of(cfg, load_timed(p)) for p in paths]
    questions = sum(s["questions"] for s in sets)
    return {"sets": sets, "questions": questions,
            "coverage": sum(s["coverage"] * s["questions"] for s in sets) / max(questions, 1)}


def default_paths() -> list[Path]:
    return bundled_factsets()


def format_table(result: dict) -> str:
    lines = [f"{'fact set':34} {'turns':>5} {'kept':>5} {'facts':>5} {'pairs':>6} "
             f"{'questions':>9} {'coverage':>8}"]
    for s in result["sets"]:
        lines.append(f"{s['factset'][:34]:34} {s['turns']:5d} {s['kept']:5d} {s['facts']:5d} "
                     f"{s['pairs']:6d} {s['questions']:9d} {100 * s['coverage']:7.0f}%")
    lines.append(f"{'all':34} {'':5} {'':5} {'':5} {'':6} {result['questions']:9d} "
                 f"{100 * result['coverage']:7.0f}%")
    return "\n".join(lines)
