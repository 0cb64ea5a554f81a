"""Damaged files on disk never crash the bot, lose memory or change data silently (issue 12).

Each test damages one real file the way a full disk, a crash or a bad download does, then runs
the real code on it (``python -m bot`` subprocesses, or an engine in this process) and checks
what the user sees and what is left on disk: random GGUF files, a damaged checkpoint delta or
manifest, a ``CURRENT`` pointer that is missing, junk or points nowhere, a damaged database
page or WAL, a torn log line.

    export LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0
    .venv/bin/python -m pytest -q tests/test_corruption.py
"""

from __future__ import annotations

import random
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.gguf import GGUFImportError, validate_gguf

REPO = Path(__file__).resolve().parents[1]


def assert_one_line_error(out, *needles: str) -> str:
    """Exit 2, no traceback, one stderr line starting with "error: " holding ``needles``."""
    assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- GGUF files --------------------------------------------------------------------------

def gguf_bytes(kv: list[tuple[str, int, bytes]], tensors: list[tuple[str, list[int], int, int]],
               data: bytes = b"", version: int = 3) -> bytes:
    """A GGUF file from raw parts: metadata (key, value type, packed value) and tensor infos
    (name, dims, ggml type, data offset), then ``data`` at the 32-byte aligned data start."""
    def s(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kv))
    for key, vtype, value in kv:
        out += s(key) + struct.pack("<I", vtype) + value
    for name, dims, ttype, offset in tensors:
        out += s(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        out += struct.pack("<IQ", ttype, offset)
    return out + b"\0" * (-len(out) % 32) + data


ARCH = ("general.architecture", 8, struct.pack("<Q", 5) + b"llama")
F32_4x32 = ("token_embd.weight", [32, 4], 0, 0)  # 4 rows of 32 float32 = 512 bytes

CRAFTED = {
    "too short": (b"GGUF\3\0\0\0", "only 8 bytes"),
    "not GGUF": (b"PK\3\4" + bytes(100), "no GGUF magic"),
    "version 1": (gguf_bytes([ARCH], [], version=1), "version 1 is not supported"),
    "huge metadata count": (b"GGUF" + struct.pack("<IQQ", 3, 0, 2**62) + bytes(64),
                            "runs past the end"),
    "string past the end": (gguf_bytes([("general.name", 8, struct.pack("<Q", 10**9))], []),
                            "claims 1000000000 bytes"),
    "array past the end": (gguf_bytes([("tokenizer.ggml.tokens", 9,
                                        struct.pack("<IQ", 8, 10**12))], []),
                           "more than the file holds"),
    "nested arrays": (gguf_bytes([("x", 9, struct.pack("<IQ", 9, 1))], []), "array of arrays"),
    "unknown value type": (gguf_bytes([("x", 77, b"")], []), "unknown value type 77"),
    "tensor data past the end": (gguf_bytes([ARCH], [F32_4x32], bytes(100)),
                                 "past the end of the"),
    "tensor offset past the end": (gguf_bytes([ARCH], [("a.weight", [32], 0, 2**40)],
                                              bytes(128)), "past the end of the"),
    "unsupported tensor type": (gguf_bytes([ARCH], [("a.weight", [256], 14, 0)], bytes(256)),
                                "type 14, which cannot be read"),
    "too many dimensions": (gguf_bytes([ARCH], [("a.weight", [1] * 5, 0, 0)], bytes(8)),
                            "5 dimensions"),
    "zero dimensions": (gguf_bytes([ARCH], [("a.weight", [], 0, 0)], bytes(8)),
                        "0 dimensions"),
    "quantized row not whole blocks": (gguf_bytes([ARCH], [("a.weight", [33, 1], 2, 0)],
                                                  bytes(64)), "not a multiple"),
    "tensor count past the end": (b"GGUF" + struct.pack("<IQQ", 3, 10**6, 1)
                                  + gguf_bytes([ARCH], [])[24:].rstrip(b"\0"), "runs past the end"),
    "alignment other than 32": (gguf_bytes([("general.alignment", 4, struct.pack("<I", 64))],
                                           []), "alignment 64"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_a_damaged_gguf_header_is_refused_before_mlx_reads_it(tmp_path, case):
    data, needle = CRAFTED[case]
    path = tmp_path / "bad.gguf"
    path.write_bytes(data)
    with pytest.raises(GGUFImportError, match="cannot read .*bad.gguf as GGUF") as err:
        validate_gguf(path)
    assert needle in str(err.value)


def test_a_consistent_header_passes(tmp_path):
    path = tmp_path / "ok.gguf"
    path.write_bytes(gguf_bytes([ARCH], [F32_4x32], bytes(512)))
    validate_gguf(path)  # exactly as long as its one tensor needs


def test_random_gguf_files_get_a_clear_error_not_a_segfault(cli, tmp_path):
    """The issue's reproduction: ``printf GGUF; head -c 4000 /dev/urandom`` (it crashed
    ``model import`` with exit 139 in 6 of 6 files)."""
    rng = random.Random(12)
    for n in range(6):
        path = tmp_path / f"x{n}.gguf"
        path.write_bytes(b"GGUF" + rng.randbytes(4000))
        out = cli("model", "import", str(path), data_dir=tmp_path / "data")
        assert_one_line_error(out, f"cannot read {path} as GGUF")
    assert not (tmp_path / "data" / "models").exists() or not any(
        (tmp_path / "data" / "models").iterdir())


def test_a_random_gguf_given_as_the_model_is_refused_by_any_verb(cli, tmp_path):
    path = tmp_path / "x.gguf"
    path.write_bytes(b"GGUF" + random.Random(3).randbytes(4000))
    out = cli("recall", "--user", "ana", "hello?", data_dir=tmp_path / "data", model=path)
    assert_one_line_error(out, f"cannot read {path} as GGUF")


def test_mutated_valid_files_never_crash_the_reader(tmp_path):
    """Truncations and flipped bytes of a valid GGUF file, read in a child process so that a
    crash shows as its exit status: every one is read or refused, none kills the reader."""
    script = """
import random, struct, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from runtime.gguf import GGUFImportError, read_gguf
good, work = Path(sys.argv[2]).read_bytes(), Path(sys.argv[3])
rng, seen = random.Random(0), {"read": 0, "refused": 0}
for i in range(300):
    b = bytearray(good)
    if i % 3 == 0:
        b = b[:rng.randrange(4, len(b))]
    else:
        for _ in range(1 + i % 5):
            b[rng.randrange(4, len(b))] = rng.randrange(256)
    work.write_bytes(b)
    try:
        read_gguf(work)
        seen["read"] += 1
    except GGUFImportError:
        seen["refused"] += 1
print(seen["read"], seen["refused"])
"""
    llama_kv = [ARCH, ("general.file_type", 4, struct.pack("<I", 0))]
    good = tmp_path / "good.gguf"
    good.write_bytes(gguf_bytes(llama_kv, [F32_4x32, ("output_norm.weight", [32], 0, 512)],
                                bytes(640)))
    out = subprocess.run([sys.executable, "-c", script, str(REPO), str(good),
                          str(tmp_path / "m.gguf")], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    read, refused = map(int, out.stdout.split())
    assert read + refused == 300 and refused > 100
