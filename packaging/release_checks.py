#!/usr/bin/env python3
"""The release workflow's decisions, as code that tests can run (tests/packaging).

    python packaging/release_checks.py preflight --tag v0.1.0     tag, version, secrets
    python packaging/release_checks.py build-env --os macos --arch x86_64
    python packaging/release_checks.py cache-key --os macos --arch x86_64
    python packaging/release_checks.py requirements llama.txt others.txt
    python packaging/release_checks.py compiled-features --expect AVX2,FMA
    python packaging/release_checks.py check-minos --target 13.3 dist/LlamaDesk.app
    python packaging/release_checks.py notary-status result.json
    python packaging/release_checks.py sha256sums installers/

Each command prints what it decided and exits non-zero when the release must stop.
``preflight``, ``build-env`` and ``cache-key`` also append to $GITHUB_OUTPUT /
$GITHUB_ENV when those are set. Standard library only: it runs before any install.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "packaging" / "requirements-release.txt"

#: The oldest macOS the release supports. One value for the compiler
#: (MACOSX_DEPLOYMENT_TARGET, CMAKE_OSX_DEPLOYMENT_TARGET), Info.plist's
#: LSMinimumSystemVersion and the ``check-minos`` audit. Not lower: PySide6 6.10 and
#: later ship Qt built for macOS 13 (wheel tag macosx_13_0), and llama.cpp's own
#: release builds Metal for 13.3. docs/packaging.md explains why not macOS 12.
MACOS_DEPLOYMENT_TARGET = "13.3"

#: What ggml's x86 build enables with GGML_NATIVE=OFF (ggml/CMakeLists.txt: INS_ENB).
#: llama-cpp-python's CMakeLists.txt forces AVX, AVX2, FMA and F16C off on x86_64 macOS
#: (a cache FORCE that -D cannot override), so there they come back as compiler flags;
#: ggml's kernels test the compiler's macros (__AVX2__, ...), not the CMake options.
X86_BASELINE = ("SSE3", "SSSE3", "AVX", "AVX2", "FMA", "F16C", "BMI2")
_MAC_X86_FLAGS = "-mavx -mavx2 -mfma -mf16c -mbmi2"
#: MSVC 17.10 made std::mutex's constructor constexpr; a llama.dll built that way
#: crashes in mutex::lock against an older msvcp140.dll, and PySide6 ships its own.
_MSVC_MUTEX_FLAG = "/D_DISABLE_CONSTEXPR_MUTEX_CONSTRUCTOR"

# --- secrets: which ones make a signed release -----------------------------------------
MACOS_SECRETS = ("MACOS_CERTIFICATE", "MACOS_CERTIFICATE_PASSWORD", "MACOS_CODESIGN_IDENTITY",
                 "APPLE_ID", "APPLE_TEAM_ID", "APPLE_APP_PASSWORD")
#: Windows signs with one of these: a .pfx file, or a key in Azure Key Vault (an HSM;
#: EV certificates have lived in HSMs since 2023) through AzureSignTool.
WINDOWS_METHODS: dict[str, tuple[str, ...]] = {
    "pfx": ("WINDOWS_CERTIFICATE", "WINDOWS_CERTIFICATE_PASSWORD"),
    "azure-key-vault": ("AZURE_KEY_VAULT_URI", "AZURE_KEY_VAULT_CERTIFICATE",
                        "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"),
}
ALL_SECRETS = MACOS_SECRETS + tuple(n for names in WINDOWS_METHODS.values() for n in names)
UNSIGNED_TAG = re.compile(r"^v(?P<version>\d+\.\d+\.\d+)-unsigned(\.\d+)?$")
SIGNED_TAG = re.compile(r"^v(?P<version>\d+\.\d+\.\d+)$")


class ReleaseError(Exception):
    """The release must stop; ``str()`` says why and what to do."""


def project_version(pyproject: Path = ROOT / "pyproject.toml") -> str:
    return str(tomllib.loads(pyproject.read_text("utf-8"))["project"]["version"])


def secrets_present(environ: Mapping[str, str]) -> frozenset[str]:
    """Names of the secrets that are set: the workflow passes ``HAVE_<NAME>=true``
    (never the secret itself) for each."""
    return frozenset(n for n in ALL_SECRETS if environ.get(f"HAVE_{n}", "").lower() == "true")


def _half_configured(group: str, names: Sequence[str], present: frozenset[str]) -> str | None:
    have = [n for n in names if n in present]
    if have and len(have) != len(names):
        missing = ", ".join(n for n in names if n not in present)
        return f"{group} signing is half configured: missing {missing}"
    return None


def windows_method(present: frozenset[str]) -> str | None:
    """The Windows signing method whose secrets are all set (pfx first)."""
    for method, names in WINDOWS_METHODS.items():
        if all(n in present for n in names):
            return method
    return None


def preflight(ref: str, environ: Mapping[str, str], version: str) -> dict[str, str]:
    """Decide what a run may publish. ``ref`` is the tag (or branch) name.

    A tag ``vX.Y.Z`` must equal the version in pyproject.toml and needs every signing
    secret: it becomes a signed release. ``vX.Y.Z-unsigned[.N]`` is an explicit,
    unsigned pre-release for testing. Any other ref builds and publishes nothing.
    Half-configured secrets stop every run, tag or not: they would fail an hour later.
    """
    present = secrets_present(environ)
    problems = [p for p in (
        _half_configured("macOS", MACOS_SECRETS, present),
        *(_half_configured(f"Windows ({m})", names, present)
          for m, names in WINDOWS_METHODS.items()),
    ) if p]
    signed_match, unsigned_match = SIGNED_TAG.match(ref), UNSIGNED_TAG.match(ref)
    match = signed_match or unsigned_match
    is_tag = environ.get("GITHUB_REF_TYPE", "tag") == "tag"
    if is_tag and match is None and ref.startswith("v"):
        problems.append(f"tag {ref!r} is not vX.Y.Z or vX.Y.Z-unsigned[.N]")
    if is_tag and match is not None and match["version"] != version:
        problems.append(f"tag {ref} does not match the version in pyproject.toml ({version}):"
                        f" tag v{version}, or change the version first")
    publish = is_tag and match is not None
    signed = bool(publish and signed_match)
    if signed:
        missing = [n for n in MACOS_SECRETS if n not in present]
        if missing:
            problems.append("a release tag needs the macOS signing and notarisation "
                            f"secrets; missing: {', '.join(missing)}")
        if windows_method(present) is None:
            options = " or ".join("+".join(names) for names in WINDOWS_METHODS.values())
            problems.append(f"a release tag needs a Windows signing certificate: {options}")
    if problems:
        raise ReleaseError("; ".join(problems) + f" (tag v{version}-unsigned.1 makes an "
                           "unsigned pre-release for testing; docs/packaging.md, Secrets)")
    return {"version": version, "publish": str(publish).lower(),
            "signed": str(signed).lower(), "prerelease": str(publish and not signed).lower(),
            "windows_signing": windows_method(present) or "none",
            "macos_signing": str(all(n in present for n in MACOS_SECRETS)).lower()}


# --- how llama.cpp is built for a release ------------------------------------------------
def build_env(os_name: str, arch: str) -> dict[str, str]:
    """Environment for building the llama-cpp-python wheel on ``os_name``/``arch``:
    every input of the build that pip's own wheel cache would ignore."""
    cmake = ["-DGGML_NATIVE=OFF"]
    env: dict[str, str] = {}
    if os_name == "macos":
        env["MACOSX_DEPLOYMENT_TARGET"] = MACOS_DEPLOYMENT_TARGET
        cmake.append(f"-DCMAKE_OSX_DEPLOYMENT_TARGET={MACOS_DEPLOYMENT_TARGET}")
        if arch == "x86_64":
            env["CFLAGS"] = env["CXXFLAGS"] = _MAC_X86_FLAGS
    elif os_name == "windows":
        env["CXXFLAGS"] = env["CFLAGS"] = _MSVC_MUTEX_FLAG
    elif os_name != "linux":
        raise ReleaseError(f"no release build for {os_name}")
    env["CMAKE_ARGS"] = " ".join(cmake)
    return env


def expected_features(os_name: str, arch: str) -> tuple[str, ...]:
    """The x86 features ggml-cpu must report as compiled in (none on arm64)."""
    return X86_BASELINE if arch in ("x86_64", "x64", "amd64") else ()


def llama_requirement(constraints: Path = CONSTRAINTS) -> str:
    """The pinned ``llama-cpp-python==X`` line with its hashes, from the constraints."""
    text = constraints.read_text("utf-8")
    match = re.search(r"^llama-cpp-python==\S+(?:\s*\\\n\s*--hash=\S+)+", text, re.M)
    if not match:
        raise ReleaseError(f"{constraints.name} pins no llama-cpp-python with hashes")
    return match.group(0)


def split_requirements(constraints: Path = CONSTRAINTS) -> tuple[str, str]:
    """(the llama-cpp-python pin, everything else): the wheel is built from the first,
    and installed from the local build; the second installs from PyPI."""
    llama = llama_requirement(constraints)
    return llama + "\n", constraints.read_text("utf-8").replace(llama, "", 1)


def cache_key(os_name: str, arch: str, runner: str, python: str,
              requirement: str, env: Mapping[str, str]) -> str:
    """The cache key of a llama-cpp-python wheel: it changes with any build input
    (the pinned sdist and its hash, compiler flags, CMake options, deployment target,
    runner image, Python), so a cached wheel is only reused for the same build."""
    inputs = json.dumps({"os": os_name, "arch": arch, "runner": runner, "python": python,
                         "requirement": requirement, "env": dict(sorted(env.items()))},
                        sort_keys=True)
    digest = hashlib.sha256(inputs.encode()).hexdigest()[:24]
    return f"llama-wheel-{os_name}-{arch}-{digest}"


# --- checks on what was built ------------------------------------------------------------
def compiled_features(system_info: str) -> frozenset[str]:
    """Names that llama.cpp's ``llama_print_system_info()`` reports as ``= 1``."""
    return frozenset(m.group(1) for m in re.finditer(r"([A-Z0-9_]+) = 1\b", system_info))


def check_compiled_features(system_info: str, expected: Sequence[str]) -> list[str]:
    """The expected features ggml-cpu was not compiled with."""
    found = compiled_features(system_info)
    return [name for name in expected if name not in found]


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def macho_min_versions(otool_text: str) -> list[str]:
    """The minimum macOS versions in ``otool -l`` output: LC_BUILD_VERSION's ``minos``
    and the older LC_VERSION_MIN_MACOSX's ``version``."""
    found = re.findall(r"^\s*minos (\S+)", otool_text, re.M)
    for block in re.split(r"Load command \d+", otool_text):
        if "LC_VERSION_MIN_MACOSX" in block:
            found += re.findall(r"^\s*version (\S+)", block, re.M)
    return found


def too_new(min_versions: Mapping[str, list[str]], target: str) -> list[str]:
    """``file: minos`` for every file that needs a newer macOS than ``target``."""
    limit = _version_tuple(target)
    return [f"{name}: needs macOS {v}" for name, versions in sorted(min_versions.items())
            for v in versions if _version_tuple(v) > limit]


MACHO_MAGIC = {b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe",
               b"\xfe\xed\xfa\xcf", b"\xfe\xed\xfa\xce"}


def macho_files(root: Path) -> list[Path]:
    """Every Mach-O file (executables, dylibs, Python extensions) under ``root``."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as fh:
                if fh.read(4) in MACHO_MAGIC:
                    found.append(path)
    return found


def notary_accepted(result: Mapping[str, object]) -> bool:
    """True when ``notarytool submit --wait --output-format json`` was accepted:
    notarytool exits 0 on "Invalid" too, so its status is the only answer."""
    return result.get("status") == "Accepted"


def sha256sums(folder: Path, patterns: Sequence[str] = ("*.exe", "*.dmg", "*.deb")) -> str:
    """``sha256sum``-format lines for the installers in ``folder``."""
    files = sorted({p for pattern in patterns for p in folder.glob(pattern)})
    if not files:
        raise ReleaseError(f"no installers in {folder}")
    lines = []
    for path in files:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(block)
        lines.append(f"{digest.hexdigest()}  {path.name}")
    return "\n".join(lines) + "\n"


# --- the command line --------------------------------------------------------------------
def _emit(values: Mapping[str, str], variable: str) -> None:
    """Print ``key=value`` lines, and append them to $GITHUB_OUTPUT / $GITHUB_ENV."""
    text = "".join(f"{k}={v}\n" for k, v in values.items())
    sys.stdout.write(text)
    target = os.environ.get(variable)
    if target:
        # LF only, Windows runners too: that is what the runner parses.
        with open(target, "a", encoding="utf-8", newline="\n") as fh:
            fh.write(text)


def _cmd_preflight(args: argparse.Namespace) -> None:
    _emit(preflight(args.tag, os.environ, project_version()), "GITHUB_OUTPUT")


def _cmd_build_env(args: argparse.Namespace) -> None:
    _emit(build_env(args.os, args.arch), "GITHUB_ENV")


def _cmd_requirements(args: argparse.Namespace) -> None:
    llama, rest = split_requirements()
    args.llama.write_text(llama, "utf-8")
    args.others.write_text(rest, "utf-8")


def _cmd_cache_key(args: argparse.Namespace) -> None:
    key = cache_key(args.os, args.arch, args.runner, args.python, llama_requirement(),
                    build_env(args.os, args.arch))
    _emit({"key": key}, "GITHUB_OUTPUT")


def _cmd_compiled_features(args: argparse.Namespace) -> None:
    import llama_cpp  # the installed wheel: this is the check that it is the right one

    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    print(info)
    expected = args.expect.split(",") if args.expect else list(
        expected_features(args.os, args.arch))
    missing = check_compiled_features(info, expected)
    if missing:
        raise ReleaseError(f"llama.cpp was built without {', '.join(missing)}")


def _cmd_check_minos(args: argparse.Namespace) -> None:
    found = {}
    for path in macho_files(args.bundle):
        out = subprocess.run(["otool", "-l", str(path)], check=True, capture_output=True,
                             text=True).stdout
        found[str(path.relative_to(args.bundle))] = macho_min_versions(out)
    if not found:
        raise ReleaseError(f"no Mach-O files under {args.bundle}")
    bad = too_new(found, args.target)
    print(f"{len(found)} Mach-O files checked against macOS {args.target}")
    if bad:
        raise ReleaseError("built for a newer macOS than the app promises:\n  "
                           + "\n  ".join(bad))


def _cmd_notary_status(args: argparse.Namespace) -> None:
    result = json.loads(args.result.read_text("utf-8"))
    print(f"notarisation {result.get('id')}: {result.get('status')}")
    if args.id_file:  # first: package.sh prints the log of a rejected submission
        args.id_file.write_text(str(result.get("id", "")), "utf-8")
    if not notary_accepted(result):
        raise ReleaseError(f"notarisation was not accepted: {result.get('status')} "
                           f"({result.get('message', '')})")


def _cmd_sha256sums(args: argparse.Namespace) -> None:
    text = sha256sums(args.folder)
    (args.folder / "SHA256SUMS").write_text(text, "utf-8")
    sys.stdout.write(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("preflight")
    p.add_argument("--tag", required=True)
    p.set_defaults(func=_cmd_preflight)
    for name, func in (("build-env", _cmd_build_env), ("cache-key", _cmd_cache_key),
                       ("compiled-features", _cmd_compiled_features)):
        p = sub.add_parser(name)
        p.add_argument("--os", required=True, choices=("linux", "macos", "windows"))
        p.add_argument("--arch", required=True)
        p.add_argument("--runner", default="")
        p.add_argument("--python", default=f"{sys.version_info[0]}.{sys.version_info[1]}")
        p.add_argument("--expect", default="")
        p.set_defaults(func=func)
    p = sub.add_parser("requirements")
    p.add_argument("llama", type=Path, help="where the llama-cpp-python pin goes")
    p.add_argument("others", type=Path, help="where every other pin goes")
    p.set_defaults(func=_cmd_requirements)
    p = sub.add_parser("check-minos")
    p.add_argument("--target", default=MACOS_DEPLOYMENT_TARGET)
    p.add_argument("bundle", type=Path)
    p.set_defaults(func=_cmd_check_minos)
    p = sub.add_parser("notary-status")
    p.add_argument("result", type=Path)
    p.add_argument("--id-file", type=Path)
    p.set_defaults(func=_cmd_notary_status)
    p = sub.add_parser("sha256sums")
    p.add_argument("folder", type=Path)
    p.set_defaults(func=_cmd_sha256sums)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.func(args)
    except ReleaseError as exc:
        print(f"release check failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
