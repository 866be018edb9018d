"""Saved KV states of conversations, kept in RAM within a size limit.

The engine saves the context's state when another conversation takes the model over,
and restores it when the first one comes back, so a long chat is not read again after a
detour. This module only keeps the bytes; saving and restoring them is the engine's.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class KVState:
    """A conversation's saved context: the tokens it holds and llama.cpp's bytes."""

    tokens: tuple[int, ...]
    data: bytes

    @property
    def size_bytes(self) -> int:
        """Bytes this state takes."""
        return len(self.data)


class KVStateCache:
    """Per-conversation KV states, least recently used evicted first, never more than
    ``capacity_bytes`` in all."""

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes
        self._states: OrderedDict[str, KVState] = OrderedDict()
        self._size = 0

    def get(self, key: str) -> KVState | None:
        """The saved state for ``key``, marked as recently used."""
        state = self._states.get(key)
        if state is not None:
            self._states.move_to_end(key)
        return state

    def put(self, key: str, state: KVState) -> bool:
        """Keep ``state`` for ``key`` (replacing an older one), evicting the least
        recently used states past the capacity. A state larger than the whole capacity
        is refused (and the old one for ``key`` forgotten); returns whether it was kept."""
        self.drop(key)
        if state.size_bytes > self.capacity_bytes:
            return False
        self._states[key] = state
        self._size += state.size_bytes
        while self._size > self.capacity_bytes:
            _, old = self._states.popitem(last=False)
            self._size -= old.size_bytes
        return True

    def drop(self, key: str) -> None:
        """Forget the state for ``key``."""
        old = self._states.pop(key, None)
        if old is not None:
            self._size -= old.size_bytes

    def clear(self) -> None:
        """Forget every state."""
        self._states.clear()
        self._size = 0

    def keys(self) -> list[str]:
        """The keys held, least recently used first."""
        return list(self._states)

    def __contains__(self, key: object) -> bool:
        return key in self._states

    def __len__(self) -> int:
        return len(self._states)

    @property
    def size_bytes(self) -> int:
        """Bytes held."""
        return self._size
