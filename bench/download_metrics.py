"""Download throughput: the app's downloader against curl, both fetching the bundled
model's bytes from the loopback Hub server (tests/support/hubserver.py).

The server runs in its own process so that neither client shares an interpreter with
it; the app side is the whole ``Downloader.download()`` a user waits for (resolve,
stream to a .part file, verify sha256 and the GGUF header, register).
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

_SERVER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from hubserver import HubServer
server = HubServer()
server.add_repo(sys.argv[2], {Path(sys.argv[3]).name: Path(sys.argv[3])})
server.start()
print(server.url, flush=True)
sys.stdin.read()
server.stop()
"""


def run(work: Path, quick: bool, runs: int) -> list[Metric]:
    """Throughput ratio, app ÷ curl."""
    title = "download throughput, app ÷ curl (loopback Hub)"
    goal = Goal(">=", 0.9)
    if not (ROOT / "tests" / "support" / "hubserver.py").exists():
        return [not_measured("download_ratio", title, "×", goal,
                             "tests/support/hubserver.py (the loopback Hub) is not in this tree")]
    try:
        from llamadesk.core.downloads import Downloader, DownloadRequest
        from llamadesk.core.hub import HubClient
        from llamadesk.core.paths import app_paths
        from llamadesk.core.registry import ModelRegistry
    except ImportError as exc:
        return [not_measured("download_ratio", title, "×", goal,
                             f"the downloader is not importable: {exc}")]
    curl = shutil.which("curl")
    if curl is None:
        return [not_measured("download_ratio", title, "×", goal, "curl is not installed")]
    from llamadesk.core import bundled

    model = bundled.locate().path
    size = model.stat().st_size
    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(ROOT / "tests" / "support"),
                               REPO, str(model)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        old = os.environ.get("HF_ENDPOINT")
        os.environ["HF_ENDPOINT"] = url
        paths = app_paths(work / "home-download").ensure()
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

        app_s, curl_s = alternate(max(runs, 1) if not quick else 1, 1, app, by_curl)
        if old is None:
            os.environ.pop("HF_ENDPOINT", None)
        else:
            os.environ["HF_ENDPOINT"] = old
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(10)
    ratios = [a / c for a, c in zip(app_s, curl_s, strict=True)]
    return [Metric("download_ratio", title, "×", goal, ratios,
                   numerator=side("app: Downloader.download() incl. verification", "MB/s",
                                  app_s),
                   reference=side("curl -o file", "MB/s", curl_s),
                   details={"bytes": size},
                   notes="the app's figure includes sha256 and GGUF checks and registering")]
