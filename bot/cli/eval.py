"""``python -m bot eval --user U --mc FILE [--json]``: multiple-choice accuracy of the user's
weights (log-likelihood of each choice)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.cli.common import print_json, run_async
from runtime.config import Config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="multiple-choice accuracy of the user's weights")
    p.add_argument("--user", required=True)
    p.add_argument("--mc", type=Path, required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=main)


def main(args: argparse.Namespace, cfg: Config) -> int:
    from bot.engine import open_engine
    from sleep.validation import load_mc_file, mc_accuracy

    items = load_mc_file(args.mc)

    def score(ctx, user_id, checkpoint):
        ctx.use_user(user_id, checkpoint)
        return mc_accuracy(ctx, items)

    async def run() -> int:
        async with open_engine(cfg) as engine:
            acc = await engine.runtime.run(score, args.user, engine.checkpoint(args.user))
            label = engine.checkpoint_label(args.user)
        out = {"accuracy": acc, "n": len(items), "checkpoint": label}
        print_json(out) if args.json else print(f"accuracy {acc:.3f} on {len(items)} items "
                                               f"({label})")
        return 0

    return run_async(run())
