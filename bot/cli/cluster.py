"""``python -m bot cluster ...``: the distributed mode's commands (Ray; README "Many hosts").

    python -m bot cluster run [--workers N] [--address ADDR] [--enqueue U] [--until-empty]
                                         the head: run the sleep queue on N Ray worker actors
                                         (default: workers_per_gpu per GPU, 2 without GPUs)
                                         (ADDR: "auto" or HOST:PORT of a started cluster;
                                         none: a local cluster in this process, one laptop)
    python -m bot cluster head [--port 6379] [--num-cpus N]   start a Ray head node here
    python -m bot cluster join HOST:PORT [--num-cpus N]       add this host's CPUs/GPUs to it
    python -m bot cluster stop                                 stop this host's Ray node

``head``, ``join`` and ``stop`` run Ray's own ``ray start`` / ``ray stop`` from this venv
(so every host runs the same Ray and Python); ``run`` is ``python -m bot worker`` with
``cluster.enabled`` on (the Discord bot takes ``SLEEPBOT_CLUSTER=1`` the same way).

Every node and the head's driver run with Ray's token authentication
(``RAY_AUTH_MODE=token`` unless set): ``head`` creates the token (``~/.ray/auth_token``)
if there is none; worker hosts need the same token, in that file or in ``RAY_AUTH_TOKEN``.
The token is never printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bot.cli.common import UserError, add_queue_arguments
from runtime.config import Config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cluster", help="the distributed mode: sleep on Ray workers")
    csub = p.add_subparsers(dest="cluster_command", required=True)

    run = csub.add_parser("run", help="the head: run the sleep queue on Ray worker actors")
    run.add_argument("--workers", type=int, default=None,
                     help="sleep-worker actors (default: workers_per_gpu per GPU of the "
                          "cluster, 2 without GPUs)")
    run.add_argument("--address", default=None,
                     help='a started cluster ("auto" or HOST:PORT); default: a local one')
    run.add_argument("--lease-seconds", type=float, default=None)
    add_queue_arguments(run)
    run.set_defaults(func=run_main)

    head = csub.add_parser("head", help="start a Ray head node on this host")
    head.add_argument("--port", type=int, default=6379)
    head.add_argument("--num-cpus", type=int, default=None)
    head.add_argument("--object-store-mb", type=int, default=None,
                      help="shared memory for Ray's object store (default: Ray's, 30%% of RAM)")
    head.add_argument("--block", action="store_true",
                      help="stay in the foreground; SIGTERM/SIGINT stops this node")
    head.set_defaults(func=head_main)

    join = csub.add_parser("join", help="add this host to the cluster at HOST:PORT")
    join.add_argument("address")
    join.add_argument("--num-cpus", type=int, default=None)
    join.add_argument("--object-store-mb", type=int, default=None)
    join.add_argument("--block", action="store_true",
                      help="stay in the foreground; SIGTERM/SIGINT stops this node")
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
    if cfg.cluster.address:  # before Ray is imported: it reads the mode then
        os.environ.setdefault("RAY_AUTH_MODE", "token")
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
                            "--include-dashboard=false", *_node_options(args)]
    env = _auth_env()
    if not env.get("RAY_AUTH_TOKEN") and not env.get("RAY_AUTH_TOKEN_PATH") and not (
            Path.home() / ".ray" / "auth_token").is_file():
        # Ray prints the token it generates: keep it off the terminal and the logs
        subprocess.run(_ray_command() + ["get-auth-token", "--generate"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    print(f"starting the head: on each worker host (with the same ~/.ray/auth_token or "
          f"RAY_AUTH_TOKEN) run `python -m bot cluster join <this host>:{args.port}`, then "
          f"here `python -m bot cluster run --address <this host>:{args.port}`", flush=True)
    return _start(cmd, args.block, env)


def join_main(args: argparse.Namespace, cfg: Config) -> int:
    cmd = _ray_command() + ["start", f"--address={args.address}", *_node_options(args)]
    return _start(cmd, args.block, _auth_env())


def stop_main(args: argparse.Namespace, cfg: Config) -> int:
    return subprocess.call(_ray_command() + ["stop"], env=_auth_env())


def _node_options(args: argparse.Namespace) -> list[str]:
    out = []
    if args.num_cpus is not None:
        out.append(f"--num-cpus={args.num_cpus}")
    if args.object_store_mb is not None:
        out.append(f"--object-store-memory={args.object_store_mb << 20}")
    return out


def _auth_env() -> dict[str, str]:
    """This environment with Ray's token authentication on (unless chosen otherwise)."""
    return dict(os.environ) | {"RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "token")}


def _start(cmd: list[str], block: bool, env: dict[str, str]) -> int:
    """Run ``ray start``; with ``block`` this process becomes it (same pid), so a signal to
    it stops the node and everything the node started."""
    if block:
        sys.stdout.flush()
        os.execve(cmd[0], cmd + ["--block"], env)
    return subprocess.call(cmd, env=env)
