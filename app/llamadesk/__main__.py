"""``python -m llamadesk``: the same as the ``llamadesk`` command."""

from llamadesk.cli.main import run

if __name__ == "__main__":
    run()
