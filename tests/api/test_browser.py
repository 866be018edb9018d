"""A real browser (headless Chromium) on this computer against the real local API: a page
from a loopback origin that is not allowed cannot read the API nor make it run a chat,
and a name rebound to 127.0.0.1 (DNS rebinding, made by Chromium's own resolver rules)
gets a refusal. The same page from an allowed origin reads the API, so a failure above
is the API's doing, not the harness's.

Chromium comes from the Debian package ``chromium`` (.ci/run installs it). Without it
the tests fail under CI=true, and are skipped elsewhere. Every name Chromium looks up,
other than those the test maps to 127.0.0.1, is made to fail: nothing leaves the
machine."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from api_support import start_server

from llamadesk.api.server import ApiServer
from llamadesk.core import bundled
from llamadesk.services.inference import InferenceService

WAIT_S = 90
PAGE = """<!doctype html><title>a page on this computer</title><script>
const api = "%(api)s", chat = JSON.stringify(%(chat)s);
async function attempt(name, run) {
  try { return [name, "read", await run()]; } catch (e) { return [name, "failed", String(e)]; }
}
(async () => {
  const results = [await attempt("list", async () =>
    (await (await fetch(api + "/models")).json()).data.map(m => m.id).join(","))];
  if (!%(allowed)s) {
    results.push(await attempt("chat", async () => {
      const r = await fetch(api + "/chat/completions", {method: "POST", body: chat,
        headers: {"Content-Type": "application/json"}});
      return r.status + " " + await r.text(); }));
    // Requests a page may send without a preflight; their answers stay unreadable, but
    // without the API's checks the first would run a chat.
    results.push(await attempt("untyped", async () => (await fetch(api + "/chat/completions",
      {method: "POST", mode: "no-cors", body: new Blob([chat])})).type));
    results.push(await attempt("text", async () => (await fetch(api + "/chat/completions",
      {method: "POST", mode: "no-cors", body: chat})).type));
  }
  await fetch("/report", {method: "POST", body: JSON.stringify(results)});
})();
</script>"""


@pytest.fixture
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no chromium: install the Debian package chromium (.ci/run does)")
        pytest.skip("no chromium here (apt-get install chromium); CI fails instead")
    return found


class PageServer:
    """A loopback web server with one page, and a place where the page reports."""

    def __init__(self, page: str) -> None:
        self.reports: list[Any] = []
        self.reported = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = page.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                outer.reports.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()
                outer.reported.set()

            def log_message(self, *_args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.http.server_address[1]}"
        self._thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def browse(chromium: str, profile: Path, url: str, *options: str,
           dump: bool = False) -> subprocess.Popen[str]:
    """Chromium, headless, with a fresh profile; every name it looks up fails unless
    ``options`` map it first."""
    rules = next((o for o in options if o.startswith("MAP ")), None)
    resolver = (f"{rules + ', ' if rules else ''}MAP * ~NOTFOUND, EXCLUDE localhost, "
                "EXCLUDE 127.0.0.1")
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-extensions",
            "--disable-domain-reliability", "--no-pings", "--proxy-server=direct://",
            f"--host-resolver-rules={resolver}", f"--user-data-dir={profile}"]
    if dump:
        args.append("--dump-dom")
    return subprocess.Popen([*args, url], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)


def end(process: subprocess.Popen[str]) -> str:
    """Stop the browser (and its helper processes, in its own session); its output."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.stdout.read() if process.stdout else ""


def page_reports(chromium: str, tmp_path: Path, api: ApiServer, allowed: bool
                 ) -> tuple[str, dict[str, tuple[str, str]]]:
    chat = {"model": bundled.manifest().id, "max_tokens": 4,
            "messages": [{"role": "user", "content": "Hi"}]}
    page = PageServer(PAGE % {"api": api.base_url, "chat": json.dumps(chat),
                              "allowed": "true" if allowed else "false"})
    try:
        if allowed:
            api.set_access(None, (page.origin,), ())
        browser = browse(chromium, tmp_path / f"profile-{allowed}", page.origin + "/")
        try:
            assert page.reported.wait(WAIT_S), "the page did not report"
        finally:
            end(browser)
    finally:
        page.close()
    return page.origin, {name: (outcome, detail) for name, outcome, detail in page.reports[0]}


@pytest.fixture
def api(service: InferenceService) -> Iterator[ApiServer]:
    server = start_server(service)
    yield server
    server.stop()


def test_a_page_from_an_origin_not_allowed_cannot_use_the_api(
        chromium: str, tmp_path: Path, api: ApiServer, service: InferenceService) -> None:
    _origin, results = page_reports(chromium, tmp_path, api, allowed=False)
    assert results["list"][0] == "failed", results
    assert results["chat"][0] == "failed", results
    assert results["untyped"] == ("read", "opaque")  # sent; the answer is not readable
    assert results["text"] == ("read", "opaque")
    assert api.recent() == [], "no chat ran"
    assert service.model_info is None, "no model was loaded"


def test_the_same_page_from_an_allowed_origin_can(chromium: str, tmp_path: Path,
                                                  api: ApiServer) -> None:
    _origin, results = page_reports(chromium, tmp_path, api, allowed=True)
    assert results["list"] == ("read", bundled.manifest().id)


def test_a_name_rebound_to_this_computer_is_refused(chromium: str, tmp_path: Path,
                                                    api: ApiServer) -> None:
    rebound = browse(chromium, tmp_path / "rebound",
                     f"http://rebind.attacker.test:{api.port}/v1/models",
                     "MAP rebind.attacker.test 127.0.0.1", dump=True)
    local = browse(chromium, tmp_path / "local", f"http://localhost:{api.port}/v1/models",
                   dump=True)
    try:
        rebound.wait(WAIT_S)
        local.wait(WAIT_S)
    finally:
        refused, served = end(rebound), end(local)
    assert "host_not_allowed" in refused and bundled.manifest().id not in refused
    assert bundled.manifest().id in served and "host_not_allowed" not in served
