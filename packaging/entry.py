"""The script PyInstaller freezes: the same entry point as the ``llamadesk`` command."""

import multiprocessing

from llamadesk.cli.main import run

if __name__ == "__main__":
    # A frozen program that some library spawns through multiprocessing must not
    # start the app again in the child.
    multiprocessing.freeze_support()
    run()
