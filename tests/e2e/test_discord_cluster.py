"""End to end in the distributed mode: the real bot and discord.py against the fake Discord,
with ``cluster.enabled`` (as ``SLEEPBOT_CLUSTER=1``): the bot starts a local Ray cluster and
a sleep worker process, ``/sleep`` runs the cycle there, and ``/recall`` answers from the
checkpoint the head committed.

    .venv/bin/python -m pytest -q tests/e2e/test_discord_cluster.py
"""

from __future__ import annotations

import pytest
from discord_env import SECRET, dm_and_wait, e2e_config, start_bot, stop_bot, wait_response

pytestmark = pytest.mark.timeout(300)


@pytest.mark.asyncio
async def test_sleep_runs_on_a_ray_worker_and_recall_uses_its_checkpoint(
        tmp_path, tiny_model_dir, tiny_runtime) -> None:
    from bot.cluster.head import ClusterOrchestrator

    cfg = e2e_config(tmp_path, tiny_model_dir)
    cfg.cluster.enabled = True
    cfg.cluster.workers = 1
    cfg.cluster.object_store_mb = 120
    env = await start_bot(cfg, tiny_runtime)
    try:
        assert isinstance(env.orch, ClusterOrchestrator)
        worker_pid = env.orch.pool.slots[0].pid
        fake = env.fake
        alice = fake.make_user("alice")
        await dm_and_wait(env, alice, f"My sister is called {SECRET}.")
        await dm_and_wait(env, alice, "I live in Lisbon.")

        sleep = await fake.slash(alice, "sleep")
        report = await wait_response(env, sleep, lambda c: "Sleep cycle" in c, timeout=240)
        assert "accepted" in report and f"{alice['id']}/v0001" in report
        (cycle,) = env.orch.reports()
        attempts = cycle.stages["cluster"]["attempts"]
        assert [a["pid"] for a in attempts] == [worker_pid]  # computed in the worker process

        recall = await fake.slash(alice, "recall", {"question": "Who is my sister?"})
        answer = await wait_response(env, recall, lambda c: "answered from" in c)
        assert f"{alice['id']}/v0001" in answer
    finally:
        await stop_bot(env)
    import ray

    assert not ray.is_initialized()  # the bot's close() shut down the cluster it started
