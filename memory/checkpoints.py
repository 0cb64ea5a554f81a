"""Per-user weight checkpoints: only the tensors a user's sleep cycles changed.

Layout under a user's ``checkpoints/`` folder::

    v0001/delta.safetensors   changed modules, dense, in the compute dtype
    v0001/config.json         the resolved sleep config and cycle report that made it
    v0001/manifest.json       written last: a version folder without it is incomplete
    CURRENT                   the accepted version's name, switched with os.replace

Promotion is atomic: everything is written to a temporary folder, fsynced, the manifest is
written last, the folder is renamed into place, and only then is ``CURRENT`` switched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import mlx.core as mx

from memory.log import fsync_path

log = logging.getLogger(__name__)

DELTA = "delta.safetensors"
MANIFEST = "manifest.json"
CURRENT = "CURRENT"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or does not match its manifest."""


def version_name(version: int) -> str:
    return f"v{version:04d}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_checkpoint(root: Path, version: int, tensors: dict[str, mx.array], meta: dict) -> Path:
    """Write version ``version`` under ``root`` atomically and return its folder.

    Does not switch ``CURRENT``: call :func:`set_current` after the registry agrees.
    """
    root.mkdir(parents=True, exist_ok=True)
    final = root / version_name(version)
    if final.exists():
        raise CheckpointError(f"checkpoint {final} already exists")
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version_name(version)}-", dir=root))
    try:
        mx.save_safetensors(str(tmp / DELTA), tensors)
        write_json_atomic(tmp / "config.json", meta)
        fsync_path(tmp / DELTA)
        manifest = {
            "version": version,
            "created_at": time.time(),
            "tensors": sorted(tensors),
            "bytes": (tmp / DELTA).stat().st_size,
            "sha256": _sha256(tmp / DELTA),
            "base_model": meta.get("base_model"),
        }
        write_json_atomic(tmp / MANIFEST, manifest)  # last: marks the folder complete
        fsync_path(tmp)
        os.replace(tmp, final)
        fsync_path(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def is_complete(path: Path) -> bool:
    return (path / MANIFEST).is_file() and (path / DELTA).is_file()


def read_manifest(path: Path) -> dict:
    try:
        return json.loads((path / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path} has no readable manifest: {exc}") from exc


def load_delta(path: Path, verify: bool = False) -> dict[str, mx.array]:
    """The changed tensors of a complete checkpoint folder."""
    path = Path(path)
    manifest = read_manifest(path)
    if verify and _sha256(path / DELTA) != manifest["sha256"]:
        raise CheckpointError(f"checkpoint {path} does not match its manifest")
    return mx.load(str(path / DELTA))


def set_current(root: Path, version: int | None) -> None:
    """Point ``CURRENT`` at ``version`` (None: the base model) with one atomic rename."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{CURRENT}.tmp"
    with open(tmp, "w") as f:
        f.write("" if version is None else version_name(version))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, root / CURRENT)
    fsync_path(root)


def current_path(root: Path) -> Path | None:
    """The accepted checkpoint folder, or None when the user is on the base model."""
    pointer = root / CURRENT
    if not pointer.is_file():
        return None
    name = pointer.read_text().strip()
    if not name:
        return None
    path = root / name
    if not is_complete(path):
        raise CheckpointError(f"CURRENT points at incomplete checkpoint {path}")
    return path


def current_version(root: Path) -> int:
    path = current_path(root)
    return 0 if path is None else int(path.name[1:])


def versions(root: Path) -> list[int]:
    if not root.is_dir():
        return []
    return sorted(int(p.name[1:]) for p in root.glob("v[0-9]*") if is_complete(p))


def cleanup_incomplete(root: Path) -> list[Path]:
    """Remove temporary and manifest-less folders left by an interrupted cycle."""
    removed = []
    if not root.is_dir():
        return removed
    for p in root.iterdir():
        stale_tmp = p.name.startswith(".tmp-") or p.name.endswith(".tmp")
        incomplete = p.is_dir() and p.name.startswith("v") and not is_complete(p)
        if stale_tmp or incomplete:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            removed.append(p)
            log.warning("removed half-written checkpoint file %s", p)
    return removed


def prune(root: Path, keep_last: int = 2) -> list[int]:
    """Delete all but the newest ``keep_last`` versions, never the current one."""
    keep = set(versions(root)[-keep_last:])
    current = current_version(root)
    removed = []
    for v in versions(root):
        if v not in keep and v != current:
            shutil.rmtree(root / version_name(v))
            removed.append(v)
    return removed


def weights_key(checkpoint: Path | None) -> str:
    """Names one set of weights, for caches of scores (a rebuilt folder gets a new key)."""
    if checkpoint is None:
        return "base"
    try:
        return f"{checkpoint.resolve()}@{checkpoint.stat().st_mtime_ns}"
    except OSError:
        return f"{checkpoint}@missing"
