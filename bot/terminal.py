"""Terminal chat: ``python -m bot chat --user NAME`` (``make demo`` starts it).

Streams the reply as it is generated, keeps history through the context manager and logs every
exchange. Lines starting with ``/`` are commands; ``/help`` lists them.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

from bot.engine import Engine
from bot.wake import ChatService, EmptyMessage

BANNER = """\
Sleepbot: a chat bot whose memories move into its weights while it sleeps.
Model: {model} ({compute} on {device}). You are user "{user}"; data in {data_dir}.
Try: tell it a few facts about yourself ("My sister is called Mia, she lives in Porto"),
then /sleep to consolidate them, /quit, start again, and /recall Who is my sister?
Commands: {commands}
"""

SlashHandler = Callable[[Engine, ChatService, str, str], Awaitable[str | None]]
# Commands added by later modules (e.g. /sleep, /recall from the sleep package).
SLASH: dict[str, tuple[str, SlashHandler]] = {}


async def _status(engine: Engine, chat: ChatService, user: str, _arg: str) -> str:
    status = await engine.store.user_status(user)
    turns = status.turns_since_sleep if status else 0
    cycles = status.cycles_done if status else 0
    conv = await chat.conversation(user)
    return (
        f"user {user}: {turns} turns since last sleep (sleep after "
        f"{engine.cfg.sleep.turn_threshold}), {cycles} sleep cycles, "
        f"checkpoint {engine.checkpoint_label(user)}, {len(conv.messages) // 2} turns in context"
        + (", with a summary of earlier turns" if conv.summary else "")
    )


SLASH["/status"] = ("your memory status", _status)


def help_text() -> str:
    items = [f"{name} ({desc})" for name, (desc, _) in sorted(SLASH.items())]
    return ", ".join(items + ["/quit"])


async def read_line(prompt: str) -> str | None:
    """``input()`` off the event loop (a plain thread: no MLX runs there)."""
    try:
        return await asyncio.get_running_loop().run_in_executor(None, input, prompt)
    except EOFError:
        return None


async def chat_loop(engine: Engine, user: str, banner: bool) -> None:
    chat = ChatService(engine)
    if banner:
        loaded = engine.runtime.loaded
        print(BANNER.format(model=engine.cfg.model, compute=loaded.compute,
                            device=engine.runtime.ctx.device, user=user,
                            data_dir=engine.cfg.data_dir, commands=help_text()))
    while True:
        line = await read_line(f"{user}> ")
        if line is None or line.strip() in ("/quit", "/exit"):
            print()
            return
        if line.strip().startswith("/"):
            name, _, arg = line.strip().partition(" ")
            if name == "/help" or name not in SLASH:
                print(f"commands: {help_text()}")
                continue
            out = await SLASH[name][1](engine, chat, user, arg.strip())
            if out:
                print(out)
            continue
        try:
            sys.stdout.write("bot> ")
            result: list = []
            async for piece in chat.stream(user, line, result):
                sys.stdout.write(piece)
                sys.stdout.flush()
            sys.stdout.write("\n")
            if result and not result[0].saved:
                print(result[0].warning)
        except EmptyMessage:
            print("(say something, or /help)")


async def _sleep(engine: Engine, chat: ChatService, user: str, arg: str) -> str:
    from bot.commands import format_report
    from sleep.pipeline import run_cycle

    def show(stage: str, info: dict) -> None:
        if stage != "done":
            print(f"  … {stage}", flush=True)

    report = await run_cycle(engine, user, deep=arg == "deep", progress=show)
    return format_report(report.to_dict())


async def _recall(engine: Engine, chat: ChatService, user: str, arg: str) -> str:
    from bot.commands import recall_answer

    if not arg:
        return "usage: /recall QUESTION"
    answer, label = await recall_answer(engine, user, arg)
    return f"[{label}] {answer}"


SLASH["/sleep"] = ("consolidate what you said into your weights; '/sleep deep' dreams", _sleep)
SLASH["/recall"] = ("answer from your weights only: /recall QUESTION", _recall)
