"""``bench sleep`` on the tiny random llama: the result's keys and values (never timings), that
the mlx-lm baseline trains the same parameter count and gives the model back untouched, and
that the verb is registered.

    LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0 .venv/bin/python -m pytest -q \
        tests/test_bench_sleep.py
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from bot.bench.sleep import (
    flops_per_token,
    format_table,
    mlx_lm_train,
    ours_train,
    run_sleep_bench,
)
from runtime.config import LoRAConfig, TrainConfig
from sleep.training import build_example
from sleep.types import QAPair
from tests.conftest import run_cli

STAGES = {"curation", "extraction", "replay", "dreaming", "training", "validation", "fusion"}


def test_bench_reports_the_cycle_and_both_trainers(tiny_config, capsys):
    tiny_config.sleep.phrasings_per_fact = 1
    tiny_config.sleep.tau = 0.0  # a tiny random model: only the memory gate decides
    tiny_config.sleep.train.learning_rate = 1e-3
    r = run_sleep_bench(tiny_config, iters=3, turns=3, matmul_size=128, repeats=2)
    assert capsys.readouterr().out == ""  # mlx-lm's progress UI never reaches our stdout
    assert r["cycle_status"] == "accepted" and r["facts"] > 0
    assert set(r["stage_seconds"]) == STAGES
    assert all(v >= 0 for v in r["stage_seconds"].values())
    for key in ("cycle_seconds", "train_tokens_per_s", "mlx_lm_tokens_per_s", "train_ratio",
                "matmul_gflops", "train_flops_per_token", "train_gflops",
                "train_matmul_share", "train_tokens"):
        assert r[key] > 0, key
    assert r["iters"] == 3 and r["cycle_examples"] > 0
    assert len(r["train_tokens_per_s_runs"]) == len(r["mlx_lm_tokens_per_s_runs"]) == 2
    assert r["trainable_params"] == r["mlx_lm_trainable_params"] > 0  # the same LoRA
    assert r["model"] == tiny_config.model
    assert "ratio ours/mlx-lm" in format_table(r)


def test_mlx_lm_baseline_gives_the_model_back(tiny_runtime):
    tok = tiny_runtime.loaded.tokenizer
    examples = [build_example(tok, "sys", QAPair(q, a), 64) for q, a in (
        ("Where do I live?", "You live in Lisbon."), ("My dog?", "Biscuit."))]
    lora, train = LoRAConfig(rank=4, layers=2), TrainConfig(learning_rate=1e-3)
    ids = mx.array([examples[0].ids])

    def snapshot(ctx):
        ctx.use_base()
        out = ctx.model(ids)
        mx.eval(out)
        return out, {p: type(m) for p, m in ctx.model.named_modules()}

    before, types = tiny_runtime.call(snapshot)
    plain = tiny_runtime.call(mlx_lm_train, examples, lora, train)
    ours = tiny_runtime.call(ours_train, examples, lora, train)
    assert plain["trainable_params"] == ours["trainable_params"] > 0
    assert plain["tokens"] == ours["tokens"] == sum(len(e.ids) for e in examples)
    after, types_after = tiny_runtime.call(snapshot)
    assert types_after == types and nn.Linear in types.values()
    assert tiny_runtime.call(lambda ctx: mx.array_equal(before, after).item())
    # 2·P_fwd + 4·P_bwd: the tiny llama's head (49152 × 64) dominates both
    per_token = tiny_runtime.call(flops_per_token, lora)
    assert per_token > 6 * 49152 * 64


def test_bench_sleep_verb_is_registered(tmp_path):
    out = run_cli("bench", "sleep", "--help", data_dir=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "--iters" in out.stdout and "--json" in out.stdout
