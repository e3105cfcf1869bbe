"""`nv-base`: the base-station command line. Not built yet (see the delivery issue)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("nv-base: the base station is not available in this version yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
