"""Presets: named sets of a system prompt and sampling settings.

Four are built in (Balanced, Precise, Creative, Llama 2 Chat); the user's own live in
``presets.json`` in the config folder, beside ``settings.json``, written atomically.
A damaged or unreadable file gives the built-ins and a logged warning; it is kept
aside (``presets.json.unreadable``) before the next write, so nothing in it is lost.
A default preset, if chosen, shapes new chats; without one they take the defaults
from Preferences.

File format (unknown keys are ignored; ``format_version`` grows only for changes an
older version would misread)::

    {"format_version": 1, "default": "Short answers" | null,
     "presets": [{"name": "Short answers", "system_prompt": "...",
                  "params": {"temperature": 0.3, ...}}]}
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from llamadesk.core.conversation import SamplingParams
from llamadesk.core.settings import AppSettings

log = logging.getLogger(__name__)

PRESETS_FILE = "presets.json"
FORMAT_VERSION = 1
MAX_NAME_LENGTH = 60

#: The default system prompt of Meta's reference implementation of Llama 2 chat
#: (``DEFAULT_SYSTEM_PROMPT`` in llama/generation.py of meta-llama/llama, July 2023),
#: verbatim, including the double space after the first sentence.
LLAMA_2_CHAT_SYSTEM_PROMPT = (
    "You are a helpful, respectful and honest assistant. Always answer as helpfully as "
    "possible, while being safe.  Your answers should not include any harmful, unethical, "
    "racist, sexist, toxic, dangerous, or illegal content. Please ensure that your "
    "responses are socially unbiased and positive in nature.\n\n"
    "If a question does not make any sense, or is not factually coherent, explain why "
    "instead of answering something not correct. If you don't know the answer to a "
    "question, please don't share false information."
)


class PresetError(ValueError):
    """A preset change that cannot be made (a taken name, a built-in); says why."""


class PresetSaveError(PresetError):
    """The presets file could not be written (a read-only folder, a full disk); the
    book is left as it was. Its text is a whole sentence, naming the file."""


@dataclass(frozen=True)
class Preset:
    """A named system prompt and sampling settings."""

    name: str
    system_prompt: str
    params: SamplingParams
    builtin: bool = False

    def applied_to(self, params: SamplingParams) -> SamplingParams:
        """The preset's sampling settings for a chat that has ``params`` now. The chat
        keeps its context length: that depends on the model and memory, not on taste,
        and changing it reloads the model."""
        return replace(self.params, n_ctx=params.n_ctx)


_BALANCED = Preset("Balanced", AppSettings.default_system_prompt, SamplingParams(), True)
BUILTIN_PRESETS: tuple[Preset, ...] = (
    _BALANCED,
    Preset("Precise", "You are a helpful assistant. Answer accurately and concisely, and "
           "say so when you are not sure.",
           SamplingParams(temperature=0.2, top_p=0.9, top_k=20, min_p=0.1), True),
    Preset("Creative", "You are a helpful and imaginative assistant.",
           SamplingParams(temperature=1.0, top_p=0.98, top_k=100, min_p=0.02,
                          repeat_penalty=1.05, max_tokens=1024), True),
    # Meta's reference samples with temperature 0.6 and top-p 0.9 only.
    Preset("Llama 2 Chat", LLAMA_2_CHAT_SYSTEM_PROMPT,
           SamplingParams(temperature=0.6, top_p=0.9, top_k=0, min_p=0.0,
                          repeat_penalty=1.0), True),
)


def clean_name(name: str) -> str:
    """A preset name with its spaces tidied; raises PresetError if blank or too long."""
    cleaned = " ".join(name.split())
    if not cleaned:
        raise PresetError("a preset needs a name")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise PresetError(f"a preset's name can be at most {MAX_NAME_LENGTH} characters")
    return cleaned


class PresetBook:
    """The built-in presets and the user's own, and which one new chats start from.
    Every change is written to the file at once. One book belongs to one thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._user: list[Preset] = []
        self._default: str | None = None
        self._unreadable = False
        self._load()

    # -- reading -------------------------------------------------------------------------
    def presets(self) -> list[Preset]:
        """The built-ins, then the user's presets by name."""
        return [*BUILTIN_PRESETS, *sorted(self._user, key=lambda p: p.name.casefold())]

    def get(self, name: str) -> Preset | None:
        """The preset with this name (case and spacing do not matter), or None."""
        key = " ".join(name.split()).casefold()
        return next((p for p in self.presets() if p.name.casefold() == key), None)

    @property
    def default_name(self) -> str | None:
        """The preset new chats start from; None: Preferences' defaults."""
        return self._default

    def default(self) -> Preset | None:
        """The default preset, or None."""
        return self.get(self._default) if self._default else None

    def new_chat_settings(self, settings: AppSettings) -> tuple[str, SamplingParams]:
        """The system prompt and sampling settings for a new chat: the default preset's
        (with the context length from Preferences), else Preferences' own."""
        preset = self.default()
        if preset is None:
            return settings.default_system_prompt, settings.defaults
        return preset.system_prompt, preset.applied_to(settings.defaults)

    # -- changes -------------------------------------------------------------------------
    def save(self, name: str, system_prompt: str, params: SamplingParams, *,
             overwrite: bool = False) -> Preset:
        """Save a user preset (``overwrite`` to replace one with the same name)."""
        name = clean_name(name)
        existing = self.get(name)
        if existing is not None and existing.builtin:
            raise PresetError(f"{existing.name!r} is a built-in preset; choose another name")
        if existing is not None and not overwrite:
            raise PresetError(f"there is already a preset called {existing.name!r}")
        preset = Preset(name, system_prompt, params.validated())
        default = (name if existing is not None and self._default == existing.name
                   else self._default)
        self._commit([p for p in self._user if p is not existing] + [preset], default)
        return preset

    def rename(self, old: str, new: str) -> Preset:
        """Give a user preset a new name (the default follows it)."""
        preset = self._user_preset(old, "renamed")
        new = clean_name(new)
        clash = self.get(new)
        if clash is not None and clash is not preset:
            raise PresetError(f"there is already a preset called {clash.name!r}")
        renamed = replace(preset, name=new)
        self._commit([renamed if p is preset else p for p in self._user],
                     new if self._default == preset.name else self._default)
        return renamed

    def delete(self, name: str) -> None:
        """Delete a user preset; if it was the default, new chats use Preferences'."""
        preset = self._user_preset(name, "deleted")
        self._commit([p for p in self._user if p is not preset],
                     None if self._default == preset.name else self._default)

    def set_default(self, name: str | None) -> None:
        """Make a preset the one new chats start from (None: Preferences' defaults)."""
        default = None
        if name is not None:
            preset = self.get(name)
            if preset is None:
                raise PresetError(f"there is no preset called {name!r}")
            default = preset.name
        self._commit(self._user, default)

    def _user_preset(self, name: str, action: str) -> Preset:
        preset = self.get(name)
        if preset is None:
            raise PresetError(f"there is no preset called {name!r}")
        if preset.builtin:
            raise PresetError(f"{preset.name!r} is built in and cannot be {action}")
        return preset

    # -- the file --------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError, RecursionError) as exc:
            self._give_up(f"it is unreadable ({exc})")
            return
        if not isinstance(data, dict) or not isinstance(data.get("presets", []), list):
            self._give_up("it is not a presets file")
            return
        version = data.get("format_version", FORMAT_VERSION)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            self._give_up(f"it is from a newer version of the app (format {version!r})")
            return
        for n, item in enumerate(data.get("presets", [])):
            try:
                preset = _preset_from(item)
            except (PresetError, TypeError, ValueError, AttributeError) as exc:
                log.warning("presets file %s: entry %d skipped (%s)", self.path, n, exc)
                self._unreadable = True
                continue
            if self.get(preset.name) is not None:
                log.warning("presets file %s: entry %d skipped (its name is taken)",
                            self.path, n)
                self._unreadable = True
                continue
            self._user.append(preset)
        default = data.get("default")
        found = self.get(default) if isinstance(default, str) else None
        self._default = found.name if found else None

    def _give_up(self, why: str) -> None:
        log.warning("presets file %s: %s; using the built-in presets", self.path, why)
        self._unreadable = True

    def _commit(self, user: list[Preset], default: str | None) -> None:
        """Write the book as ``user`` and ``default``, and only then take them: a write
        that fails (PresetSaveError) leaves the book as the file still has it."""
        try:
            self._write(user, default)
        except OSError as exc:
            raise PresetSaveError(f"The presets could not be saved to {self.path}: "
                                  f"{exc.strerror or exc}.") from exc
        self._user, self._default = user, default

    def _write(self, user: list[Preset], default: str | None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._unreadable and self.path.exists():
            # Keep what could not be read, for the user (or a newer version) to recover.
            os.replace(self.path, self.path.with_name(self.path.name + ".unreadable"))
            self._unreadable = False
        data: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "default": default,
            "presets": [{"name": p.name, "system_prompt": p.system_prompt,
                         "params": p.params.to_dict()} for p in user],
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)


def _preset_from(item: Any) -> Preset:
    if not isinstance(item, dict):
        raise PresetError("not an object")
    name, prompt, params = item.get("name"), item.get("system_prompt", ""), item.get("params")
    if not isinstance(name, str) or not isinstance(prompt, str):
        raise PresetError("name and system_prompt must be text")
    if not isinstance(params, dict):
        raise PresetError("params must be an object")
    for spec in fields(SamplingParams):
        value = params.get(spec.name, 0)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PresetError(f"params.{spec.name} must be a number")
    return Preset(clean_name(name), prompt, SamplingParams.from_dict(params).validated())


def preset_book(config_dir: Path) -> PresetBook:
    """The presets kept in ``config_dir`` (the app's config folder)."""
    return PresetBook(config_dir / PRESETS_FILE)
