"""A disk that fills up: during a download and while the chat database is written.

The filesystem is real and really fills: a size-limited tmpfs, mounted in a private
mount namespace (``unshare -m`` as root, ``unshare -rm`` as a user with user
namespaces), so nothing outside the test sees it. The app runs in a child process there
(tests/support/full_disk_child.py) against this test's loopback Hub. Expected: a clear
error, the partial download kept and resumed once space is freed, the database intact
and writable again, the settings file unchanged by the failed save.

Where no mount namespace can be made (Windows, macOS, a Linux without user namespaces
for a non-root user) the test is skipped and says why; tests/core/test_store_errors.py
still reaches SQLite's own "disk full" there, through ``PRAGMA max_page_count``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest
from gguf_tools import tiny_model
from hubserver import HubServer

ROOT = Path(__file__).resolve().parents[2]
CHILD = ROOT / "tests" / "support" / "full_disk_child.py"
REPO = "test-org/Roomy-GGUF"
FILE = "roomy.F32.gguf"
TMPFS_SIZE = "80m"


def namespace_prefix(probe_dir: Path) -> list[str] | str:
    """The unshare command that can mount a tmpfs here, or why there is none."""
    if sys.platform != "linux":
        return f"mount namespaces exist only on Linux (this is {sys.platform})"
    if shutil.which("unshare") is None:
        return "util-linux's unshare is not installed"
    tried = []
    for prefix in (["unshare", "-m"], ["unshare", "-rm"]):
        probe = subprocess.run([*prefix, "sh", "-c", 'mount -t tmpfs -o size=1m tmpfs "$1"',
                                "sh", str(probe_dir)], capture_output=True, text=True)
        if probe.returncode == 0:
            return prefix
        tried.append(f"{' '.join(prefix)}: {probe.stderr.strip() or probe.returncode}")
    return "cannot mount a tmpfs in a private namespace (" + "; ".join(tried) + ")"


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    # About 12 MB: room for it at the start, a few MB in when the disk fills.
    model = tiny_model(tmp_path / "roomy.gguf", n_ff=16_384)
    server = HubServer()
    server.add_repo(REPO, {FILE: model})
    server.rate = 4e6  # bytes/s: a few progress reports arrive before it ends
    server.start()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    yield server
    server.stop()


@pytest.mark.slow
def test_a_full_disk_loses_nothing_and_everything_resumes(tmp_path: Path,
                                                          hub: HubServer) -> None:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    prefix = namespace_prefix(mount)
    if isinstance(prefix, str):
        pytest.skip(prefix)
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("HF_TOKEN", "HF_HUB_OFFLINE")}
    env.update({"HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_TELEMETRY": "1",
                "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"})
    script = f'mount -t tmpfs -o size={TMPFS_SIZE} tmpfs "$1" && shift && exec "$@"'
    done = subprocess.run([*prefix, "sh", "-c", script, "sh", str(mount), sys.executable,
                           str(CHILD), str(mount), REPO, FILE],
                          capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])

    download = report["download"]
    first = download["first"]
    assert first != "finished", "the disk filled during the download"
    assert first["kind"] == "disk" and first["resumable"]
    assert first["message"].startswith("The disk is full")
    assert "What has arrived is kept" in first["message"]
    assert download["part_bytes"] and download["part_bytes"] >= 2 << 20  # kept for resume
    assert download["partials"] == [f"{REPO}/{FILE}"]
    assert not download["installed_early"]
    assert download["second"]["registered"]
    assert download["second"]["size"] == hub.repos[REPO].files[FILE].size
    # The second attempt went on from the kept bytes.
    starts = [r.range_start for r in hub.downloads_of(FILE)]
    assert starts[0] is None and starts[-1] and starts[-1] >= 2 << 20

    database = report["database"]
    assert "is full" in database["write_while_full"]
    assert "Nothing already saved was lost" in database["write_while_full"]
    assert database["settings_while_full"] == "No space left on device"
    assert database["settings_after_failure"] == "Be brief."
    assert database["kept_after_failure"] and database["write_after_freeing"]
    assert database["search_after_freeing"] == ["after space was freed"]
    assert database["integrity"] == "ok"
    assert database["messages"] >= database["kept"] + 1
