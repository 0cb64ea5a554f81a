"""Fixtures of the Discord end-to-end tests (helpers in ``discord_env.py``).

    .venv/bin/python -m pytest -q tests/e2e
"""

from __future__ import annotations

import pytest
import pytest_asyncio
from discord_env import e2e_config, record_prompts, start_bot, stop_bot


@pytest_asyncio.fixture
async def env(tmp_path, tiny_model_dir, tiny_runtime):
    """The bot on the tiny model, connected to a fresh fake Discord."""
    env = await start_bot(e2e_config(tmp_path, tiny_model_dir), tiny_runtime)
    try:
        yield env
    finally:
        await stop_bot(env)


@pytest.fixture
def prompts(monkeypatch):
    """Every prompt that reaches the model during the test (``Prompts``)."""
    return record_prompts(monkeypatch)
