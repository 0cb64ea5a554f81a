"""``python -m bot recall --user U [--json] "QUESTION"`` (or ``--batch FILE.json``): answer
from the user's weights with the system prompt only: no history, no retrieval."""

from __future__ import annotations

import argparse
import json
import sys
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


def read_batch(path: Path, limit: int) -> list[str]:
    """The questions of a ``--batch`` file: a JSON list of non-empty strings, each within
    ``limit`` characters; anything else is refused, saying which item and why."""
    from bot.wake import InputTooLong, check_input, clean_text

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: bad JSON or bad UTF-8
        raise UserError(f"--batch {path}: cannot read it as JSON ({exc})") from exc
    if not isinstance(data, list):
        raise UserError(f"--batch {path}: expected a JSON list of questions, not a "
                        f"{type(data).__name__}")
    if not data:
        raise UserError(f"--batch {path}: the list of questions is empty")
    for n, q in enumerate(data, 1):
        if not isinstance(q, str):
            raise UserError(f"--batch {path}: question {n} is a {type(q).__name__}, not text")
        if not clean_text(q):
            raise UserError(f"--batch {path}: question {n} is empty")
        try:
            check_input(q, limit, f"--batch {path}: question {n}")
        except InputTooLong as exc:
            raise UserError(str(exc)) from exc
    return data


def main(args: argparse.Namespace, cfg: Config) -> int:
    from bot.engine import open_engine
    from bot.recall import recall_answers
    from bot.wake import CUT_NOTE, bound_input, clean_text

    limit = cfg.chat.max_message_chars
    if args.batch is not None:
        if args.question is not None:
            raise UserError("give one question or --batch FILE, not both")
        questions = read_batch(args.batch, limit)
    elif args.question is None or not clean_text(args.question):
        raise UserError("the question is empty")
    else:
        question, was = bound_input(args.question, limit)
        if was:  # typed text is cut like a chat message, and the user told
            print(CUT_NOTE.format(limit=limit), file=sys.stderr)
        questions = [question]

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
