"""Install layout (pyproject.toml, Makefile): one MLX backend per install on Linux.

Both Linux backends (``mlx-cpu``, ``mlx-cuda-13``) ship ``mlx/lib/libmlx.so``; installed
together, one overwrites the other. So the base dependencies name no backend, the ``cpu`` and
``cuda`` extras name one each, and the Makefile installs one of them. The resolver's view is
checked against PyPI by ``python scripts/check_install.py`` (a dry run, network needed).

    .venv/bin/python -m pytest -q tests/test_packaging.py
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BACKENDS = {"cpu", "cuda", "cuda12", "cuda13"}


def project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def mlx_extras(requirements: list[str]) -> set[str]:
    """The extras of every ``mlx[...]`` requirement, plus the backend wheels named directly."""
    found: set[str] = set()
    for req in requirements:
        name = req.split(";")[0].strip()
        m = re.match(r"mlx\s*\[([^\]]*)\]", name)
        if m:
            found |= {e.strip() for e in m.group(1).split(",")}
        elif name.startswith(("mlx-cpu", "mlx_cpu")):
            found.add("cpu")
        elif name.startswith(("mlx-cuda", "mlx_cuda")):
            found.add("cuda")
    return found


def test_base_dependencies_name_no_backend():
    deps = project()["dependencies"]
    assert not mlx_extras(deps) & BACKENDS
    assert any(d.split(">")[0].strip() == "mlx" for d in deps)


def test_cuda_extra_has_the_cuda_backend_alone():
    extras = project()["optional-dependencies"]
    cuda = mlx_extras(extras["cuda"])
    assert cuda and cuda <= {"cuda", "cuda12", "cuda13"}
    assert "cpu" not in cuda


def test_cpu_extra_has_the_cpu_backend_alone():
    extras = project()["optional-dependencies"]
    assert mlx_extras(extras["cpu"]) == {"cpu"}
    assert all("sys_platform == 'linux'" in r for r in extras["cpu"])  # macOS: Metal


def test_no_other_extra_names_a_backend():
    for name, reqs in project()["optional-dependencies"].items():
        if name not in ("cpu", "cuda"):
            assert not mlx_extras(reqs) & BACKENDS, name


def make_dry_run(*args: str) -> str:
    out = subprocess.run(["make", "-n", *args], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.skipif(subprocess.run(["which", "make"], capture_output=True).returncode != 0,
                    reason="no make")
def test_makefile_installs_one_backend_and_preloads_only_on_the_cpu():
    # -B: show the install recipe whatever the venv's state
    cpu, cuda = make_dry_run("-B", "test", "CUDA=0"), make_dry_run("-B", "test", "CUDA=1")
    assert '-e ".[dev,cpu]"' in cpu and "[dev,cuda]" not in cpu
    assert '-e ".[dev,cuda]"' in cuda and "[dev,cpu]" not in cuda
    pytest_cpu = [line for line in cpu.splitlines() if "-m pytest" in line]
    pytest_cuda = [line for line in cuda.splitlines() if "-m pytest" in line]
    assert pytest_cpu and all("LD_PRELOAD" in line for line in pytest_cpu)
    assert pytest_cuda and not any("LD_PRELOAD" in line for line in pytest_cuda)
    assert '[ "1" != 1 ]' in cuda  # the OpenBLAS step is skipped on CUDA


@pytest.mark.skipif(subprocess.run(["which", "make"], capture_output=True).returncode != 0,
                    reason="no make")
def test_makefile_installs_offline_from_a_wheel_folder():
    out = make_dry_run("-B", "demo", "CUDA=1", "WHEELS=/srv/wheels")
    installs = [line for line in out.splitlines() if "pip install" in line]
    assert installs and all("--no-index --find-links /srv/wheels" in line for line in installs)
    assert "--upgrade pip" not in out  # nothing to upgrade from without an index
    # the demo needs no test tools; `make test` adds them
    assert '-e ".[cuda]"' in out and "[dev," not in out
    assert '-e ".[dev,cuda]"' in make_dry_run("-B", "test", "CUDA=1")
