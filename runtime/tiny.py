"""A tiny random llama (4 layers, width 64) with a real tokenizer, saved as an mlx-lm model dir.

What the fast tests and ``bench load --tiny`` run on: it builds in a second, exercises every
code path of the real runtime, and knows nothing, so any fact it recalls was trained in.

    from runtime.tiny import build_tiny_model
    build_tiny_model(Path("tiny"), Path("data/models/smollm2-135m-instruct"))
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

TINY_CONFIG = {
    "model_type": "llama", "hidden_size": 64, "num_hidden_layers": 4,
    "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2,
    "rms_norm_eps": 1e-5, "vocab_size": 49152, "rope_theta": 10000.0,
    "rope_traditional": True, "tie_word_embeddings": True, "max_position_embeddings": 2048,
    "bos_token_id": 1, "eos_token_id": 2,
}


def build_tiny_model(target: Path, tokenizer_src: Path, seed: int = 0, **overrides) -> Path:
    """Save a random tiny llama with ``tokenizer_src``'s tokenizer files at ``target``.

    ``overrides`` change the config (e.g. ``num_hidden_layers``); ``tokenizer_src`` is any
    model dir with ``tokenizer.json`` and ``tokenizer_config.json`` (its chat template too).
    """
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models import llama

    config = TINY_CONFIG | overrides
    mx.random.seed(seed)
    model = llama.Model(llama.ModelArgs.from_dict(config))
    mx.eval(model.parameters())
    target.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(target / "model.safetensors"), dict(tree_flatten(model.parameters())))
    (target / "config.json").write_text(json.dumps(config))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tokenizer_src / name, target / name)
    return target
