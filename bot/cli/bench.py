"""``python -m bot bench NAME``: the benchmarks (the code lives in :mod:`bot.bench`).

    python -m bot bench generate [--json]                decode/prefill vs plain mlx_lm.generate
    python -m bot bench sleep [--json]                   a whole cycle; our trainer vs mlx-lm's
    python -m bot bench memory [--quick] [--json]        recall after sleep, baselines, retention
    python -m bot bench load [--tiny] [--json]           chat latency while other users sleep
    python -m bot bench throughput [--users N] [--procs P] user-cycles per hour on one GPU
    python -m bot bench coverage [--realtalk [DIR]]      share of answers in the training data
    python -m bot bench cluster [--workers N] [--users U] [--tiny] [--json]
                                                         cycles on Ray workers, workers killed
    python -m bot bench capacity [--json]                the capacity plan's simulation
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bot.cli.common import UserError, print_json
from runtime.config import Config, load_config
from sleep.factsets import FactSetError


def add_parser(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="benchmarks")
    bsub = bench.add_subparsers(dest="bench_command", required=True)

    gen = bsub.add_parser("generate", help="decode/prefill speed vs plain mlx_lm.generate")
    gen.add_argument("--json", action="store_true")
    gen.add_argument("--max-tokens", type=int, default=128)
    gen.add_argument("--repeats", type=int, default=3)
    gen.add_argument("--no-stock", action="store_true", help="skip the stock-setup baseline")
    gen.set_defaults(func=generate_main)

    sl = bsub.add_parser("sleep", help="a whole sleep cycle; our trainer vs mlx-lm's")
    sl.add_argument("--json", action="store_true")
    sl.add_argument("--iters", type=int, default=16, help="training steps per trainer run")
    sl.add_argument("--repeats", type=int, default=3, help="interleaved runs of each trainer")
    sl.add_argument("--turns", type=int, default=10, help="user turns in the session")
    sl.add_argument("--factset", default="persona_maya", help="a shipped fact set")
    sl.add_argument("--matmul-size", type=int, default=1024)
    sl.add_argument("--batch", type=int, default=None,
                    help="examples per training step (default: the model's batch_size)")
    sl.set_defaults(func=sleep_main)

    mem = bsub.add_parser("memory", help="recall after sleep vs baselines, retention, "
                          "isolation, learning-rate sensitivity")
    mem.add_argument("--facts", type=Path, action="append", default=None,
                     help="a fact set JSON (repeatable; default: the shipped sets)")
    mem.add_argument("--second-user", type=Path, default=None, help="fact set for isolation")
    mem.add_argument("--mc", type=Path, default=None, help="multiple-choice retention file")
    mem.add_argument("--mc-limit", type=int, default=200)
    mem.add_argument("--mc-offset", type=int, default=0,
                     help="skip this many MC items first (e.g. 100: the half of "
                          "retention_dev.jsonl the sleep defaults were never tuned on)")
    mem.add_argument("--cycles", type=int, default=None)
    mem.add_argument("--lr-grid", default=None,
                     help="comma list of LR:EPOCHS (default: the paper's table plus ours)")
    mem.add_argument("--no-lr", action="store_true", help="skip the learning-rate sweep")
    mem.add_argument("--quick", action="store_true",
                     help="one small fact set, one cycle, no full-context baseline or LR "
                     "sweep; isolation only with --second-user")
    mem.add_argument("--out", type=Path, default=None,
                     help="default bench-out/memory (bench-out/lifelong with --lifelong)")
    mem.add_argument("--json", action="store_true")
    mem.add_argument("--lifelong", type=Path, default=None, metavar="CHAT.json",
                     help="a REALTALK chat: one speaker sleeps every night for 21 days")
    mem.add_argument("--speaker", default=None, help="with --lifelong: whose messages")
    mem.add_argument("--nights", type=int, default=0, help="with --lifelong: stop after N")
    mem.set_defaults(func=memory_main)

    ld = bsub.add_parser("load", help="many users chatting while sleep cycles run")
    ld.add_argument("--users", type=int, default=50)
    ld.add_argument("--messages", type=int, default=1000)
    ld.add_argument("--rate", type=float, default=0.0,
                    help="messages per second, all users (0: chat fills ~40%% of the model)")
    ld.add_argument("--window", type=float, default=30.0,
                    help="seconds; the sleep queue is paused every other window (0: never)")
    ld.add_argument("--context-tokens", type=int, default=512,
                    help="working-memory budget of each simulated conversation")
    ld.add_argument("--max-tokens", type=int, default=24)
    ld.add_argument("--threshold", type=int, default=10, help="turns before a light cycle")
    ld.add_argument("--seed", type=int, default=0)
    ld.add_argument("--tiny", action="store_true", help="a random tiny llama (seconds to build)")
    ld.add_argument("--model", dest="bench_model", default=None,
                    help="model for this run (same as the global --model)")
    ld.add_argument("--json", action="store_true")
    ld.set_defaults(func=load_main)

    tp = bsub.add_parser("throughput", help="user-cycles per hour with several worker "
                         "processes on one GPU")
    tp.add_argument("--users", type=int, default=16)
    tp.add_argument("--procs", type=int, default=None,
                    help="worker processes (default: workers_per_gpu)")
    tp.add_argument("--turns", type=int, default=10, help="user turns before each cycle")
    tp.add_argument("--alone", type=int, default=0,
                    help="rerun the first K users alone and compare decisions and weights")
    tp.add_argument("--json", action="store_true")
    tp.set_defaults(func=throughput_main)

    cov = bsub.add_parser("coverage", help="how much of what users said reaches the training "
                          "data (a dry run: nothing is trained)")
    cov.add_argument("--facts", type=Path, action="append", default=None,
                     help="a fact set JSON (repeatable; default: the shipped sets)")
    cov.add_argument("--realtalk", type=Path, nargs="?", const=Path("data/factsets/realtalk"),
                     default=None, help="also every set in DIR (built by "
                     "scripts/realtalk_factsets.py; default data/factsets/realtalk)")
    cov.add_argument("--json", action="store_true")
    cov.set_defaults(func=coverage_main)

    cl = bsub.add_parser("cluster", help="users' cycles through Ray workers while workers are "
                         "killed; scaling from 1 to N workers")
    cl.add_argument("--workers", type=int, default=2)
    cl.add_argument("--users", type=int, default=6)
    cl.add_argument("--kills", type=int, default=1, help="busy workers SIGKILLed")
    cl.add_argument("--stalls", type=int, default=1,
                    help="busy workers frozen (SIGSTOP) past their lease, then resumed")
    cl.add_argument("--turns", type=int, default=4, help="stored turns per user")
    cl.add_argument("--lease-seconds", type=float, default=8.0)
    cl.add_argument("--no-scaling", action="store_true", help="skip the 1-vs-N phases")
    cl.add_argument("--seed", type=int, default=0)
    cl.add_argument("--tiny", action="store_true", help="a random tiny llama (seconds to build)")
    cl.add_argument("--json", action="store_true")
    cl.set_defaults(func=cluster_main)

    cap = bsub.add_parser("capacity", help="the capacity plan's simulation (docs/capacity.md)")
    cap.add_argument("--json", action="store_true")
    cap.add_argument("--seed", type=int, default=0)
    cap.add_argument("--batched-speedup", type=float, default=None,
                     help="cycle throughput of one GPU with several worker processes, "
                     "relative to one (default 5.36: bench throughput, 8 processes, H200)")
    cap.set_defaults(func=capacity_main)


def generate_main(args: argparse.Namespace, cfg: Config) -> int:
    from bot.bench.generate import format_table, run_generate_bench

    result = run_generate_bench(cfg, args.max_tokens, args.repeats, stock=not args.no_stock)
    print_json(result) if args.json else print(format_table(result))
    return 0


def sleep_main(args: argparse.Namespace, cfg: Config) -> int:
    from bot.bench.sleep import BenchError, format_table, run_sleep_bench

    try:
        result = run_sleep_bench(cfg, args.iters, args.turns, args.factset, args.matmul_size,
                                 args.repeats, args.batch)
    except BenchError as exc:
        raise UserError(str(exc)) from exc
    print_json(result) if args.json else print(format_table(result))
    return 0


def throughput_main(args: argparse.Namespace, cfg: Config) -> int:
    from bot.bench.throughput import format_table, run_throughput_bench

    if args.users < 1 or (args.procs is not None and args.procs < 1) or args.alone < 0:
        raise UserError("--users and --procs must be at least 1, --alone at least 0")
    result = run_throughput_bench(cfg, args.users, args.procs, args.turns,
                                  min(args.alone, args.users))
    print_json(result) if args.json else print(format_table(result))
    return 0 if result["alone_same_decisions"] is not False else 1


def memory_main(args: argparse.Namespace, cfg: Config) -> int:
    from bot.bench.memory import (
        PAPER_LR_GRID,
        BenchOptions,
        parse_grid,
        run_memory_bench,
        summary_table,
    )

    if args.lifelong is not None:
        return lifelong_main(args, cfg)
    quick = args.quick
    ours = (cfg.sleep.train.learning_rate, cfg.sleep.train.epochs)
    grid = [] if args.no_lr or quick else (
        parse_grid(args.lr_grid) if args.lr_grid
        else PAPER_LR_GRID + ([ours] if ours not in PAPER_LR_GRID else []))
    opts = BenchOptions(factsets=args.facts or [], second_user=args.second_user, mc=args.mc,
                        mc_limit=50 if quick else args.mc_limit, mc_offset=args.mc_offset,
                        cycles=args.cycles or (1 if quick else 2), lr_grid=grid,
                        out=args.out or Path("bench-out/memory"), quick=quick)
    results = asyncio.run(run_memory_bench(cfg, opts))
    if args.json:
        print_json(results)
    else:
        print(summary_table(results))
        print(f"\nwrote {opts.out}/results.json, results.md and plots in {results['seconds']}s")
    return 0


def load_main(args: argparse.Namespace, cfg: Config) -> int:
    from bot.bench.load import LoadOptions, format_result, run_load_bench

    if args.bench_model:
        cfg = load_config(args.config, args.data_dir, args.bench_model)
    opts = LoadOptions(users=args.users, messages=args.messages, rate=args.rate,
                       max_tokens=args.max_tokens, threshold=args.threshold, seed=args.seed,
                       window=args.window, context_tokens=args.context_tokens)
    result = run_load_bench(cfg, opts, tiny=args.tiny)
    print_json(result.to_dict()) if args.json else print(format_result(result))
    return 0 if result.lost == 0 and result.leaks == 0 else 1


def coverage_main(args: argparse.Namespace, cfg: Config) -> int:
    from bot.bench.coverage import (
        default_paths,
        factset_paths,
        format_table,
        run_coverage_bench,
    )

    # a folder stands for the fact sets in it (the held-out users, the REALTALK sets)
    paths = [p for f in args.facts or default_paths()
             for p in (factset_paths(f) if Path(f).is_dir() else [f])]
    if args.realtalk is not None:
        if not factset_paths(args.realtalk):
            raise UserError(f"no fact sets in {args.realtalk}: run "
                            "python scripts/realtalk_factsets.py first")
        paths += factset_paths(args.realtalk)
    try:
        result = asyncio.run(run_coverage_bench(cfg, paths))
    except FactSetError as exc:
        raise UserError(str(exc)) from exc
    print_json(result) if args.json else print(format_table(result))
    return 0


def lifelong_main(args: argparse.Namespace, cfg: Config) -> int:
    from bot.bench.lifelong import LifelongOptions, format_table, run_lifelong

    if not args.lifelong.is_file():
        raise UserError(f"no chat file at {args.lifelong}")
    opts = LifelongOptions(args.lifelong, args.speaker, args.mc, args.mc_limit,
                           args.out or Path("bench-out/lifelong"), args.nights,
                           args.mc_offset)
    try:
        result = asyncio.run(run_lifelong(cfg, opts))
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    print_json(result) if args.json else print(format_table(result))
    return 0


def cluster_main(args: argparse.Namespace, cfg: Config) -> int:
    from bot.bench.cluster import ClusterOptions, format_result, run_cluster_bench

    if args.workers < 1 or args.users < 1 or min(args.kills, args.stalls, args.turns) < 0:
        raise UserError("--workers and --users must be at least 1; --kills, --stalls and "
                        "--turns at least 0")
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UserError('bench cluster needs Ray: pip install -e ".[cluster]"') from None
    opts = ClusterOptions(workers=args.workers, users=args.users, kills=args.kills,
                          stalls=args.stalls, turns=args.turns, seed=args.seed,
                          lease_seconds=args.lease_seconds, scaling=not args.no_scaling)
    result = run_cluster_bench(cfg, opts, tiny=args.tiny)
    print_json(result.to_dict()) if args.json else print(format_result(result))
    return 0 if result.lost_jobs == 0 and result.duplicate_promotions == 0 else 1


def capacity_main(args: argparse.Namespace, cfg: Config) -> int:
    from bot.bench.capacity import format_plan, run_plan

    plan = run_plan(seed=args.seed, batched_speedup=args.batched_speedup)
    print_json(plan) if args.json else print(format_plan(plan))
    return 0

