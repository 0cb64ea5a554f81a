"""``python -m bot``: the sleepbot command line (also installed as ``sleepbot``)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from runtime.platform import ensure_fast_blas

    if argv is None:
        ensure_fast_blas()  # may re-exec this process with OpenBLAS preloaded
    from bot.cli import run_cli

    return run_cli(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
