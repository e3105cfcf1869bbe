"""`python -m edge.cli` is `nv-edge`."""

import sys

from edge.cli.main import main

sys.exit(main())
