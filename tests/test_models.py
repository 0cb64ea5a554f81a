"""Finding and loading models (runtime/models.py): ``--model`` errors and float32 on the CPU.

    export LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0
    .venv/bin/python -m pytest -q tests/test_models.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import pytest
from mlx.utils import tree_flatten

from runtime.config import BUNDLED_MODEL
from runtime.models import BUNDLED_DIRNAME, ModelError, load_model, resolve_model, use_float32

REPO = Path(__file__).resolve().parents[1]
IDS = mx.array([[1, 9906, 11, 905, 17, 216, 33, 34, 2]])


# -- resolve_model ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["nonexistent-thing", "./no/such/dir", "a/b/c"])
def test_unknown_model_string(tmp_path, spec):
    with pytest.raises(ModelError) as err:
        resolve_model(spec, tmp_path / "models")
    message = str(err.value)
    assert f"unknown model {spec!r}" in message
    # The message says what --model accepts.
    assert BUNDLED_MODEL in message and ".gguf" in message and "hub id" in message


def test_directory_without_config_json(tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelError, match=r"not an mlx-lm model directory \(no config.json\)"):
        resolve_model(str(tmp_path / "weights"), tmp_path / "models")


def test_missing_gguf_path(tmp_path):
    with pytest.raises(ModelError, match="model file not found: .*absent.gguf"):
        resolve_model(str(tmp_path / "absent.gguf"), tmp_path / "models")


def test_corrupt_gguf_path(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(os.urandom(2048))
    with pytest.raises(ModelError, match="cannot read .*bad.gguf as GGUF"):
        resolve_model(str(bad), tmp_path / "models")
    assert not (tmp_path / "models" / "bad").exists()


def test_model_directory_resolves_to_itself(tmp_path, tiny_model_dir):
    assert resolve_model(str(tiny_model_dir), tmp_path / "models") == tiny_model_dir


def test_bundled_model_is_imported_once(tmp_path):
    models = tmp_path / "models"
    path = resolve_model(BUNDLED_MODEL, models)
    assert path == models / BUNDLED_DIRNAME
    weights = path / "model.safetensors"
    first = weights.stat().st_mtime_ns
    assert resolve_model(BUNDLED_MODEL, models) == path
    assert weights.stat().st_mtime_ns == first  # the second call reuses the import


def test_hub_id_without_the_hub(tmp_path):
    """A hub id that cannot be fetched (offline) is a ModelError, not a traceback."""
    code = (
        "import sys; from pathlib import Path\n"
        "from runtime.models import ModelError, resolve_model\n"
        "try:\n    resolve_model('someone/no-such-model', Path(sys.argv[1]))\n"
        "except ModelError as exc:\n    print('ModelError:', exc)\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "models")], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "ModelError: cannot fetch 'someone/no-such-model' from the model hub" in out.stdout


# -- loading: float32 on the CPU ---------------------------------------------------------------


@pytest.fixture(scope="module")
def quantized_tiny_dir(tmp_path_factory, tiny_model_dir) -> Path:
    """The tiny model quantized to 4 bits (groups of 32), saved as an mlx-lm directory."""
    from mlx_lm import load

    model, _ = load(str(tiny_model_dir))
    nn.quantize(model, group_size=32, bits=4)
    mx.eval(model.parameters())
    target = tmp_path_factory.mktemp("quantized") / "tiny-q4"
    target.mkdir()
    mx.save_safetensors(str(target / "model.safetensors"), dict(tree_flatten(model.parameters())))
    config = json.loads((tiny_model_dir / "config.json").read_text())
    config["quantization"] = {"group_size": 32, "bits": 4}
    (target / "config.json").write_text(json.dumps(config))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (target / name).write_bytes((tiny_model_dir / name).read_bytes())
    return target


def test_float32_only_on_the_cpu():
    assert use_float32("cpu") is True
    assert use_float32("metal") is False and use_float32("cuda") is False


def test_cpu_load_dequantizes_to_float32(quantized_tiny_dir):
    loaded = load_model(quantized_tiny_dir, "tiny-q4", "cpu")
    assert loaded.compute == "float32"
    modules = dict(loaded.model.named_modules())
    linears = [m for m in modules.values() if isinstance(m, nn.Linear)]
    assert len(linears) == 4 * 7  # q, k, v, o, gate, up, down in each of the 4 layers
    assert not [p for p, m in modules.items()
                if isinstance(m, nn.QuantizedLinear | nn.QuantizedEmbedding)]
    assert {type(m) for m in linears} == {nn.Linear}
    dtypes = {v.dtype for _, v in tree_flatten(loaded.model.parameters())}
    assert dtypes == {mx.float32}
    assert not tree_flatten(loaded.model.trainable_parameters())  # frozen at load

    native = load_model(quantized_tiny_dir, "tiny-q4", "metal")  # as stored: 4-bit
    assert native.compute == "native"
    assert isinstance(native.model.model.layers[0].self_attn.q_proj, nn.QuantizedLinear)

    want = native.model(IDS).astype(mx.float32)
    got = loaded.model(IDS)
    assert got.dtype == mx.float32
    # Same weights, dequantized: only the order of float operations differs.
    assert mx.allclose(got, want, atol=1e-3, rtol=1e-3).item(), mx.abs(got - want).max()
    assert mx.array_equal(got.argmax(-1), want.argmax(-1)).item()


def test_a_corrupt_model_directory_is_a_model_error(tmp_path, tiny_model_dir):
    bad = tmp_path / "corrupt"
    bad.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (bad / name).write_bytes((tiny_model_dir / name).read_bytes())
    (bad / "model.safetensors").write_bytes(os.urandom(4096))
    with pytest.raises(ModelError, match="cannot load model at"):
        load_model(bad, str(bad), "cpu")


def test_compute_auto_is_float32_on_the_cpu_and_cuda_and_native_on_metal():
    from runtime.models import compute_dtype

    assert compute_dtype("cpu") == "float32" and compute_dtype("cuda") == "float32"
    assert compute_dtype("metal") == "native"
    assert compute_dtype("cuda", "native") == "native"
    assert compute_dtype("cpu", "bfloat16") == "bfloat16"


def test_bfloat16_compute_dequantizes(quantized_tiny_dir):
    loaded = load_model(quantized_tiny_dir, "tiny-q4", "cpu", "bfloat16")
    assert loaded.compute == "bfloat16"
    assert {v.dtype for _, v in tree_flatten(loaded.model.parameters())} == {mx.bfloat16}
