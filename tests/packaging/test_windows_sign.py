"""packaging/windows_sign.py: which signtool, which command for each signing method,
and what build.py hands it. The makensis side (!uninstfinalize, !finalize) is in
test_packaging_scripts.py, which needs makensis."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from packaging_helpers import load_script

load = load_script


ws = load("windows_sign")


def sdk(root: Path, version: str, *arches: str) -> None:
    for arch in arches:
        folder = root / version / arch
        folder.mkdir(parents=True)
        (folder / "signtool.exe").write_bytes(b"MZ")


def test_signtool_is_the_newest_sdks_x64_one(tmp_path: Path) -> None:
    sdk(tmp_path, "10.0.9600.0", "x86", "x64")
    sdk(tmp_path, "10.0.22621.0", "x86", "x64", "arm64")
    sdk(tmp_path, "10.0.26100.0", "x86", "arm64")  # newest, but no x64 signtool
    (tmp_path / "x86").mkdir()  # sorts after every version by name
    (tmp_path / "x86" / "signtool.exe").write_bytes(b"MZ")
    assert ws.find_signtool(tmp_path) == tmp_path / "10.0.22621.0" / "x64" / "signtool.exe"


def test_versions_are_compared_as_numbers(tmp_path: Path) -> None:
    sdk(tmp_path, "10.0.9.0", "x64")
    sdk(tmp_path, "10.0.10.0", "x64")
    assert ws.find_signtool(tmp_path).parent.parent.name == "10.0.10.0"


def test_no_signtool_is_a_clear_error(tmp_path: Path) -> None:
    sdk(tmp_path, "10.0.22621.0", "x86")
    with pytest.raises(ws.SigningError, match=r"no x64 signtool\.exe"):
        ws.find_signtool(tmp_path)


def test_pfx_signing_command() -> None:
    env = {"WINDOWS_SIGNING": "pfx", "WINDOWS_CERTIFICATE_FILE": r"C:\t\c.pfx",
           "WINDOWS_CERTIFICATE_PASSWORD": "pw"}
    command = ws.sign_command(["a.exe", "llama.dll"], env, signtool="signtool.exe")
    assert command == ["signtool.exe", "sign", "/fd", "sha256", "/tr", ws.TIMESTAMP_URL,
                       "/td", "sha256", "/f", r"C:\t\c.pfx", "/p", "pw", "a.exe", "llama.dll"]


def test_azure_key_vault_signing_command() -> None:
    env = {"WINDOWS_SIGNING": "azure-key-vault", "AZURE_KEY_VAULT_URI": "https://v.vault",
           "AZURE_KEY_VAULT_CERTIFICATE": "ev", "AZURE_TENANT_ID": "t",
           "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "s", "AZURESIGNTOOL": "ast"}
    command = ws.sign_command(["setup.exe"], env)
    assert command is not None and command[:2] == ["ast", "sign"]
    pairs = dict(zip(command[2:-1:2], command[3:-1:2], strict=True))
    assert pairs["-kvu"] == "https://v.vault" and pairs["-kvc"] == "ev"
    assert pairs["-kvs"] == "s" and pairs["-fd"] == "sha256"
    assert command[-1] == "setup.exe"


def test_signing_off_unknown_or_half_configured() -> None:
    assert ws.sign_command(["a.exe"], {}) is None
    assert ws.sign_command(["a.exe"], {"WINDOWS_SIGNING": "none"}) is None
    with pytest.raises(ws.SigningError, match="unknown WINDOWS_SIGNING"):
        ws.sign_command(["a.exe"], {"WINDOWS_SIGNING": "usb-token"})
    with pytest.raises(ws.SigningError, match="WINDOWS_CERTIFICATE_PASSWORD"):
        ws.sign_command(["a.exe"], {"WINDOWS_SIGNING": "pfx",
                                    "WINDOWS_CERTIFICATE_FILE": "c.pfx"}, signtool="s")


def test_a_failed_signature_does_not_print_the_secret(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    env = {"WINDOWS_SIGNING": "pfx", "WINDOWS_CERTIFICATE_FILE": "c.pfx",
           "WINDOWS_CERTIFICATE_PASSWORD": "s3cret-value", "SIGNTOOL": "false"}
    with pytest.raises(ws.SigningError) as raised:
        ws.sign([tmp_path / "a.exe"], env)
    assert "s3cret-value" not in str(raised.value)
    assert "s3cret-value" not in capsys.readouterr().out


def test_build_signs_the_exes_and_llama_cpps_dlls_but_not_microsofts(
        tmp_path: Path, build_script: ModuleType) -> None:
    lib = tmp_path / "_internal" / "llama_cpp" / "lib"
    lib.mkdir(parents=True)
    for name in ("llama.dll", "ggml.dll", "ggml-cpu.dll", "vcomp140.dll"):
        (lib / name).write_bytes(b"MZ")
    names = [p.name for p in build_script.windows_binaries(tmp_path)]
    assert names == ["LlamaDesk.exe", "llamadesk-cli.exe", "ggml-cpu.dll", "ggml.dll",
                     "llama.dll"]
    assert build_script.nsis_signing({}) == ()
    define = build_script.nsis_signing({"WINDOWS_SIGNING": "pfx"})
    assert len(define) == 1 and define[0].startswith("-DSIGN_COMMAND=")
    assert "windows_sign.py" in define[0]
