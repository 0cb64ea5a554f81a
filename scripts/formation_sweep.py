"""Sweep sleep settings for memory formation: recall after one cycle, in-process, per fact set.

For each setting (phrasings per fact, epochs, learning rate) and each fact set: a fresh data
directory, the user's turns logged (with their own times when the set has a meta file), one
cycle, then the exact and reworded questions answered from the weights with an empty context,
and the general multiple-choice score of the result. Prints one JSON line per (setting, set)
and a summary per setting: recall, examples trained (pairs × epochs, what a CPU pays for) and
retention. Development numbers: the sets are the shipped and held-out ones.

    python scripts/formation_sweep.py --grid 8:3:3e-4,4:2:5e-4 --facts sleep/factsets/heldout \
        [--mc ../shared/data/retention_dev.jsonl --mc-offset 100 --mc-limit 100] \
        [--model DIR] [--config TOML] [--seeds 0,1,2]

The grid's phrasings, epochs and learning rate override those of ``--config`` (set the other
settings there: examples per exchange, rank, layers).

Several cycles per user (interference and forgetting over cycles): ``--cycles N`` tells every
turn, then sleeps N times; ``--cycles N --split`` tells the turns in N consecutive parts, one
sleep after each (facts of one kind then reach the weights in different cycles). Each line
then has ``"cycles"``: recall, ``confused`` and ``lost`` (questions recalled after an earlier
cycle and missed now) after every sleep; its top-level numbers are the last cycle's.

Each fact's recall at this model size flips with the training order, so a difference between
two settings on one seed is mostly noise: compare means over ``--seeds``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.bench.coverage import factset_paths, load_timed  # noqa: E402
from bot.bench.memory import answer_all, general_scores, questions_of, score_set  # noqa: E402
from bot.engine import model_runtime, open_engine  # noqa: E402
from bot.wake import ChatService  # noqa: E402
from runtime.config import Config, load_config  # noqa: E402
from sleep.pipeline import run_cycle  # noqa: E402
from sleep.validation import load_mc_file  # noqa: E402


def parse_grid(text: str) -> list[tuple[int, int, float]]:
    return [(int(p), int(e), float(lr)) for p, e, lr in (x.split(":") for x in text.split(","))]


def _examples(cfg: Config, report) -> int:
    """Examples a cycle trained (steps × batch: pairs × epochs plus anchors and replay)."""
    return report.stages.get("training", {}).get("steps", 0) * cfg.sleep.train.batch_size


async def one(cfg: Config, runtime, path: Path, mc, show: bool = False, seed: int = 0,
              cycles: int = 1, split: bool = False) -> dict:
    timed = load_timed(path)
    fs = timed.factset
    direct_q, reworded_q, _, _ = questions_of(fs)
    turns = list(enumerate(fs.user_turns))
    # --split: part k of the turns is told right before cycle k
    parts = ([turns[k * len(turns) // cycles:(k + 1) * len(turns) // cycles]
              for k in range(cycles)] if split else [turns] + [[]] * (cycles - 1))
    history: list[dict] = []
    ever: set[int] = set()  # questions recalled after some earlier cycle
    seconds = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        run_cfg = dataclasses.replace(cfg, data_dir=Path(tmp))
        async with open_engine(run_cfg, runtime=runtime) as engine:
            chat = ChatService(engine)
            for k, part in enumerate(parts):
                for n, turn in part:
                    ts = timed.times[n] if timed.times else None
                    await chat.save("u", turn, "I see.", source="ingest", ts=ts)
                tic = time.perf_counter()
                report = await run_cycle(engine.cycle_context("u"), seed=seed + 1000 * k)
                seconds = time.perf_counter() - tic
                answers = await answer_all(engine, "u", direct_q + reworded_q)
                scored = score_set(fs, answers[: len(direct_q)], answers[len(direct_q):])
                missed = set(scored["misses"]) | set(scored["reworded_misses"])
                hit = {i for i, q in enumerate(direct_q + reworded_q) if q not in missed}
                history.append({"cycle": k + 1, "status": report.status,
                                "direct": scored["direct"], "reworded": scored["reworded"],
                                "confused": scored["confused"], "lost": len(ever - hit),
                                "examples": _examples(cfg, report),
                                "seconds": round(seconds, 1)})
                ever |= hit
            general = await general_scores(engine, "u", mc) if mc else {}
    tr = report.stages.get("training", {})
    v = report.validation or {}
    return {"set": fs.name, "seed": seed, "status": report.status, "reason": report.reason,
            "general_pre": v.get("general_pre"), "general_post": v.get("general_post"),
            "direct": scored["direct"], "reworded": scored["reworded"],
            "confused": scored["confused"], "examples": _examples(cfg, report),
            "pairs": report.stages.get("extraction", {}).get("pairs", 0),
            "turns": len(fs.user_turns), "seconds": round(seconds, 1),
            "loss": [tr.get("loss_first"), tr.get("loss_last")], "scale": v.get("scale"),
            "mc": general.get("mc"), "builtin": general.get("builtin"),
            "drift": general.get("drift"),
            "stage_seconds": {k: st.get("seconds") for k, st in report.stages.items()}} | (
        {"cycles": history} if cycles > 1 else {}) | (
        {"answers": [{"q": q, "a": a, "hit": q not in missed}
                     for q, a in zip(direct_q + reworded_q, scored["answers"], strict=True)]}
        if show else {})


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", required=True, help="PHRASINGS:EPOCHS:LR,...")
    ap.add_argument("--facts", type=Path, action="append", required=True,
                    help="a fact set or a folder of them (repeatable)")
    ap.add_argument("--mc", type=Path, default=None)
    ap.add_argument("--mc-limit", type=int, default=100)
    ap.add_argument("--mc-offset", type=int, default=0,
                    help="skip the first items (e.g. the ones the defaults were chosen on)")
    ap.add_argument("--model", default=None)
    ap.add_argument("--answers", action="store_true",
                    help="print every question with its answer (and whether it was recalled)")
    ap.add_argument("--seeds", default="0",
                    help="training seeds, e.g. 0,1,2: one fact's recall flips with the batch "
                         "order at this size, so compare settings over several")
    ap.add_argument("--cycles", type=int, default=1,
                    help="sleep this many times per user (recall after each)")
    ap.add_argument("--split", action="store_true",
                    help="with --cycles N: tell the turns in N parts, one sleep after each")
    ap.add_argument("--config", type=Path, default=None,
                    help="a TOML config under the grid (e.g. [sleep.lora] layers = 16)")
    args = ap.parse_args()
    paths = [p for f in args.facts for p in (factset_paths(f) if f.is_dir() else [f])]
    base = load_config(args.config, model=args.model)
    mc = load_mc_file(args.mc)[args.mc_offset: args.mc_offset + args.mc_limit] if args.mc else None
    runtime = model_runtime(base)
    await runtime.astart()
    try:
        if mc:
            async with open_engine(dataclasses.replace(base, data_dir=Path(
                    tempfile.mkdtemp())), runtime=runtime) as engine:
                print(json.dumps({"base": await general_scores(engine, None, mc)}), flush=True)
        for p, e, lr in parse_grid(args.grid):
            cfg = replace(base, sleep=replace(
                base.sleep, phrasings_per_fact=p,
                train=replace(base.sleep.train, epochs=e, learning_rate=lr)))
            rows = []
            for seed in (int(x) for x in args.seeds.split(",")):
                for path in paths:
                    row = await one(cfg, runtime, path, mc, args.answers, seed,
                                    args.cycles, args.split)
                    row |= {"setting": f"{p}:{e}:{lr:g}"}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
            n = len(rows)
            summary = {"setting": f"{p}:{e}:{lr:g}",
                       "direct": sum(r["direct"] for r in rows) / n,
                       "reworded": sum(r["reworded"] for r in rows) / n,
                       "examples_per_turn": sum(r["examples"] for r in rows)
                       / sum(r["turns"] for r in rows),
                       "accepted": sum(r["status"] == "accepted" for r in rows),
                       "mc": (sum(r["mc"] for r in rows) / n) if mc else None,
                       "drift": (sum(r["drift"] for r in rows) / n) if mc else None}
            if args.cycles > 1:  # per cycle: recall, interference, questions lost since
                summary["cycles"] = [
                    {k: round(sum(r["cycles"][c][k] for r in rows) / n, 3)
                     for k in ("direct", "reworded", "confused", "lost")}
                    for c in range(args.cycles)]
            print(json.dumps({"summary": summary}), flush=True)
    finally:
        await runtime.aclose()
    return 0


if __name__ == "__main__":
    from runtime.platform import ensure_fast_blas

    ensure_fast_blas()  # on the Linux CPU: re-exec with OpenBLAS preloaded, as the CLI does
    sys.exit(asyncio.run(main()))
