"""Make MLX fast on the machine it runs on.

On Linux with the CPU backend, the ``mlx-cpu`` wheel ships netlib's reference BLAS (about
5 GFLOP/s for a 2048² float32 matmul here); Debian's OpenBLAS preloaded gives about 160-190.
The preload must be in place before the process starts, so :func:`ensure_fast_blas` re-executes
the program once with ``LD_PRELOAD`` set. MLX's quantized matmul does not use BLAS on the CPU,
so there we also compute in float32 (see :mod:`runtime.models`). On Apple silicon nothing changes.
"""

from __future__ import annotations

import ctypes.util
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

OPENBLAS_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
    "/lib/aarch64-linux-gnu/libopenblas.so.0",
    "/usr/lib64/libopenblas.so.0",
)
_MARK = "SLEEPBOT_BLAS_CHECKED"


def find_openblas() -> str | None:
    """The path of a system ``libopenblas.so.0``, or None."""
    for candidate in OPENBLAS_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    name = ctypes.util.find_library("openblas")
    return name if name and name.startswith("/") else None


def backend() -> str:
    """``metal``, ``cuda`` or ``cpu``: where MLX computes by default in this process."""
    import mlx.core as mx

    if mx.metal.is_available():
        return "metal"
    if hasattr(mx, "cuda") and mx.cuda.is_available():
        return "cuda"
    return "cpu"


def blas_preloaded() -> bool:
    return "openblas" in os.environ.get("LD_PRELOAD", "")


def openblas_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``env`` with OpenBLAS preloaded, when it exists (for subprocesses)."""
    env = dict(os.environ if env is None else env)
    lib = find_openblas()
    if lib and "openblas" not in env.get("LD_PRELOAD", ""):
        env["LD_PRELOAD"] = ":".join(p for p in (lib, env.get("LD_PRELOAD", "")) if p)
    env[_MARK] = "1"
    return env


def ensure_fast_blas(argv: list[str] | None = None) -> None:
    """Re-exec this process with OpenBLAS preloaded when on the Linux CPU backend.

    Called first thing by the CLI. Prints one warning when the library is missing. Set
    ``SLEEPBOT_STOCK_BLAS=1`` to keep the stock BLAS (the benchmark's baseline does).
    """
    if (
        not sys.platform.startswith("linux")
        or os.environ.get(_MARK)
        or os.environ.get("SLEEPBOT_STOCK_BLAS")
        or blas_preloaded()
    ):
        return
    if backend() != "cpu":
        return
    lib = find_openblas()
    if lib is None:
        os.environ[_MARK] = "1"
        print(
            "warning: OpenBLAS not found; MLX on the CPU will be ~35x slower. "
            "Install it with: apt-get install libopenblas0-pthread",
            file=sys.stderr,
        )
        return
    env = openblas_env()
    args = argv if argv is not None else [sys.executable, *sys.orig_argv[1:]]
    os.execve(args[0], args, env)
