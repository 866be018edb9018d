"""Build and run the reference: llama.cpp's own ``llama-bench``.

It is built from exactly the llama.cpp sources that the installed llama-cpp-python
release vendors (its sdist carries them under ``vendor/llama.cpp``), with the same CPU
options the wheel was built with (``tools/llama_build.py``: GGML_NATIVE on by default,
native minus AMX where a CPU reports AMX, or the user's CMAKE_ARGS; OpenMP on),
into ``bench/.llama-bench/`` (git-ignored), once; later runs reuse the binary.

    python bench/reference.py build     # fetch the sdist, configure, build llama-bench
    python bench/reference.py path      # print the binary's path (builds if missing)
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
CACHE = BENCH_DIR / ".llama-bench"
sys.path.insert(0, str(BENCH_DIR.parent / "tools"))
import llama_build  # the same build options as set-up's  # noqa: E402


def llama_cpp_python_version() -> str:
    """The installed llama-cpp-python release (the one whose sources we build)."""
    return metadata.version("llama_cpp_python")


def _paths(version: str) -> tuple[Path, Path, Path]:
    args = llama_build.cmake_args()
    root = CACHE / (f"{version}-{llama_build.build_key(version, args)}" if args else version)
    return root / "src", root / "build", root / "build" / "bin" / "llama-bench"


def binary_path() -> Path | None:
    """The built llama-bench for the installed release, or None if not built yet."""
    _, _, binary = _paths(llama_cpp_python_version())
    return binary if binary.exists() else None


def _run(cmd: list[str], **kwargs: object) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def _fetch_sources(version: str, src: Path) -> Path:
    """Download the sdist (not a wheel: we need the vendored C++ sources) and extract it."""
    vendor = src / "vendor" / "llama.cpp"
    if (vendor / "CMakeLists.txt").exists():
        return vendor
    dl = CACHE / "sdist"
    dl.mkdir(parents=True, exist_ok=True)
    name = f"llama_cpp_python-{version}.tar.gz"
    if not (dl / name).exists():
        _run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
              "--no-deps", "--no-binary", ":all:",
              f"llama-cpp-python=={version}", "-d", str(dl)])
    archives = [p for p in dl.iterdir() if p.name.lower().replace("-", "_").startswith(
        f"llama_cpp_python_{version}".replace("-", "_")) and p.name.endswith(".tar.gz")]
    if not archives:
        raise RuntimeError(f"no sdist for llama-cpp-python {version} in {dl}")
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    with tarfile.open(archives[0]) as tar:
        tar.extractall(src, filter="data")
    (top,) = [p for p in src.iterdir() if p.is_dir()]
    for child in top.iterdir():
        child.rename(src / child.name)
    top.rmdir()
    return vendor


def build(jobs: int = 2) -> Path:
    """Build llama-bench for the installed release if needed and return its path."""
    version = llama_cpp_python_version()
    src, build_dir, binary = _paths(version)
    if binary.exists():
        return binary
    vendor = _fetch_sources(version, src)
    # Same CPU options as the wheel: llama-cpp-python's CMakeLists leaves GGML_NATIVE and
    # GGML_OPENMP at llama.cpp's defaults (both on) unless set-up passed CMAKE_ARGS
    # (tools/llama_build.py), and builds Release. Static here so the binary cannot pick
    # up another libggml.
    _run(["cmake", "-S", str(vendor), "-B", str(build_dir),
          "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_CURL=OFF",
          "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
          "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_BUILD_TOOLS=ON",
          *shlex.split(llama_build.cmake_args())])
    _run(["cmake", "--build", str(build_dir), "--target", "llama-bench", f"-j{jobs}"])
    if not binary.exists():
        found = list(build_dir.rglob("llama-bench"))
        if not found:
            raise RuntimeError("llama-bench was not produced by the build")
        binary.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(found[0], binary)
    return binary


@dataclass(frozen=True)
class BenchResult:
    """One llama-bench test: ``pp512`` or ``tg128`` with tokens/s per repetition."""

    test: str
    n_prompt: int
    n_gen: int
    samples_ts: list[float]
    build_commit: str
    build_number: int
    raw: dict[str, object]


def run_llama_bench(binary: Path, model: Path, *, threads: int, flash_attn: bool,
                    n_prompt: int = 0, n_gen: int = 0, reps: int = 1,
                    extra: list[str] | None = None) -> BenchResult:
    """Run one llama-bench test (``-p N -n 0`` or ``-p 0 -n N``) and parse its JSON."""
    cmd = [str(binary), "-m", str(model), "-t", str(threads),
           "-fa", "1" if flash_attn else "0", "-p", str(n_prompt), "-n", str(n_gen),
           "-r", str(reps), "-o", "json", *(extra or [])]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         env={**os.environ}).stdout
    (row,) = [r for r in json.loads(out) if r["n_prompt"] == n_prompt and r["n_gen"] == n_gen]
    test = f"pp{n_prompt}" if n_prompt else f"tg{n_gen}"
    return BenchResult(test=test, n_prompt=n_prompt, n_gen=n_gen,
                       samples_ts=[float(x) for x in row["samples_ts"]],
                       build_commit=str(row.get("build_commit", "")),
                       build_number=int(row.get("build_number", 0)), raw=row)


def main() -> None:
    cmd = sys.argv[1] if len(sys.argv) > 1 else "build"
    if cmd in ("build", "path"):
        print(build())
    else:
        sys.exit("usage: reference.py [build|path]")


if __name__ == "__main__":
    main()
