"""Build the REALTALK development fact sets (the code is bot/bench/realtalk.py).

    python scripts/realtalk_factsets.py [--realtalk DIR] [--out DIR]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.bench.realtalk import main  # noqa: E402  (the repository root is on the path now)

if __name__ == "__main__":
    sys.exit(main())
