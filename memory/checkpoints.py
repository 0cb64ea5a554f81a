"""Per-user weight checkpoints: only the tensors a user's sleep cycles changed.

Layout under a user's ``checkpoints/`` folder::

    v0001/delta.safetensors   changed modules, dense, in the compute dtype
    v0001/config.json         the resolved sleep config and cycle report that made it
    v0001/manifest.json       written last: a version folder without it is incomplete
    CURRENT                   the accepted version's name, switched with os.replace
    damaged/v0002-<time>/     a version set aside because it failed its sha256 check

Promotion is atomic: everything is written to a temporary folder, fsynced, the manifest is
written last, the folder is renamed into place, and only then is ``CURRENT`` switched.

Loading verifies: a delta must match the size and sha256 its manifest recorded (checked once
per file version, remembered by size and mtime, so chat stays fast). :func:`choose_checkpoint`
says which weights a user should answer with when ``CURRENT`` is missing, junk, points
nowhere or at a damaged version: the registered one, else the newest intact registered one,
else the base model, and what was wrong, in words.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import mlx.core as mx

from memory.log import fsync_path

log = logging.getLogger(__name__)

DELTA = "delta.safetensors"
MANIFEST = "manifest.json"
CURRENT = "CURRENT"
DAMAGED = "damaged"  # versions that failed verification are moved here, not deleted
_VERSION_NAME = re.compile(r"v(\d{4,})")


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
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: bad JSON or bad UTF-8
        raise CheckpointError(f"{path.name} is damaged: its manifest is unreadable "
                              f"({type(exc).__name__})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("sha256"), str):
        raise CheckpointError(f"{path.name} is damaged: its manifest has no sha256")
    return manifest


# delta file → (size, mtime_ns, inode, manifest mtime_ns) of the version that hashed right
_verified: dict[str, tuple[int, int, int, int]] = {}


def verify_checkpoint(path: Path) -> None:
    """Check a checkpoint's delta against its manifest's size and sha256, once per file
    version (remembered by size, mtime and inode); raises :class:`CheckpointError`."""
    path = Path(path)
    delta = path / DELTA
    try:
        st, mst = delta.stat(), (path / MANIFEST).stat()
    except OSError as exc:
        raise CheckpointError(f"{path.name} is damaged: {exc.strerror or exc}") from exc
    key, sig = str(delta), (st.st_size, st.st_mtime_ns, st.st_ino, mst.st_mtime_ns)
    if _verified.get(key) == sig:
        return
    manifest = read_manifest(path)
    expected = manifest.get("bytes")
    if isinstance(expected, int) and st.st_size != expected:
        raise CheckpointError(f"{path.name} is damaged: {DELTA} is {st.st_size} bytes, its "
                              f"manifest says {expected} (truncated or overwritten)")
    try:
        digest = _sha256(delta)
    except OSError as exc:
        raise CheckpointError(f"{path.name} is damaged: cannot read {DELTA} "
                              f"({exc.strerror or exc})") from exc
    if digest != manifest["sha256"]:
        raise CheckpointError(f"{path.name} is damaged: {DELTA} does not match the sha256 in "
                              "its manifest")
    _verified[key] = sig


def load_delta(path: Path, verify: bool = True) -> dict[str, mx.array]:
    """The changed tensors of a complete checkpoint folder, verified against its manifest
    first (see :func:`verify_checkpoint`; ``verify=False`` skips it)."""
    path = Path(path)
    if verify:
        verify_checkpoint(path)
    try:
        return mx.load(str(path / DELTA))
    except (OSError, RuntimeError, ValueError) as exc:  # mlx says little more than "failed"
        raise CheckpointError(f"{path.name} is damaged: cannot read {DELTA} ({exc})") from exc


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


@dataclass(frozen=True)
class Pointer:
    """What a user's ``CURRENT`` file says: ``missing`` (no file), ``base`` (empty: the base
    model), ``version`` (a version name) or ``junk`` (anything else; ``raw`` shows it)."""

    state: Literal["missing", "base", "version", "junk"]
    version: int = 0
    raw: str = ""


def read_pointer(root: Path) -> Pointer:
    """Read ``CURRENT`` without ever raising: damage is a :class:`Pointer` of state junk."""
    try:
        data = (Path(root) / CURRENT).read_bytes()
    except FileNotFoundError:
        return Pointer("missing")
    except OSError as exc:  # a directory in its place, unreadable, ...
        return Pointer("junk", raw=exc.strerror or str(exc))
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        return Pointer("junk", raw=f"{len(data)} bytes of binary data")
    if not text:
        return Pointer("base")
    match = _VERSION_NAME.fullmatch(text)
    if match is None:
        return Pointer("junk", raw=repr(text[:40]))
    return Pointer("version", int(match.group(1)))


def current_path(root: Path) -> Path | None:
    """The accepted checkpoint folder, or None when the user is on the base model."""
    pointer = read_pointer(root)
    if pointer.state == "junk":
        raise CheckpointError(f"CURRENT holds junk ({pointer.raw})")
    if pointer.state != "version":
        return None
    path = Path(root) / version_name(pointer.version)
    if not is_complete(path):
        raise CheckpointError(f"CURRENT points at incomplete checkpoint {path}")
    return path


def current_version(root: Path) -> int:
    path = current_path(root)
    return 0 if path is None else int(path.name[1:])


def versions(root: Path) -> list[int]:
    """Complete version folders on disk, oldest first."""
    if not Path(root).is_dir():
        return []
    found = []
    for p in Path(root).iterdir():
        match = _VERSION_NAME.fullmatch(p.name)
        if match and is_complete(p):
            found.append(int(match.group(1)))
    return sorted(found)


@dataclass
class Choice:
    """Which weights a user answers with (``path``; None: the base model), and, when that is
    not what ``CURRENT`` says, what was wrong (``problem``) and which versions failed
    verification (``damaged``)."""

    path: Path | None
    problem: str | None = None
    damaged: list[int] = field(default_factory=list)
    wanted: int | None = None  # the version CURRENT (or else the registry) asked for

    @property
    def version(self) -> int:
        return 0 if self.path is None else int(self.path.name[1:])

    @property
    def name(self) -> str:
        return "the base model" if self.path is None else self.path.name


def choose_checkpoint(root: Path, registered: Iterable[int] | None = None,
                      registry_current: int | None = None, *,
                      pointer_registered: bool = False) -> Choice:
    """The weights to answer with. ``CURRENT`` decides when it names an intact version (or is
    empty: the base model). When it is missing or junk, the registry's current version
    (``registry_current``) is wanted instead. A wanted version that is incomplete or fails
    :func:`verify_checkpoint` falls back to the newest intact version in ``registered``
    (every complete one on disk when None), else the base model; ``problem`` says so.

    ``pointer_registered``: a ``CURRENT`` naming a version ``registered`` lacks is a leftover
    of an interrupted promotion (only the process that runs the sleep queue may say so: in
    any other, a promotion may be between its switch and its registry write)."""
    root = Path(root)
    pointer = read_pointer(root)
    if pointer.state == "base" or (pointer.state == "missing" and registry_current is None):
        return Choice(None)
    problems: list[str] = []
    allowed = None if registered is None else set(registered)
    if pointer.state == "version" and pointer_registered and allowed is not None and (
            pointer.version not in allowed):
        wanted = registry_current
        problems.append(f"CURRENT points at {version_name(pointer.version)}, which was never "
                        "registered (an interrupted promotion)")
    elif pointer.state == "version":
        wanted: int | None = pointer.version
    else:
        wanted = registry_current
        where = f"the registry says {version_name(wanted)}" if wanted else "the registry " \
            "says the base model"
        problems.append(f"CURRENT is missing ({where})" if pointer.state == "missing"
                        else f"CURRENT holds junk: {pointer.raw} ({where})")
    damaged: list[int] = []
    if wanted is not None:
        folder = root / version_name(wanted)
        if not is_complete(folder):
            problems.append(f"{folder.name} is missing or incomplete")
        else:
            try:
                verify_checkpoint(folder)
                return Choice(folder, "; ".join(problems) or None, damaged, wanted)
            except CheckpointError as exc:
                problems.append(str(exc))
                damaged.append(wanted)
    for version in sorted(versions(root), reverse=True):
        if version == wanted or (allowed is not None and version not in allowed):
            continue
        try:
            verify_checkpoint(root / version_name(version))
        except CheckpointError:
            damaged.append(version)
            continue
        return Choice(root / version_name(version), "; ".join(problems), damaged, wanted)
    return Choice(None, "; ".join(problems) or None, damaged, wanted)


def recent_damage(root: Path, current: Path | None) -> str | None:
    """A note on the newest version set aside as damaged since ``current`` was written (None
    once a newer version replaced it, or when nothing was ever set aside)."""
    try:
        aside = [p for p in (Path(root) / DAMAGED).iterdir() if p.is_dir()]
        since = (current / MANIFEST).stat().st_mtime if current is not None else 0.0
    except OSError:
        return None
    newest = max(aside, key=lambda p: p.stat().st_mtime, default=None)
    if newest is None or newest.stat().st_mtime < since:
        return None
    return (f"{newest.name.split('-')[0]} failed its integrity check and was set aside "
            f"({DAMAGED}/{newest.name})")


def set_aside(root: Path, version: int) -> Path | None:
    """Move a damaged version folder to ``damaged/`` (kept for inspection, out of the way of
    the version numbering); returns where it went, or None if it was not there."""
    src = Path(root) / version_name(version)
    if not src.exists():
        return None
    dest_dir = Path(root) / DAMAGED
    dest_dir.mkdir(exist_ok=True)
    dest = dest_dir / f"{src.name}-{int(time.time())}"
    n = 1
    while dest.exists():
        dest, n = dest_dir / f"{src.name}-{int(time.time())}-{n}", n + 1
    os.replace(src, dest)
    os.utime(dest)  # its mtime says when it was set aside (recent_damage compares it)
    fsync_path(root)
    return dest


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
