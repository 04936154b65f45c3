"""``python -m lfcomp.cli``: the ``lfcomp`` command line."""

import sys

from lfcomp.cli import main

sys.exit(main())
