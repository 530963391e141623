"""``python -m refnet`` (or ``refnet``): the command line; see :mod:`refnet._cli`."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
