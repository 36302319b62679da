"""``python -m fastscratch``: the same as the ``fastscratch`` command."""

import sys

from .cli import main

sys.exit(main())
