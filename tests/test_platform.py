"""OpenBLAS preloading (runtime/platform.py): the env helper and the real re-exec in subprocesses.

    export LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0
    .venv/bin/python -m pytest -q tests/test_platform.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.platform import backend, find_openblas, openblas_env

REPO = Path(__file__).resolve().parents[1]
MARK = "SLEEPBOT_BLAS_CHECKED"

needs_openblas = pytest.mark.skipif(find_openblas() is None, reason="no system OpenBLAS")
linux_cpu = pytest.mark.skipif(not sys.platform.startswith("linux") or backend() != "cpu",
                               reason="the preload is for the Linux CPU backend only")

# Prints what the process ended up with after ensure_fast_blas (which may re-exec it).
PROBE = (
    "import os, sys\n"
    "from runtime.platform import ensure_fast_blas\n"
    "ensure_fast_blas()\n"
    "maps = open('/proc/self/maps').read()\n"
    "print(os.environ.get('LD_PRELOAD'))\n"
    "print('openblas mapped' if 'libopenblas' in maps else 'openblas absent')\n"
)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any preload or marker (as a user's shell would have it)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", MARK, "SLEEPBOT_STOCK_BLAS", "SLEEPBOT_MODEL")}
    return env | extra


def run_probe(env: dict[str, str]) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_find_openblas_gives_an_existing_file_or_none():
    lib = find_openblas()
    assert lib is None or Path(lib).is_file()


@needs_openblas
def test_openblas_env_adds_the_preload():
    lib = find_openblas()
    source = {"PATH": "/usr/bin"}
    env = openblas_env(source)
    assert env["LD_PRELOAD"] == lib
    assert env[MARK] == "1" and env["PATH"] == "/usr/bin"
    assert source == {"PATH": "/usr/bin"}  # a copy: the caller's env is untouched
    assert openblas_env({"LD_PRELOAD": "/opt/libx.so"})["LD_PRELOAD"] == f"{lib}:/opt/libx.so"
    already = {"LD_PRELOAD": "/somewhere/libopenblas.so.0"}
    assert openblas_env(already)["LD_PRELOAD"] == "/somewhere/libopenblas.so.0"


def test_openblas_env_defaults_to_this_process(monkeypatch):
    monkeypatch.delenv(MARK, raising=False)
    monkeypatch.setenv("SLEEPBOT_PLATFORM_TEST", "x")
    assert openblas_env()["SLEEPBOT_PLATFORM_TEST"] == "x"
    assert MARK not in os.environ  # building a child's env does not mark this process


@needs_openblas
@linux_cpu
def test_ensure_fast_blas_reexecs_with_openblas():
    assert run_probe(clean_env()) == [find_openblas(), "openblas", "mapped"]


@linux_cpu
def test_stock_blas_opt_out_keeps_the_process():
    preload, *mapped = run_probe(clean_env(SLEEPBOT_STOCK_BLAS="1"))
    assert preload == "None" and mapped == ["openblas", "absent"]


@needs_openblas
@linux_cpu
def test_python_m_bot_runs_with_openblas(tmp_path, tiny_model_dir):
    """The real entry point: ``python -m bot`` started without the preload gets it."""
    cmd = [sys.executable, "-m", "bot", "--data-dir", str(tmp_path / "data"),
           "--model", str(tiny_model_dir), "bench", "generate", "--json", "--repeats", "1",
           "--max-tokens", "4", "--no-stock"]
    out = subprocess.run(cmd, cwd=REPO, env=clean_env(), capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["openblas_preloaded"] is True
    assert result["device"] == "cpu" and result["compute"] == "float32"


@pytest.mark.parametrize("device", ["cuda", "metal"])
def test_no_reexec_when_mlx_runs_on_a_gpu(monkeypatch, device):
    import runtime.platform as platform

    calls = []
    monkeypatch.setattr(platform.sys, "platform", "linux")
    monkeypatch.setattr(platform, "backend", lambda: device)
    monkeypatch.setattr(platform, "find_openblas", lambda: "/usr/lib/libopenblas.so.0")
    monkeypatch.setattr(platform.os, "execve", lambda *a: calls.append(a))
    for var in ("LD_PRELOAD", MARK, "SLEEPBOT_STOCK_BLAS"):
        monkeypatch.delenv(var, raising=False)
    platform.ensure_fast_blas(["python", "-m", "bot"])
    assert calls == [] and "LD_PRELOAD" not in os.environ
    monkeypatch.setattr(platform, "backend", lambda: "cpu")  # the same call on the CPU does
    platform.ensure_fast_blas(["python", "-m", "bot"])
    assert len(calls) == 1 and calls[0][2]["LD_PRELOAD"] == "/usr/lib/libopenblas.so.0"
