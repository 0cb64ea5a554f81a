"""Check with pip's resolver that each Linux install holds one MLX backend (needs PyPI).

    .venv/bin/python scripts/check_install.py            # .[cuda] and .[cpu,dev]

For each extra, ``pip install --dry-run --report - --ignore-installed`` resolves the whole
install as a fresh environment would, and the MLX wheels it would install are listed:
``.[cuda]`` must hold ``mlx-cuda-13`` and no ``mlx-cpu`` (both ship ``mlx/lib/libmlx.so``),
``.[cpu]`` the reverse. Exit status 1 when one does not. tests/test_packaging.py checks
pyproject.toml's structure offline.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXPECT = {"cuda": ("mlx-cuda-13", "mlx-cpu"), "cpu,dev": ("mlx-cpu", "mlx-cuda-13")}


def resolved(extra: str) -> list[str]:
    """Names of the distributions ``pip install .[extra]`` would install (fresh env)."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", "-",
         "--ignore-installed", f".[{extra}]"],
        cwd=REPO, capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    return sorted(item["metadata"]["name"].lower() for item in report["install"])


def main() -> int:
    ok = True
    for extra, (want, never) in EXPECT.items():
        names = resolved(extra)
        mlx = [n for n in names if n.startswith("mlx")]
        good = want in names and never not in names
        ok &= good
        verdict = "ok" if good else f"WRONG: want {want}, never {never}"
        print(f".[{extra}]: {' '.join(mlx)}  {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
