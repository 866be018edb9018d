"""gguf's constants load without the rest of gguf (numpy, PyYAML): they are on the
window's start-up path, through the registry's header check."""

from __future__ import annotations

import subprocess
import sys


def test_the_constants_load_without_numpy_and_gguf_still_works_after() -> None:
    code = (
        "import sys\n"
        "from llamadesk.core import gguf_constants, gguf_validate\n"
        "print(gguf_constants.LOADED_ALONE, sorted(m for m in ('numpy', 'yaml', 'gguf')"
        " if m in sys.modules))\n"
        "import gguf\n"
        "from gguf.constants import Keys\n"
        "print(Keys is gguf_constants.Keys, gguf.GGUFValueType is gguf_constants.GGUFValueType,"
        " 'numpy' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.split("\n")[:2] == ["True []", "True True True"]
