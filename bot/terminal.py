"""Terminal chat: ``python -m bot chat --user NAME`` (``make demo`` starts it).

Streams the reply as it is generated, keeps history through the context manager and logs every
exchange. It runs the orchestrator like the Discord bot does, so it sleeps by itself after
``turn_threshold`` turns (and says when a cycle starts and ends); if another process (a bot or
a worker) already runs this data directory's sleep queue, that process does the sleeping.
Lines starting with ``/`` are commands; ``/help`` lists them.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.engine import Engine
from bot.orchestrator import Orchestrator, QueueBusy
from bot.recall import recall_answer
from bot.wake import CUT_NOTE, EmptyMessage, bound_input
from sleep.pipeline import format_report

BANNER = """\
Sleepbot: a chat bot whose memories move into its weights while it sleeps.
Model: {model} ({compute} on {device}). You are user "{user}"; data in {data_dir}.
Try: tell it a few facts about yourself ("My sister is called Mia, she lives in Porto"),
then /sleep to consolidate them, /quit, start again, and /recall Who is my sister?
It also sleeps by itself after {threshold} turns.
Commands: {commands}
"""
NO_QUEUE = ("(another process runs the sleep queue for {data_dir}: it will consolidate what "
            "you say here; /sleep asks it)")


@dataclass
class Session:
    """One terminal user's session: the engine, the orchestrator (None when another process
    runs the sleep queue) and the sleep jobs whose start and end are shown."""

    engine: Engine
    orch: Orchestrator
    user: str
    owns_queue: bool
    watched: set[int] = field(default_factory=set)


SlashHandler = Callable[[Session, str], Awaitable[str | None]]
SLASH: dict[str, tuple[str, SlashHandler]] = {}


def slash(name: str, desc: str) -> Callable[[SlashHandler], SlashHandler]:
    def register(fn: SlashHandler) -> SlashHandler:
        SLASH[name] = (desc, fn)
        return fn

    return register


@slash("/status", "your memory status")
async def _status(s: Session, _arg: str) -> str:
    info = await s.orch.status(s.user)
    conv = await s.orch.chat.conversation(s.user)
    state = "" if info["state"] == "awake" else (
        f"; {info['state']}" + (f" ({info['stage']})" if info["stage"] else ""))
    return (
        f"user {s.user}: {info['turns_since_sleep']} turns since last sleep (sleep after "
        f"{s.engine.cfg.sleep.turn_threshold}), {info['cycles_done']} sleep cycles, "
        f"checkpoint {info['checkpoint']}, {len(conv.messages) // 2} turns in context"
        + (", with a summary of earlier turns" if conv.summary else "") + state
    )


@slash("/sleep", "consolidate what you said into your weights; '/sleep deep' dreams")
async def _sleep(s: Session, arg: str) -> str:
    kind = "deep" if arg == "deep" else "light"
    if not s.owns_queue:
        await s.orch.engine.store.enqueue_sleep(s.user, kind)
        return "queued: the process that runs the sleep queue will run it"

    def show(stage: str, info: dict) -> None:
        if stage not in ("done", "queued"):
            print(f"  … {stage}", flush=True)

    report = await s.orch.run_now(s.user, kind, progress=show)
    return format_report(report.to_dict()) if report else "the cycle was interrupted"


@slash("/recall", "answer from your weights only: /recall QUESTION")
async def _recall(s: Session, arg: str) -> str:
    if not arg:
        return "usage: /recall QUESTION"
    limit = s.engine.cfg.chat.max_message_chars
    arg, was = bound_input(arg, limit)
    answer, label = await recall_answer(s.engine, s.user, arg)
    return f"[{label}] {answer}" + (f"\n{CUT_NOTE.format(limit=limit)}" if was else "")


def help_text() -> str:
    items = [f"{name} ({desc})" for name, (desc, _) in sorted(SLASH.items())]
    return ", ".join(items + ["/quit"])


async def read_line(prompt: str) -> str | None:
    """``input()`` off the event loop (a plain thread: no MLX runs there)."""
    try:
        return await asyncio.get_running_loop().run_in_executor(None, input, prompt)
    except EOFError:
        return None


def _watch_sleep(s: Session) -> None:
    """Say when the user's automatic cycle starts and how it ends."""
    state = s.orch.state(s.user)
    if state.job_id is None or state.job_id in s.watched:
        return
    s.watched.add(state.job_id)
    started = False

    def show(stage: str, info: dict) -> None:
        nonlocal started
        if stage == "done":
            print(f"\n(sleep cycle finished: {info.get('status')}; now answering from "
                  f"{info.get('checkpoint')})", flush=True)
        elif stage != "queued" and not started:
            started = True
            print(f"\n({s.engine.cfg.sleep.turn_threshold} turns: sleeping now to consolidate "
                  "what you said; you can keep chatting)", flush=True)

    s.orch.watch(state.job_id, show)


async def chat_loop(engine: Engine, user: str, banner: bool) -> None:
    orch = Orchestrator(engine)
    try:
        await orch.start(triggers=False)  # the turn threshold and /sleep; idle/nightly: `run`
        owns = True
    except QueueBusy:
        owns = False
    s = Session(engine, orch, user, owns)
    try:
        if banner:
            loaded = engine.runtime.loaded
            print(BANNER.format(model=engine.cfg.model, compute=loaded.compute,
                                device=engine.runtime.ctx.device, user=user,
                                data_dir=engine.cfg.data_dir, commands=help_text(),
                                threshold=engine.cfg.sleep.turn_threshold))
        if not owns:
            print(NO_QUEUE.format(data_dir=engine.cfg.data_dir))
        await _loop(s)
    finally:
        if owns:
            await orch.stop()


async def _loop(s: Session) -> None:
    while True:
        line = await read_line(f"{s.user}> ")
        if line is None or line.strip() in ("/quit", "/exit"):
            print()
            return
        if line.strip().startswith("/"):
            name, _, arg = line.strip().partition(" ")
            if name == "/help" or name not in SLASH:
                print(f"commands: {help_text()}")
                continue
            out = await SLASH[name][1](s, arg.strip())
            if out:
                print(out)
            continue
        try:
            sys.stdout.write("bot> ")
            stream = s.orch.handle_message(s.user, line)
            async for piece in stream:
                sys.stdout.write(piece)
                sys.stdout.flush()
            sys.stdout.write("\n")
            if stream.reply is not None and stream.reply.truncated_input:
                print(CUT_NOTE.format(limit=s.engine.cfg.chat.max_message_chars))
            if stream.reply is not None and not stream.reply.saved:
                print(stream.reply.warning)
        except EmptyMessage:
            print("(say something, or /help)")
            continue
        if s.owns_queue:
            _watch_sleep(s)
