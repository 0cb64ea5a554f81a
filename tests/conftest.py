"""Shared fixtures: a tiny random llama (seconds), the bundled model (slow tests), engines.

The tiny model uses mlx-lm's own llama classes with random weights and the bundled model's
tokenizer, saved as a normal mlx-lm model directory, so every code path (loading, chat
template, generation, LoRA training, fusion) is the real one.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"



@pytest.fixture(scope="session")
def bundled_model_dir(tmp_path_factory) -> Path:
    """The bundled SmolLM2-135M imported to an MLX model directory (once per session)."""
    from runtime.gguf import convert_gguf
    from runtime.models import BUNDLED_DIRNAME, bundled_gguf

    cached = REPO / "data" / "models" / BUNDLED_DIRNAME
    if (cached / "model.safetensors").is_file():
        return cached
    return convert_gguf(bundled_gguf(), tmp_path_factory.mktemp("models") / BUNDLED_DIRNAME)


def unwritable_dir(tmp_path: Path) -> Path:
    """A directory we can't create files in: chmod'ed, or /proc when root ignores modes."""
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    probe = d / "probe"
    try:
        probe.write_text("x")
    except OSError:
        return d
    probe.unlink()
    d.chmod(0o755)
    return Path("/proc")


def make_tiny_model(target: Path, tokenizer_src: Path, seed: int = 0, **overrides) -> Path:
    """Save a random tiny llama with the bundled tokenizer as an mlx-lm model directory."""
    from runtime.tiny import build_tiny_model

    return build_tiny_model(target, tokenizer_src, seed, **overrides)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, bundled_model_dir) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama", bundled_model_dir)


@pytest.fixture
def tiny_config(tmp_path, tiny_model_dir):
    """A Config on a fresh data dir that uses the tiny model."""
    from runtime.config import load_config

    cfg = load_config(data_dir=tmp_path / "data", model=str(tiny_model_dir), env={})
    cfg.chat.max_tokens = 16
    return cfg


def quick_sleep(cfg):
    """Sleep settings under which a tiny-model cycle is quick and accepted: two phrasings,
    two LoRA layers, a high learning rate, no general-ability gate (random weights score
    at chance) and no automatic deep cycles."""
    cfg.sleep.tau = 0.0
    cfg.sleep.phrasings_per_fact = 2
    cfg.sleep.deep_every = 0
    cfg.sleep.train.learning_rate = 1e-3
    cfg.sleep.lora.layers = 2
    return cfg


@pytest.fixture(scope="session")
def tiny_runtime(tiny_model_dir):
    """One model thread on the tiny model shared by the tests that only read weights."""
    from bot.engine import model_runtime
    from runtime.config import load_config

    cfg = load_config(data_dir=Path("/nonexistent"), model=str(tiny_model_dir), env={})
    runtime = model_runtime(cfg).start()
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


@contextlib.contextmanager
def lock_held_elsewhere(data_dir: Path, role: str | None = None):
    """Another live process holds the data dir's queue lock, as a running bot does; ``role``
    is what it writes into the lock file (None: a bare lock). Yields that process."""
    from bot.recovery import LOCK_FILE

    write = f"os.write(fd, f'{{os.getpid()}} {role}'.encode()); " if role else ""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
         f"fcntl.flock(fd, fcntl.LOCK_EX); {write}print('locked', flush=True); "
         "sys.stdin.read()", str(data_dir / LOCK_FILE)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def assert_one_line_error(out, *needles: str) -> str:
    """Exit 2, no traceback, one stderr line starting with "error: " holding ``needles``."""
    assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
