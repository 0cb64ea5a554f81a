"""Per-user checkpoints (memory/checkpoints.py) on real files: the manifest is written last,
``CURRENT`` switches atomically, a delta holds only the tensors training changed and loads back
bit-identically, and pruning keeps the current and the previous version.

    LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0 .venv/bin/python -m pytest -q \
        tests/test_checkpoints.py
"""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
import pytest

from memory import checkpoints as ck
from runtime.config import LoRAConfig, TrainConfig
from sleep.training import build_example, lora_target_paths, train_lora
from sleep.types import QAPair


def _tensors(seed: int = 0) -> dict[str, mx.array]:
    mx.random.seed(seed)
    t = {"model.layers.3.mlp.up_proj.weight": mx.random.normal((8, 4)),
         "model.layers.3.self_attn.q_proj.weight": mx.random.normal((4, 4))}
    mx.eval(t)
    return t


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_manifest_is_written_last(tmp_path, monkeypatch):
    written: list[str] = []
    real_json, real_save = ck.write_json_atomic, mx.save_safetensors

    def spy_json(path, data):
        written.append(Path(path).name)
        real_json(path, data)

    def spy_save(path, arrays):
        written.append(Path(path).name)
        real_save(path, arrays)

    monkeypatch.setattr(ck, "write_json_atomic", spy_json)
    monkeypatch.setattr(ck.mx, "save_safetensors", spy_save)
    path = ck.save_checkpoint(tmp_path, 1, _tensors(), {"base_model": "tiny"})
    assert written[-1] == ck.MANIFEST and set(written) == {ck.DELTA, "config.json", ck.MANIFEST}
    manifest = json.loads((path / ck.MANIFEST).read_text())
    assert manifest["version"] == 1 and manifest["tensors"] == sorted(_tensors())
    assert ck.is_complete(path) and ck.versions(tmp_path) == [1]


def test_a_failed_save_leaves_nothing_behind(tmp_path, monkeypatch):
    real_json = ck.write_json_atomic

    def fail_on_manifest(path, data):
        if Path(path).name == ck.MANIFEST:
            raise OSError("disk full")
        real_json(path, data)

    monkeypatch.setattr(ck, "write_json_atomic", fail_on_manifest)
    with pytest.raises(OSError):
        ck.save_checkpoint(tmp_path, 1, _tensors(), {})
    assert _listing(tmp_path) == []


def test_folders_without_a_manifest_are_incomplete_and_cleaned_up(tmp_path):
    ck.save_checkpoint(tmp_path, 1, _tensors(), {})
    ck.set_current(tmp_path, 1)
    half = tmp_path / ck.version_name(2)  # a cycle killed before its manifest
    half.mkdir()
    mx.save_safetensors(str(half / ck.DELTA), _tensors(1))
    tmp = tmp_path / ".tmp-v0003-abc"  # a cycle killed while writing its temporary folder
    tmp.mkdir()
    (tmp / ck.DELTA).write_bytes(b"partial")
    (tmp_path / ".CURRENT.tmp").write_text("v0003")

    assert not ck.is_complete(half)
    assert ck.versions(tmp_path) == [1]
    removed = ck.cleanup_incomplete(tmp_path)
    assert {p.name for p in removed} == {"v0002", ".tmp-v0003-abc", ".CURRENT.tmp"}
    assert _listing(tmp_path) == sorted([ck.CURRENT, "v0001", *(f"v0001/{n}" for n in (
        ck.DELTA, "config.json", ck.MANIFEST))])
    assert ck.current_version(tmp_path) == 1


def test_set_current_is_atomic(tmp_path, monkeypatch):
    for v in (1, 2):
        ck.save_checkpoint(tmp_path, v, _tensors(v), {})
    ck.set_current(tmp_path, 1)
    assert (tmp_path / ck.CURRENT).read_text() == "v0001"

    def crash(src, dst):  # the process dies at the rename: the old pointer must survive
        raise OSError("killed")

    monkeypatch.setattr(ck.os, "replace", crash)
    with pytest.raises(OSError):
        ck.set_current(tmp_path, 2)
    monkeypatch.undo()
    assert ck.current_version(tmp_path) == 1
    assert (tmp_path / ck.CURRENT).read_text() == "v0001"
    ck.set_current(tmp_path, 2)
    assert ck.current_path(tmp_path) == tmp_path / "v0002"
    assert not (tmp_path / ".CURRENT.tmp").exists()
    ck.set_current(tmp_path, None)  # back to the base model
    assert ck.current_path(tmp_path) is None and ck.current_version(tmp_path) == 0


def test_current_pointing_at_an_incomplete_folder_is_an_error(tmp_path):
    (tmp_path / "v0001").mkdir()
    (tmp_path / ck.CURRENT).write_text("v0001")
    with pytest.raises(ck.CheckpointError):
        ck.current_path(tmp_path)


def _train(runtime, layers: int, checkpoint: Path | None):
    tok = runtime.loaded.tokenizer
    ex = [build_example(tok, "sys", QAPair("Where do I live?", "You live in Lisbon."), 64)]
    return runtime.call(train_lora, "ck", checkpoint, ex, LoRAConfig(rank=2, layers=layers),
                        TrainConfig(learning_rate=1e-3))


def test_delta_holds_only_the_changed_tensors_and_round_trips(tiny_runtime, tmp_path):
    r1 = _train(tiny_runtime, 1, None)
    targets1 = tiny_runtime.call(lambda ctx: lora_target_paths(ctx.model, 1, None))
    assert set(r1.tensors) == {f"{p}.weight" for p in targets1}  # llama linears have no bias
    v1 = tiny_runtime.call(lambda ctx: ck.save_checkpoint(tmp_path, 1, r1.tensors, {}))
    assert ck.read_manifest(v1)["tensors"] == sorted(r1.tensors)

    # a second cycle on top, adapting two blocks: its delta is the union, still nothing else
    r2 = _train(tiny_runtime, 2, v1)
    targets2 = tiny_runtime.call(lambda ctx: lora_target_paths(ctx.model, 2, None))
    assert set(targets1) < set(targets2)
    assert set(r2.tensors) == {f"{p}.weight" for p in targets2}
    v2 = tiny_runtime.call(lambda ctx: ck.save_checkpoint(tmp_path, 2, r2.tensors, {}))

    def check(ctx):  # MLX work stays on the model thread
        out = []
        for path, tensors in ((v1, r1.tensors), (v2, r2.tensors)):
            loaded = ck.load_delta(path, verify=True)
            assert set(loaded) == set(tensors)
            out += [n for n, t in tensors.items()
                    if loaded[n].dtype != t.dtype or not mx.array_equal(loaded[n], t).item()]
        # every saved tensor really changed, relative to the base model
        out += [n for n, t in r2.tensors.items()
                if mx.array_equal(t, ctx.base_module(n.rsplit(".", 1)[0]).weight).item()]
        return out

    assert tiny_runtime.call(check) == []


def test_load_delta_verify_catches_a_corrupt_file(tmp_path):
    path = ck.save_checkpoint(tmp_path, 1, _tensors(), {})
    data = bytearray((path / ck.DELTA).read_bytes())
    data[-1] ^= 0xFF
    (path / ck.DELTA).write_bytes(bytes(data))
    with pytest.raises(ck.CheckpointError):
        ck.load_delta(path, verify=True)


def test_prune_keeps_the_current_and_the_previous_version(tmp_path):
    for v in (1, 2, 3, 4):
        ck.save_checkpoint(tmp_path, v, _tensors(v), {})
    ck.set_current(tmp_path, 4)
    assert ck.prune(tmp_path, keep_last=2) == [1, 2]
    assert ck.versions(tmp_path) == [3, 4]
    # after a rollback to an older version, the current one is never pruned
    ck.save_checkpoint(tmp_path, 5, _tensors(5), {})
    ck.set_current(tmp_path, 3)
    assert ck.prune(tmp_path, keep_last=2) == []
    assert ck.versions(tmp_path) == [3, 4, 5]
    ck.save_checkpoint(tmp_path, 6, _tensors(6), {})
    assert ck.prune(tmp_path, keep_last=2) == [4]
    assert ck.versions(tmp_path) == [3, 5, 6] and ck.current_version(tmp_path) == 3
