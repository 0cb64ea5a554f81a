"""``python -m bot bench generate``: our runtime's generation speed vs plain mlx-lm.

Three measurements on the same prompt and settings (greedy, ``max_tokens``):

* **ours**: a chat reply streamed through :class:`runtime.thread.ModelRuntime` (the path every
  chat message takes), on the weights our loader prepared (float32 on the Linux CPU backend,
  native 4-bit on Metal);
* **mlx-lm**: plain ``mlx_lm.stream_generate`` on those same in-memory weights, so the ratio
  isolates our runtime's overhead (target ≥ 0.95);
* **stock** (Linux CPU only): a subprocess running ``mlx_lm.load`` + ``stream_generate`` the
  way a user would without this project: the quantized model and the wheel's reference BLAS
  (target: ours ≥ 2.5× its decode speed).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

import mlx.core as mx

from bot.engine import model_runtime
from memory.paths import models_dir
from runtime.config import Config
from runtime.generation import chat_prompt, make_sampler, stream_reply
from runtime.models import resolve_model
from runtime.platform import backend, blas_preloaded
from runtime.thread import ModelRuntime

PROMPT = (
    "Here is a short story. A lighthouse keeper named Ida lived on a rocky island with her "
    "cat, a radio and a shelf of old maps. Every evening she climbed one hundred and twelve "
    "steps to light the lamp, and every morning she wrote the weather in a blue notebook. One "
    "winter a storm broke the radio, and a fishing boat lost its way in the fog. Ida rang the "
    "bell by hand all night until the boat found the harbour. Please retell this story in "
    "your own words, then explain in a few sentences what it says about patience and duty."
)

_STOCK_SCRIPT = """
import json, sys, time
import mlx.core as mx
from mlx_lm import load, stream_generate
from mlx_lm.sample_utils import make_sampler
model, tok = load(sys.argv[1])
prompt = tok.apply_chat_template([{"role": "user", "content": sys.argv[2]}],
                                 add_generation_prompt=True, tokenize=False)
runs = []
for i in range(int(sys.argv[4]) + 1):
    mx.reset_peak_memory()
    for r in stream_generate(model, tok, prompt, max_tokens=int(sys.argv[3]),
                             sampler=make_sampler(temp=0.0)):
        pass
    if i:
        runs.append({"prefill_tps": r.prompt_tps, "decode_tps": r.generation_tps,
                     "peak_gb": r.peak_memory, "tokens": r.generation_tokens})
print(json.dumps(runs))
"""


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _summary(runs: list[dict]) -> dict:
    return {
        "prefill_tps": _median(runs, "prefill_tps"),
        "decode_tps": _median(runs, "decode_tps"),
        "peak_gb": max(r["peak_gb"] for r in runs),
        "tokens": runs[-1]["tokens"],
        "runs": len(runs),
    }


def _plain_mlx_lm(ctx, messages: list[dict], max_tokens: int) -> dict:
    """Plain mlx-lm on the runtime's weights (runs on the model thread, like all MLX)."""
    from mlx_lm import stream_generate

    ctx.use_base()
    mx.reset_peak_memory()
    prompt = chat_prompt(ctx.tokenizer, messages)
    r = None
    for r in stream_generate(ctx.model, ctx.tokenizer, prompt, max_tokens=max_tokens,  # noqa: B007
                             sampler=make_sampler(0.0)):
        pass
    return {"prefill_tps": r.prompt_tps, "decode_tps": r.generation_tps,
            "peak_gb": r.peak_memory, "tokens": r.generation_tokens}


def _ours(runtime: ModelRuntime, messages: list[dict], max_tokens: int) -> dict:
    runtime.call(lambda ctx: mx.reset_peak_memory())
    # no loop cut: both sides decode the same max_tokens
    fut = runtime.submit(stream_reply, None, None, messages, max_tokens, 0.0, False)
    stats = fut.result()
    return {"prefill_tps": stats.prompt_tps, "decode_tps": stats.generation_tps,
            "peak_gb": stats.peak_memory_gb, "tokens": stats.generation_tokens}


def _stock(path: str, max_tokens: int, repeats: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env["SLEEPBOT_STOCK_BLAS"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", _STOCK_SCRIPT, path, PROMPT, str(max_tokens), str(repeats)],
        env=env, capture_output=True, text=True, check=True,
    )
    return _summary(json.loads(out.stdout.strip().splitlines()[-1]))


def run_generate_bench(cfg: Config, max_tokens: int = 128, repeats: int = 3,
                       stock: bool = True) -> dict:
    """Measure ours, plain mlx-lm and (Linux CPU) the stock setup; return one dict."""
    device = backend()
    runtime = model_runtime(cfg).start()
    try:
        messages = [{"role": "system", "content": cfg.chat.system_prompt},
                    {"role": "user", "content": PROMPT}]
        ours, plain = [], []
        for i in range(repeats + 1):  # the first round warms up both
            # alternate which goes first: a GPU's clocks (or a shared CPU's load) may favour
            # the second of two back-to-back runs
            if i % 2:
                p = runtime.call(_plain_mlx_lm, messages, max_tokens)
                o = _ours(runtime, messages, max_tokens)
            else:
                o = _ours(runtime, messages, max_tokens)
                p = runtime.call(_plain_mlx_lm, messages, max_tokens)
            if i:
                ours.append(o)
                plain.append(p)
        compute = runtime.loaded.compute
    finally:
        runtime.close()
    result = {
        "model": cfg.model, "device": device, "compute": compute,
        "openblas_preloaded": blas_preloaded(), "max_tokens": max_tokens,
        "ours": _summary(ours), "mlx_lm": _summary(plain),
    }
    result["decode_ratio"] = result["ours"]["decode_tps"] / result["mlx_lm"]["decode_tps"]
    result["prefill_ratio"] = result["ours"]["prefill_tps"] / result["mlx_lm"]["prefill_tps"]
    if stock and device == "cpu" and sys.platform.startswith("linux"):
        path = str(resolve_model(cfg.model, models_dir(cfg.data_dir)))
        result["stock"] = _stock(path, max_tokens, repeats)
        result["stock_decode_ratio"] = result["ours"]["decode_tps"] / result["stock"]["decode_tps"]
        result["stock_prefill_ratio"] = (result["ours"]["prefill_tps"]
                                         / result["stock"]["prefill_tps"])
    return result


def format_table(r: dict) -> str:
    rows = [("ours", r["ours"]), ("mlx-lm (same weights)", r["mlx_lm"])]
    if "stock" in r:
        rows.append(("stock (4-bit, no OpenBLAS)", r["stock"]))
    lines = [
        f"model {r['model']} on {r['device']} ({r['compute']}), "
        f"OpenBLAS preloaded: {r['openblas_preloaded']}, {r['max_tokens']} new tokens",
        f"{'setup':28} {'prefill tok/s':>14} {'decode tok/s':>13} {'peak GB':>8}",
    ]
    for name, s in rows:
        lines.append(f"{name:28} {s['prefill_tps']:14.1f} {s['decode_tps']:13.1f} "
                     f"{s['peak_gb']:8.3f}")
    lines.append(f"decode ratio ours/mlx-lm {r['decode_ratio']:.2f}, "
                 f"prefill ratio {r['prefill_ratio']:.2f}")
    if "stock" in r:
        lines.append(f"decode ratio ours/stock {r['stock_decode_ratio']:.2f}")
    return "\n".join(lines)
