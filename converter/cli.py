"""`nv-convert`: train, quantize and verify a model, and write its bundle.

Training is not built yet (see the converter issue); until then this command says so and exits 2.
The quantization step it will use (`converter.quantize`) is in place and tested.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print(
        "nv-convert: training is not available in this version yet; the shipped model in models/ "
        "is a placeholder (see README.md)",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
