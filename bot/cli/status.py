"""``python -m bot status [--user U] [--json]``: each user's state (awake / queued / sleeping
and the stage) and the sleep queue, read from SQLite and the live bot's status file."""

from __future__ import annotations

import argparse

from bot.cli.common import UserError, print_json, run_async
from runtime.config import Config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="users' sleep states and the sleep queue")
    p.add_argument("--user", default=None, help="one user only")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=main)


def format_status(s: dict) -> str:
    o = s["orchestrator"]
    lines = [f"orchestrator: running (pid {o['pid']})" if o["running"]
             else "orchestrator: not running (queued jobs run at the next start)"]
    if o.get("status_file_unreadable"):
        lines[0] += "; its status file is missing or damaged, so its stage is not shown"
    if o["cycle"]:
        c = o["cycle"]
        lines.append(f"  sleeping now: {c['user_id']} ({c['kind']}, job {c['job_id']}) "
                     f"stage {c['stage']}, {c['seconds']:.0f}s in")
    lines.append(f"queue: {len(s['queue'])} pending job(s)")
    for q in s["queue"]:
        lines.append(f"  {q['position']:3d}. {q['user_id']} {q['kind']} job {q['job_id']} "
                     f"({q['state']}, waiting {q['waiting_s']:.0f}s)")
    for u in s["users"]:
        state = u["state"] + (f" ({u['stage']})" if u["stage"] else "")
        lines.append(f"{u['user_id']}: {state}; {u['turns_since_sleep']} turns since sleep, "
                     f"{u['cycles_done']} cycles, {u['facts_consolidated']} facts consolidated, "
                     f"checkpoint {u['checkpoint']} ({u['checkpoint_bytes']} bytes); "
                     f"next sleep {u['next_sleep']}")
        if u.get("checkpoint_problem"):
            lines.append(f"  warning: {u['checkpoint_problem']}; answering from "
                         f"{u['checkpoint']} until a rebuild cycle replaces it")
    return "\n".join(lines)


def main(args: argparse.Namespace, cfg: Config) -> int:
    from bot.status import collect_status
    from memory.paths import store_path

    if not store_path(cfg.data_dir).is_file():
        raise UserError(f"no database in {cfg.data_dir} yet (chat first)")
    status = run_async(collect_status(cfg, args.user))
    print_json(status) if args.json else print(format_status(status))
    return 0
