"""Where each user's files live under the data directory.

Every user gets ``<data_dir>/users/<safe_id>/`` holding the conversation log, the identity
dataset and the LoRA checkpoints. ``safe_id`` is a filesystem-safe encoding of the raw id.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_MAX_SAFE_LEN = 64
_HASH_LEN = 16


@dataclass(frozen=True)
class UserPaths:
    """The files and directories belonging to one user."""

    root: Path
    log: Path
    identity: Path
    checkpoints: Path


def safe_user_id(user_id: str) -> str:
    """Encode ``user_id`` as a directory name.

    Ids made only of ``[A-Za-z0-9_-]`` (and not too long) are kept as-is. Otherwise the
    unsafe characters are replaced and ``.<sha256 prefix>`` of the raw id is appended; the
    ``.`` never occurs in a kept id, so an encoded id can't collide with a kept one.
    """
    cleaned = _UNSAFE.sub("_", user_id)[:_MAX_SAFE_LEN]
    if cleaned == user_id and user_id:
        return user_id
    digest = hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_LEN]
    return f"{cleaned or '_'}.{digest}"


def user_paths(data_dir: Path, user_id: str) -> UserPaths:
    """The paths for ``user_id`` under ``data_dir`` (nothing is created)."""
    root = Path(data_dir) / "users" / safe_user_id(user_id)
    return UserPaths(
        root=root,
        log=root / "conversation.jsonl",
        identity=root / "identity.jsonl",
        checkpoints=root / "checkpoints",
    )


def store_path(data_dir: Path) -> Path:
    """The SQLite database file."""
    return Path(data_dir) / "sleepbot.db"


def models_dir(data_dir: Path) -> Path:
    """Where base models are cached."""
    return Path(data_dir) / "models"
