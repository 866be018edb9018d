"""What a GGUF file name says: its quantisation and whether it is one part of a split model.

Community repos name files ``<model>.<QUANT>.gguf`` (TheBloke), ``<model>-<QUANT>.gguf``
(bartowski, QuantFactory) or in lower case (``q4_k_m``); sharded models add
``-00001-of-00003`` before ``.gguf``. The name is only a hint: the file's own
``general.file_type`` is read after download.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Longest alternatives first, so Q4_K_M is not read as Q4_K, and IQ4_XS not as Q4.
_QUANT_RE = re.compile(
    r"(?<![A-Za-z0-9])("
    r"IQ[1-4]_(?:XXS|XS|NL|S|M|L)"
    r"|Q[2-8]_K_(?:XL|S|M|L)"
    r"|Q[2-8]_K"
    r"|Q[4-8]_[01]"
    r"|TQ[12]_0"
    r"|MXFP4(?:_MOE)?"
    r"|BF16|F16|F32|FP16|FP32"
    r")(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_SPLIT_RE = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
# TheBloke's large uploads were cut into raw byte pieces to be concatenated by hand.
_RAW_SPLIT_RE = re.compile(r"\.gguf-split-([a-z])$", re.IGNORECASE)

_ALIASES = {"FP16": "F16", "FP32": "F32"}

#: Rough bits per weight of each quantisation, for size guesses when the Hub gives none.
BITS_PER_WEIGHT: dict[str, float] = {
    "Q2_K": 2.6, "Q3_K_S": 3.5, "Q3_K_M": 3.9, "Q3_K_L": 4.3, "Q4_0": 4.5, "Q4_1": 5.0,
    "Q4_K_S": 4.6, "Q4_K_M": 4.9, "Q5_0": 5.5, "Q5_1": 6.0, "Q5_K_S": 5.5, "Q5_K_M": 5.7,
    "Q6_K": 6.6, "Q8_0": 8.5, "F16": 16.0, "BF16": 16.0, "F32": 32.0,
}


def parse_quantisation(filename: str) -> str | None:
    """The quantisation named in a GGUF file name (upper case, e.g. ``Q4_K_M``), or None."""
    base = filename.rsplit("/", 1)[-1]
    # Some repos keep each quantisation in a folder of its own name (Q4_K_M/model-….gguf).
    matches = _QUANT_RE.findall(base) or _QUANT_RE.findall(filename)
    if not matches:
        return None
    # The last match is the one nearest the extension, where every naming scheme puts it.
    quant = str(matches[-1]).upper()
    return _ALIASES.get(quant, quant)


@dataclass(frozen=True)
class SplitPart:
    """One piece of a model split across several files."""

    stem: str  # the name without the part suffix: the same for every part
    index: int  # 1-based
    count: int
    raw: bool  # byte pieces to concatenate, not gguf-split shards


def split_part(filename: str) -> SplitPart | None:
    """If ``filename`` is one part of a split model, which part; else None."""
    match = _SPLIT_RE.search(filename)
    if match:
        return SplitPart(filename[: match.start()], int(match.group(1)), int(match.group(2)),
                         raw=False)
    match = _RAW_SPLIT_RE.search(filename)
    if match:
        return SplitPart(filename[: match.start()], ord(match.group(1).lower()) - ord("a") + 1,
                         0, raw=True)
    return None


def is_gguf_name(filename: str) -> bool:
    """Whether a repo file is a GGUF model file (or a piece of one)."""
    lower = filename.lower()
    return lower.endswith(".gguf") or _RAW_SPLIT_RE.search(lower) is not None
