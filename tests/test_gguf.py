"""The GGUF importer (runtime/gguf.py) on GGUF files written here with gguf-py and the bundled one.

A tiny random llama is built in MLX, written under GGUF tensor names as F32, F16, Q8_0, Q4_0
and Q4_1, imported with ``convert_gguf`` and loaded with ``mlx_lm.load``; its logits must match
the original model's. Missing, random, truncated or unsupported files raise
:class:`GGUFImportError`.

    export LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0
    .venv/bin/python -m pytest -q tests/test_gguf.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten, tree_map

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as QType  # noqa: E402
from gguf import LlamaFileType  # noqa: E402

from runtime.gguf import GGUFImportError, convert_gguf, read_gguf  # noqa: E402
from runtime.models import bundled_gguf  # noqa: E402

ARGS = {
    "model_type": "llama",
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-5,
    "vocab_size": 49152,  # the bundled tokenizer's vocabulary
    "rope_theta": 10000.0,
    "rope_traditional": True,  # GGUF's q/k row order
    "max_position_embeddings": 2048,
}
_LAYER = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}
_TOP = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
FILE_TYPES = {
    "F32": (None, LlamaFileType.ALL_F32),
    "F16": (QType.F16, LlamaFileType.MOSTLY_F16),
    "Q8_0": (QType.Q8_0, LlamaFileType.MOSTLY_Q8_0),
    "Q4_0": (QType.Q4_0, LlamaFileType.MOSTLY_Q4_0),
    "Q4_1": (QType.Q4_1, LlamaFileType.MOSTLY_Q4_1),
}
PROMPT = "Hello, world! The capital of France is Paris, and 12345 is a number."


def gguf_name(mlx_name: str) -> str:
    """``model.layers.3.self_attn.q_proj.weight`` -> ``blk.3.attn_q.weight``."""
    path, _, leaf = mlx_name.rpartition(".")
    if path.startswith("model.layers."):
        _, _, layer, module = path.split(".", 3)
        return f"blk.{layer}.{_LAYER[module]}.{leaf}"
    return f"{_TOP[path]}.{leaf}"


@pytest.fixture(scope="module")
def bundled_meta() -> dict:
    """The bundled GGUF's metadata (its tokenizer is reused for the tiny files)."""
    _, meta = mx.load(str(bundled_gguf()), return_metadata=True)
    return meta


def tiny_llama(tied: bool, seed: int = 0):
    from mlx_lm.models import llama

    mx.random.seed(seed)
    model = llama.Model(llama.ModelArgs.from_dict(ARGS | {"tie_word_embeddings": tied}))
    mx.eval(model.parameters())
    return model


def write_gguf(path: Path, model, meta: dict, file_type: str, *, arch: str = "llama",
               file_type_value: int | None = None) -> Path:
    """Write ``model`` as a llama.cpp-style GGUF file (2-D weights in ``file_type``)."""
    qtype, ftype = FILE_TYPES[file_type]
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(ARGS["num_hidden_layers"])
    w.add_context_length(ARGS["max_position_embeddings"])
    w.add_embedding_length(ARGS["hidden_size"])
    w.add_feed_forward_length(ARGS["intermediate_size"])
    w.add_head_count(ARGS["num_attention_heads"])
    w.add_head_count_kv(ARGS["num_key_value_heads"])
    w.add_layer_norm_rms_eps(ARGS["rms_norm_eps"])
    w.add_rope_freq_base(ARGS["rope_theta"])
    w.add_rope_dimension_count(ARGS["hidden_size"] // ARGS["num_attention_heads"])
    w.add_file_type(ftype if file_type_value is None else file_type_value)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(meta["tokenizer.ggml.tokens"])
    w.add_token_merges(meta["tokenizer.ggml.merges"])
    w.add_token_types(np.array(meta["tokenizer.ggml.token_type"]).tolist())
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_chat_template(meta["tokenizer.chat_template"])
    for name, value in tree_flatten(model.parameters()):
        data = np.array(value.astype(mx.float32))
        if data.ndim == 2 and qtype is QType.F16:
            w.add_tensor(gguf_name(name), data.astype(np.float16))
        elif data.ndim == 2 and qtype is not None:
            w.add_tensor(gguf_name(name), gguf.quants.quantize(data, qtype), raw_dtype=qtype)
        else:  # norms stay float32, as llama.cpp writes them
            w.add_tensor(gguf_name(name), data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def logits(model, tokenizer) -> mx.array:
    ids = mx.array([tokenizer.encode(PROMPT)])
    return model(ids).astype(mx.float32)[0]


def rounded_to_f16(model):
    """The same model with its 2-D weights rounded through float16 (what an F16 file holds)."""
    model.update(tree_map(lambda p: p.astype(mx.float16).astype(mx.float32)
                          if p.ndim == 2 else p, model.parameters()))
    return model


@pytest.mark.parametrize(
    "file_type,tied",
    [("F32", True), ("F16", False), ("Q8_0", True), ("Q4_0", False), ("Q4_1", True)],
)
def test_imported_model_matches_original(tmp_path, bundled_meta, file_type, tied):
    from mlx_lm import load

    original = tiny_llama(tied)
    src = write_gguf(tmp_path / f"tiny-{file_type}.gguf", original, bundled_meta, file_type)
    out = convert_gguf(src, tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    assert not list(tmp_path.glob(".import-*")), "the temporary import folder is left behind"
    config = json.loads((out / "config.json").read_text())
    assert config["tie_word_embeddings"] is tied
    assert config["num_hidden_layers"] == 2 and config["num_key_value_heads"] == 2
    assert ("quantization" in config) == file_type.startswith("Q")

    imported, tokenizer = load(str(out))
    got = logits(imported, tokenizer)
    if file_type == "F32":
        want = logits(original, tokenizer)
        assert mx.allclose(got, want, atol=1e-5).item()
    elif file_type == "F16":
        imported.set_dtype(mx.float32)  # compare the math, not float16 rounding of activations
        want = logits(rounded_to_f16(original), tokenizer)
        assert mx.allclose(imported(mx.array([tokenizer.encode(PROMPT)]))[0], want,
                           atol=1e-4).item()
        assert mx.abs(got - want).max().item() < 0.05  # also when computed in float16
    else:
        want = logits(original, tokenizer)
        corr = np.corrcoef(np.array(got).ravel(), np.array(want).ravel())[0, 1]
        assert corr > (0.999 if file_type == "Q8_0" else 0.95), corr
        if file_type == "Q8_0":
            agree = (got.argmax(-1) == want.argmax(-1)).astype(mx.float32).mean().item()
            assert agree >= 0.9


def test_import_replaces_an_existing_output_dir(tmp_path, bundled_meta):
    src = write_gguf(tmp_path / "a.gguf", tiny_llama(True), bundled_meta, "F16")
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("from an older import")
    convert_gguf(src, out)
    assert not (out / "stale.txt").exists()
    assert (out / "model.safetensors").is_file()


def test_processes_started_together_import_once(tmp_path, bundled_meta):
    """Workers that start at once on a fresh data folder: one imports, the others wait for it
    and load the same folder (they used to replace it under each other and crash)."""
    src = write_gguf(tmp_path / "shared.gguf", tiny_llama(True), bundled_meta, "F16")
    models = tmp_path / "models"
    code = ("import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout)\n"
            "from pathlib import Path; from runtime.models import resolve_model\n"
            f"print('at', resolve_model({str(src)!r}, Path({str(models)!r})))")
    root = Path(__file__).resolve().parents[1]
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=root, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for _ in range(4)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert sum("importing" in o for o in outs) == 1, outs
    assert all(f"at {models / 'shared'}" in o for o in outs)
    assert sorted(p.name for p in (models / "shared").iterdir()) == [
        "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]


@pytest.mark.parametrize("value,name", [(17, "Q5_K_M"), (32, "BF16")])
def test_unsupported_file_type_is_rejected(tmp_path, bundled_meta, value, name):
    src = write_gguf(tmp_path / f"{name}.gguf", tiny_llama(True), bundled_meta, "F16",
                     file_type_value=value)
    with pytest.raises(GGUFImportError) as err:
        convert_gguf(src, tmp_path / "out")
    message = str(err.value)
    assert f"unsupported GGUF file type {value}" in message
    for supported in ("F16", "Q4_0", "Q4_1", "Q8_0"):
        assert supported in message
    assert not (tmp_path / "out").exists()


def test_non_llama_architecture_is_rejected(tmp_path, bundled_meta):
    src = write_gguf(tmp_path / "qwen.gguf", tiny_llama(True), bundled_meta, "F16", arch="qwen2")
    with pytest.raises(GGUFImportError, match="unsupported architecture 'qwen2'"):
        convert_gguf(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_file(tmp_path):
    with pytest.raises(GGUFImportError, match="not found"):
        convert_gguf(tmp_path / "absent.gguf", tmp_path / "out")


def test_random_bytes(tmp_path):
    src = tmp_path / "random.gguf"
    src.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(GGUFImportError, match="cannot read"):
        read_gguf(src)


@pytest.mark.parametrize("keep", [100, 1000, 100_000, 1_000_000])
def test_truncated_file(tmp_path, bundled_meta, keep):
    """An incomplete download: cut in the metadata or in the tensor data."""
    full = write_gguf(tmp_path / "full.gguf", tiny_llama(True), bundled_meta, "F16")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(full.read_bytes()[:keep])
    with pytest.raises(GGUFImportError, match="cannot read"):
        convert_gguf(cut, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_tensor_name_mapping():
    from runtime.gguf import map_tensor_name

    assert map_tensor_name("blk.7.attn_output.weight") == "model.layers.7.self_attn.o_proj.weight"
    assert map_tensor_name("blk.0.ffn_norm.weight") == (
        "model.layers.0.post_attention_layernorm.weight")
    assert map_tensor_name("token_embd.scales") == "model.embed_tokens.scales"
    assert map_tensor_name("output.biases") == "lm_head.biases"
    with pytest.raises(GGUFImportError, match="unknown GGUF tensor"):
        map_tensor_name("blk.0.attn_qkv.weight")


# -- the bundled model's tokenizer -----------------------------------------------------------


@pytest.fixture(scope="module")
def bundled_tokenizer(bundled_model_dir):
    from mlx_lm.utils import load_tokenizer

    return load_tokenizer(bundled_model_dir)


def test_bundled_tokenizer_round_trip(bundled_tokenizer, bundled_meta):
    vocab = {t: i for i, t in enumerate(bundled_meta["tokenizer.ggml.tokens"])}
    text = "Hello, world! 12345"
    # Byte-level BPE ("Ġ" is a space) with every digit its own token.
    pieces = ["Hello", ",", "Ġworld", "!", "Ġ", "1", "2", "3", "4", "5"]
    ids = bundled_tokenizer.encode(text, add_special_tokens=False)
    assert ids == [vocab[p] for p in pieces]
    assert bundled_tokenizer.decode(ids) == text
    for special in ("<|im_start|>", "<|im_end|>", "<|endoftext|>"):
        assert bundled_tokenizer.encode(special, add_special_tokens=False) == [vocab[special]]
    assert bundled_tokenizer.encode("<|im_start|>user\nhi", add_special_tokens=False)[0] == (
        vocab["<|im_start|>"])
    assert bundled_tokenizer.eos_token_id == vocab["<|im_end|>"]


def test_bundled_chat_template(bundled_model_dir, bundled_tokenizer, bundled_meta):
    config = json.loads((bundled_model_dir / "tokenizer_config.json").read_text())
    assert config["chat_template"] == bundled_meta["tokenizer.chat_template"]
    prompt = bundled_tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_bundled_file_is_q4_1(bundled_model_dir):
    """The real bundled file: Q4_1 weights imported as 4-bit affine groups of 32."""
    config = json.loads((bundled_model_dir / "config.json").read_text())
    assert config["quantization"] == {"group_size": 32, "bits": 4}
    assert config["num_hidden_layers"] == 30 and config["rope_traditional"] is True
    assert os.path.getsize(bundled_model_dir / "model.safetensors") > 50_000_000
