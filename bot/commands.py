"""Implementations of the foundation's CLI verbs (registered into :mod:`bot.cli`)."""

from __future__ import annotations

import argparse

from bot.cli import command, print_json, run_async
from bot.config import Config


@command("chat")
def chat_cmd(args: argparse.Namespace, cfg: Config) -> int:
    from bot.engine import open_engine
    from bot.terminal import chat_loop

    async def main() -> int:
        async with open_engine(cfg) as engine:
            await chat_loop(engine, args.user, args.banner)
        return 0

    return run_async(main())


@command("model import")
def model_import_cmd(args: argparse.Namespace, cfg: Config) -> int:
    from bot.gguf import GGUFImportError, convert_gguf
    from bot.models import ModelError, resolve_model
    from memory.paths import models_dir

    if args.gguf is None:
        path = resolve_model(cfg.model, models_dir(cfg.data_dir))
    else:
        out = args.out or models_dir(cfg.data_dir) / args.gguf.stem
        try:
            path = convert_gguf(args.gguf, out)
        except GGUFImportError as exc:
            raise ModelError(str(exc)) from exc
    print(f"model ready: {path}")
    return 0


@command("bench generate")
def bench_generate_cmd(args: argparse.Namespace, cfg: Config) -> int:
    from bot.bench_generate import format_table, run_generate_bench

    result = run_generate_bench(cfg, args.max_tokens, args.repeats, stock=not args.no_stock)
    if args.json:
        print_json(result)
    else:
        print(format_table(result))
    return 0


def read_ingest_file(path) -> list[tuple[str, str | None]]:
    """(user text, assistant text or None) pairs from a JSONL file of role/content lines."""
    import json

    from bot.cli import UserError

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


@command("ingest")
def ingest_cmd(args: argparse.Namespace, cfg: Config) -> int:
    from bot.engine import open_engine
    from bot.wake import ChatService, EmptyMessage

    turns = read_ingest_file(args.file)

    async def main() -> int:
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

    return run_async(main())


def format_report(r: dict) -> str:
    v = r.get("validation") or {}
    lines = [f"sleep cycle {r['cycle_id']} ({r['kind']}) for {r['user_id']}: {r['status']}"
             f" in {r['seconds']:.1f}s — {r['reason']}"]
    for name, info in r["stages"].items():
        shown = ", ".join(f"{k} {val}" for k, val in info.items() if k != "seconds")
        lines.append(f"  {name:11} {info.get('seconds', 0):6.1f}s  {shown}")
    if v:
        lines.append(f"  validation: general {v['general_pre']:.3f} → {v['general_post']:.3f}"
                     f" (tau {v['tau']})")
    lines.append(f"  checkpoint now: {r['checkpoint']}")
    return "\n".join(lines)


@command("sleep")
def sleep_cmd(args: argparse.Namespace, cfg: Config) -> int:
    from bot.engine import open_engine
    from sleep.pipeline import run_cycle

    def show(stage: str, info: dict) -> None:
        if not args.json:
            import sys

            print(f"… {stage}: {info}", file=sys.stderr)

    async def main() -> int:
        async with open_engine(cfg) as engine:
            report = (await run_cycle(engine, args.user, deep=args.deep, progress=show)).to_dict()
        print_json(report) if args.json else print(format_report(report))
        return 0 if report["status"] != "failed" else 1

    return run_async(main())


async def recall_answer(engine, user_id: str, question: str) -> tuple[str, str]:
    """Answer from the user's weights with only the system prompt: no history, no retrieval."""
    answers, label = await recall_answers(engine, user_id, [question])
    return answers[0], label


async def recall_answers(engine, user_id: str, questions: list[str]) -> tuple[list[str], str]:
    """:func:`recall_answer` for many questions, decoded as one batch."""
    from bot.generation import complete_batch
    from bot.wake import clean_text

    checkpoint = engine.checkpoint(user_id)
    system = {"role": "system", "content": engine.cfg.chat.system_prompt}
    conversations = [[system, {"role": "user", "content": clean_text(q)}] for q in questions]
    answers = await engine.runtime.run(complete_batch, user_id, checkpoint, conversations,
                                       engine.cfg.chat.max_tokens)
    return answers, engine.checkpoint_label(user_id)


@command("recall")
def recall_cmd(args: argparse.Namespace, cfg: Config) -> int:
    import json

    from bot.cli import UserError
    from bot.engine import open_engine
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

    async def main() -> int:
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

    return run_async(main())


@command("eval")
def eval_cmd(args: argparse.Namespace, cfg: Config) -> int:
    from bot.engine import open_engine
    from sleep.validation import load_mc_file, mc_accuracy

    items = load_mc_file(args.mc)

    def score(ctx, user_id, checkpoint):
        ctx.use_user(user_id, checkpoint)
        return mc_accuracy(ctx, items)

    async def main() -> int:
        async with open_engine(cfg) as engine:
            acc = await engine.runtime.run(score, args.user, engine.checkpoint(args.user))
            label = engine.checkpoint_label(args.user)
        out = {"accuracy": acc, "n": len(items), "checkpoint": label}
        print_json(out) if args.json else print(f"accuracy {acc:.3f} on {len(items)} items "
                                               f"({label})")
        return 0

    return run_async(main())
