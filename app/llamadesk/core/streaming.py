"""The text of a reply as it streams: bytes per token in, text safe to show out.

A token may end in the middle of a UTF-8 character, and a stop string (``<|im_end|>``,
``[INST]``) may arrive spread over several tokens. ``ReplyStream`` decodes incrementally
and holds back only the end of the text that could still become a stop string, so the
work per token does not grow with the length of the reply.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence


class ReplyStream:
    """Feed it each token's bytes; it returns the text that may be shown now.

    Once a stop string is complete, ``stopped`` is true, the stop string and anything
    after it are discarded, and further input is ignored.
    """

    def __init__(self, stops: Sequence[str] = ()) -> None:
        self._stops = tuple(s for s in stops if s)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""  # decoded but held back: it may be the start of a stop string
        self._shown: list[str] = []
        self._stopped = False
        self._finished = False
        #: Characters searched for stop strings so far (grows with the reply, linearly).
        self.examined = 0

    @property
    def stopped(self) -> bool:
        """Whether a stop string ended the reply."""
        return self._stopped

    @property
    def pending(self) -> str:
        """Text decoded but not yet returned (at most a stop string's length, minus one)."""
        return self._pending

    @property
    def text(self) -> str:
        """Everything returned so far (after ``finish()``: the whole reply)."""
        return "".join(self._shown)

    def feed(self, data: bytes) -> str:
        """Take one token's bytes; return the text that is now safe to show."""
        if self._stopped or self._finished:
            return ""
        return self._release(self._pending + self._decoder.decode(data))

    def finish(self) -> str:
        """End of the reply: return whatever was still held back."""
        if self._finished:
            return ""
        tail = "" if self._stopped else self._pending + self._decoder.decode(b"", final=True)
        out = self._release(tail, final=True) if tail else ""
        self._finished = True
        self._pending = ""
        return out

    def _release(self, text: str, final: bool = False) -> str:
        self.examined += len(text)
        cut = self._first_stop(text)
        if cut >= 0:
            self._stopped = True
            self._pending = ""
            return self._show(text[:cut])
        keep = 0 if final else self._partial_stop(text)
        self._pending = text[len(text) - keep:] if keep else ""
        return self._show(text[:len(text) - keep])

    def _show(self, text: str) -> str:
        if text:
            self._shown.append(text)
        return text

    def _first_stop(self, text: str) -> int:
        found = [i for i in (text.find(s) for s in self._stops) if i >= 0]
        return min(found, default=-1)

    def _partial_stop(self, text: str) -> int:
        """The length of the longest end of ``text`` that begins some stop string."""
        longest = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:n]):
                    longest = n
                    break
        return longest
