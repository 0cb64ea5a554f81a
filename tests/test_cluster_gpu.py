"""The distributed mode on a cluster with GPUs: workers_per_gpu sleep workers per GPU.

    LD_PRELOAD=... .venv/bin/python -m pytest -q tests/test_cluster_gpu.py

A local Ray cluster of its own (not tests/test_cluster.py's: Ray's resources are fixed when
it starts) that declares one logical GPU: Ray accepts that on a machine without one, and
schedules by it as by a real one. With ``workers_per_gpu = 2`` and ``cluster.workers`` left
on auto, the head's pool has two workers holding half the GPU each, and a cycle runs on
them and is promoted.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import quick_sleep
from tests.test_cluster import FACTS, _assert_promoted_once, _tell

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def gpu_cluster():
    import ray

    from bot.cluster.head import connect
    from runtime.config import ClusterConfig

    assert not ray.is_initialized()
    assert connect(ClusterConfig(object_store_mb=120), num_cpus=4, num_gpus=1)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.mark.asyncio
async def test_two_workers_per_gpu_share_it_and_promote(gpu_cluster, tiny_config) -> None:
    from bot.cluster.head import ClusterOrchestrator, orchestrator_for
    from bot.engine import open_engine

    cfg = quick_sleep(tiny_config)
    cfg.sleep.train.epochs = 1
    cfg.cluster.enabled = True
    cfg.cluster.lease_seconds = 30.0
    cfg.workers_per_gpu = 2
    assert cfg.cluster.workers == 0  # auto
    assert gpu_cluster.cluster_resources()["GPU"] == 1
    async with open_engine(cfg) as engine:
        await _tell(engine, "alice", FACTS["alice"])
        orch = await orchestrator_for(engine, poll_seconds=0.2)
        assert isinstance(orch, ClusterOrchestrator) and not orch.owns_ray
        pool = orch.pool
        try:
            assert pool.size == 2 and len(pool.slots) == 2 and pool.gpu_share == 0.5
            places = await asyncio.gather(*(asyncio.wrap_future(
                s.actor.where.remote().future()) for s in pool.slots))
            for place in places:
                assert place["resources"] == {"CPU": 1.0, "GPU": 0.5}, place
                assert place["cuda_visible_devices"] == "0"  # set by Ray, as on a real GPU
            assert gpu_cluster.available_resources().get("GPU", 0) == 0  # both on the GPU
            await orch.start(triggers=False)
            report = await orch.run_now("alice", timeout=240)
            assert report.status == "accepted", report
            (attempt,) = report.stages["cluster"]["attempts"]
            assert attempt["worker"] in pool.pids()
            await _assert_promoted_once(engine, "alice")
        finally:
            await orch.stop()
            pool.shutdown()
            if orch.board is not None:
                gpu_cluster.kill(orch.board)
