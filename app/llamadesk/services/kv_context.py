"""What the one llama.cpp context holds, across conversations and as a chat grows.

Three ways the engine spares it work:

* **Per-conversation states**: when another conversation takes the model over, the
  outgoing one's KV state is saved in RAM (``KVStateCache``) and restored when it comes
  back. With ``saved`` (services/kv_persist.py), the state of the conversation the
  model holds at quit is kept on disk (``persist``) and a conversation with none in RAM
  is looked up there, so a chat continued after a relaunch is not read again.
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
from llamadesk.services.kv_persist import MAX_BYTES, SavedStates

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

    def __init__(self, capacity_bytes: int, saved: SavedStates | None = None) -> None:
        self.states = KVStateCache(capacity_bytes)
        self.active_key: str | None = None
        #: Tokens the last ``shift`` kept instead of reading them again.
        self.last_shifted = 0
        self._saved = saved
        #: The loaded model and settings, as states kept on disk are named (set at load).
        self.fingerprint: str | None = None
        #: The epoch of the active conversation's content when the model last read it
        #: (``answered``); a state is kept at quit only under it (core/store_kv.py).
        self.active_epoch: bytes | None = None

    def clear(self) -> None:
        """Forget everything (the model or its template changed)."""
        self.active_key = None
        self.active_epoch = None
        self.states.clear()

    def switch(self, llm: llama_cpp.Llama, key: str | None, prompt: list[int],
               epoch: bytes | None = None) -> None:
        """Make the context hold as much of ``prompt`` as we have cached for ``key``
        (in RAM, or kept at the last quit under ``epoch``, the request's)."""
        if key == self.active_key:
            return
        # Take the incoming state first: saving the outgoing one may evict it.
        saved, kept = None, False
        if key is not None:
            saved = self.states.get(key)
            if saved is None:  # the first reply since the launch: kept at the last quit?
                saved = self._kept(key, epoch)
                kept = saved is not None
        if self.active_key is not None and internals.n_held(llm) > 0:
            self.save(llm, self.active_key)
        # A request of no conversation takes the context too: what it leaves there is
        # nobody's (never saved, nor kept at quit, as a conversation's).
        self.active_key = key
        self.active_epoch = None
        if saved is None:
            return
        mine = common_prefix(saved.tokens, prompt)
        held = internals.held_tokens(llm)
        current = common_prefix(held, prompt) if held else 0
        if mine <= current or len(saved.tokens) > internals.context_size(llm):
            return
        if not internals.restore_sequence(llm, saved.tokens, saved.data):
            log.warning("could not restore the KV state of %s; re-reading its history", key)
        elif kept:
            log.info("restored the KV state of %d tokens kept at the last quit",
                     len(saved.tokens))

    def _kept(self, key: str, epoch: bytes | None) -> KVState | None:
        if self._saved is None or self.fingerprint is None or epoch is None:
            return None
        return self._saved.load(key, self.fingerprint, epoch)

    def answered(self, epoch: bytes | None) -> None:
        """The model has read the active conversation as it was under ``epoch``."""
        self.active_epoch = epoch

    def persist(self, llm: llama_cpp.Llama) -> None:
        """Keep the state of the conversation the context holds beyond this process,
        under the epoch it was read in; or erase a kept state that is stale."""
        if self._saved is None:
            return
        key, epoch, fingerprint = self.active_key, self.active_epoch, self.fingerprint
        saved = None
        if key is not None and epoch is not None and fingerprint is not None:
            saved = internals.save_sequence(llm, MAX_BYTES) if internals.n_held(llm) else None
            if saved is not None:
                self._saved.save(key, fingerprint, KVState(*saved), epoch)
                return
        self._saved.tidy()

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
