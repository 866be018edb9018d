"""The one answer to "is anything busy?".

Four parts keep their own books: the chat controller its replies, the inference service
its jobs (replies, API requests, embeddings) and whether a model is loading, the local
API's job runner the requests it has taken, and the window's background writes
(``ui.operations.Operations``, followed through ``follow_writes``). Each book stays
where it is kept; ``Busy`` is the one place that reads them, so the window's close, the
local API's status and the command line's ``serve`` ask one object and get one answer
(``Activity``), with the same words for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from llamadesk.services.inference import ModelState


class _Replies(Protocol):
    @property
    def busy(self) -> bool: ...

    def generating_in(self, conversation_id: int) -> bool: ...


class _Jobs(Protocol):
    @property
    def busy(self) -> bool: ...

    state: ModelState


class _Requests(Protocol):
    pending: int


class _Writes(Protocol):
    @property
    def in_flight(self) -> int: ...


@dataclass(frozen=True)
class Activity:
    """What is under way at one moment."""

    replies: bool = False  # the window's chat replies, queued or being written
    requests: int = 0  # local API requests running or queued
    jobs: bool = False  # anything queued or running on the inference service
    loading: bool = False  # a model is loading
    writes: int = 0  # the window's writes running in the background

    @property
    def busy(self) -> bool:
        """Whether anything at all is under way."""
        return (self.replies or self.jobs or self.loading or self.requests > 0
                or self.writes > 0)

    def describe(self) -> str:
        """In words, for a status line: "a reply, 2 API requests and a model loading"."""
        parts = (["a reply"] if self.replies else []) + (
            [f"{self.requests} API request{'s' if self.requests != 1 else ''}"]
            if self.requests else []) + (["a model loading"] if self.loading else []) + (
            [f"{self.writes} unsaved change{'s' if self.writes != 1 else ''}"]
            if self.writes else [])
        if not parts and self.jobs:
            parts = ["work on the model"]
        if not parts:
            return "nothing"
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


class Busy:
    """Reads the books of whatever this process runs (a window has a controller; ``serve``
    has none; the API runner comes and goes with the server)."""

    def __init__(self, inference: _Jobs, replies: _Replies | None = None,
                 requests: _Requests | None = None) -> None:
        self._inference = inference
        self._replies = replies
        self._requests = requests
        self._writes: _Writes | None = None

    def follow_requests(self, runner: _Requests | None) -> None:
        """The local API's job runner from now on (None: the server stopped)."""
        self._requests = runner

    def follow_writes(self, writes: _Writes | None) -> None:
        """The window's background writes (``ui.operations.Operations``)."""
        self._writes = writes

    def now(self) -> Activity:
        """What is under way now."""
        return Activity(
            replies=self._replies.busy if self._replies is not None else False,
            requests=self._requests.pending if self._requests is not None else 0,
            jobs=self._inference.busy,
            loading=self._inference.state == ModelState.LOADING,
            writes=self._writes.in_flight if self._writes is not None else 0)

    def replying_in(self, conversation_id: int) -> bool:
        """Whether a reply to this chat is queued or being written."""
        return self._replies is not None and self._replies.generating_in(conversation_id)


def what_stops(busy: Busy) -> str | None:
    """On quitting, what is cut off, in words (None when nothing is under way)."""
    activity = busy.now()
    return activity.describe() if activity.busy else None
