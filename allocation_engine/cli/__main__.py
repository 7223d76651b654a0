"""`python -m allocation_engine.cli`: the same as the `allocation-engine` command."""

import sys

from allocation_engine.cli.main import main

sys.exit(main())
