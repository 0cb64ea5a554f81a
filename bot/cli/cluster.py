"""``python -m bot cluster ...``: the distributed mode's commands (Ray; README "Many hosts").

    python -m bot cluster run [--workers N] [--address ADDR] [--enqueue U] [--until-empty]
                                         the head: run the sleep queue on N Ray worker actors
                                         (ADDR: "auto" or HOST:PORT of a started cluster;
                                         none: a local cluster in this process, one laptop)
    python -m bot cluster head [--port 6379] [--num-cpus N]   start a Ray head node here
    python -m bot cluster join HOST:PORT [--num-cpus N]       add this host's CPUs/GPUs to it
    python -m bot cluster stop                                 stop this host's Ray node

``head``, ``join`` and ``stop`` run Ray's own ``ray start`` / ``ray stop`` from this venv
(so every host runs the same Ray and Python); ``run`` is ``python -m bot worker`` with
``cluster.enabled`` on (the Discord bot takes ``SLEEPBOT_CLUSTER=1`` the same way).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from bot.cli.common import UserError
from runtime.config import Config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cluster", help="the distributed mode: sleep on Ray workers")
    csub = p.add_subparsers(dest="cluster_command", required=True)

    run = csub.add_parser("run", help="the head: run the sleep queue on Ray worker actors")
    run.add_argument("--workers", type=int, default=None, help="sleep-worker actors")
    run.add_argument("--address", default=None,
                     help='a started cluster ("auto" or HOST:PORT); default: a local one')
    run.add_argument("--lease-seconds", type=float, default=None)
    run.add_argument("--enqueue", action="append", default=[], metavar="USER",
                     help="queue a cycle for USER first (repeatable)")
    run.add_argument("--deep", action="store_true", help="queued cycles are deep ones")
    run.add_argument("--until-empty", action="store_true", help="exit once the queue is empty")
    run.add_argument("--json", action="store_true", help="print the cycle reports as JSON")
    run.set_defaults(func=run_main)

    head = csub.add_parser("head", help="start a Ray head node on this host")
    head.add_argument("--port", type=int, default=6379)
    head.add_argument("--num-cpus", type=int, default=None)
    head.set_defaults(func=head_main)

    join = csub.add_parser("join", help="add this host to the cluster at HOST:PORT")
    join.add_argument("address")
    join.add_argument("--num-cpus", type=int, default=None)
    join.set_defaults(func=join_main)

    stop = csub.add_parser("stop", help="stop this host's Ray node")
    stop.set_defaults(func=stop_main)


def run_main(args: argparse.Namespace, cfg: Config) -> int:
    from bot.cli.worker import main as worker_main

    cfg.cluster.enabled = True
    if args.workers is not None:
        if args.workers < 1:
            raise UserError("--workers must be at least 1")
        cfg.cluster.workers = args.workers
    if args.address is not None:
        cfg.cluster.address = args.address
    if args.lease_seconds is not None:
        cfg.cluster.lease_seconds = args.lease_seconds
    _need_ray()
    return worker_main(args, cfg)


def _need_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UserError('the distributed mode needs Ray: pip install -e ".[cluster]"') from None


def _ray_command() -> list[str]:
    """Ray's CLI from this venv (the same Ray and Python on every host)."""
    _need_ray()
    beside = Path(sys.executable).parent / "ray"
    found = str(beside) if beside.is_file() else shutil.which("ray")
    if found is None:
        raise UserError("Ray's command line (ray) is not installed beside this Python")
    return [found]


def head_main(args: argparse.Namespace, cfg: Config) -> int:
    cmd = _ray_command() + ["start", "--head", f"--port={args.port}",
                            "--include-dashboard=false"]
    if args.num_cpus is not None:
        cmd.append(f"--num-cpus={args.num_cpus}")
    code = subprocess.call(cmd)
    if code == 0:
        print(f"head started: on each worker host run `python -m bot cluster join "
              f"<this host>:{args.port}`, then here `python -m bot cluster run --address auto`")
    return code


def join_main(args: argparse.Namespace, cfg: Config) -> int:
    cmd = _ray_command() + ["start", f"--address={args.address}"]
    if args.num_cpus is not None:
        cmd.append(f"--num-cpus={args.num_cpus}")
    return subprocess.call(cmd)


def stop_main(args: argparse.Namespace, cfg: Config) -> int:
    return subprocess.call(_ray_command() + ["stop"])
