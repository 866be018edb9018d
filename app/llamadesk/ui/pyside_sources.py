"""PySide6 reads the source of every module imported after it, and keeps it.

Its ``__feature__`` switch (``snake_case``, ``true_property``) needs to know which modules
use PySide6, so after each import it searches the module's source for the word
``PySide6`` through ``inspect.getsource``, and ``inspect`` leaves every file's lines in
``linecache`` for the life of the process: ~17 MB of source text for the ~400 modules
the window and the engine import, never read again. The same check here reads the file
and keeps nothing. The one private name touched is ``_mod_uses_pyside`` of PySide6's
``feature`` module (6.8-6.11, pinned in pyproject.toml); ``keep_no_import_sources`` says
whether the replacement applied, and a test checks that it does.
"""

from __future__ import annotations

import inspect
import linecache
import logging
import sys
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)


def uses_pyside(module: ModuleType) -> bool:
    """Whether ``module``'s source file names PySide6 (PySide6's own test, uncached): a
    module without a readable source file counts as not using it, as there. The standard
    library's modules never do, so their files are not read (about a third of the
    window's start-up imports: ~5 ms of reading)."""
    if getattr(module, "__name__", "").partition(".")[0] in sys.stdlib_module_names:
        return False
    try:
        path = inspect.getsourcefile(module)
    except TypeError:  # a built-in module
        return False
    if not path:
        return False
    try:
        return b"PySide6" in Path(path).read_bytes()
    except OSError:
        return False


def keep_no_import_sources() -> bool:
    """Make PySide6's per-import check read sources without keeping them. Returns False,
    and changes nothing, when this PySide6 has no such check where it is expected."""
    import PySide6.QtCore  # noqa: F401  (loads PySide6's support package)

    try:
        from PySide6.support import feature  # type: ignore[attr-defined]
    except ImportError:
        feature = None
    if feature is None or not callable(getattr(feature, "_mod_uses_pyside", None)):
        log.warning("PySide6's import check was not found; imported sources stay cached")
        return False
    feature._mod_uses_pyside = uses_pyside  # looked up at each call by feature_imported
    # What the original check kept before this point (modules another thread imported
    # meanwhile, as the engine's early import does) goes too; tracebacks read it again.
    linecache.clearcache()
    return True
