"""`python -m gateway`: the `sorgw` command."""

import sys

from gateway.cli import main

sys.exit(main())
