"""GPU memory as llama.cpp sees it, measured now.

llama.cpp lists its devices through ggml's backend device API; llama-cpp-python ships
the libraries but binds none of those functions, so they are bound here with ctypes.
Only dedicated GPUs count: the CPU and accelerators are not GPUs, an integrated GPU
shares RAM (layers there free none), and an RPC server's memory is another machine's.
The answer is plain numbers; the arithmetic that uses them lives in ``core/fit.py``.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

log = logging.getLogger(__name__)

# enum ggml_backend_dev_type (ggml-backend.h)
DEVICE_TYPE_CPU = 0
DEVICE_TYPE_GPU = 1
DEVICE_TYPE_IGPU = 2
DEVICE_TYPE_ACCEL = 3
RPC_BACKEND = "RPC"


@dataclass(frozen=True)
class GpuDevice:
    """One GPU llama.cpp can put layers on, and its memory now (bytes)."""

    name: str
    description: str
    free_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class GpuMemory:
    """The GPUs together: free and total memory now (None: no GPU)."""

    devices: tuple[GpuDevice, ...] = ()

    @property
    def free_bytes(self) -> int | None:
        """Free memory on all GPUs, or None without one."""
        return sum(d.free_bytes for d in self.devices) if self.devices else None

    @property
    def total_bytes(self) -> int | None:
        """Memory of all GPUs, or None without one."""
        return sum(d.total_bytes for d in self.devices) if self.devices else None


class DeviceApi(Protocol):
    """ggml's backend device functions, by device index."""

    def count(self) -> int:
        """How many devices llama.cpp knows (the CPU among them)."""
        ...

    def kind(self, index: int) -> int:
        """The device's ``ggml_backend_dev_type``."""
        ...

    def backend(self, index: int) -> str:
        """The name of the backend that provides it ("CUDA", "Metal", "RPC", …)."""
        ...

    def name(self, index: int) -> str:
        """The device's short name ("CUDA0")."""
        ...

    def description(self, index: int) -> str:
        """The device's description (the card's name)."""
        ...

    def memory(self, index: int) -> tuple[int, int]:
        """(free, total) bytes now."""
        ...


def read_gpus(api: DeviceApi) -> GpuMemory:
    """The dedicated GPUs among ``api``'s devices, with their memory now. A device that
    reports no memory at all is left out: nothing can be planned on it."""
    devices = []
    for index in range(api.count()):
        if api.kind(index) != DEVICE_TYPE_GPU or api.backend(index) == RPC_BACKEND:
            continue
        free, total = api.memory(index)
        if total <= 0:
            log.info("GPU %s reports no memory; not counted", api.name(index))
            continue
        devices.append(GpuDevice(api.name(index), api.description(index),
                                 max(0, min(free, total)), total))
    return GpuMemory(tuple(devices))


class _GgmlDeviceApi:
    """``DeviceApi`` on the ggml libraries llama-cpp-python ships."""

    def __init__(self, ggml: ctypes.CDLL, base: ctypes.CDLL) -> None:
        dev = ctypes.c_void_p
        size_p = ctypes.POINTER(ctypes.c_size_t)
        self._count = _bind(ggml, "ggml_backend_dev_count", [], ctypes.c_size_t)
        self._get = _bind(ggml, "ggml_backend_dev_get", [ctypes.c_size_t], dev)
        self._type = _bind(base, "ggml_backend_dev_type", [dev], ctypes.c_int)
        self._name = _bind(base, "ggml_backend_dev_name", [dev], ctypes.c_char_p)
        self._description = _bind(base, "ggml_backend_dev_description", [dev],
                                  ctypes.c_char_p)
        self._memory = _bind(base, "ggml_backend_dev_memory", [dev, size_p, size_p], None)
        self._reg = _bind(base, "ggml_backend_dev_backend_reg", [dev], ctypes.c_void_p)
        self._reg_name = _bind(base, "ggml_backend_reg_name", [ctypes.c_void_p],
                               ctypes.c_char_p)

    def _device(self, index: int) -> int:
        handle = self._get(index)
        if not handle:
            raise OSError(f"ggml has no device {index}")
        return int(handle)

    def count(self) -> int:
        return int(self._count())

    def kind(self, index: int) -> int:
        return int(self._type(self._device(index)))

    def backend(self, index: int) -> str:
        return _text(self._reg_name(self._reg(self._device(index))))

    def name(self, index: int) -> str:
        return _text(self._name(self._device(index)))

    def description(self, index: int) -> str:
        return _text(self._description(self._device(index)))

    def memory(self, index: int) -> tuple[int, int]:
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        self._memory(self._device(index), ctypes.byref(free), ctypes.byref(total))
        return int(free.value), int(total.value)


def _bind(lib: ctypes.CDLL, name: str, argtypes: list[type], restype: type | None) -> \
        Callable[..., Any]:
    function = getattr(lib, name)
    function.argtypes = argtypes
    function.restype = restype
    return cast(Callable[..., Any], function)


def _text(raw: bytes | None) -> str:
    return raw.decode("utf-8", errors="replace") if raw else ""


def _library_folder() -> Path:
    # Where llama-cpp-python loads its libraries from (it honours the same variable).
    override = os.environ.get("LLAMA_CPP_LIB_PATH")
    if override:
        return Path(override)
    import llama_cpp

    return Path(llama_cpp.__file__).resolve().parent / "lib"


@functools.cache
def ggml_device_api() -> DeviceApi | None:
    """ggml's device API in this process, or None (logged) where it cannot be bound."""
    try:
        # Loads llama.cpp (registering its backends) before its ggml libraries.
        from llamadesk.services.llama_internals import load_ggml_library

        folder = _library_folder()
        return _GgmlDeviceApi(load_ggml_library("ggml", folder),
                              load_ggml_library("ggml-base", folder))
    except (OSError, AttributeError, RuntimeError, ImportError) as exc:
        log.warning("cannot read llama.cpp's device list: %s", exc)
        return None


def probe_gpus(api: DeviceApi | None = None) -> GpuMemory:
    """The GPUs llama.cpp can use and their free memory now; none where this build has
    no GPU backend or its devices cannot be read."""
    api = api or ggml_device_api()
    if api is None:
        return GpuMemory()
    try:
        return read_gpus(api)
    except OSError as exc:
        log.warning("cannot read llama.cpp's GPU memory: %s", exc)
        return GpuMemory()
