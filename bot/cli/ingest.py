"""``python -m bot ingest --user U FILE [--again]``: log a JSONL conversation as a user's
exchanges.

Each line is ``{"role": "user" | "assistant", "content": "..."}``; a user line without an
assistant line after it gets a real reply from the model. The whole file is checked before
anything is saved, and a line that cannot be taken as it is (content that is not text, an
assistant line with no user line before it, an empty message, a message longer than
``chat.max_message_chars``) is refused with its line number: nothing is changed or dropped in
silence.

A file is recorded by its content hash: ingesting the same file again for the same user is
refused (``--again`` logs it a second time), and an ingest that stopped part way (a full
disk, a kill) continues where it stopped when run again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from bot.cli.common import UserError, run_async
from runtime.config import Config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="log a JSONL conversation as a user's exchanges")
    p.add_argument("--user", required=True)
    p.add_argument("--again", action="store_true",
                   help="log a file that was already ingested for this user a second time")
    p.add_argument("file", type=Path)
    p.set_defaults(func=main)


@dataclass
class Turn:
    user: str  # cleaned, as it will be stored
    reply: str | None  # None: the model writes one
    line: int


def read_ingest_file(path: Path, limit: int) -> tuple[list[Turn], str]:
    """The turns of a JSONL file of role/content lines and the file's sha256; every problem
    is a :class:`UserError` naming the line (nothing is saved before the whole file passed)."""
    from bot.wake import InputTooLong, check_input, clean_text

    try:
        raw = path.read_bytes()
        lines = raw.decode("utf-8").splitlines()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"cannot read {path}: it is not UTF-8 text (byte {exc.start})") from exc
    turns: list[Turn] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            msg = json.loads(line)
            role, content = msg["role"], msg["content"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise UserError(f"{where}: expected {{\"role\": ..., \"content\": ...}}") from exc
        if role not in ("user", "assistant"):
            raise UserError(f"{where}: role must be user or assistant, not {role!r}")
        if not isinstance(content, str):
            raise UserError(f"{where}: content must be text, not {type(content).__name__} "
                            f"{json.dumps(content)[:40]}")
        try:
            check_input(content, limit, where)
        except InputTooLong as exc:
            raise UserError(str(exc)) from exc
        if role == "user":
            text = clean_text(content)
            if not text:
                raise UserError(f"{where}: the user message is empty")
            turns.append(Turn(text, None, n))
        elif not turns or turns[-1].reply is not None:
            after = "another assistant line" if turns else "the start of the file"
            raise UserError(f"{where}: an assistant line must follow a user line (this one "
                            f"follows {after})")
        else:
            turns[-1].reply = content
    if not turns:
        raise UserError(f"{path} holds no messages")
    return turns, hashlib.sha256(raw).hexdigest()


def main(args: argparse.Namespace, cfg: Config) -> int:
    turns, digest = read_ingest_file(args.file, cfg.chat.max_message_chars)
    return run_async(_ingest(args, cfg, turns, digest))


async def _saved_after(store, user: str, after: int, turn: Turn) -> int | None:
    """The id of ``turn`` if it is the user's next exchange after ``after`` (a save that
    reached SQLite before the process stopped, or before the log write failed)."""
    nxt = next(iter(await store.exchanges_after(user, after)), None)
    return nxt.id if nxt is not None and nxt.user_text == turn.user else None


async def _ingest(args: argparse.Namespace, cfg: Config, turns: list[Turn], digest: str) -> int:
    from bot.engine import open_engine
    from bot.wake import SAVE_ERRORS, ChatService

    user, total = args.user, len(turns)
    async with open_engine(cfg) as engine:
        store = engine.store
        record = await store.ingest_record(user, digest)
        if record is not None and record.finished_at is not None and not args.again:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.finished_at))
            raise UserError(f"{args.file} was already ingested for user {user} on {when} "
                            f"({record.saved} exchanges); nothing was added. Pass --again to "
                            "log it a second time")
        if record is None or args.again:
            record = await store.start_ingest(user, digest, args.file.name, total)
        elif record.saved:
            print(f"continuing an earlier ingest of {args.file.name} that stopped after "
                  f"{record.saved} of {total} exchanges")
        chat = ChatService(engine)
        conv = await chat.conversation(user)
        saved, last, new = record.saved, record.last_exchange_id or 0, 0
        try:
            for n, turn in enumerate(turns[saved:]):
                # a stopped run may have saved this one without recording it (a kill between)
                exchange_id = await _saved_after(store, user, last, turn) if n == 0 else None
                if exchange_id is None:
                    if turn.reply is None:
                        reply = await chat.reply(user, turn.user)
                        if not reply.saved:
                            raise OSError(reply.warning)
                        exchange_id = reply.exchange_id
                    else:
                        exchange_id = await chat.save(user, turn.user, turn.reply,
                                                      conv.session_id, "ingest")
                        conv.messages += [{"role": "user", "content": turn.user},
                                          {"role": "assistant", "content": turn.reply}]
                    new += 1
                saved, last = saved + 1, exchange_id
                await store.ingest_progress(record.id, saved, last, done=saved == total)
        except SAVE_ERRORS as exc:
            # the exchange may be in SQLite already (the log write failed): then it counts,
            # and recovery appends it to the log at the next start
            exchange_id = (await _saved_after(store, user, last, turns[saved])
                           if saved < total else None)
            if exchange_id is not None:
                saved += 1
                try:
                    await store.ingest_progress(record.id, saved, exchange_id)
                except SAVE_ERRORS:  # the next run finds it by its text all the same
                    pass
            raise UserError(f"{exc}: {saved} of {total} exchanges saved; free some space or "
                            "make the data directory writable, then run the same command "
                            "again: it continues where it stopped") from exc
    print(f"ingested {new} exchanges for user {user}")
    return 0
