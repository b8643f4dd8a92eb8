"""``python -m autoencode``: the command line (see :mod:`autoencode.cli`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
