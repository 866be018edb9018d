"""Nothing goes on the network unless the user asks: the window starts, loads the bundled
model, chats, searches its chats, exports, opens Preferences and the Models window's
Installed tab with zero connections; the Hub is reached only once the user searches
it, and then only the Hub.

Two guards watch. Python's socket layer (``connect``, ``connect_ex``,
``create_connection``, ``getaddrinfo``) refuses and records any connection or name
lookup other than to this test's own loopback servers; and the process's open internet
sockets are listed (psutil) after each step, which also sees connections made outside
Python (Qt, llama.cpp). huggingface_hub's telemetry switch is left as a user has it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import huggingface_hub.constants
import psutil
import pytest
from hub_fixtures import SMOL_REPO
from hubserver import HubServer
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QFileDialog
from pytestqt.qtbot import QtBot
from window_fixtures import WindowFactory

from llamadesk.core.conversation import SamplingParams
from llamadesk.core.settings import AppSettings, HardwareSettings
from llamadesk.ui.main_window import MainWindow

WAIT_MS = 180_000
PARAMS = SamplingParams(temperature=0.7, max_tokens=16, n_ctx=1024, seed=4)
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@dataclass
class SocketGuard:
    """Records every connection and name lookup; refuses those not to allowed ports."""

    allowed_ports: set[int] = field(default_factory=set)
    seen: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def check(self, what: str, host: str, port: Any) -> None:
        self.seen.append(f"{what} {host}:{port}")
        if not (_is_loopback(host) and port in self.allowed_ports):
            self.refused.append(f"{what} {host}:{port}")
            raise OSError(f"the network guard refused {what} to {host}:{port}")

    before: set[tuple[object, object]] = field(default_factory=set)

    @staticmethod
    def _connected() -> set[tuple[object, object]]:
        return {(c.laddr, c.raddr) for c in psutil.Process().net_connections(kind="inet")
                if c.raddr}

    def note_existing(self) -> None:
        """Remember the sockets open before the test (kept-alive connections of earlier
        tests in this process), so only new ones count."""
        self.before = self._connected()

    def open_sockets(self) -> list[str]:
        """Internet sockets this process opened since, other than to allowed ports."""
        found = []
        for laddr, raddr in self._connected() - self.before:
            ip, port = raddr.ip, raddr.port  # type: ignore[attr-defined]
            if not (_is_loopback(ip) and port in self.allowed_ports):
                found.append(f"{laddr} -> {ip}:{port}")
        return found


@pytest.fixture
def guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[SocketGuard]:
    guard = SocketGuard()
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex
    create_connection, getaddrinfo = socket.create_connection, socket.getaddrinfo

    def address(sock: socket.socket, addr: Any) -> tuple[str, Any]:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            return str(addr[0]), addr[1]
        return "", None  # a Unix socket: not the network

    def guarded_connect(sock: socket.socket, addr: Any) -> None:
        host, port = address(sock, addr)
        if host:
            guard.check("connect", host, port)
        return connect(sock, addr)

    def guarded_connect_ex(sock: socket.socket, addr: Any) -> int:
        host, port = address(sock, addr)
        if host:
            guard.check("connect", host, port)
        return connect_ex(sock, addr)

    def guarded_create_connection(addr: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        guard.check("create_connection", str(addr[0]), addr[1])
        return create_connection(addr, *args, **kwargs)

    def guarded_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if not _is_loopback(name):
            guard.check("getaddrinfo", name, port)
        return getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(socket, "create_connection", guarded_create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    # As a user has it: the suite turns huggingface_hub's telemetry off for itself.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", False)
    monkeypatch.delenv("HF_HUB_DISABLE_TELEMETRY", raising=False)
    guard.note_existing()
    yield guard


class WindowDriver:
    """Drives the window the way a user does: menu actions, shortcuts, typing. The one
    place that knows how the window is built."""

    def __init__(self, qtbot: QtBot, window: MainWindow) -> None:
        self.qtbot = qtbot
        self.window = window

    def action(self, text: str) -> QAction:
        for action in self.window.findChildren(QAction):
            if action.text().replace("&", "") == text:
                return action
        raise AssertionError(f"no menu action {text!r}")

    def chat(self, text: str) -> None:
        with self.qtbot.waitSignal(self.window.controller.reply_finished, timeout=WAIT_MS):
            self.qtbot.keyClicks(self.window.chat.composer, text)
            self.qtbot.keyClick(self.window.chat.composer, Qt.Key.Key_Return)

    def search(self, text: str) -> int:
        self.action("Search all chats").trigger()
        self.qtbot.keyClicks(self.window.sidebar.search_box, text)
        results = self.window.sidebar.search_results
        self.qtbot.waitUntil(lambda: results.rowCount() > 0, timeout=5_000)
        return results.rowCount()

    def export(self, target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(QFileDialog, "getSaveFileName",
                            lambda *_args, **_kwargs: (str(target), "Markdown (*.md)"))
        self.action("Export chat as Markdown…").trigger()

    def preferences(self) -> None:
        """Open Preferences and press OK (which saves the settings)."""
        def accept() -> None:
            dialog = QApplication.activeModalWidget()
            assert dialog is not None, "Preferences opened"
            dialog.accept()  # type: ignore[attr-defined]

        QTimer.singleShot(0, accept)
        self.action("Preferences…").trigger()

    def models_installed(self) -> list[str]:
        """Open the Models window on its Installed tab; the names listed."""
        self.action("Manage models…").trigger()
        page = self.window.models_window.page  # type: ignore[union-attr]
        page.tabs.setCurrentIndex(0)
        return page.installed_ids()


@pytest.fixture
def window(real_window: WindowFactory) -> MainWindow:
    return real_window(settings=AppSettings(defaults=PARAMS,
                                            hardware=HardwareSettings(n_threads=1)), show=False)


def test_the_guard_refuses_and_records(guard: SocketGuard) -> None:
    with pytest.raises(OSError, match="refused"):
        socket.create_connection(("example.com", 443), timeout=1)
    with pytest.raises(OSError, match="refused"):
        socket.getaddrinfo("huggingface.co", 443)
    sock = socket.socket()
    try:
        with pytest.raises(OSError, match="refused"):
            sock.connect(("93.184.215.14", 80))
    finally:
        sock.close()
    assert guard.refused == ["create_connection example.com:443",
                             "getaddrinfo huggingface.co:443", "connect 93.184.215.14:80"]


def test_using_the_app_makes_no_connection(qtbot: QtBot, guard: SocketGuard,
                                           window: MainWindow, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    steps: dict[str, list[str]] = {}

    def step(name: str, action: Callable[[], object]) -> None:
        action()
        steps[name] = guard.open_sockets()

    drive = WindowDriver(qtbot, window)
    window.show()
    with qtbot.waitSignal(window.inference.model_loaded, timeout=WAIT_MS, raising=False):
        pass  # the window preloads the bundled model on start
    step("start and load the model", lambda: window.inference.model_info)
    # A reply with a link and an image: the view shows them, it fetches nothing.
    step("chat", lambda: drive.chat("Say hello. ![logo](https://example.com/logo.png) "
                                    "and see https://example.org"))
    step("search", lambda: drive.search("hello"))
    step("export", lambda: drive.export(tmp_path / "chat.md", monkeypatch))
    step("preferences", drive.preferences)
    step("models, installed", drive.models_installed)
    qtbot.wait(200)  # anything started in the background has had time to try

    assert window.inference.model_info is not None, "the bundled model loaded"
    assert (tmp_path / "chat.md").is_file()
    assert drive.models_installed() == ["smollm2-135m-instruct-q4_1"]
    assert guard.seen == [], f"network use: {guard.seen}"
    assert all(found == [] for found in steps.values()), steps


def test_the_hub_is_reached_only_when_the_user_searches(
        qtbot: QtBot, guard: SocketGuard, window: MainWindow, hub_server: HubServer) -> None:
    hub_port = int(hub_server.url.rsplit(":", 1)[1])
    guard.allowed_ports.add(hub_port)
    drive = WindowDriver(qtbot, window)
    window.show()
    drive.models_installed()
    page = window.models_window.page  # type: ignore[union-attr]
    page.tabs.setCurrentIndex(1)  # the catalog: from the app's own file
    qtbot.wait(300)
    assert guard.seen == [], "opening the Models window reaches nothing"
    assert hub_server.requests == []

    page.tabs.setCurrentIndex(2)
    search = page.hub_search
    search.search_box.setText("SmolLM2")
    with qtbot.waitSignal(page.queries.search_finished, timeout=60_000):
        search.search_button.click()
    assert hub_server.requests, "the search went to the Hub the user configured"
    assert guard.seen and all(f":{hub_port}" in s for s in guard.seen), guard.seen
    assert guard.refused == []
    assert SMOL_REPO in [search.repo_list.topLevelItem(i).text(0)
                         for i in range(search.repo_list.topLevelItemCount())]


def test_indexing_and_document_chat_make_no_connection(
        guard: SocketGuard, tmp_path: Path, bundled_model_path: Path) -> None:
    from doc_files import write_docx, write_pdf

    from llamadesk.cli import main as cli
    from llamadesk.core.documents.quoting import sources
    from llamadesk.core.paths import app_paths
    from llamadesk.core.store_open import open_store

    docs = tmp_path / "docs"
    docs.mkdir()
    write_pdf(docs / "tax.pdf", ["The tax refund for 2025 was 1,234 euros."])
    write_docx(docs / "garden.docx", [("Tomatoes", "Tomatoes need six hours of sun.")])
    (docs / "page.html").write_text('<p>See <a href="https://example.com">this</a>.</p>'
                                    '<img src="https://example.com/x.png">')
    assert cli.main(["docs", "add", "Home", str(docs)]) == 0
    assert cli.main(["docs", "search", "Home", "tax refund"]) == 0
    assert cli.main(["chat", "--new", "--max-tokens", "8", "--docs", "Home",
                     "What was the tax refund?"]) == 0
    store = open_store(app_paths())  # the same key the commands used
    reply = store.messages(store.list_conversations()[0].id)[-1]
    assert [p.where for p in sources(store, reply.id)] == ["tax.pdf p. 1"]
    store.close()
    assert guard.seen == [], f"network use: {guard.seen}"
    assert guard.open_sockets() == []
