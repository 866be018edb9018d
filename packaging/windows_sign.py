#!/usr/bin/env python3
"""Sign Windows executables and DLLs with whatever signing method is configured.

    python packaging/windows_sign.py FILE...

build.py calls it for the bundle's exes and llama.cpp's DLLs; makensis calls it for
the uninstaller (``!uninstfinalize``) and the setup (``!finalize``). The method comes
from WINDOWS_SIGNING:

- ``pfx``: signtool with WINDOWS_CERTIFICATE_FILE and WINDOWS_CERTIFICATE_PASSWORD;
- ``azure-key-vault``: AzureSignTool with a certificate whose key stays in Azure Key
  Vault (an HSM), from AZURE_KEY_VAULT_URI, AZURE_KEY_VAULT_CERTIFICATE,
  AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET;
- unset or ``none``: nothing is signed (a NOTE says so).

Standard library only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

TIMESTAMP_URL = "http://timestamp.digicert.com"
KITS_BIN = Path(r"C:\Program Files (x86)\Windows Kits\10\bin")
_VERSION_DIR = re.compile(r"^\d+(\.\d+)+$")


class SigningError(Exception):
    """Signing is configured but cannot be done."""


def find_signtool(kits_bin: Path = KITS_BIN, arch: str = "x64") -> Path:
    """The newest SDK's ``<version>\\<arch>\\signtool.exe``. Folders are compared as
    version numbers (10.0.9 < 10.0.10), and only ``<arch>`` is taken: sorting by
    name would pick ``x86`` or an ``arm64`` signtool that cannot run here."""
    versions = [d for d in kits_bin.iterdir() if d.is_dir() and _VERSION_DIR.match(d.name)]
    versions.sort(key=lambda d: tuple(int(n) for n in d.name.split(".")), reverse=True)
    for folder in versions:
        tool = folder / arch / "signtool.exe"
        if tool.is_file():
            return tool
    raise SigningError(f"no {arch} signtool.exe under {kits_bin}: install the Windows SDK")


def _need(environ: Mapping[str, str], *names: str) -> list[str]:
    missing = [n for n in names if not environ.get(n)]
    if missing:
        raise SigningError(f"signing needs {', '.join(missing)}")
    return [environ[n] for n in names]


def sign_command(files: Sequence[str], environ: Mapping[str, str],
                 signtool: str | None = None) -> list[str] | None:
    """The command that signs ``files``, or None when signing is off."""
    method = environ.get("WINDOWS_SIGNING", "none") or "none"
    if method == "none":
        return None
    if method == "pfx":
        pfx, password = _need(environ, "WINDOWS_CERTIFICATE_FILE",
                              "WINDOWS_CERTIFICATE_PASSWORD")
        tool = signtool or environ.get("SIGNTOOL") or str(find_signtool())
        return [tool, "sign", "/fd", "sha256", "/tr", TIMESTAMP_URL, "/td", "sha256",
                "/f", pfx, "/p", password, *files]
    if method == "azure-key-vault":
        uri, cert, tenant, client, secret = _need(
            environ, "AZURE_KEY_VAULT_URI", "AZURE_KEY_VAULT_CERTIFICATE", "AZURE_TENANT_ID",
            "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")
        tool = environ.get("AZURESIGNTOOL") or shutil.which("AzureSignTool") or "AzureSignTool"
        return [tool, "sign", "-kvu", uri, "-kvc", cert, "-kvt", tenant, "-kvi", client,
                "-kvs", secret, "-tr", TIMESTAMP_URL, "-td", "sha256", "-fd", "sha256",
                *files]
    raise SigningError(f"unknown WINDOWS_SIGNING {method!r}: pfx, azure-key-vault or none")


def sign(files: Sequence[Path | str], environ: Mapping[str, str] | None = None) -> bool:
    """Sign ``files`` in place; False (and a NOTE) when signing is off."""
    env = os.environ if environ is None else environ
    command = sign_command([str(f) for f in files], env)
    if command is None:
        print("NOTE: not signing (WINDOWS_SIGNING is not set): "
              + ", ".join(Path(f).name for f in files), flush=True)
        return False
    # The command holds a password or a client secret: print only the files.
    print("signing " + ", ".join(Path(f).name for f in files), flush=True)
    result = subprocess.run(command, check=False)
    if result.returncode != 0:  # not CalledProcessError: its text would hold the secret
        raise SigningError(f"{Path(command[0]).name} exited with {result.returncode}")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    files = list(sys.argv[1:] if argv is None else argv)
    if not files:
        print("usage: windows_sign.py FILE...", file=sys.stderr)
        return 2
    try:
        sign(files)
    except (SigningError, OSError) as exc:
        print(f"signing failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
