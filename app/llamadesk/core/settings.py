"""App-wide settings: a small JSON file in the config folder. Never secrets."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from llamadesk.core import connections as remote
from llamadesk.core.api_access import AccessListError, normalize_host_name, normalize_origin
from llamadesk.core.connections import Connection, RemoteSettings
from llamadesk.core.conversation import SamplingParams
from llamadesk.core.hardware import physical_cores

log = logging.getLogger(__name__)

GPU_LAYERS_AUTO = "auto"
GPU_LAYERS_ALL = "all"
GPU_LAYERS_NONE = "none"

THEME_SYSTEM = "system"
THEME_LIGHT = "light"
THEME_DARK = "dark"
THEMES = (THEME_SYSTEM, THEME_LIGHT, THEME_DARK)
#: The chat's text size in points, when the user sets one (0: the system's size).
MIN_FONT_SIZE = 7
MAX_FONT_SIZE = 40


#: Caps the automatic thread count (a machine shared with other work: llama.cpp's
#: threads wait for each other by spinning, and a thread without a free core of its own
#: stalls every step of the reply).
THREADS_ENV = "LLAMADESK_THREADS"


def threads_from_environment() -> int | None:
    """``LLAMADESK_THREADS`` as a positive whole number, or None (unset or not one)."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value.isdigit() or int(value) < 1:
        if value:
            log.warning("%s=%r is not a positive whole number; ignored", THREADS_ENV, value)
        return None
    return int(value)


def capped_threads(threads: int) -> int:
    """``threads`` for a helper's own llama.cpp context, at most ``LLAMADESK_THREADS``."""
    return min(threads, threads_from_environment() or threads)


@dataclass(frozen=True)
class HardwareSettings:
    """How llama.cpp uses the machine. ``n_threads`` 0 means one per physical core;
    ``gpu_layers`` is auto / all / none or a number of layers; ``kv_cache_type`` is
    ``q8_0`` or ``f16`` (values are 8-bit only with flash attention)."""

    n_threads: int = 0
    gpu_layers: str = GPU_LAYERS_AUTO
    # Off by default: on CPUs llama.cpp's flash attention reads a long history slower
    # (time to first token at 1,400 tokens of history: 109 ms off, 238 ms on, measured
    # on the bundled model). GPU users may want it on: it also lets the values of the
    # context cache be 8-bit.
    flash_attn: bool = False
    n_batch: int = 512
    # 8-bit keys (and values, with flash attention) in the context cache: 25-50% less
    # memory, and no slower here.
    kv_cache_type: str = "q8_0"

    def threads(self) -> int:
        """The thread count to use: the setting, else ``LLAMADESK_THREADS``, else one
        per physical core."""
        if self.n_threads > 0:
            return self.n_threads
        return min(threads_from_environment() or physical_cores(), physical_cores())

    def n_gpu_layers(self, gpu_offload_supported: bool) -> int:
        """The value for llama.cpp's ``n_gpu_layers`` (-1: all layers)."""
        if not gpu_offload_supported or self.gpu_layers == GPU_LAYERS_NONE:
            return 0
        if self.gpu_layers in (GPU_LAYERS_AUTO, GPU_LAYERS_ALL):
            return -1
        try:
            return max(int(self.gpu_layers), 0)
        except ValueError:
            return 0


@dataclass(frozen=True)
class AppearanceSettings:
    """How the window looks: ``theme`` follows the operating system (``system``) or is
    ``light`` / ``dark``; ``font_size`` is the chat's text size in points (0: the
    system's size)."""

    theme: str = THEME_SYSTEM
    font_size: int = 0

    def validated(self) -> AppearanceSettings:
        """An unknown theme becomes ``system``; the size is 0 or within the limits."""
        theme = self.theme if self.theme in THEMES else THEME_SYSTEM
        try:
            size = int(self.font_size)
        except (TypeError, ValueError):
            size = 0
        if size > 0:
            size = min(max(size, MIN_FONT_SIZE), MAX_FONT_SIZE)
        return AppearanceSettings(theme, max(size, 0))


@dataclass(frozen=True)
class LocalApiSettings:
    """The local OpenAI-compatible API as the window runs it (docs/api.md): on or off,
    whether its chats are kept, whether programs on this computer need the key too, and
    the web origins and host names allowed besides this computer's own (normalized by
    ``core.api_access``)."""

    enabled: bool = False  # off until the user turns it on; then on at every start
    store_conversations: bool = False  # keep each API chat as a conversation
    require_key: bool = False  # the key from programs on this computer as well
    allowed_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class AppSettings:
    """Settings that apply to the whole app."""

    hardware: HardwareSettings = field(default_factory=HardwareSettings)
    defaults: SamplingParams = field(default_factory=SamplingParams)
    default_system_prompt: str = "You are a helpful assistant."
    model_id: str | None = None  # None: the bundled model
    appearance: AppearanceSettings = field(default_factory=AppearanceSettings)
    #: Remote OpenAI-compatible servers the user added (their keys are in the keychain).
    connections: tuple[Connection, ...] = ()
    remote: RemoteSettings = field(default_factory=RemoteSettings)
    local_api: LocalApiSettings = field(default_factory=LocalApiSettings)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppSettings:
        """Build from a dict; unknown keys are ignored and missing ones default."""
        hw_known = {f.name for f in fields(HardwareSettings)}
        hardware = HardwareSettings(**{k: v for k, v in dict(data.get("hardware") or {}).items()
                                       if k in hw_known})
        look_known = {f.name for f in fields(AppearanceSettings)}
        appearance = AppearanceSettings(**{
            k: v for k, v in dict(data.get("appearance") or {}).items() if k in look_known})
        return cls(
            hardware=hardware,
            defaults=SamplingParams.from_dict(data.get("defaults")).validated(),
            default_system_prompt=str(data.get("default_system_prompt",
                                               cls.default_system_prompt)),
            model_id=data.get("model_id"),
            appearance=appearance.validated(),
            connections=remote.from_list(data.get("connections")),
            remote=_remote_settings(data.get("remote")),
            local_api=_local_api_settings(data.get("local_api")),
        )


def _remote_settings(data: object) -> RemoteSettings:
    known = {f.name for f in fields(RemoteSettings)}
    values = {k: v for k, v in data.items() if k in known} if isinstance(data, dict) else {}
    return RemoteSettings(**values).validated()


def _local_api_settings(data: object) -> LocalApiSettings:
    if not isinstance(data, dict):
        return LocalApiSettings()
    return LocalApiSettings(enabled=data.get("enabled") is True,
                            store_conversations=data.get("store_conversations") is True,
                            require_key=data.get("require_key") is True,
                            allowed_origins=_access_list(data.get("allowed_origins"),
                                                         normalize_origin),
                            allowed_hosts=_access_list(data.get("allowed_hosts"),
                                                       normalize_host_name))


def _access_list(data: object, normalize: Callable[[str], str]) -> tuple[str, ...]:
    """The valid entries of a stored list; an edited file's bad entries are dropped
    (and logged), never allowed."""
    if not isinstance(data, list):
        return ()
    kept: list[str] = []
    for entry in data:
        try:
            value = normalize(entry) if isinstance(entry, str) else None
        except AccessListError as exc:
            log.warning("settings: ignoring a local API entry (%s)", exc)
            continue
        if value is not None and value not in kept:
            kept.append(value)
    return tuple(kept)


def load_settings(path: Path) -> AppSettings:
    """Read settings; a missing or damaged file gives the defaults (and is logged),
    never a crash at start-up."""
    try:
        return AppSettings.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return AppSettings()
    except (OSError, ValueError, TypeError, AttributeError) as exc:  # e.g. JSON `[]`
        log.warning("settings file %s is unreadable (%s); using defaults", path, exc)
        return AppSettings()


def save_settings(path: Path, settings: AppSettings) -> None:
    """Write settings atomically (a crash mid-write leaves the old file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(settings.to_dict(), indent=2), encoding="utf-8")
    os.replace(tmp, path)


def with_hardware(settings: AppSettings, **changes: Any) -> AppSettings:
    """A copy of ``settings`` with some hardware fields changed."""
    return replace(settings, hardware=replace(settings.hardware, **changes))
