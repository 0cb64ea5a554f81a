"""The load benchmark: its plan, its leak detector, the tiny-model builder and a short run.

    LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0 .venv/bin/python -m pytest -q \
        tests/test_bench_load.py
"""

from __future__ import annotations

import json

import pytest

from bot.bench.load import LoadOptions, SimUser, _leaks, percentile, plan_users
from bot.engine import open_engine
from runtime.tiny import build_tiny_model


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == \
        (50.0, 95.0, 99.0)
    assert percentile([3.0], 95) == 3.0
    assert percentile([], 95) != percentile([], 95)  # NaN


def test_plan_has_chatty_and_quiet_users_with_unique_secrets():
    opts = LoadOptions(users=10, messages=200, rate=2.0, threshold=10)
    users = plan_users(opts)
    assert sum(len(u.messages) for u in users) == 200
    assert len({u.secret for u in users}) == 10
    chatty = [u for u in users if u.manual_at is None]
    quiet = [u for u in users if u.manual_at is not None]
    assert len(chatty) == 5 and all(len(u.messages) >= opts.threshold for u in chatty)
    assert all(len(u.messages) < opts.threshold and u.manual_at == len(u.messages)
               for u in quiet)
    for u in users:
        assert any(u.secret in m for m in u.messages)
        assert u.times == sorted(u.times) and 0 <= u.times[0] and u.times[-1] <= 100.0


@pytest.mark.asyncio
async def test_leak_detector_finds_a_secret_in_another_users_replay(tiny_config, tiny_runtime):
    a = SimUser("a", "qqsecretaa", [], None, [])
    b = SimUser("b", "qqsecretbb", [], None, [])
    async with open_engine(tiny_config, runtime=tiny_runtime) as engine:
        from bot.wake import ChatService

        chat = ChatService(engine)
        await chat.save("a", "My favourite word is qqsecretaa.", "Noted.")
        await chat.save("b", "My favourite word is qqsecretbb.", "Noted.")
        assert await _leaks(engine, [a, b]) == (0, 2)
        await engine.store.add_replay_items(
            "b", [("What is the favourite word?", "qqsecretaa", [])], 1.0, None)
        assert await _leaks(engine, [a, b]) == (1, 2)


def test_tiny_model_builder_makes_a_loadable_model(tmp_path, bundled_model_dir):
    from runtime.models import load_model

    path = build_tiny_model(tmp_path / "tiny", bundled_model_dir)
    loaded = load_model(path, str(path), "cpu")
    assert loaded.tokenizer.encode("hello") and len(loaded.model.layers) == 4


def test_bench_load_cli_loses_nothing_and_leaks_nothing(tmp_path, tiny_model_dir, cli):
    out = cli("bench", "load", "--users", "4", "--messages", "16", "--rate", "4",
              "--window", "1", "--threshold", "2", "--max-tokens", "8", "--json",
              data_dir=tmp_path / "data", model=tiny_model_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout)
    for key in ("p95_idle", "p95_sleep", "lost", "leaks", "cycles_per_hour"):
        assert key in r
    assert r["lost"] == 0 and r["leaks"] == 0 and r["errors"] == 0
    assert r["own_secret_found"] == 4  # the detector sees each user's own secret
    assert r["n_idle"] + r["n_sleep"] == r["messages"] == 16
    assert not (tmp_path / "data" / "sleepbot.db").exists()  # ran in a temporary directory
