"""What the one llama.cpp context holds, across conversations and as a chat grows.

Two ways the engine avoids reading a chat's history again:

* **Per-conversation states**: when another conversation takes the model over, the
  outgoing one's KV state is saved in RAM (``KVStateCache``) and restored when it comes
  back.
* **Shifting**: when a long chat's memory start moves, the dropped messages' tokens are
  removed from the context and the kept ones moved down (``core.kv_shift`` finds the
  range by comparing tokens; here llama.cpp's memory API does it), and
  llama-cpp-python's own token list is updated to match so its prefix reuse sees them.
"""

from __future__ import annotations

import ctypes
import logging

import llama_cpp

from llamadesk.core.kv_shift import common_prefix, plan_shift
from llamadesk.core.kv_state import KVState, KVStateCache

log = logging.getLogger(__name__)

SEQ = 0  # llama-cpp-python keeps everything in sequence 0


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
        if self.active_key is not None and llm.n_tokens > 0:
            self.save(llm, self.active_key)
        self.active_key = key
        if saved is None:
            return
        mine = common_prefix(saved.tokens, prompt)
        current = common_prefix(llm._input_ids.tolist(), prompt) if llm.n_tokens else 0
        if mine <= current:
            return
        ctx = llm._ctx.ctx
        llm._ctx.kv_cache_clear()
        buf = (ctypes.c_uint8 * len(saved.data)).from_buffer_copy(saved.data)
        if llama_cpp.llama_state_seq_set_data(ctx, buf, len(saved.data), SEQ) == 0:
            log.warning("could not restore the KV state of %s; re-reading its history", key)
            llm.reset()
            return
        llm.input_ids[: len(saved.tokens)] = saved.tokens
        llm.n_tokens = len(saved.tokens)

    def save(self, llm: llama_cpp.Llama, key: str) -> None:
        """Keep the context's state as ``key``'s."""
        ctx = llm._ctx.ctx
        size = int(llama_cpp.llama_state_seq_get_size(ctx, SEQ))
        if size <= 0 or size > self.states.capacity_bytes:
            return
        buf = (ctypes.c_uint8 * size)()
        written = int(llama_cpp.llama_state_seq_get_data(ctx, buf, size, SEQ))
        if written <= 0:
            return
        self.states.put(key, KVState(tuple(llm._input_ids.tolist()), bytes(buf)[:written]))

    def shift(self, llm: llama_cpp.Llama, prompt: list[int]) -> int:
        """Drop the tokens of messages that left the model's memory and move the kept
        ones down, so the context holds the longest start of ``prompt`` it can. Returns
        the tokens kept that way (0: nothing to shift, or the model cannot shift)."""
        self.last_shifted = 0
        n = llm.n_tokens
        if n == 0:
            return 0
        old = llm._input_ids.tolist()
        plan = plan_shift(old, prompt)
        if plan is None:
            return 0
        memory = llama_cpp.llama_get_memory(llm._ctx.ctx)
        if not memory or not llama_cpp.llama_memory_can_shift(memory):
            return 0
        moved_from = plan.start + plan.removed
        # Drop what follows the kept range, then the dropped messages; move the rest down.
        llama_cpp.llama_memory_seq_rm(memory, SEQ, moved_from + plan.kept, -1)
        llama_cpp.llama_memory_seq_rm(memory, SEQ, plan.start, moved_from)
        llama_cpp.llama_memory_seq_add(memory, SEQ, moved_from, moved_from + plan.kept,
                                       -plan.removed)
        llm.input_ids[plan.start:plan.end] = old[moved_from:moved_from + plan.kept]
        llm.n_tokens = plan.end
        self.last_shifted = plan.kept
        log.debug("context shift: dropped %d tokens, kept %d by moving them down",
                  plan.removed, plan.kept)
        return plan.kept
