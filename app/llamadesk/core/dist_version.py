"""An installed distribution's version, without importing ``importlib.metadata``.

The window checks llama-cpp-python's version and shows its own before the first paint;
``importlib.metadata`` (with the email, zipfile and csv modules it imports) took 46–68
ms of CPU of that path on the 2-core machine. pip and uv name a distribution's metadata
folder ``<name>-<version>.dist-info`` (the name normalised with underscores), so the
folder's name is read from ``sys.path`` in the same order ``importlib.metadata`` looks;
anything else (an egg-info, a zip) falls back to it.
"""

from __future__ import annotations

import os
import re
import sys

_SUFFIX = ".dist-info"


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None when it is not installed."""
    wanted = _normal(distribution)
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:  # a missing folder or a zip file on the path
            continue
        for name in names:
            if name.endswith(_SUFFIX):
                dist, sep, found = name[:-len(_SUFFIX)].partition("-")
                if sep and found and _normal(dist) == wanted:
                    return found
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
