"""Download throughput: the app's downloader against curl, both fetching the bundled
model's bytes from the loopback Hub server (tests/support/hubserver.py).

The server runs in its own process so that neither client shares an interpreter with
it; the app side is the whole ``Downloader.download()`` a user waits for (resolve,
stream to a .part file, verify sha256 and the GGUF header, register).

Two metrics:

- at a real link's speed: the server sends at most 50 MB/s (its ``rate`` switch, a
  fast home or office connection). This is the goal that matters to users: the
  checks must hide behind the transfer (≥ 0.95× of curl).
- unlimited loopback: information. Here the link costs nothing, so the app's sha256,
  fsyncs and GGUF check set the pace, not the transfer (see docs/performance.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, Goal, Metric, alternate, not_measured, side

REPO = "bench-org/SmolLM2-135M-Instruct-GGUF"
#: Bytes per second of the rate-limited server: 50 MB/s.
LINK_RATE = 50e6

_SERVER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from hubserver import HubServer
server = HubServer()
server.add_repo(sys.argv[2], {Path(sys.argv[3]).name: Path(sys.argv[3])})
server.rate = float(sys.argv[4]) or None
server.start()
print(server.url, flush=True)
sys.stdin.read()
server.stop()
"""

UNLIMITED = ("download_ratio", "download throughput, app ÷ curl (loopback Hub)",
             Goal(">=", 0.9))
AT_LINK_SPEED = ("download_ratio_50mbps",
                 "download throughput at 50 MB/s, app ÷ curl (rate-limited loopback Hub)",
                 Goal(">=", 0.95))


def _measure(work: Path, model: Path, rate: float, runs: int,
             warmup: int) -> tuple[list[float], list[float]]:
    """MB/s of the app and of curl, alternating, from a server sending at ``rate`` (0: as
    fast as it can)."""
    from llamadesk.core.downloads import Downloader, DownloadRequest
    from llamadesk.core.hub import HubClient
    from llamadesk.core.paths import app_paths
    from llamadesk.core.registry import ModelRegistry

    curl = shutil.which("curl")
    assert curl is not None
    size = model.stat().st_size
    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(ROOT / "tests" / "support"),
                               REPO, str(model), str(rate)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    old = os.environ.get("HF_ENDPOINT")
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        os.environ["HF_ENDPOINT"] = url
        paths = app_paths(work / f"home-download-{int(rate)}").ensure()
        downloader = Downloader(paths, HubClient(endpoint=url), ModelRegistry(paths))
        request = DownloadRequest(REPO, model.name)
        file_url = f"{url}/{REPO}/resolve/main/{model.name}"
        out = work / "curl.gguf"

        def app() -> float:
            dest = downloader.destination(request)
            downloader.discard(request)
            if dest.exists():
                dest.unlink()
            ModelRegistry(paths).file.unlink(missing_ok=True)
            started = time.perf_counter()
            downloader.download(request)
            return size / (time.perf_counter() - started) / 1e6

        def by_curl() -> float:
            out.unlink(missing_ok=True)
            started = time.perf_counter()
            subprocess.run([curl, "-sSfL", "-o", str(out), file_url], check=True)
            return size / (time.perf_counter() - started) / 1e6

        return alternate(runs, warmup, app, by_curl)
    finally:
        if old is None:
            os.environ.pop("HF_ENDPOINT", None)
        else:
            os.environ["HF_ENDPOINT"] = old
        if server.stdin:
            server.stdin.close()
        server.wait(10)


def _metric(spec: tuple[str, str, Goal], app_s: list[float], curl_s: list[float],
            size: int, notes: str, **details: object) -> Metric:
    name, title, goal = spec
    ratios = [a / c for a, c in zip(app_s, curl_s, strict=True)]
    return Metric(name, title, "×", goal, ratios,
                  numerator=side("app: Downloader.download() incl. verification", "MB/s",
                                 app_s),
                  reference=side("curl -o file", "MB/s", curl_s),
                  details={"bytes": size, **details}, notes=notes)


def run(work: Path, quick: bool, runs: int) -> list[Metric]:
    """Throughput ratios, app ÷ curl: at 50 MB/s, and on unlimited loopback."""
    specs = (AT_LINK_SPEED, UNLIMITED)

    def none(reason: str) -> list[Metric]:
        return [not_measured(name, title, "×", goal, reason) for name, title, goal in specs]

    if not (ROOT / "tests" / "support" / "hubserver.py").exists():
        return none("tests/support/hubserver.py (the loopback Hub) is not in this tree")
    try:
        import llamadesk.core.downloads  # noqa: F401
    except ImportError as exc:
        return none(f"the downloader is not importable: {exc}")
    if shutil.which("curl") is None:
        return none("curl is not installed")
    from llamadesk.core import bundled

    model = bundled.locate().path
    size = model.stat().st_size
    n = 1 if quick else max(runs, 1)
    measured: list[Metric] = []
    plan: list[tuple[tuple[str, str, Goal], float, int, str]] = [
        (AT_LINK_SPEED, LINK_RATE, 1,
         "the server sends at most 50 MB/s; the app's sha256, fsyncs and GGUF check must "
         "hide behind the transfer"),
        (UNLIMITED, 0.0, 1,
         "information: on loopback the link costs nothing, so the app's checks (sha256, "
         "fsync, GGUF header) set the pace; the figure that matters is the 50 MB/s one"),
    ]
    for spec, rate, warm, notes in plan:
        app_s, curl_s = _measure(work, model, rate, n, warm)
        measured.append(_metric(spec, app_s, curl_s, size, notes,
                                rate_bytes_per_s=rate or None))
    return measured
