"""``python -m bot model import [FILE.gguf] [--out DIR]``: import the bundled (or any llama)
GGUF model into an MLX model directory under ``<data>/models``."""

from __future__ import annotations

import argparse
from pathlib import Path

from runtime.config import Config


def add_parser(sub: argparse._SubParsersAction) -> None:
    model = sub.add_parser("model", help="model files")
    msub = model.add_subparsers(dest="model_command", required=True)
    imp = msub.add_parser("import", help="import a GGUF file (default: the bundled model)")
    imp.add_argument("gguf", nargs="?", type=Path, default=None)
    imp.add_argument("--out", type=Path, default=None)
    imp.set_defaults(func=import_main)


def import_main(args: argparse.Namespace, cfg: Config) -> int:
    from memory.paths import models_dir
    from runtime.gguf import GGUFImportError, convert_gguf
    from runtime.models import ModelError, resolve_model

    if args.gguf is None:
        path = resolve_model(cfg.model, models_dir(cfg.data_dir))
    else:
        out = args.out or models_dir(cfg.data_dir) / args.gguf.stem
        try:
            path = convert_gguf(args.gguf, out)
        except GGUFImportError as exc:
            raise ModelError(str(exc)) from exc
    print(f"model ready: {path}")
    return 0
