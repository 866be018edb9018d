"""The llama-cpp-python LlamaDesk was tested with, checked at start-up.

``services.llama_internals`` reaches past llama-cpp-python's public API, so another
version can give wrong replies or crash instead of failing cleanly: the app refuses
it with a clear message. This module reads the installed version from the package's
metadata folder (``core/dist_version.py``) and never imports llama_cpp (the window
starts before llama.cpp is loaded).
"""

from __future__ import annotations

import os

from llamadesk.core.dist_version import version

#: The exact version pyproject.toml pins and the test suite ran against.
TESTED_VERSION = "0.3.36"
DISTRIBUTION = "llama-cpp-python"
#: Set to 1 to start with another version anyway (to try a new one).
ALLOW_UNTESTED_ENV = "LLAMADESK_ALLOW_UNTESTED_LLAMA"


def installed_version() -> str | None:
    """The installed llama-cpp-python's version, or None when it is not installed."""
    return version(DISTRIBUTION)


def version_problem(installed: str | None = None) -> str | None:
    """Why this llama-cpp-python cannot be used, or None when it is the tested one
    (or ``LLAMADESK_ALLOW_UNTESTED_LLAMA=1`` is set)."""
    installed = installed if installed is not None else installed_version()
    if installed == TESTED_VERSION or os.environ.get(ALLOW_UNTESTED_ENV) == "1":
        return None
    if installed is None:
        return (f"llama-cpp-python is not installed. LlamaDesk needs version "
                f"{TESTED_VERSION}; reinstall LlamaDesk.")
    return (f"LlamaDesk was tested with llama-cpp-python {TESTED_VERSION}, but "
            f"{installed} is installed. LlamaDesk relies on parts of it that change "
            f"between versions, so another version could give wrong replies or crash. "
            f"Install the tested one (pip install llama-cpp-python=={TESTED_VERSION}), "
            f"or set {ALLOW_UNTESTED_ENV}=1 to try this one anyway.")
