"""Several users' cycles in worker processes (bot/cyclepool.py, ``bench throughput``): each
user's cycle takes the same gate decisions and trains the same weights as alone.

    LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0 .venv/bin/python -m pytest -q \
        tests/test_cyclepool.py
"""

from __future__ import annotations

from bot.bench.throughput import format_table, make_jobs, run_throughput_bench
from bot.cyclepool import CyclePool
from tests.conftest import quick_sleep, run_cli


def test_pooled_cycles_match_the_same_cycles_run_alone(tiny_config):
    quick_sleep(tiny_config)
    r = run_throughput_bench(tiny_config, users=3, procs=2, turns=3, alone=3)
    assert r["procs"] == 2 and r["users"] == 3
    assert sum(r["statuses"].values()) == 3 and r["statuses"].get("failed", 0) == 0
    assert len(r["alone"]) == 3 and r["alone_same_decisions"] is True
    assert all(c["status"] == c["alone_status"] for c in r["alone"])
    assert r["alone_max_weight_diff"] < 1e-4  # float32 on the CPU: the same computation
    assert r["cycles_per_hour"] > 0
    assert "user-cycles/hour" in format_table(r)


def test_one_worker_runs_in_this_process(tiny_config, tmp_path):
    quick_sleep(tiny_config)
    with CyclePool(tiny_config, 1, tmp_path / "pool") as pool:
        results = pool.run(make_jobs(1, 3))
        assert pool._procs == []  # no process started: a single cycle costs what it did
    assert results[0].worker == 0 and results[0].status in ("accepted", "rejected")
    assert (tmp_path / "pool" / "w0").is_dir()


def test_the_verb_refuses_bad_counts(tmp_path):
    out = run_cli("bench", "throughput", "--procs", "0", data_dir=tmp_path)
    assert out.returncode == 2 and out.stderr.startswith("error:")
