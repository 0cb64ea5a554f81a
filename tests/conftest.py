"""Shared fixtures: a tiny random llama (seconds), the bundled model (slow tests), engines.

The tiny model uses mlx-lm's own llama classes with random weights and the bundled model's
tokenizer, saved as a normal mlx-lm model directory, so every code path (loading, chat
template, generation, LoRA training, fusion) is the real one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

TINY_CONFIG = {
    "model_type": "llama",
    "hidden_size": 64,
    "num_hidden_layers": 4,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-5,
    "vocab_size": 49152,
    "rope_theta": 10000.0,
    "rope_traditional": True,
    "tie_word_embeddings": True,
    "max_position_embeddings": 2048,
    "bos_token_id": 1,
    "eos_token_id": 2,
}


@pytest.fixture(scope="session")
def bundled_model_dir(tmp_path_factory) -> Path:
    """The bundled SmolLM2-135M imported to an MLX model directory (once per session)."""
    from bot.gguf import convert_gguf
    from bot.models import BUNDLED_DIRNAME, bundled_gguf

    cached = REPO / "data" / "models" / BUNDLED_DIRNAME
    if (cached / "model.safetensors").is_file():
        return cached
    return convert_gguf(bundled_gguf(), tmp_path_factory.mktemp("models") / BUNDLED_DIRNAME)


def make_tiny_model(target: Path, tokenizer_src: Path, seed: int = 0, **overrides) -> Path:
    """Save a random tiny llama with the bundled tokenizer as an mlx-lm model directory."""
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


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, bundled_model_dir) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama", bundled_model_dir)


@pytest.fixture
def tiny_config(tmp_path, tiny_model_dir):
    """A Config on a fresh data dir that uses the tiny model."""
    from bot.config import load_config

    cfg = load_config(data_dir=tmp_path / "data", model=str(tiny_model_dir), env={})
    cfg.chat.max_tokens = 16
    return cfg


@pytest.fixture(scope="session")
def tiny_runtime(tiny_model_dir):
    """One model thread on the tiny model shared by the tests that only read weights."""
    from bot.config import load_config
    from bot.engine import model_loader
    from bot.runtime import ModelRuntime

    cfg = load_config(data_dir=Path("/nonexistent"), model=str(tiny_model_dir), env={})
    runtime = ModelRuntime(model_loader(cfg)).start()
    yield runtime
    runtime.close()


def run_cli(*args: str, data_dir: Path, model: Path | str | None = None, input: str | None = None,
            timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m bot`` in a new process (a real restart: nothing shared in memory)."""
    cmd = [sys.executable, "-m", "bot", "--data-dir", str(data_dir)]
    if model is not None:
        cmd += ["--model", str(model)]
    full_env = dict(os.environ) | (env or {})
    full_env.pop("SLEEPBOT_MODEL", None)
    return subprocess.run(cmd + list(args), input=input, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=full_env)


@pytest.fixture
def cli():
    return run_cli


def shared_file(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"development data {path} is absent (../shared/data is not beside the repo)")
    return path
