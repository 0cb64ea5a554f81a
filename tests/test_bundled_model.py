"""The real bundled model (SmolLM2-135M-Instruct, imported from its Q4_1 GGUF): it answers a
known question through our runtime, and ``bench generate`` runs end to end. Slow: a few seconds
each on two cores, so only these two.

    export LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0
    .venv/bin/python -m pytest -q -m slow tests/test_bundled_model.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.engine import model_runtime
from runtime.config import DEFAULT_SYSTEM_PROMPT, load_config
from runtime.generation import complete


@pytest.mark.slow
def test_bundled_model_knows_the_capital_of_france(bundled_model_dir):
    cfg = load_config(data_dir=Path("/nonexistent"), model=str(bundled_model_dir), env={})
    runtime = model_runtime(cfg).start()
    try:
        messages = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
                    {"role": "user", "content": "What is the capital of France?"}]
        stats = runtime.call(complete, None, None, messages, 32)
        compute = runtime.loaded.compute
    finally:
        runtime.close()
    assert "Paris" in stats.text, stats.text
    assert stats.checkpoint is None and stats.generation_tokens > 0
    assert compute == ("float32" if runtime.ctx.device == "cpu" else "native")


@pytest.mark.slow
def test_bench_generate_json(cli, tmp_path, bundled_model_dir):
    out = cli("bench", "generate", "--json", "--repeats", "1", "--max-tokens", "16",
              "--no-stock", data_dir=tmp_path / "data", model=bundled_model_dir)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["decode_ratio"] > 0 and result["prefill_ratio"] > 0
    assert result["ours"]["tokens"] > 0 and result["mlx_lm"]["tokens"] > 0
    assert "stock" not in result
