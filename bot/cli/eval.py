"""``python -m bot eval --user U --mc FILE [--json]``: multiple-choice accuracy of the user's
weights (log-likelihood of each choice)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.cli.common import UserError, print_json, run_async
from runtime.config import Config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="multiple-choice accuracy of the user's weights")
    p.add_argument("--user", required=True)
    p.add_argument("--mc", type=Path, required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=main)


def main(args: argparse.Namespace, cfg: Config) -> int:
    from bot.engine import open_engine
    from bot.wake import InputTooLong, check_input
    from sleep.validation import load_mc_file, mc_accuracy

    items = load_mc_file(args.mc)
    limit = cfg.chat.max_message_chars
    try:  # bounded like every text that feeds the model; a file is refused, never cut
        for n, item in enumerate(items, 1):
            check_input(item.query, limit, f"{args.mc} item {n} (query)")
            for choice in item.choices:
                check_input(choice, limit, f"{args.mc} item {n} (a choice)")
    except InputTooLong as exc:
        raise UserError(str(exc)) from exc

    def score(ctx, user_id, checkpoint):
        ctx.use_user(user_id, checkpoint)
        return mc_accuracy(ctx, items)

    async def run() -> int:
        async with open_engine(cfg) as engine:
            checkpoint = (await engine.resolve_checkpoint(args.user)).path
            acc = await engine.runtime.run(score, args.user, checkpoint)
            label = f"{args.user}/{checkpoint.name}" if checkpoint else "base"
        out = {"accuracy": acc, "n": len(items), "checkpoint": label}
        print_json(out) if args.json else print(f"accuracy {acc:.3f} on {len(items)} items "
                                               f"({label})")
        return 0

    return run_async(run())
