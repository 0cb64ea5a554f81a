"""The capacity plan's simulation (bot/bench/capacity.py, docs/capacity.md): deterministic,
sized right, and runnable from the CLI.

    pytest -q tests/test_capacity.py
"""

from __future__ import annotations

import json

from bot.bench.capacity import (
    ASSUMED,
    cpu_cycle_seconds,
    hosts_needed,
    run_plan,
    schedule,
)


def test_plan_is_deterministic_and_hosts_fit_the_window() -> None:
    a, b = run_plan(seed=0), run_plan(seed=0)
    assert a == b
    window = ASSUMED["window_hours"]
    for row in a["populations"]:
        for kind in row["kinds"].values():
            assert kind["makespan_hours"] <= window
            assert kind["delay_p50_min"] <= kind["delay_p95_min"] <= kind["delay_p99_min"]
        # more users never need fewer hosts
    for name in a["populations"][0]["kinds"]:
        hosts = [row["kinds"][name]["hosts"] for row in a["populations"]]
        assert hosts == sorted(hosts)
    # the measured cycles are reproduced by the cost model
    assert round(cpu_cycle_seconds(12)) == 93 and round(cpu_cycle_seconds(204)) == 624


def test_hosts_needed_is_the_fewest_that_fit() -> None:
    costs = [100.0] * 10
    assert hosts_needed(costs, 1, 500) == 2
    assert schedule(costs, 2)[0] == 500 and schedule(costs, 1)[0] > 500
    assert hosts_needed([], 1, 10) == 0


def test_cli_prints_the_plan(cli, tmp_path) -> None:
    out = cli("bench", "capacity", "--json", "--batched-speedup", "2", data_dir=tmp_path)
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["assumed"]["batched_speedup"] == 2.0
    assert [row["users"] for row in plan["populations"]] == [1_000, 10_000, 100_000]
