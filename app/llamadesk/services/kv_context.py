"""What the one llama.cpp context holds, across conversations and as a chat grows.

Three ways the engine spares it work:

* **Per-conversation states**: when another conversation takes the model over, the
  outgoing one's KV state is saved in RAM (``KVStateCache``) and restored when it comes
  back.
* **Shifting**: when a long chat's memory start moves, the dropped messages' tokens are
  removed from the context and the kept ones moved down (``core.kv_shift`` finds the
  range by comparing tokens; here llama.cpp's memory API does it), and
  llama-cpp-python's own token list is updated to match so its prefix reuse sees them.
* **Sizing**: the context is created small (``FIRST_CONTEXT`` tokens) and grows, in
  powers of two up to the chat's context length, when a prompt needs more or a reply
  reaches its end (``context_size_for``; the engine re-creates it between two tokens and
  carries the KV state over). A chat that uses a few hundred tokens does not pay for a
  4,096-token cache, nor for room its reply may never use.

All three leave logits that belong to something else (a saved state carries none; a
shift moves what produced them; a new context has none), so all three mark them stale
(``services.llama_internals``).
"""

from __future__ import annotations

import logging

import llama_cpp

from llamadesk.core.kv_shift import common_prefix, plan_shift
from llamadesk.core.kv_state import KVState, KVStateCache
from llamadesk.services import llama_internals as internals
from llamadesk.services.engine_errors import EngineError

log = logging.getLogger(__name__)

#: The context a model is loaded with (tokens), when its context length is larger (and
#: never under ``n_batch``: llama-cpp-python sizes its batch by the first context).
FIRST_CONTEXT = 256

#: The most prompt tokens llama.cpp computes at once on CPU (``n_ubatch``, and the
#: batch too, which llama.cpp splits into such steps anyway). Without flash
#: attention its compute buffer holds an attention matrix of n_ctx x n_ubatch per head,
#: and what a long prompt touched of it stays resident: 256 instead of 512 keeps ~8 MB
#: less after a 512-token prompt and ~15 MB less after 1,000, for no slower prompts on
#: CPU (docs/performance.md, "Memory").
UBATCH = 256


def context_size_for(needed: int, current: int, ceiling: int) -> int:
    """The context to hold ``needed`` tokens: ``current`` when they fit, else the next
    power of two that holds them (at least ``FIRST_CONTEXT``), never over ``ceiling``
    (the chat's context length). Growing by doubling keeps the re-creations to a few
    per chat; it never shrinks, so a long chat does not pay twice."""
    if needed <= current or current >= ceiling:
        return current
    size = max(FIRST_CONTEXT, current)
    while size < needed:
        size *= 2
    return min(size, ceiling)


class KVContext:
    """The context's bookkeeping for one engine: which conversation it holds, their
    saved states, and shifting on overflow."""

    def __init__(self, capacity_bytes: int) -> None:
        self.states = KVStateCache(capacity_bytes)
        self.active_key: str | None = None
        #: Tokens the last ``shift`` kept instead of reading them again.
        self.last_shifted = 0

    def clear(self) -> None:
        """Forget everything (the model or its template changed)."""
        self.active_key = None
        self.states.clear()

    def switch(self, llm: llama_cpp.Llama, key: str | None, prompt: list[int]) -> None:
        """Make the context hold as much of ``prompt`` as we have cached for ``key``."""
        if key == self.active_key or key is None:
            return
        # Take the incoming state first: saving the outgoing one may evict it.
        saved = self.states.get(key)
        if self.active_key is not None and internals.n_held(llm) > 0:
            self.save(llm, self.active_key)
        self.active_key = key
        if saved is None:
            return
        mine = common_prefix(saved.tokens, prompt)
        held = internals.held_tokens(llm)
        current = common_prefix(held, prompt) if held else 0
        if mine <= current:
            return
        if not internals.restore_sequence(llm, saved.tokens, saved.data):
            log.warning("could not restore the KV state of %s; re-reading its history", key)

    def fit(self, llm: llama_cpp.Llama, needed: int, ceiling: int) -> int:
        """Grow the context to hold ``needed`` tokens (never past ``ceiling``), keeping
        what it holds. Returns its size. Raises EngineError when llama.cpp cannot
        create the larger context (it keeps one of the old size, empty)."""
        current = internals.context_size(llm)
        size = context_size_for(needed, current, ceiling)
        if size > current:
            log.debug("context grows from %d to %d tokens", current, size)
            try:
                internals.resize_context(llm, size)
            except RuntimeError as exc:
                self.active_key = None  # what it held is gone
                raise EngineError(f"The model's context could not grow: {exc}.") from exc
        return internals.context_size(llm)

    def room_for_next_token(self, llm: llama_cpp.Llama, ceiling: int) -> None:
        """Between two tokens of a reply: grow a full context (never past ``ceiling``)
        so the token just sampled can be read. The reply goes on where it was: the KV
        state carries over and the next decode reads that token, as it would have."""
        if internals.n_held(llm) >= internals.context_size(llm):
            self.fit(llm, internals.n_held(llm) + 1, ceiling)

    def save(self, llm: llama_cpp.Llama, key: str) -> None:
        """Keep the context's state as ``key``'s."""
        saved = internals.save_sequence(llm, self.states.capacity_bytes)
        if saved is not None:
            self.states.put(key, KVState(*saved))

    def shift(self, llm: llama_cpp.Llama, prompt: list[int]) -> int:
        """Drop the tokens of messages that left the model's memory and move the kept
        ones down, so the context holds the longest start of ``prompt`` it can. Returns
        the tokens kept that way (0: nothing to shift, or the model cannot shift)."""
        self.last_shifted = 0
        old = internals.held_tokens(llm)
        if not old:
            return 0
        plan = plan_shift(old, prompt)
        if plan is None or not internals.can_shift(llm):
            return 0
        internals.shift_sequence(llm, plan.start, plan.removed, plan.kept)
        self.last_shifted = plan.kept
        log.debug("context shift: dropped %d tokens, kept %d by moving them down",
                  plan.removed, plan.kept)
        return plan.kept
