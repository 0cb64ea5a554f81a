"""``python -m bot ingest --user U FILE``: log a JSONL conversation as a user's exchanges.

Each line is ``{"role": "user" | "assistant", "content": ...}``; a user line without an
assistant line after it gets a real reply from the model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bot.cli.common import UserError, run_async
from runtime.config import Config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="log a JSONL conversation as a user's exchanges")
    p.add_argument("--user", required=True)
    p.add_argument("file", type=Path)
    p.set_defaults(func=main)


def read_ingest_file(path: Path) -> list[tuple[str, str | None]]:
    """(user text, assistant text or None) pairs from a JSONL file of role/content lines."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from exc
    turns: list[tuple[str, str | None]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
            role, content = msg["role"], str(msg["content"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise UserError(f"{path}:{n}: expected {{\"role\": ..., \"content\": ...}}") from exc
        if role == "user":
            turns.append((content, None))
        elif role == "assistant" and turns and turns[-1][1] is None:
            turns[-1] = (turns[-1][0], content)
        elif role not in ("user", "assistant"):
            raise UserError(f"{path}:{n}: role must be user or assistant, not {role!r}")
    return turns


def main(args: argparse.Namespace, cfg: Config) -> int:
    from bot.engine import open_engine
    from bot.wake import ChatService, EmptyMessage

    turns = read_ingest_file(args.file)

    async def run() -> int:
        async with open_engine(cfg) as engine:
            chat = ChatService(engine)
            conv = await chat.conversation(args.user)
            n = 0
            for user_text, reply in turns:
                try:
                    if reply is None:
                        await chat.reply(args.user, user_text)
                    else:
                        text, _ = chat.prepare(user_text)
                        await chat.save(args.user, text, reply, conv.session_id, "ingest")
                        conv.messages += [{"role": "user", "content": text},
                                          {"role": "assistant", "content": reply}]
                    n += 1
                except EmptyMessage:
                    continue
            print(f"ingested {n} exchanges for user {args.user}")
        return 0

    return run_async(run())
