"""``python -m llamadesk``: the same as the ``llamadesk`` command."""

import sys

from llamadesk.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
