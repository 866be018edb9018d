"""``llamadesk models …`` as a real process, against the loopback Hub: list, search,
files, download (killed and resumed, interrupted, gated, licensed), import, remove."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gguf_tools import tiny_model
from hub_fixtures import (
    GATED_FILE,
    GATED_REPO,
    HF_TOKEN_VALUE,
    HOSTILE_FILE,
    HOSTILE_REPO,
    SMOL_FILE,
    SMOL_REPO,
    subprocess_env,
)
from hubserver import HubServer

SIZE = 98_362_432
SMOL_BUNDLED = "smollm2-135m-instruct-q4_1"
PART = "test-org__SmolLM2-135M-Instruct-GGUF__SmolLM2-135M-Instruct.Q4_1.gguf.part"


def models_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "llamadesk", "models", *args]


def run(hub: HubServer, home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(models_cmd(*args), env=subprocess_env(hub, home, **env),
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          check=False)


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    """A failure: exit 1, one line on stderr, no traceback."""
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llamadesk: "), result.stderr
    return lines[0]


def wait_for_part(part: Path, at_least: int, proc: subprocess.Popen[str]) -> int:
    """Poll until the partial file holds ``at_least`` bytes; return its size."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        size = part.stat().st_size if part.exists() else 0
        if size >= at_least:
            return size
        time.sleep(0.05)
    raise AssertionError(f"{part.name} never reached {at_least} bytes")


def test_list_search_and_files(hub_server: HubServer, home: Path) -> None:
    listed = run(hub_server, home, "list")
    assert listed.returncode == 0 and "smollm2-135m-instruct-q4_1" in listed.stdout
    assert "bundled" in listed.stdout

    found = run(hub_server, home, "search", "smol")
    assert found.returncode == 0, found.stderr
    assert SMOL_REPO in found.stdout and "smol-safetensors" not in found.stdout

    files = run(hub_server, home, "files", SMOL_REPO)
    assert files.returncode == 0, files.stderr
    line = next(x for x in files.stdout.splitlines() if x.startswith(SMOL_FILE))
    assert "Q4_1" in line and "98.4 MB" in line
    assert any(label in line for label in ("fits", "tight", "won't fit"))
    split = next(x for x in files.stdout.splitlines() if x.startswith("big-model.Q8_0.gguf"))
    assert "not downloadable: split into 2 files" in split

    missing = run(hub_server, home, "files", "nobody/nothing-GGUF")
    assert "No repository nobody/nothing-GGUF" in one_line_failure(missing)


def test_download_then_list_path_and_remove(hub_server: HubServer, home: Path) -> None:
    result = run(hub_server, home, "download", SMOL_REPO, SMOL_FILE)
    assert result.returncode == 0, result.stderr
    assert "Downloaded and verified" in result.stdout
    listed = run(hub_server, home, "list").stdout
    (line,) = [x for x in listed.splitlines() if "downloaded" in x]
    model_id = line.split()[0]
    path = run(hub_server, home, "path", model_id).stdout.strip()
    assert Path(path).stat().st_size == SIZE
    removed = run(hub_server, home, "remove", model_id)
    assert removed.returncode == 0 and not Path(path).exists()
    assert "cannot be removed" in one_line_failure(
        run(hub_server, home, "remove", "smollm2-135m-instruct-q4_1"))


def test_killed_download_resumes_instead_of_starting_over(hub_server: HubServer,
                                                          home: Path) -> None:
    hub_server.rate = 8e6  # slow enough to kill it part-way
    part = home / "models" / ".partial" / PART
    proc = subprocess.Popen(models_cmd("download", SMOL_REPO, SMOL_FILE),
                            env=subprocess_env(hub_server, home), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        wait_for_part(part, 5_000_000, proc)
    finally:
        proc.kill()  # no chance to clean up: like a crash or a power cut
        proc.communicate(timeout=30)
    kept = part.stat().st_size
    assert 5_000_000 <= kept < SIZE

    hub_server.rate = None
    result = run(hub_server, home, "download", SMOL_REPO, SMOL_FILE)
    assert result.returncode == 0, result.stderr
    assert "Resuming SmolLM2-135M-Instruct.Q4_1.gguf from" in result.stdout
    assert hub_server.downloads_of(SMOL_FILE)[-1].range_start == kept
    assert not part.exists()


def test_ctrl_c_pauses_and_the_next_run_resumes(hub_server: HubServer, home: Path) -> None:
    hub_server.rate = 8e6
    part = home / "models" / ".partial" / PART
    proc = subprocess.Popen(models_cmd("download", SMOL_REPO, SMOL_FILE),
                            env=subprocess_env(hub_server, home), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    wait_for_part(part, 2_000_000, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Paused. Run the same command again to resume" in err
    kept = part.stat().st_size
    hub_server.rate = None
    assert run(hub_server, home, "download", SMOL_REPO, SMOL_FILE).returncode == 0
    assert hub_server.downloads_of(SMOL_FILE)[-1].range_start == kept


def test_gated_repo_without_and_with_token(hub_server: HubServer, home: Path) -> None:
    line = one_line_failure(run(hub_server, home, "download", GATED_REPO, GATED_FILE))
    assert "is a gated repository" in line and "llamadesk models token set" in line
    ok = run(hub_server, home, "download", GATED_REPO, GATED_FILE, HF_TOKEN=HF_TOKEN_VALUE)
    assert ok.returncode == 0, ok.stderr
    assert HF_TOKEN_VALUE not in ok.stdout + ok.stderr
    logs = "".join(p.read_text() for p in (home / "logs").glob("*.log*"))
    assert HF_TOKEN_VALUE not in logs


def test_catalog_download_asks_for_the_licence(hub_server: HubServer, home: Path,
                                               bundled_model_path: Path) -> None:
    hub_server.add_repo("TheBloke/Llama-2-7B-Chat-GGUF",
                        {"llama-2-7b-chat.Q4_K_M.gguf": bundled_model_path})
    refused = run(hub_server, home, "download", "llama-2-7b-chat")
    assert "must be accepted first" in one_line_failure(refused)
    assert "https://ai.meta.com/llama/use-policy/" in refused.stdout
    assert hub_server.downloads_of("llama-2-7b-chat.Q4_K_M.gguf") == []

    accepted = run(hub_server, home, "download", "llama-2-7b-chat:q4_k_m", "--accept-licence")
    assert accepted.returncode == 0, accepted.stderr
    assert "Accepted the Llama 2 Community License" in accepted.stdout
    listed = run(hub_server, home, "list").stdout
    assert "llama-2-7b-chat-q4_1" in listed  # the file's own quantisation, not the name's
    # Accepted once: a later download of the same licence does not ask again.
    again = run(hub_server, home, "download", "llama-2-7b-chat:Q4_K_M")
    assert again.returncode == 0 and "Accepted" not in again.stdout


def test_a_searched_llama2_derivative_asks_for_the_licence(
        hub_server: HubServer, home: Path, bundled_model_path: Path) -> None:
    # Not in the catalog; only the Hub's metadata names it a Llama 2 derivative.
    hub_server.add_repo("someone/Llama-2-7B-Tale-GGUF", {"tale.Q4_1.gguf": bundled_model_path},
                        tags=["gguf", "license:llama2"], card_data={"license": "llama2"})
    refused = run(hub_server, home, "download", "someone/Llama-2-7B-Tale-GGUF",
                  "tale.Q4_1.gguf")
    assert "must be accepted first" in one_line_failure(refused)
    assert hub_server.downloads_of("tale.Q4_1.gguf") == []

    accepted = run(hub_server, home, "download", "someone/Llama-2-7B-Tale-GGUF",
                   "tale.Q4_1.gguf", "--accept-licence")
    assert accepted.returncode == 0, accepted.stderr
    assert "Accepted the Llama 2 Community License" in accepted.stdout
    assert "tale.q4_1" in run(hub_server, home, "list").stdout.lower()


def test_importing_a_llama2_derivative_asks_for_the_licence(
        hub_server: HubServer, home: Path, tmp_path: Path) -> None:
    source = tiny_model(tmp_path / "my-llama-2-tune.gguf", metadata={"general.license": "llama2"})
    refused = run(hub_server, home, "import", str(source))
    assert "must be accepted first" in one_line_failure(refused)
    assert "my-llama-2-tune" not in run(hub_server, home, "list").stdout

    accepted = run(hub_server, home, "import", str(source), "--accept-licence")
    assert accepted.returncode == 0, accepted.stderr
    assert "Accepted the Llama 2 Community License" in accepted.stdout
    assert "my-llama-2-tune" in run(hub_server, home, "list").stdout


def test_hostile_name_and_bad_import(hub_server: HubServer, home: Path, tmp_path: Path,
                                     bundled_model_path: Path) -> None:
    line = one_line_failure(run(hub_server, home, "download", HOSTILE_REPO, HOSTILE_FILE))
    assert "Refusing to download" in line
    assert hub_server.requests == []

    broken = tmp_path / "half.gguf"
    with bundled_model_path.open("rb") as fh:
        broken.write_bytes(fh.read(SIZE // 2))
    line = one_line_failure(run(hub_server, home, "import", str(broken)))
    assert "Cannot import: half.gguf is not a valid GGUF model" in line
    assert "past the end" in line and "(truncated or corrupt)" in line

    mine = tmp_path / "mine.Q4_1.gguf"
    data = bytearray(bundled_model_path.read_bytes())
    data[-1] ^= 0xFF
    mine.write_bytes(bytes(data))
    linked = run(hub_server, home, "import", str(mine), "--link")
    assert linked.returncode == 0 and "linked (used where it is)" in linked.stdout
    assert run(hub_server, home, "remove", "mine.q4_1").returncode == 0
    assert mine.exists()


@pytest.mark.parametrize("args", [["download"], ["frobnicate"]])
def test_usage_errors_exit_2(hub_server: HubServer, home: Path, args: list[str]) -> None:
    result = run(hub_server, home, *args)
    assert result.returncode == 2 and "usage:" in result.stderr


def test_chat_format_shows_and_sets_a_models_fallback(hub_server: HubServer, home: Path,
                                                      bundled_model_path: Path) -> None:
    shown = run(hub_server, home, "chat-format", SMOL_BUNDLED)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"{SMOL_BUNDLED}: chatml")
    changed = run(hub_server, home, "chat-format", SMOL_BUNDLED, "zephyr")
    assert changed.returncode == 0 and f"{SMOL_BUNDLED}: zephyr" in changed.stdout
    assert f"{SMOL_BUNDLED}: zephyr" in run(hub_server, home, "chat-format", SMOL_BUNDLED).stdout
    unknown = run(hub_server, home, "chat-format", "no-such-model")
    assert "no installed model 'no-such-model'" in one_line_failure(unknown)
    bad = run(hub_server, home, "chat-format", SMOL_BUNDLED, "klingon")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
