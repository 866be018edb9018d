"""packaging/release_checks.py: the release workflow's decisions, run here as the
workflow runs them (tag and secrets, build inputs and their cache key, what the built
files must be). Quick and self-contained: part of the ordinary test run."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging_helpers import PACKAGING, ROOT, load_script

SCRIPT = PACKAGING / "release_checks.py"
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


load = load_script


rc = load("release_checks")
VERSION = rc.project_version()


def have(*names: str) -> dict[str, str]:
    """The workflow's HAVE_<SECRET> flags for ``names``."""
    return {f"HAVE_{name}": "true" for name in names}


ALL_SIGNING = {**have(*rc.MACOS_SECRETS), **have(*rc.WINDOWS_METHODS["pfx"])}


def run_script(*args: str, env: dict[str, str] | None = None,
               cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                          text=True, check=False, cwd=cwd,
                          env={"PATH": os.environ["PATH"], **(env or {})})


# --- preflight: tag, version, secrets ------------------------------------------------------
def test_a_release_tag_without_signing_secrets_is_refused() -> None:
    with pytest.raises(rc.ReleaseError, match=r"MACOS_CERTIFICATE.*Windows signing"):
        rc.preflight(f"v{VERSION}", {}, VERSION)


def test_a_release_tag_with_every_secret_makes_a_signed_release() -> None:
    decided = rc.preflight(f"v{VERSION}", ALL_SIGNING, VERSION)
    assert decided["publish"] == "true" and decided["signed"] == "true"
    assert decided["prerelease"] == "false" and decided["windows_signing"] == "pfx"
    assert decided["macos_signing"] == "true"


def test_windows_may_sign_with_a_key_in_azure_key_vault() -> None:
    env = {**have(*rc.MACOS_SECRETS), **have(*rc.WINDOWS_METHODS["azure-key-vault"])}
    assert rc.preflight(f"v{VERSION}", env, VERSION)["windows_signing"] == "azure-key-vault"


@pytest.mark.parametrize("missing", [*rc.MACOS_SECRETS, "WINDOWS_CERTIFICATE_PASSWORD"])
def test_a_release_tag_missing_any_one_secret_is_refused(missing: str) -> None:
    env = dict(ALL_SIGNING)
    del env[f"HAVE_{missing}"]
    with pytest.raises(rc.ReleaseError, match=missing):
        rc.preflight(f"v{VERSION}", env, VERSION)


def test_an_explicit_unsigned_tag_is_a_prerelease() -> None:
    decided = rc.preflight(f"v{VERSION}-unsigned.1", {}, VERSION)
    assert decided == {"version": VERSION, "publish": "true", "signed": "false",
                       "prerelease": "true", "windows_signing": "none",
                       "macos_signing": "false"}


def test_half_configured_secrets_stop_even_an_unsigned_run() -> None:
    env = have("MACOS_CERTIFICATE", "MACOS_CERTIFICATE_PASSWORD")
    with pytest.raises(rc.ReleaseError, match="macOS signing is half configured"):
        rc.preflight(f"v{VERSION}-unsigned.1", env, VERSION)
    with pytest.raises(rc.ReleaseError, match="half configured"):
        rc.preflight("main", {**env, "GITHUB_REF_TYPE": "branch"}, VERSION)


@pytest.mark.parametrize("tag", ["v9.9.9", "v0.0.1-unsigned.1"])
def test_the_tag_must_equal_the_version_in_pyproject(tag: str) -> None:
    with pytest.raises(rc.ReleaseError, match="does not match the version"):
        rc.preflight(tag, ALL_SIGNING, VERSION)


def test_a_malformed_version_tag_is_refused() -> None:
    with pytest.raises(rc.ReleaseError, match=r"is not vX\.Y\.Z"):
        rc.preflight(f"v{VERSION}-beta", ALL_SIGNING, VERSION)


def test_a_run_by_hand_builds_but_publishes_nothing() -> None:
    decided = rc.preflight("main", {"GITHUB_REF_TYPE": "branch"}, VERSION)
    assert decided["publish"] == "false" and decided["signed"] == "false"


def test_preflight_as_the_workflow_runs_it(tmp_path: Path) -> None:
    """The script itself: status, and the outputs it appends to $GITHUB_OUTPUT."""
    output = tmp_path / "github_output"
    refused = run_script("preflight", "--tag", f"v{VERSION}",
                         env={"GITHUB_OUTPUT": str(output), "GITHUB_REF_TYPE": "tag"})
    assert refused.returncode == 1
    assert "release check failed" in refused.stderr and "MACOS_CERTIFICATE" in refused.stderr
    assert not output.exists(), "a refused run decides nothing"
    flags = {k: v for k, v in ALL_SIGNING.items()}
    ok = run_script("preflight", "--tag", f"v{VERSION}",
                    env={**flags, "GITHUB_OUTPUT": str(output), "GITHUB_REF_TYPE": "tag"})
    assert ok.returncode == 0, ok.stderr
    assert "signed=true" in output.read_text("utf-8").splitlines()


# --- the llama.cpp build and its cache key -----------------------------------------------
def test_build_settings_per_platform() -> None:
    mac_intel = rc.build_env("macos", "x86_64")
    assert mac_intel["MACOSX_DEPLOYMENT_TARGET"] == rc.MACOS_DEPLOYMENT_TARGET
    assert f"-DCMAKE_OSX_DEPLOYMENT_TARGET={rc.MACOS_DEPLOYMENT_TARGET}" in mac_intel["CMAKE_ARGS"]
    for flag in ("-mavx", "-mavx2", "-mfma", "-mf16c", "-mbmi2"):
        assert flag in mac_intel["CXXFLAGS"].split() and flag in mac_intel["CFLAGS"].split()
    assert "CXXFLAGS" not in rc.build_env("macos", "arm64")
    windows = rc.build_env("windows", "x86_64")
    assert "/D_DISABLE_CONSTEXPR_MUTEX_CONSTRUCTOR" in windows["CXXFLAGS"]
    for env in (mac_intel, windows, rc.build_env("linux", "x86_64")):
        assert "-DGGML_NATIVE=OFF" in env["CMAKE_ARGS"].split()
    assert rc.expected_features("macos", "x86_64") == rc.X86_BASELINE
    assert rc.expected_features("macos", "arm64") == ()


def test_the_cache_key_changes_when_any_build_input_changes() -> None:
    base = dict(os_name="macos", arch="x86_64", runner="macos15-20260101.1", python="3.11.9",
                requirement=rc.llama_requirement(), env=rc.build_env("macos", "x86_64"))
    key = rc.cache_key(**base)
    assert key == rc.cache_key(**base), "the same inputs reuse the same wheel"
    assert key.startswith("llama-wheel-macos-x86_64-")
    changed = [
        {"os_name": "linux"}, {"arch": "arm64"}, {"runner": "macos15-20260102.1"},
        {"python": "3.11.10"},
        {"requirement": base["requirement"].replace("0.3.", "0.4.")},
        {"requirement": base["requirement"][:-4] + "0000"},  # another sdist hash
    ]
    for name in base["env"]:
        changed.append({"env": {**base["env"], name: base["env"][name] + " -DX=1"}})
        changed.append({"env": {k: v for k, v in base["env"].items() if k != name}})
    changed.append({"env": {**base["env"], "GGML_EXTRA": "1"}})
    keys = {rc.cache_key(**{**base, **change}) for change in changed}
    assert key not in keys and len(keys) == len(changed), "every input is in the key"


def test_the_constraints_pin_one_llama_cpp_python_sdist_and_hash_everything() -> None:
    llama, others = rc.split_requirements()
    assert re.match(r"llama-cpp-python==0\.3\.\d+ \\\n\s+--hash=sha256:[0-9a-f]{64}", llama)
    assert not re.search(r"^llama-cpp-python==", others, re.M)
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)(.*?)(?=^\S|\Z)", others, re.M | re.S)
    names = {name.lower() for name, _v, _rest in pins}
    assert {"pyinstaller", "pyinstaller-hooks-contrib", "pyside6-essentials", "dmgbuild",
            "numpy", "keyring"} <= names
    for name, _version, rest in pins:
        assert "--hash=sha256:" in rest, f"{name} has no hash"


def test_requirements_command_writes_both_files(tmp_path: Path) -> None:
    result = run_script("requirements", str(tmp_path / "l.txt"), str(tmp_path / "o.txt"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "l.txt").read_text("utf-8").startswith("llama-cpp-python==")
    assert "pyinstaller==" in (tmp_path / "o.txt").read_text("utf-8")


# --- checks on what was built ------------------------------------------------------------
SSE_ONLY_MAC = ("Metal : EMBED_LIBRARY = 1 | CPU : SSE3 = 1 | SSSE3 = 1 | LLAMAFILE = 1 | "
                "ACCELERATE = 1 | REPACK = 1 |")
BASELINE_X86 = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | "
                "BMI2 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |")


def test_an_sse_only_intel_mac_build_is_caught() -> None:
    """llama-cpp-python's CMakeLists forces AVX..F16C off on x86_64 macOS."""
    assert rc.check_compiled_features(SSE_ONLY_MAC, rc.X86_BASELINE) == [
        "AVX", "AVX2", "FMA", "F16C", "BMI2"]
    assert rc.check_compiled_features(BASELINE_X86, rc.X86_BASELINE) == []


def test_compiled_features_of_the_llama_cpp_installed_here() -> None:
    """The command against the real library: what it reports, it finds."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    found = sorted(rc.compiled_features(info))
    assert found, info
    ok = run_script("compiled-features", "--os", "linux", "--arch", "x86_64",
                    "--expect", ",".join(found), env=dict(os.environ))
    assert ok.returncode == 0, ok.stderr
    bad = run_script("compiled-features", "--os", "linux", "--arch", "x86_64",
                     "--expect", "NO_SUCH_FEATURE", env=dict(os.environ))
    assert bad.returncode == 1 and "NO_SUCH_FEATURE" in bad.stderr


OTOOL = """\
Load command 9
      cmd LC_BUILD_VERSION
  cmdsize 32
 platform 1
    minos 13.3
      sdk 15.2
Load command 10
      cmd LC_SOURCE_VERSION
  version 0.0
"""
OTOOL_OLD = """\
Load command 8
      cmd LC_VERSION_MIN_MACOSX
  cmdsize 16
  version 10.13
      sdk 10.15
"""


def test_minimum_macos_versions_are_read_from_otool() -> None:
    assert rc.macho_min_versions(OTOOL) == ["13.3"]
    assert rc.macho_min_versions(OTOOL_OLD) == ["10.13"]
    too_new = OTOOL.replace("minos 13.3", "minos 15.0")
    found = {"Contents/MacOS/LlamaDesk": rc.macho_min_versions(OTOOL),
             "Contents/Frameworks/libllama.0.dylib": rc.macho_min_versions(too_new),
             "Contents/Frameworks/QtCore": rc.macho_min_versions(OTOOL_OLD)}
    assert rc.too_new(found, "13.3") == ["Contents/Frameworks/libllama.0.dylib: needs macOS 15.0"]
    assert rc.too_new(found, "15.0") == []


def test_mach_o_files_are_found_by_their_magic(tmp_path: Path) -> None:
    (tmp_path / "lib.dylib").write_bytes(b"\xcf\xfa\xed\xfe" + bytes(60))
    (tmp_path / "universal").write_bytes(b"\xca\xfe\xba\xbe" + bytes(60))
    (tmp_path / "Info.plist").write_bytes(b"<?xml version")
    (tmp_path / "link.dylib").symlink_to("lib.dylib")
    assert [p.name for p in rc.macho_files(tmp_path)] == ["lib.dylib", "universal"]


@pytest.mark.parametrize(("status", "code"), [("Accepted", 0), ("Invalid", 1),
                                              ("In Progress", 1)])
def test_notarisation_status_decides_not_notarytools_exit_code(
        tmp_path: Path, status: str, code: int) -> None:
    result_file = tmp_path / "notary.json"
    result_file.write_text(json.dumps({"id": "2f1e-77", "status": status,
                                       "message": "Processing complete"}), "utf-8")
    id_file = tmp_path / "id"
    result = run_script("notary-status", str(result_file), "--id-file", str(id_file))
    assert result.returncode == code, result.stderr
    assert id_file.read_text("utf-8") == "2f1e-77", "the id is kept for `notarytool log`"


def test_sha256sums_lists_every_installer(tmp_path: Path) -> None:
    files = {"LlamaDesk-0.1.0-windows-x64-setup.exe": b"MZ setup",
             "LlamaDesk-0.1.0-macos-arm64.dmg": b"dmg bytes", "llamadesk_0.1.0_amd64.deb": b"!"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "sizes-linux-x64.json").write_text("{}", "utf-8")
    result = run_script("sha256sums", str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "SHA256SUMS").read_text("utf-8").splitlines()
    assert sorted(lines) == sorted(f"{hashlib.sha256(d).hexdigest()}  {n}"
                                   for n, d in files.items())
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_script("sha256sums", str(empty)).returncode == 1


# --- the workflow uses all of the above ---------------------------------------------------
def test_the_workflow_is_wired_to_these_checks() -> None:
    text = WORKFLOW.read_text("utf-8")
    for uses in re.findall(r"uses:\s*(\S+)", text):
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", uses), f"not pinned: {uses}"
    for name in rc.ALL_SECRETS:
        assert f"HAVE_{name}: ${{{{ secrets.{name} != '' }}}}" in text, name
    for command in ("preflight --tag", "build-env --os", "cache-key --os",
                    "compiled-features --os", "check-minos", "sha256sums installers",
                    "requirements "):
        assert f"release_checks.py {command}" in text, command
    assert "key: ${{ steps.llama-key.outputs.key }}" in text
    assert "--no-index --no-deps wheels/llama_cpp_python-" in text
    assert "--require-hashes" in text
    assert "needs.preflight.outputs.publish == 'true'" in text
    assert "installers/SHA256SUMS" in text and "--prerelease" in text
    header = text[:text.index("jobs:")]
    assert "QT_QPA_PLATFORM" not in header, "the real Qt plugins must start on Windows/macOS"
    assert "CMAKE_ARGS" not in header, "build settings come from release_checks.py build-env"


# --- the lock: wheels for a newer macOS are left out -----------------------------------------
lock = load("lock_release")


def test_wheels_for_a_newer_macos_are_found_in_pips_report() -> None:
    def item(name: str, sha: str) -> dict[str, object]:
        return {"download_info": {"url": f"https://files.example/{name}",
                                  "archive_info": {"hashes": {"sha256": sha}}}}

    report = {"install": [item("numpy-2.4.6-cp311-cp311-macosx_14_0_arm64.whl", "a" * 64),
                          item("numpy-2.4.6-cp311-cp311-macosx_11_0_arm64.whl", "b" * 64),
                          item("pyside6-6.11.3-cp310-abi3-macosx_13_0_universal2.whl",
                               "c" * 64),
                          item("jinja2-3.1.6-py3-none-any.whl", "d" * 64)]}
    assert lock.too_new(report, "13.3") == {"a" * 64}
    assert lock.too_new(report, "12.0") == {"a" * 64, "c" * 64}


def test_pruning_keeps_the_requirements_parseable() -> None:
    text = ("numpy==2.4.6 \\\n    --hash=sha256:" + "1" * 64 + " \\\n    --hash=sha256:"
            + "2" * 64 + "\n    # via llama-cpp-python\n")
    assert lock.prune(text, {"1" * 64}) == ("numpy==2.4.6 \\\n    --hash=sha256:" + "2" * 64
                                            + "\n    # via llama-cpp-python\n")
    # the last hash goes: the line before it must not continue into the comment
    assert lock.prune(text, {"2" * 64}) == ("numpy==2.4.6 \\\n    --hash=sha256:" + "1" * 64
                                            + "\n    # via llama-cpp-python\n")


def test_the_lock_lists_no_hash_of_a_numpy_wheel_for_macos_14() -> None:
    """Found by lock_release.py's pip report: numpy 2.4.6's macosx_14_0 wheels."""
    text = rc.CONSTRAINTS.read_text("utf-8")
    for sha in ("8155154c7c691289fe18f510b5d4657c68c67989f293f0535a91360392ff6538",
                "4cfe66903cc32a9921a6733d96b19bb6abf310397581bbad89c228f5abaf0ee8"):
        assert sha not in text


def test_one_minimum_macos_for_compiler_info_plist_and_audit() -> None:
    """The deployment target has one source, release_checks.MACOS_DEPLOYMENT_TARGET:
    the workflow gets it from build-env, the spec writes it into Info.plist."""
    spec = (PACKAGING / "llamadesk.spec").read_text("utf-8")
    assert "MACOS_MIN = release_checks.MACOS_DEPLOYMENT_TARGET" in spec
    assert '"LSMinimumSystemVersion": MACOS_MIN' in spec
    workflow = WORKFLOW.read_text("utf-8")
    assert not re.search(r"MACOSX_DEPLOYMENT_TARGET\s*[:=]", workflow), "set by build-env only"
    assert "13.3" not in workflow
    assert rc.build_env("macos", "arm64")["MACOSX_DEPLOYMENT_TARGET"] == \
        rc.MACOS_DEPLOYMENT_TARGET


def test_every_pin_satisfies_pyproject() -> None:
    """A change to pyproject.toml's ranges that the lock no longer meets fails here:
    regenerate it with packaging/lock_release.py."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    wanted = [Requirement(r) for r in
              [*project["dependencies"], *project["optional-dependencies"]["packaging"]]]
    text = rc.CONSTRAINTS.read_text("utf-8")
    pins: dict[str, list[str]] = {}
    for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.M):
        pins.setdefault(canonicalize_name(name), []).append(version)
    llama_pin = (PACKAGING / "llama-pin.txt").read_text("utf-8")
    assert f"llama-cpp-python=={pins['llama-cpp-python'][0]}" in llama_pin
    for requirement in wanted:
        versions = pins.get(canonicalize_name(requirement.name))
        assert versions, f"{requirement.name} is not pinned"
        for version in versions:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"{requirement.name}=={version} does not meet {requirement}")
