"""Can this computer run this build of llama.cpp? A check made before llama.cpp loads.

A release's llama.cpp is compiled for a baseline of x86 instruction sets (AVX2, FMA,
F16C, BMI2 with ``GGML_NATIVE=OFF``). On an older CPU its first matrix product dies
with "illegal instruction", taking the app down with no word of why. The build records
what it was compiled for in ``resources/cpu-baseline.json`` (packaging/llamadesk.spec);
at start-up the app compares that with the CPU's own features and, when some are
missing, says so in plain words instead of loading a model. Without that file (a
source checkout, whose llama.cpp was compiled on this machine) nothing is checked.

The comparison is pure; reading the CPU's features is done per OS by small readers
that tests replace.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

BASELINE_FILE = "cpu-baseline.json"

#: ggml's name for an instruction set (as in llama_print_system_info) -> the flag Linux
#: lists in /proc/cpuinfo.
LINUX_FLAGS = {
    "SSE3": "pni", "SSSE3": "ssse3", "AVX": "avx", "AVX2": "avx2", "F16C": "f16c",
    "FMA": "fma", "BMI2": "bmi2", "AVX_VNNI": "avx_vnni", "AVX512": "avx512f",
    "AVX512_VBMI": "avx512vbmi", "AVX512_VNNI": "avx512_vnni",
    "AVX512_BF16": "avx512_bf16", "AMX_INT8": "amx_int8",
}
#: ... -> the name in macOS's sysctl machdep.cpu.features / leaf7_features.
MACOS_FLAGS = {
    "SSE3": "SSE3", "SSSE3": "SSSE3", "AVX": "AVX1.0", "AVX2": "AVX2", "F16C": "F16C",
    "FMA": "FMA", "BMI2": "BMI2", "AVX512": "AVX512F", "AVX512_VBMI": "AVX512VBMI",
    "AVX512_VNNI": "AVX512VNNI", "AVX512_BF16": "AVX512BF16",
}
#: ... -> Windows' IsProcessorFeaturePresent constant (winnt.h). Windows has none for
#: FMA, F16C or BMI2: every x86 CPU with AVX2 has all three (Intel since Haswell, AMD
#: since Excavator), so they are taken to come with AVX2.
WINDOWS_FEATURES = {"SSE3": 13, "SSSE3": 36, "AVX": 39, "AVX2": 40, "AVX512": 41}
_WINDOWS_WITH_AVX2 = ("FMA", "F16C", "BMI2")


def required_features(resources: Path) -> frozenset[str]:
    """The instruction sets this build's llama.cpp needs (empty: no baseline file)."""
    try:
        data = json.loads((resources / BASELINE_FILE).read_text("utf-8"))
    except FileNotFoundError:
        return frozenset()
    except (OSError, ValueError):
        # A damaged bundle: better to try llama.cpp than to refuse on a guess.
        return frozenset()
    return frozenset(str(name) for name in data.get("x86", []))


def missing_features(required: Iterable[str], present: frozenset[str] | None) -> list[str]:
    """The required instruction sets this CPU lacks (none when ``present`` is unknown)."""
    if present is None:
        return []
    return sorted(name for name in required if name not in present)


def cpu_problem(required: Iterable[str], present: frozenset[str] | None) -> str | None:
    """A message for the user when this CPU cannot run this build, else None."""
    missing = missing_features(required, present)
    if not missing:
        return None
    return ("This computer's processor lacks instructions that this build of LlamaDesk's "
            f"language engine needs: {', '.join(missing)}. It would stop with "
            "\"illegal instruction\" while loading or running a model, so none is loaded. "
            "These instructions arrived with Intel's 4th-generation Core (2013) and AMD's "
            "Excavator/Zen processors.")


def features_from_linux(cpuinfo: str) -> frozenset[str]:
    """ggml names of the features in /proc/cpuinfo's ``flags`` line."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return frozenset(name for name, flag in LINUX_FLAGS.items() if flag in flags)
    return frozenset()


def features_from_macos(sysctl_output: str) -> frozenset[str]:
    """ggml names of the features in ``sysctl machdep.cpu.features
    machdep.cpu.leaf7_features`` output."""
    flags = set(sysctl_output.upper().split())
    return frozenset(name for name, flag in MACOS_FLAGS.items() if flag.upper() in flags)


def features_from_windows(is_present: Callable[[int], bool]) -> frozenset[str] | None:
    """ggml names of the features Windows reports through ``is_present``
    (IsProcessorFeaturePresent); None when this Windows does not know the codes."""
    found = {name for name, code in WINDOWS_FEATURES.items() if is_present(code)}
    if not found & {"SSSE3", "AVX", "AVX2", "AVX512"}:
        # Codes 36 and up are newer than early Windows 10 releases; a Windows that does
        # not know them answers False to all, which says nothing about the CPU.
        return None
    if "AVX2" in found:
        found.update(_WINDOWS_WITH_AVX2)
    return frozenset(found)


def detect_features() -> frozenset[str] | None:
    """This CPU's features, or None where they cannot be read (then nothing is refused)."""
    if platform.machine().lower() not in ("x86_64", "amd64", "x64", "i386", "i686"):
        return None
    try:
        if sys.platform.startswith("linux"):
            return features_from_linux(Path("/proc/cpuinfo").read_text("utf-8", "replace"))
        if sys.platform == "darwin":
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.features",
                                  "machdep.cpu.leaf7_features"], capture_output=True,
                                 text=True, check=True, timeout=10).stdout
            return features_from_macos(out)
        if sys.platform == "win32":
            import ctypes

            kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
            return features_from_windows(lambda code: bool(
                kernel32.IsProcessorFeaturePresent(code)))
    except (OSError, subprocess.SubprocessError):
        return None
    return None


def check_this_cpu(resources: Path) -> str | None:
    """The message to show when this CPU cannot run the bundled llama.cpp, else None."""
    required = required_features(resources)
    if not required:
        return None
    return cpu_problem(required, detect_features())


def automatic_offload_allowed(system: str, machine: str) -> bool:
    """Whether "Automatic" GPU layers may offload on this platform. Not on Intel Macs:
    llama-cpp-python builds Metal into every macOS build, and on Intel and AMD GPUs
    llama.cpp's Metal backend is slower than the CPU or wrong (llama.cpp's own
    releases build x64 macOS without Metal). A number of layers still offloads."""
    return not (system == "darwin" and machine.lower() in ("x86_64", "amd64", "i386"))
