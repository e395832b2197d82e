"""``python -m earlyexit.tools.bench`` (what ``make bench`` runs)."""

import sys

from earlyexit.tools.bench.command import main

sys.exit(main())
