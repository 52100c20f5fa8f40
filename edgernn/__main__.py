"""``python -m edgernn``: the ``edgernn`` command line (see :mod:`edgernn.cli`)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
