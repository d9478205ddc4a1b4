"""``python -m studies.cli``: the ``unetmm`` command."""

import sys

from studies.cli import main

sys.exit(main())
