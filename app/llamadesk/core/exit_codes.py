"""The process's exit statuses, one definition for the command line and the window.

They live in core, not in ``cli/``, because the window (``ui/app.run_gui``) and the
version check at start-up hand their status to the same process exit, and ``ui`` may not
import ``cli``. ``tests/test_cli_shape.py`` checks that nothing else defines one.
"""

from __future__ import annotations

#: Done as asked.
EXIT_OK = 0
#: A failure, said in one line on stderr (a bad id, a refused write, a server that cut a
#: reply off, an installation that is incomplete).
EXIT_FAILED = 1
#: The command line was used wrongly (argparse's own status for a usage error).
EXIT_USAGE = 2
#: This computer cannot run the app: an untested llama-cpp-python, or a CPU the bundled
#: llama.cpp cannot run on.
EXIT_CANNOT_START = 3
#: Stopped by Ctrl+C (128 + SIGINT): a reply stopped and kept, a download paused.
EXIT_INTERRUPTED = 130
