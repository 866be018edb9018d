"""The start-up CPU check, with the CPU's features injected: what each OS reports, and
what the user is told when the build needs instructions the CPU lacks."""

from __future__ import annotations

import json
import platform
import re
import sys
from pathlib import Path

import pytest

from llamadesk.core import platform_support as ps

#: What ggml reports for a GGML_NATIVE=OFF x86 build (llama_print_system_info).
RELEASE_BASELINE = ["AVX", "AVX2", "BMI2", "F16C", "FMA", "SSE3", "SSSE3"]
# /proc/cpuinfo flags of an Ivy Bridge (AVX, F16C; no AVX2, FMA, BMI2) and of a Haswell.
IVY_BRIDGE = "flags\t\t: fpu sse sse2 pni ssse3 sse4_1 sse4_2 avx f16c popcnt aes\n"
HASWELL = "flags\t\t: fpu sse sse2 pni ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi1 bmi2\n"


def baseline(folder: Path, names: list[str]) -> Path:
    (folder / ps.BASELINE_FILE).write_text(json.dumps({"x86": names}), "utf-8")
    return folder


def test_an_older_cpu_is_told_what_it_lacks() -> None:
    present = ps.features_from_linux(IVY_BRIDGE)
    assert ps.missing_features(RELEASE_BASELINE, present) == ["AVX2", "BMI2", "FMA"]
    message = ps.cpu_problem(RELEASE_BASELINE, present)
    assert message is not None
    assert "AVX2, BMI2, FMA" in message and "illegal instruction" in message


def test_a_cpu_with_the_baseline_passes() -> None:
    assert ps.cpu_problem(RELEASE_BASELINE, ps.features_from_linux(HASWELL)) is None


def test_an_unknown_cpu_is_not_refused_on_a_guess() -> None:
    assert ps.cpu_problem(RELEASE_BASELINE, None) is None


def test_macos_sysctl_names_are_understood() -> None:
    # sysctl -n machdep.cpu.features machdep.cpu.leaf7_features on a 2017 MacBook Pro
    out = ("FPU VME DE PSE SSE SSE2 SSE3 PCLMULQDQ SSSE3 FMA CX16 SSE4.1 SSE4.2 AVX1.0 "
           "RDRAND F16C\nRDWRFSGS TSC_THREAD_OFFSET SGX BMI1 AVX2 SMEP BMI2 ERMS INVPCID\n")
    assert ps.missing_features(RELEASE_BASELINE, ps.features_from_macos(out)) == []
    ivy = "SSE SSE2 SSE3 SSSE3 SSE4.1 SSE4.2 AVX1.0 F16C\nRDWRFSGS SMEP ERMS\n"
    assert ps.missing_features(RELEASE_BASELINE, ps.features_from_macos(ivy)) == [
        "AVX2", "BMI2", "FMA"]


def test_windows_codes_and_what_avx2_implies() -> None:
    haswell = {13, 36, 38, 39, 40}
    present = ps.features_from_windows(lambda code: code in haswell)
    assert ps.missing_features(RELEASE_BASELINE, present) == []
    sandy_bridge = {13, 36, 38, 39}
    present = ps.features_from_windows(lambda code: code in sandy_bridge)
    assert ps.missing_features(RELEASE_BASELINE, present) == ["AVX2", "BMI2", "F16C", "FMA"]
    # a Windows that knows none of the newer codes cannot tell: nothing is refused
    assert ps.features_from_windows(lambda code: False) is None
    assert ps.features_from_windows(lambda code: code == 13) is None


def test_the_baseline_file_decides_whether_anything_is_checked(tmp_path: Path) -> None:
    assert ps.required_features(tmp_path) == frozenset(), "no file: a source checkout"
    assert ps.required_features(baseline(tmp_path, RELEASE_BASELINE)) == set(RELEASE_BASELINE)
    (tmp_path / ps.BASELINE_FILE).write_text("{not json", "utf-8")
    assert ps.required_features(tmp_path) == frozenset()


def test_check_this_cpu_uses_the_detected_features(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    folder = baseline(tmp_path, RELEASE_BASELINE)
    monkeypatch.setattr(ps, "detect_features", lambda: ps.features_from_linux(IVY_BRIDGE))
    assert "AVX2" in (ps.check_this_cpu(folder) or "")
    monkeypatch.setattr(ps, "detect_features", lambda: ps.features_from_linux(HASWELL))
    assert ps.check_this_cpu(folder) is None


def test_this_machine_passes_for_the_llama_cpp_built_here(tmp_path: Path) -> None:
    """The real reader on this machine, against what set-up compiled here (natively):
    every instruction set that build uses must be found on this CPU."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    compiled = sorted(set(re.findall(r"(\w+) = 1", info)) & set(ps.LINUX_FLAGS))
    detected = ps.detect_features()
    if sys.platform.startswith("linux") and platform.machine() == "x86_64":
        assert detected is not None and compiled, info
    assert ps.check_this_cpu(baseline(tmp_path, compiled)) is None, (compiled, detected)


@pytest.mark.parametrize(("system", "machine", "allowed"), [
    ("darwin", "x86_64", False), ("darwin", "arm64", True), ("win32", "AMD64", True),
    ("linux", "x86_64", True)])
def test_automatic_gpu_offload_is_off_on_intel_macs(system: str, machine: str,
                                                    allowed: bool) -> None:
    assert ps.automatic_offload_allowed(system, machine) is allowed
