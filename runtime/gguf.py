"""Import a llama-architecture GGUF file into a plain MLX model directory.

The result (config.json, model.safetensors, tokenizer.json, tokenizer_config.json) loads with
``mlx_lm.load``. Only MLX and the ``tokenizers`` library are used: no torch, no llama.cpp.

    python -m bot model import path/to/model.gguf [--out DIR]
"""

from __future__ import annotations

import json
import mmap
import os
import shutil
import struct
import tempfile
from pathlib import Path

import mlx.core as mx

# GGUF file types (general.file_type) that mx.load reads into MLX tensors.
SUPPORTED_FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0"}

_LAYER_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


class GGUFImportError(ValueError):
    """The file is not a GGUF model this importer can convert."""


# What MLX's GGUF reader (antirez's gguflib, which trusts every length and offset in the file)
# can read without reading past the end: checked here first, since a bad file crashes it.
_VALUE_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY, _UINT32 = 8, 9, 4
# ggml tensor type → (name, weights per block, bytes per block), for the types mx.load reads
TENSOR_TYPES = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
                8: ("Q8_0", 32, 34)}
_MAX_DIMS = 4
_ALIGNMENT = 32  # MLX's reader ignores general.alignment and always uses 32
_INT32_MAX = 2**31 - 1  # MLX keeps string lengths, array lengths and dimensions as int


class _Reader:
    """Bounds-checked little-endian reads over a memory-mapped file."""

    def __init__(self, buf: mmap.mmap | bytes, path: Path):
        self.buf, self.off, self.path = buf, 0, path

    def fail(self, what: str) -> GGUFImportError:
        return GGUFImportError(f"cannot read {self.path} as GGUF: {what}")

    def take(self, fmt: str, what: str) -> int:
        size = struct.calcsize(fmt)
        if self.off + size > len(self.buf):
            raise self.fail(f"{what} at byte {self.off} runs past the end of the "
                            f"{len(self.buf)}-byte file")
        (value,) = struct.unpack_from(fmt, self.buf, self.off)
        self.off += size
        return value

    def string(self, what: str) -> str:
        n = self.take("<Q", f"the length of {what}")
        if n > _INT32_MAX or self.off + n > len(self.buf):
            raise self.fail(f"{what} at byte {self.off} claims {n} bytes, past the end of the "
                            f"{len(self.buf)}-byte file")
        raw = bytes(self.buf[self.off:self.off + n])
        self.off += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"{what} is not UTF-8 text") from exc

    def skip_value(self, vtype: int, what: str, nested: bool = False) -> int | None:
        """Step over one metadata value; returns it when it is a plain UINT32."""
        if vtype == _STRING:
            self.string(what)
            return None
        if vtype == _ARRAY and not nested:
            etype = self.take("<I", f"the element type of {what}")
            count = self.take("<Q", f"the length of {what}")
            if etype == _ARRAY:
                raise self.fail(f"{what} is an array of arrays (MLX reads one level)")
            if etype != _STRING and etype not in _VALUE_SIZES:
                raise self.fail(f"{what} has unknown element type {etype}")
            size = _VALUE_SIZES.get(etype, 8)  # a string takes at least its 8-byte length
            if count > _INT32_MAX or self.off + count * size > len(self.buf):
                raise self.fail(f"{what} claims {count} elements, more than the file holds")
            if etype == _STRING:
                for i in range(count):
                    self.string(f"element {i} of {what}")
            else:
                self.off += count * size
            return None
        if vtype not in _VALUE_SIZES:
            raise self.fail(f"{what} has unknown value type {vtype}")
        if vtype == _UINT32:
            return self.take("<I", what)
        self.take(f"<{_VALUE_SIZES[vtype]}s", what)
        return None


def validate_gguf(path: str | Path) -> None:
    """Check a GGUF file's header, metadata, tensor count, types, shapes and data offsets
    against its size, so that :func:`mx.load` never reads past the end (it would crash the
    process). Raises :class:`GGUFImportError` saying what is wrong."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 24:
                raise GGUFImportError(f"cannot read {path} as GGUF: the file has only {size} bytes")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                _validate(_Reader(buf, path))
    except OSError as exc:
        raise GGUFImportError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _validate(r: _Reader) -> None:
    if bytes(r.buf[:4]) != b"GGUF":
        raise r.fail("it is not a GGUF file (no GGUF magic bytes at the start)")
    r.off = 4
    version = r.take("<I", "the version")
    if version not in (2, 3):
        raise r.fail(f"GGUF version {version} is not supported (2 and 3 are)")
    n_tensors = r.take("<Q", "the tensor count")
    n_kv = r.take("<Q", "the metadata count")
    for i in range(n_kv):  # each entry takes at least 12 bytes: a huge count runs out
        key = r.string(f"metadata key {i}")
        vtype = r.take("<I", f"the type of metadata {key!r}")
        value = r.skip_value(vtype, f"metadata {key!r}")
        if key == "general.alignment" and value not in (None, _ALIGNMENT):
            raise r.fail(f"alignment {value} is not supported (MLX reads {_ALIGNMENT})")
    tensors = []
    for i in range(n_tensors):
        name = r.string(f"the name of tensor {i}")
        ndim = r.take("<I", f"the dimension count of tensor {name!r}")
        if not 1 <= ndim <= _MAX_DIMS:
            raise r.fail(f"tensor {name!r} has {ndim} dimensions (1 to {_MAX_DIMS} allowed)")
        dims = [r.take("<Q", f"dimension {d} of tensor {name!r}") for d in range(ndim)]
        if any(not 1 <= d <= _INT32_MAX for d in dims):
            raise r.fail(f"tensor {name!r} has an impossible shape {dims}")
        ttype = r.take("<I", f"the type of tensor {name!r}")
        offset = r.take("<Q", f"the data offset of tensor {name!r}")
        if ttype not in TENSOR_TYPES:
            raise r.fail(f"tensor {name!r} has type {ttype}, which cannot be read (supported: "
                         + ", ".join(t[0] for t in TENSOR_TYPES.values()) + ")")
        tensors.append((name, dims, ttype, offset))
    data_start = r.off + (-r.off) % _ALIGNMENT
    seen = set()
    for name, dims, ttype, offset in tensors:
        if name in seen:
            raise r.fail(f"tensor {name!r} appears twice")
        seen.add(name)
        type_name, per_block, block_bytes = TENSOR_TYPES[ttype]
        if dims[0] % per_block:
            raise r.fail(f"tensor {name!r} ({type_name}) has a row of {dims[0]} weights, not "
                         f"a multiple of its block size {per_block}")
        count = 1
        for d in dims:
            count *= d
        end = data_start + offset + count // per_block * block_bytes
        if end > len(r.buf):
            raise r.fail(f"the data of tensor {name!r} would end at byte {end}, past the end "
                         f"of the {len(r.buf)}-byte file (truncated or damaged)")


def _scalar(meta: dict, key: str, default=None):
    value = meta.get(key, default)
    if value is None:
        raise GGUFImportError(f"GGUF metadata is missing {key!r}")
    return value.item() if isinstance(value, mx.array) else value


def map_tensor_name(name: str) -> str:
    """Map a GGUF tensor name (``blk.3.attn_q.weight``) to the mlx-lm llama name."""
    parts = name.split(".")
    if parts[0] == "blk":
        layer, kind, suffix = parts[1], parts[2], ".".join(parts[3:])
        if kind not in _LAYER_NAMES:
            raise GGUFImportError(f"unknown GGUF tensor {name!r}")
        return f"model.layers.{layer}.{_LAYER_NAMES[kind]}.{suffix}"
    if parts[0] not in _TOP_NAMES:
        raise GGUFImportError(f"unknown GGUF tensor {name!r}")
    return ".".join([_TOP_NAMES[parts[0]], *parts[1:]])


def build_config(meta: dict, weights: dict) -> dict:
    """An mlx-lm llama config.json from the GGUF ``llama.*`` metadata."""
    heads = int(_scalar(meta, "llama.attention.head_count"))
    hidden = int(_scalar(meta, "llama.embedding_length"))
    config = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": hidden,
        "intermediate_size": int(_scalar(meta, "llama.feed_forward_length")),
        "num_hidden_layers": int(_scalar(meta, "llama.block_count")),
        "num_attention_heads": heads,
        "num_key_value_heads": int(_scalar(meta, "llama.attention.head_count_kv", heads)),
        "head_dim": int(_scalar(meta, "llama.rope.dimension_count", hidden // heads)),
        "rms_norm_eps": float(_scalar(meta, "llama.attention.layer_norm_rms_epsilon")),
        "rope_theta": float(_scalar(meta, "llama.rope.freq_base", 10000.0)),
        "max_position_embeddings": int(_scalar(meta, "llama.context_length", 2048)),
        "vocab_size": int(weights["model.embed_tokens.weight"].shape[0]),
        # GGUF keeps q/k rows in the interleaved (GPT-J style) RoPE order.
        "rope_traditional": True,
        "tie_word_embeddings": "lm_head.weight" not in weights,
        "bos_token_id": int(_scalar(meta, "tokenizer.ggml.bos_token_id", 1)),
        "eos_token_id": int(_scalar(meta, "tokenizer.ggml.eos_token_id", 2)),
    }
    if any(k.endswith(".scales") for k in weights):
        # Per-module bits are inferred from tensor shapes by mlx-lm; this is the default.
        config["quantization"] = {"group_size": 32, "bits": 4}
    return config


def build_tokenizer(meta: dict):
    """A byte-level BPE ``tokenizers.Tokenizer`` from the GGUF vocabulary and merges."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    if _scalar(meta, "tokenizer.ggml.model") != "gpt2":
        raise GGUFImportError("only byte-level BPE (gpt2) GGUF tokenizers are supported")
    tokens = list(meta["tokenizer.ggml.tokens"])
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    types = meta["tokenizer.ggml.token_type"].tolist()
    special = [
        AddedToken(t, special=True, normalized=False)
        for t, ty in zip(tokens, types, strict=True)
        if ty == 3
    ]
    tokenizer.add_special_tokens(special)
    return tokenizer


def build_tokenizer_config(meta: dict) -> dict:
    tokens = meta["tokenizer.ggml.tokens"]

    def tok(key: str, default: int | None = None) -> str | None:
        idx = meta.get(key)
        idx = default if idx is None else int(idx.item())
        return None if idx is None else tokens[idx]

    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": tok("tokenizer.ggml.bos_token_id"),
        "eos_token": tok("tokenizer.ggml.eos_token_id"),
        "unk_token": tok("tokenizer.ggml.unknown_token_id"),
        "pad_token": tok("tokenizer.ggml.padding_token_id"),
        "add_bos_token": bool(_scalar(meta, "tokenizer.ggml.add_bos_token", False)),
        "model_max_length": int(_scalar(meta, "llama.context_length", 2048)),
        "clean_up_tokenization_spaces": False,
    }
    if "tokenizer.chat_template" in meta:
        config["chat_template"] = meta["tokenizer.chat_template"]
    return {k: v for k, v in config.items() if v is not None}


def read_gguf(path: str | Path) -> tuple[dict, dict]:
    """Load tensors and metadata, raising :class:`GGUFImportError` for unusable files."""
    path = Path(path)
    if not path.is_file():
        raise GGUFImportError(f"GGUF file not found: {path}")
    validate_gguf(path)  # before mx.load, which crashes on a damaged file instead of raising
    try:
        weights, meta = mx.load(str(path), return_metadata=True)
    except Exception as exc:  # mlx raises bare RuntimeError/ValueError for corrupt files
        raise GGUFImportError(f"cannot read {path} as GGUF: {exc}") from exc
    arch = meta.get("general.architecture")
    if arch != "llama":
        raise GGUFImportError(f"unsupported architecture {arch!r}: only llama GGUF files import")
    file_type = int(_scalar(meta, "general.file_type", 1))
    if file_type not in SUPPORTED_FILE_TYPES:
        raise GGUFImportError(
            f"unsupported GGUF file type {file_type}: supported are "
            + ", ".join(SUPPORTED_FILE_TYPES.values())
        )
    return weights, meta


def convert_gguf(gguf_path: str | Path, out_dir: str | Path) -> Path:
    """Convert ``gguf_path`` into an MLX model directory at ``out_dir`` (atomically)."""
    weights, meta = read_gguf(gguf_path)
    weights = {map_tensor_name(k): v for k, v in weights.items()}
    config = build_config(meta, weights)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=out_dir.parent))
    try:
        mx.save_safetensors(str(tmp / "model.safetensors"), weights, metadata={"format": "mlx"})
        build_tokenizer(meta).save(str(tmp / "tokenizer.json"))
        tok_config = build_tokenizer_config(meta)
        (tmp / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2))
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
