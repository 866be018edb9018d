"""``llamadesk connections …`` and ``llamadesk chat --model CONNECTION/MODEL`` as a real
process against a loopback OpenAI-compatible server; and the key prompt in process,
with an in-memory keyring, keeping the key out of every file."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from crypt_fixtures import open_any
from hub_fixtures import InMemoryKeyring
from openai_fault_server import MODEL, REPLY_PIECES, FaultServer
from secret_scan import files_holding

from llamadesk.cli import main as cli
from llamadesk.core.paths import app_paths
from llamadesk.core.secrets import SERVICE

TIMEOUT = 120


def llamadesk(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LLAMADESK_HOME": str(home),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    return subprocess.run([sys.executable, "-m", "llamadesk", *args], capture_output=True,
                          text=True, timeout=TIMEOUT, env=env, input=stdin, check=False)


def test_add_list_chat_disable_remove(fault_server: FaultServer, home: Path) -> None:
    added = llamadesk(home, "connections", "add", "faulty", "--url", fault_server.url)
    assert added.returncode == 0, added.stderr
    assert f"ok: faulty answers with 1 model: {MODEL}" in added.stdout
    listed = llamadesk(home, "connections", "list")
    assert listed.stdout.split() == ["faulty", fault_server.url, "on", "no", "key"]
    chat = llamadesk(home, "chat", "--new", "--model", f"faulty/{MODEL}", "Say hello.")
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.strip() == "".join(REPLY_PIECES)
    assert f"sent to {fault_server.url}" in chat.stderr and "5 tokens" in chat.stderr
    db = open_any(app_paths().database)
    try:
        rows = db.execute("SELECT role, model_id FROM messages ORDER BY id").fetchall()
    finally:
        db.close()
    assert rows == [("user", None), ("assistant", f"faulty/{MODEL}")]
    off = llamadesk(home, "connections", "disable", "faulty")
    assert off.returncode == 0
    sent = len(fault_server.state.requests)
    refused = llamadesk(home, "chat", "Again?")  # the chat keeps the remote model
    assert refused.returncode == 1 and "turned off" in refused.stderr
    assert len(fault_server.state.requests) == sent, "nothing is sent to a connection that is off"
    removed = llamadesk(home, "connections", "remove", "faulty")
    assert removed.returncode == 0
    assert "No connections" in llamadesk(home, "connections", "list").stdout


def test_a_server_that_is_down_is_added_and_reported(home: Path, refusing_port: int) -> None:
    url = f"http://127.0.0.1:{refusing_port}/v1"
    added = llamadesk(home, "connections", "add", "later", "--url", url)
    assert added.returncode == 1 and "refused the connection" in added.stdout
    assert "later" in llamadesk(home, "connections", "list").stdout


def test_a_bad_url_is_refused_and_nothing_is_saved(home: Path) -> None:
    added = llamadesk(home, "connections", "add", "box", "--url", "gpu-box:8000")
    assert added.returncode == 1 and "http://" in added.stderr
    assert not (home / "config" / "settings.json").exists()


def test_a_cut_reply_is_kept_and_reported(fault_server: FaultServer, home: Path) -> None:
    assert llamadesk(home, "connections", "add", "faulty", "--url",
                     fault_server.url).returncode == 0
    fault_server.set("cut")
    chat = llamadesk(home, "chat", "--new", "--model", f"faulty/{MODEL}", "Say hello.")
    assert chat.returncode == 1
    assert chat.stdout.strip() == "Hello from"
    assert "interrupted: faulty closed the connection" in chat.stderr


def test_the_key_prompt_keeps_the_key_in_the_keyring_only(
        fault_server: FaultServer, home: Path, memory_keyring: InMemoryKeyring,
        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    key = "sk-cli-5f0e77c2b9"
    fault_server.set(api_key=key)
    monkeypatch.setattr(sys, "stdin", io.StringIO(key + "\n"))
    assert cli.main(["connections", "add", "faulty", "--url", fault_server.url,
                     "--api-key-prompt"]) == 0
    out = capfd.readouterr().out
    assert "Key saved in the system keyring" in out and "ok: faulty" in out
    assert memory_keyring.passwords[(SERVICE, "connection:faulty")] == key
    assert cli.main(["connections", "list"]) == 0
    assert "key in keyring" in capfd.readouterr().out
    assert app_paths().settings_file.is_file()
    assert files_holding(home, key) == []
    assert cli.main(["connections", "remove", "faulty"]) == 0
    assert memory_keyring.passwords == {}


def test_a_settings_file_that_cannot_be_written_fails_readably(
        home: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """The command saves through the settings service, the one owner of settings writes;
    its failure is one readable line, and the settings on disk stay as they were."""
    settings_file = app_paths().settings_file
    assert cli.main(["connections", "add", "first", "--url", "http://127.0.0.1:9/v1",
                     "--disabled"]) == 0
    before = settings_file.read_text(encoding="utf-8")
    settings_file.with_suffix(".tmp").mkdir()  # the atomic write's temp file cannot be made
    capfd.readouterr()
    assert cli.main(["connections", "add", "box", "--url", "http://127.0.0.1:9/v1",
                     "--disabled"]) == 1
    err = capfd.readouterr().err
    assert f"cannot write the settings to {settings_file}" in err and "Traceback" not in err
    assert settings_file.read_text(encoding="utf-8") == before
    assert cli.main(["connections", "list"]) == 0
    assert "box" not in capfd.readouterr().out
