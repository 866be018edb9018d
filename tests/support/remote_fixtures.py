"""Remote servers for tests, both on loopback ports: llama-cpp-python's own
OpenAI-compatible server (``python -m llama_cpp.server``) serving the real bundled
model, and the misbehaving ``FaultServer``."""

from __future__ import annotations

import json
import os
import re
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


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections for the whole test: bound here and
    never listened on. A port merely found free and let go could be taken meanwhile by
    another test worker's server, or as the local end of any outgoing connection."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


#: What uvicorn says once it listens, with the port the system gave it (``--port 0``).
_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def _wait_until_up(process: subprocess.Popen[bytes], log: Path) -> str:
    """The server's base URL, once it answers with its model."""
    deadline = time.monotonic() + STARTUP_S
    url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited ({process.returncode}):\n"
                        f"{log.read_text(errors='replace')[-3000:]}")
        if url is None:
            listening = _LISTENING.search(log.read_text(errors="replace"))
            if listening is None:
                time.sleep(0.2)
                continue
            url = f"http://127.0.0.1:{listening[1]}/v1"
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as answer:
                if json.load(answer).get("data"):
                    return url
        except (OSError, urllib.error.URLError, ValueError):
            pass
        time.sleep(0.2)
    pytest.fail(f"llama_cpp.server did not answer within {STARTUP_S} s")


@pytest.fixture(scope="session")
def llama_server(bundled_model_path: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """llama-cpp-python's server on a loopback port it binds itself (``--port 0``, read
    back from its log: a port found free here could be taken before the server, which
    first loads the model, binds it), serving the bundled model as ``smol`` with a small
    context; stopped after the session."""
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    # HOST and PORT in the environment would override the options given.
    env = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT")}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_model_path),
             "--model_alias", SERVED_MODEL, "--host", "127.0.0.1", "--port", "0",
             "--n_ctx", "1024", "--n_threads", "1"],
            stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield LlamaServer(_wait_until_up(process, log), process)
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
