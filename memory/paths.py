"""Where each user's files live under the data directory.

Every user gets ``<data_dir>/users/<safe_id>/`` holding the conversation log, the identity
dataset and the LoRA checkpoints. ``safe_id`` is a filesystem-safe encoding of the raw id.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
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


MAX_USER_ID_CHARS = 256


class BadUserId(ValueError):
    """A user id that is empty, blank, too long, not valid text or holds control characters."""


def check_user_id(user_id: str) -> str:
    """``user_id`` if it can name a user; else :class:`BadUserId` saying why (ids come from
    the command line and Discord; the database and file names need real text)."""
    if not user_id or not user_id.strip():
        raise BadUserId("the user id is empty")
    if any("\ud800" <= ch <= "\udfff" for ch in user_id):  # undecodable bytes in argv
        raise BadUserId(f"the user id {user_id.encode('utf-8', 'replace')!r} is not valid "
                        "UTF-8 text")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in user_id):
        raise BadUserId(f"the user id {user_id!r} holds control characters")
    if len(user_id) > MAX_USER_ID_CHARS:
        raise BadUserId(f"the user id is {len(user_id)} characters long; the limit is "
                        f"{MAX_USER_ID_CHARS}")
    return user_id


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
