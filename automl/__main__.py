"""``python -m automl``: the same as the ``automl`` command."""

import sys

from automl.cli import main

sys.exit(main())
