"""``python -m bot recall --user U [--json] "QUESTION"`` (or ``--batch FILE.json``): answer
from the user's weights with the system prompt only: no history, no retrieval."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bot.cli.common import UserError, print_json, run_async
from runtime.config import Config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recall", help="answer from the user's weights, empty context")
    p.add_argument("--user", required=True)
    p.add_argument("--json", action="store_true")
    p.add_argument("question", nargs="?", default=None)
    p.add_argument("--batch", type=Path, default=None,
                   help="a JSON list of questions; prints a JSON list of answers")
    p.set_defaults(func=main)


def main(args: argparse.Namespace, cfg: Config) -> int:
    from bot.engine import open_engine
    from bot.recall import recall_answers
    from bot.wake import clean_text

    if args.batch is not None:
        try:
            questions = [str(q) for q in json.loads(args.batch.read_text(encoding="utf-8"))]
        except (OSError, ValueError, TypeError) as exc:
            raise UserError(f"--batch {args.batch}: expected a JSON list of questions") from exc
    elif args.question is None or not clean_text(args.question):
        raise UserError("the question is empty")
    else:
        questions = [args.question]

    async def run() -> int:
        async with open_engine(cfg) as engine:
            answers, label = await recall_answers(engine, args.user, questions)
            out = [{"question": q, "answer": a, "checkpoint": label}
                   for q, a in zip(questions, answers, strict=True)]
        if args.batch is not None:
            print_json(out)
        elif args.json:
            print_json({"answer": out[0]["answer"], "checkpoint": out[0]["checkpoint"]})
        else:
            print(out[0]["answer"])
        return 0

    return run_async(run())
