"""The real bundled model (SmolLM2-135M-Instruct, imported from its Q4_1 GGUF): it answers a
known question through our runtime, ``bench generate`` runs end to end, and a reply that
loops is cut. Slow: a few seconds each on two cores, so only these three.

    export LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0
    .venv/bin/python -m pytest -q -m slow tests/test_bundled_model.py
"""

from __future__ import annotations

import json
import re
import sqlite3
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


@pytest.mark.slow
def test_a_reply_that_loops_stops_after_one_copy(cli, tmp_path, bundled_model_dir):
    """Seen in `make demo`: the bundled model answered the second line below with "She's a
    very special person." until max_tokens (256). The chat now ends the reply at the loop."""
    data = tmp_path / "data"
    lines = ["I keep a tortoise called Admiral Pebbles in my garden in Ghent.",
             "My sister Lotte works as a lighthouse keeper in Ostend.", "/quit"]
    out = cli("chat", "--user", "ana", data_dir=data, model=bundled_model_dir,
              input="\n".join(lines) + "\n")
    assert out.returncode == 0, out.stderr
    with sqlite3.connect(data / "sleepbot.db") as db:
        replies = [r for (r,) in db.execute(
            "SELECT assistant_text FROM exchanges WHERE user_id = 'ana' ORDER BY id")]
    assert len(replies) == 2
    for reply in replies:
        assert reply in out.stdout  # what was shown is what was saved
        sentences = re.split(r"(?<=[.!?])\s+", reply.strip())
        assert all(a != b for a, b in zip(sentences, sentences[1:], strict=False)), reply
        assert len(reply) < 600, reply  # 256 tokens of loop were ~1,100 characters
