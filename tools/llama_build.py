"""How llama.cpp is compiled on this machine: one answer for set-up and the benchmarks.

llama-cpp-python builds llama.cpp from source with ``-march=native`` unless ``CMAKE_ARGS``
says otherwise. On CPUs that report Intel AMX, llama.cpp then routes quantised matrix
products through AMX tiles; some virtual machines report AMX but fault on its first
instruction (SIGILL as soon as a prompt is read). There the build keeps every other
native instruction set and leaves AMX out. A ``CMAKE_ARGS`` of the user's (a CUDA or
Metal build, say) always wins.

Standard library only: set-up runs it before the virtual environment exists.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from pathlib import Path

#: /proc/cpuinfo flags that make llama.cpp's native build use AMX.
AMX_FLAGS = frozenset({"amx_tile", "amx_int8", "amx_bf16"})

#: (cpuinfo flags that must all be present, the ggml option they enable). SSE 4.2 needs no
#: entry: every CPU with AVX has it, and -mavx implies it.
_X86_OPTIONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("avx",), "GGML_AVX"),
    (("avx2",), "GGML_AVX2"),
    (("fma",), "GGML_FMA"),
    (("f16c",), "GGML_F16C"),
    (("bmi2",), "GGML_BMI2"),
    (("avx_vnni",), "GGML_AVX_VNNI"),
    (("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"), "GGML_AVX512"),
    (("avx512vbmi",), "GGML_AVX512_VBMI"),
    (("avx512_vnni",), "GGML_AVX512_VNNI"),
    (("avx512_bf16",), "GGML_AVX512_BF16"),
)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags as Linux reports them (empty elsewhere)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def native_without_amx(flags: frozenset[str]) -> list[str]:
    """CMake options for this CPU's instruction sets, AMX left out."""
    options = ["-DGGML_NATIVE=OFF"]
    for needed, option in _X86_OPTIONS:
        if all(flag in flags for flag in needed):
            options.append(f"-D{option}=ON")
    return options


def cmake_args(environ: dict[str, str] | None = None,
               flags: frozenset[str] | None = None) -> str:
    """The CMAKE_ARGS for building llama.cpp here ("" means llama.cpp's defaults)."""
    env = os.environ if environ is None else environ
    if env.get("CMAKE_ARGS", "").strip():
        return env["CMAKE_ARGS"].strip()
    if sys.platform != "linux" or platform.machine().lower() not in ("x86_64", "amd64"):
        return ""
    found = cpu_flags() if flags is None else flags
    if not AMX_FLAGS & found:
        return ""
    return " ".join(native_without_amx(found))


def build_key(requirement: str, args: str) -> str:
    """A short name for a build of ``requirement`` with ``args`` (for wheel caches)."""
    return hashlib.sha256(f"{requirement}\n{args}".encode()).hexdigest()[:16]


if __name__ == "__main__":
    print(cmake_args() or "(llama.cpp's defaults)")
