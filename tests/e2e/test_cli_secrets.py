"""``llamadesk`` as a real process keeps no token anywhere on disk: after a gated download
with ``HF_TOKEN``, and after ``models token set`` with no keyring (which says the token
is kept for this session only), nothing under its home folder holds the token."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hub_fixtures import GATED_FILE, GATED_REPO, HF_TOKEN_VALUE, subprocess_env
from hubserver import HubServer
from secret_scan import files_holding


def llamadesk(hub: HubServer, home: Path, *args: str, stdin: str = "",
              **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llamadesk", *args],
                          env=subprocess_env(hub, home, **env), input=stdin,
                          capture_output=True, text=True, timeout=180, check=False)


def test_the_cli_keeps_no_token_on_disk(hub_server: HubServer, home: Path) -> None:
    done = llamadesk(hub_server, home, "models", "download", GATED_REPO, GATED_FILE,
                     HF_TOKEN=HF_TOKEN_VALUE)
    assert done.returncode == 0, done.stderr
    stored = llamadesk(hub_server, home, "models", "token", "set", stdin=HF_TOKEN_VALUE + "\n")
    assert stored.returncode == 0, stored.stderr
    assert "kept for this session only" in stored.stdout
    assert HF_TOKEN_VALUE not in done.stdout + done.stderr + stored.stdout + stored.stderr
    status = llamadesk(hub_server, home, "models", "token", "status")
    assert "No Hugging Face token" in status.stdout  # a new process: nothing was persisted
    assert any((home / "logs").glob("*.log")) and (home / "models" / "registry.json").is_file()
    assert files_holding(home, HF_TOKEN_VALUE) == []
