"""What llama.cpp aborts the whole process on, rather than report as an error.

Found by offering llama.cpp a corpus of damaged files (tests/services/
test_hostile_models.py): these pass every structural check of the header, then hit an
assertion or an uncaught exception in llama.cpp, while loading or on the first prompt.
``core.gguf_validate`` refuses them first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from llamadesk.core.gguf_constants import Keys


def missing_byte_token(metadata: Mapping[str, object], vocabulary: set[bytes]) -> str | None:
    """Why a SentencePiece vocabulary cannot be used, or None. It spells text it has no
    token for byte by byte, with the ``<0xXX>`` tokens (or the bare byte); llama.cpp
    aborts on the first text that needs a missing one."""
    if metadata.get(Keys.Tokenizer.MODEL) != "llama":
        return None
    for byte in range(256):
        if f"<0x{byte:02X}>".encode() not in vocabulary and bytes([byte]) not in vocabulary:
            return (f"its vocabulary lacks the byte token <0x{byte:02X}>, without which "
                    "llama.cpp cannot read some text")
    return None


def bad_hyperparameter(metadata: Mapping[str, object]) -> str | None:
    """Why a value llama.cpp asserts on while computing is unusable, or None: a negative
    or non-finite normalisation epsilon."""
    arch = metadata.get(Keys.General.ARCHITECTURE)
    if not isinstance(arch, str):
        return None
    for template in (Keys.Attention.LAYERNORM_EPS, Keys.Attention.LAYERNORM_RMS_EPS):
        key = template.format(arch=arch)
        value = metadata.get(key)
        if isinstance(value, float) and not (math.isfinite(value) and value >= 0.0):
            return f"{key} is {value}, not a small positive number"
    return None
