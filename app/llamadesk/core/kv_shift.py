"""Where the context can be kept when the start of the model's memory moves: a plan to
remove the dropped messages' tokens from the KV cache and shift what follows down.

When a long chat overflows, the prompt loses its oldest messages after the system
prompt. Everything from the first kept message on is, token for token, already in the
context, only further along. Rather than read it again, the engine removes the dropped
range and moves the kept tokens down to where the new prompt wants them (llama.cpp's
``llama_memory_seq_rm`` and ``llama_memory_seq_add``). This module only finds that range
by comparing token lists, so whatever the template, the context ends up holding exactly
the freshly rendered prompt's tokens; the engine does the llama.cpp calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: Fewer kept tokens than this are cheaper to read again than to shift.
MIN_SHIFTED_TOKENS = 32


@dataclass(frozen=True)
class KVShift:
    """Keep ``old[:start]``, drop ``old[start:start + removed]``, move the next ``kept``
    tokens down by ``removed``; the context then holds ``new[:start + kept]``."""

    start: int
    removed: int
    kept: int

    @property
    def end(self) -> int:
        """Tokens the context holds after the shift."""
        return self.start + self.kept


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def plan_shift(old: Sequence[int], new: Sequence[int],
               min_kept: int = MIN_SHIFTED_TOKENS) -> KVShift | None:
    """The shift that makes a context holding ``old`` hold the longest possible start of
    ``new``, or None when plain prefix reuse does as well (or nearly: fewer than
    ``min_kept`` tokens would be saved)."""
    start = common_prefix(old, new)
    if start >= len(old) or start >= len(new):
        return None
    first = new[start]
    best: KVShift | None = None
    for j in range(start + 1, len(old)):
        if old[j] != first:
            continue
        kept = common_prefix(old[j:], new[start:])
        if kept >= min_kept and (best is None or kept > best.kept):
            best = KVShift(start, j - start, kept)
            if j + kept == len(old):
                break  # everything after the dropped range is kept: none can do better
    return best
