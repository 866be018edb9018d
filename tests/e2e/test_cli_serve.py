"""``llamadesk serve`` as a real process: it serves on loopback, answers the openai
package, and stops cleanly on Ctrl+C; it refuses other addresses without a key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import openai
from child_process import reaped

from llamadesk.core import bundled


def test_serve_answers_and_stops_on_ctrl_c(bundled_model_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "llamadesk", "serve", "--port", "0",
         "--model", bundled.manifest().id],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    with reaped(process):
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("LlamaDesk API on http://127.0.0.1:"), line
        base_url = line.split(" on ", 1)[1].split()[0]
        client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0,
                               timeout=300)
        assert [m.id for m in client.models.list()] == [bundled.manifest().id]
        reply = client.chat.completions.create(
            model=bundled.manifest().id, max_tokens=4,
            messages=[{"role": "user", "content": "Hello"}])
        assert reply.choices[0].message.content
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0


def test_serve_refuses_another_address_without_a_key() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "llamadesk", "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ), check=False)
    assert result.returncode == 1
    assert "API key" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_serve_refuses_an_unknown_model() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "llamadesk", "serve", "--port", "0", "--model", "nope"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ), check=False)
    assert result.returncode == 1 and "not installed" in result.stderr


def test_serve_allows_the_origins_and_host_names_it_is_given() -> None:
    import httpx

    process = subprocess.Popen(
        [sys.executable, "-m", "llamadesk", "serve", "--port", "0",
         "--allow-origin", "HTTP://127.0.0.1:5173/", "--cors-origin", "https://app.example",
         "--allow-host", "llm.home.arpa"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().split(" on ", 1)[1].split()[0]
        with httpx.Client(timeout=30) as http:
            def status(**headers: str) -> int:
                return http.get(f"{base_url}/models", headers=headers).status_code

            assert status() == 200
            assert status(Origin="http://127.0.0.1:5173") == 200
            assert status(Origin="https://app.example") == 200, "the earlier flag's name"
            assert status(Origin="http://127.0.0.1:5174") == 403
            assert status(Host="llm.home.arpa") == 200
            assert status(Host="rebind.attacker.example") == 403
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_refuses_what_is_not_an_origin_or_a_host_name() -> None:
    for flag, value, why in (("--allow-origin", "app.example", "not a web origin"),
                             ("--allow-host", "llm.lan:8716", "not a host name")):
        result = subprocess.run(
            [sys.executable, "-m", "llamadesk", "serve", "--port", "0", flag, value],
            capture_output=True, text=True, timeout=120, env=dict(os.environ), check=False)
        assert result.returncode == 1 and why in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_serve_stops_cleanly_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "llamadesk", "serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    with reaped(process):
        assert process.stdout is not None
        assert process.stdout.readline().startswith("LlamaDesk API on http://127.0.0.1:")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0


def test_ctrl_c_mid_request_says_what_it_cuts_off(bundled_model_path: Path) -> None:
    """``serve`` asks the one "busy" owner (services/activity.Busy) what a quit stops."""
    import threading

    import httpx

    process = subprocess.Popen(
        [sys.executable, "-m", "llamadesk", "serve", "--port", "0",
         "--model", bundled.manifest().id],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    first_piece = threading.Event()
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = line.split(" on ", 1)[1].split()[0]

        def stream() -> None:
            body = {"model": bundled.manifest().id, "max_tokens": 2000, "stream": True,
                    "messages": [{"role": "user", "content": "Tell a very long story."}]}
            try:
                with httpx.Client(timeout=300) as http, http.stream(
                        "POST", f"{base_url}/chat/completions", json=body) as response:
                    for text in response.iter_lines():
                        if text.startswith("data: {"):
                            first_piece.set()
            except httpx.HTTPError:
                pass  # the server went away mid-reply, as it should

        client = threading.Thread(target=stream, daemon=True)
        client.start()
        assert first_piece.wait(240), "no reply started"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        client.join(60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    err = process.stderr.read() if process.stderr else ""
    assert "llamadesk: stopping 1 API request" in err
    assert "Traceback" not in err
