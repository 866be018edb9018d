"""tools/llama_build.py: which CMake options set-up and the benchmarks build llama.cpp with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import llama_build

SAPPHIRE_RAPIDS = frozenset([
    "fpu", "sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "avx_vnni", "avx512f", "avx512cd",
    "avx512vl", "avx512dq", "avx512bw", "avx512vbmi", "avx512_vnni", "avx512_bf16",
    "amx_tile", "amx_int8", "amx_bf16"])
ZEN3 = frozenset(["fpu", "sse4_2", "avx", "avx2", "fma", "f16c", "bmi2"])


@pytest.fixture
def linux_x86(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llama_build.sys, "platform", "linux")
    monkeypatch.setattr(llama_build.platform, "machine", lambda: "x86_64")


def test_a_cpu_with_amx_builds_native_features_without_amx(linux_x86: None) -> None:
    args = llama_build.cmake_args({}, SAPPHIRE_RAPIDS).split()
    assert args[0] == "-DGGML_NATIVE=OFF"
    for option in ("AVX", "AVX2", "FMA", "F16C", "BMI2", "AVX_VNNI", "AVX512",
                   "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16"):
        assert f"-DGGML_{option}=ON" in args
    assert not [a for a in args if "AMX" in a]


def test_a_cpu_without_amx_keeps_llama_cpps_defaults(linux_x86: None) -> None:
    assert llama_build.cmake_args({}, ZEN3) == ""


def test_avx512_needs_all_five_foundation_sets(linux_x86: None) -> None:
    partial = SAPPHIRE_RAPIDS - {"avx512bw"}
    assert "-DGGML_AVX512=ON" not in llama_build.cmake_args({}, partial).split()


def test_the_users_cmake_args_win(linux_x86: None) -> None:
    assert llama_build.cmake_args({"CMAKE_ARGS": " -DGGML_CUDA=on "}, SAPPHIRE_RAPIDS) \
        == "-DGGML_CUDA=on"


def test_other_platforms_keep_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llama_build.sys, "platform", "darwin")
    assert llama_build.cmake_args({}, SAPPHIRE_RAPIDS) == ""


def test_cpu_flags_reads_the_flags_line(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_tile\nbugs\t\t: x\n")
    assert llama_build.cpu_flags(cpuinfo) == {"fpu", "avx2", "amx_tile"}
    assert llama_build.cpu_flags(tmp_path / "missing") == frozenset()


def test_build_key_changes_with_the_options_and_the_version() -> None:
    key = llama_build.build_key("llama-cpp-python>=0.3", "-DGGML_NATIVE=OFF")
    assert key != llama_build.build_key("llama-cpp-python>=0.3", "-DGGML_CUDA=on")
    assert key != llama_build.build_key("llama-cpp-python==0.3.36", "-DGGML_NATIVE=OFF")
    assert key != llama_build.build_key("llama-cpp-python>=0.3 -DGGML_NATIVE=OFF", "")
    assert len(key) == 16 and all(c in "0123456789abcdef" for c in key), "a folder name"


def test_the_next_set_up_finds_the_same_wheel_folder() -> None:
    # Another interpreter, with another string hash seed, must name the same cache folder.
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import llama_build; "
            "print(llama_build.build_key('llama-cpp-python>=0.3', '-DGGML_NATIVE=OFF'))")
    tools = str(Path(llama_build.__file__).parent)
    there = subprocess.run([sys.executable, "-c", code, tools], capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": "12345"}, check=True)
    assert there.stdout.strip() == llama_build.build_key("llama-cpp-python>=0.3",
                                                         "-DGGML_NATIVE=OFF")
