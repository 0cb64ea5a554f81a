"""``python -m bot sleep --user U [--deep] [--json] [--dry-run]``: run one sleep cycle now.

The cycle goes through the orchestrator's queue like every other one: this process takes the
data directory's queue lock, queues the job and runs it in the foreground. While a bot, a
worker or a terminal chat holds the lock, it refuses (exit 2) and touches nothing.

``--dry-run`` prints what a cycle would curate and train on (the facts, and every training
pair as ``{"question", "answer", "kind", "source_exchange_ids"}`` under ``"pairs"``) and
changes nothing: no training, no queue job, no cycle row, no counters. It needs no lock.
"""

from __future__ import annotations

import argparse
import sys

from bot.cli.common import UserError, print_json, run_async
from runtime.config import Config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sleep", help="run one sleep cycle for a user now")
    p.add_argument("--user", required=True)
    p.add_argument("--deep", action="store_true", help="with dreaming")
    p.add_argument("--json", action="store_true")
    p.add_argument("--dry-run", action="store_true",
                   help="show what would be learned; change nothing")
    p.set_defaults(func=main)


def main(args: argparse.Namespace, cfg: Config) -> int:
    from bot.engine import open_engine
    from bot.orchestrator import Orchestrator, QueueBusy
    from sleep.pipeline import format_report

    def show(stage: str, info: dict) -> None:
        if not args.json:
            print(f"… {stage}: {info}", file=sys.stderr)

    if args.dry_run:
        return run_async(dry_run(args, cfg))

    async def run() -> int:
        async with open_engine(cfg) as engine:
            orch = Orchestrator(engine)
            try:
                await orch.start(worker=False, triggers=False)
            except QueueBusy as exc:
                raise UserError(f"{exc}: it will run this user's cycles itself (ask it with "
                                "/sleep), or stop it and run this again") from exc
            try:
                report = await orch.run_now(args.user, "deep" if args.deep else "light", show)
            finally:
                await orch.stop()
        if report is None:
            raise UserError("the cycle was interrupted; it stays queued for the next run")
        out = report.to_dict()
        print_json(out) if args.json else print(format_report(out))
        return 0 if report.status != "failed" else 1

    return run_async(run())


def format_plan(user: str, plan: dict) -> str:
    lines = [f"dry run for {user}: {plan['exchanges']} unconsolidated exchange(s), "
             f"{sum(c['kept'] for c in plan['curation'])} kept by curation; nothing changed"]
    lines += [f"  dropped exchange {c['exchange_id']}: {c['reason']}"
              for c in plan["curation"] if not c["kept"]]
    lines.append(f"facts ({len(plan['facts'])}):")
    lines += [f"  - {f}" for f in plan["facts"]]
    lines.append(f"training pairs ({len(plan['pairs'])}):")
    lines += [f"  [{p['kind']}] Q: {p['question']}  A: {p['answer']}" for p in plan["pairs"]]
    return "\n".join(lines)


async def dry_run(args: argparse.Namespace, cfg: Config) -> int:
    from bot.engine import open_engine
    from sleep.pipeline import plan_cycle

    async with open_engine(cfg) as engine:
        plan = (await plan_cycle(engine.cycle_context(args.user))).to_dict()
    plan = {"user_id": args.user, "dry_run": True} | plan
    print_json(plan) if args.json else print(format_plan(args.user, plan))
    return 0
