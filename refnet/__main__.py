"""``python -m refnet`` (or ``refnet``): check the lecture's identities and print a report."""

import sys

from ._verify import report


def main(argv=None):
    """Print the verification report; exit status 1 if any identity fails."""
    ok = report(sys.stdout)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
