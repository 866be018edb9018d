"""The ``gguf`` package's constants, without the rest of the package.

``import gguf.constants`` runs ``gguf/__init__.py`` first, which imports the package's
reader, writer and metadata tools and with them numpy and PyYAML: about 110 ms at every
start of the window, for a module that needs only the standard library. The app uses
the constants alone (key names, value and tensor types, block sizes), so this module
loads ``gguf/constants.py`` by itself under its own name; a later ``import gguf`` finds
it in ``sys.modules`` and uses it (names are imported from it, ``from gguf.constants
import …``, as gguf itself does; the package's ``constants`` attribute is not set). Where
that cannot be done (the package is not a plain
folder, as in some frozen builds), the ordinary import runs instead.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_NAME = "gguf.constants"


def _load_constants_alone() -> bool:
    """Put ``gguf.constants`` in ``sys.modules`` without running ``gguf/__init__``;
    False if it could not be done that way (then nothing was changed)."""
    if _NAME in sys.modules:
        return True
    package = importlib.util.find_spec("gguf")  # finds the package, does not run it
    folders = list(package.submodule_search_locations or []) if package else []
    path = Path(folders[0]) / "constants.py" if folders else None
    if path is None or not path.is_file():
        return False
    spec = importlib.util.spec_from_file_location(_NAME, path)
    if spec is None or spec.loader is None:
        return False
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_NAME]
        raise
    return True


LOADED_ALONE = _load_constants_alone()

from gguf.constants import (  # noqa: E402 - after the module is put in place above
    GGML_QUANT_SIZES,
    GGUF_DEFAULT_ALIGNMENT,
    GGMLQuantizationType,
    GGUFValueType,
    Keys,
    LlamaFileType,
)

__all__ = ["GGML_QUANT_SIZES", "GGUF_DEFAULT_ALIGNMENT", "LOADED_ALONE", "GGMLQuantizationType",
           "GGUFValueType", "Keys", "LlamaFileType"]
