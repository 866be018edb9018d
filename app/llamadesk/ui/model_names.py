"""Display names of models: messages store a model's id, people read its name."""

from __future__ import annotations

from collections.abc import Iterable

from llamadesk.core.registry import ModelEntry


class ModelNames:
    """The one table of model display names, owned by the app: filled from the
    registry (the model picker) and from every model that loads, read by the chat
    view's message headers and by export."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}

    def remember(self, model_id: str, name: str) -> None:
        """Call ``model_id`` ``name`` from now on."""
        if model_id and name:
            self._names[model_id] = name

    def remember_entries(self, entries: Iterable[ModelEntry]) -> None:
        """Learn the names of installed models."""
        for entry in entries:
            self.remember(entry.id, entry.name)

    def name_of(self, model_id: str | None, default: str = "Assistant") -> str:
        """The name to show for ``model_id`` (its id when unknown, ``default`` if None)."""
        if not model_id:
            return default
        return self._names.get(model_id, model_id)

    def as_dict(self) -> dict[str, str]:
        """A copy of the table (for export)."""
        return dict(self._names)
