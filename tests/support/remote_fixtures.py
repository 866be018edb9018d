"""Remote servers for tests, both on loopback ports: llama-cpp-python's own
OpenAI-compatible server (``python -m llama_cpp.server``) serving the real bundled
model, and the misbehaving ``FaultServer``."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from openai_fault_server import FaultServer

#: The id the llama.cpp server gives the bundled model.
SERVED_MODEL = "smol"
STARTUP_S = 180


@dataclass(frozen=True)
class LlamaServer:
    """A running ``llama_cpp.server``."""

    url: str  # the base URL, ending in /v1
    process: subprocess.Popen[bytes]


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited ({process.returncode}):\n"
                        f"{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as answer:
                if json.load(answer).get("data"):
                    return
        except (OSError, urllib.error.URLError, ValueError):
            pass
        time.sleep(0.2)
    pytest.fail(f"llama_cpp.server did not answer within {STARTUP_S} s")


@pytest.fixture(scope="session")
def llama_server(bundled_model_path: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """llama-cpp-python's server on a free loopback port, serving the bundled model as
    ``smol`` with a small context; stopped after the session."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_model_path),
             "--model_alias", SERVED_MODEL, "--host", "127.0.0.1", "--port", str(port),
             "--n_ctx", "1024", "--n_threads", "1"],
            stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_up(url, process, log)
        yield LlamaServer(url, process)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    """A misbehaving OpenAI-compatible server on a free loopback port."""
    server = FaultServer()
    yield server
    server.stop()
