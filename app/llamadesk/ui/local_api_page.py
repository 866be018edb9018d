"""Preferences → Local API: who may use the window's local API besides programs on this
computer (docs/api.md, "Web pages"): the key for them too, the web pages (origins) and
the host names allowed. Each list is checked as it is typed; a bad entry keeps the
dialog open and says why."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QWidget,
)

from llamadesk.core.api_access import (
    AccessListError,
    normalize_host_name,
    normalize_origin,
    parse_list,
)
from llamadesk.core.secrets import ApiKeyStore
from llamadesk.core.settings import LocalApiSettings

REQUIRE_KEY = "Require the key for programs on this computer as well"


class LocalApiPage(QWidget):
    """The Local API tab of Preferences; ``local_api()`` gives the settings as edited."""

    def __init__(self, settings: LocalApiSettings, keys: ApiKeyStore | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._keys = keys or ApiKeyStore()
        self.require_key = QCheckBox(REQUIRE_KEY)
        self.require_key.setChecked(settings.require_key)
        self.require_key.setToolTip("Programs then send it as 'Authorization: Bearer <key>' "
                                    "(the openai package: api_key=…).")
        self.copy_key = QPushButton("&Copy the API key")
        self.copy_key.setToolTip("Copies the API key (made now if there is none yet; kept "
                                 "in the system keyring)")
        self.copy_key.clicked.connect(self._copy_key)
        self.key_note = QLabel()
        self.key_note.setObjectName("apiKeyNote")
        self.key_note.setWordWrap(True)
        self.origins = self._list_edit(settings.allowed_origins, "https://app.example:8443",
                                       "Web pages allowed to use the local API")
        self.hosts = self._list_edit(settings.allowed_hosts, "llm.home.arpa",
                                     "Host names allowed for the local API")
        self.problem = QLabel()
        self.problem.setObjectName("localApiProblem")
        self.problem.setWordWrap(True)
        # The error banner's tint: readable on light and dark themes alike.
        self.problem.setStyleSheet("#localApiProblem { background: rgba(220, 60, 60, 40); "
                                   "padding: 6px; border-radius: 4px; }")
        self.problem.hide()
        self._settings = settings
        key_row = QHBoxLayout()
        key_row.addWidget(self.copy_key)
        key_row.addWidget(self.key_note, 1)
        form = QFormLayout(self)
        intro = QLabel("Programs on this computer (curl, editor plugins, the openai package) "
                       "can use the local API. Web pages you visit cannot, unless you "
                       "allow their origin below.")
        intro.setWordWrap(True)
        form.addRow(intro)
        form.addRow("", self.require_key)
        form.addRow("", key_row)
        form.addRow("Allowed web pages", self.origins)
        form.addRow("", self._note("Origins, one a line, like https://app.example:8443. "
                                   "A page you allow can use your models as any program "
                                   "can: allow only pages you trust."))
        form.addRow("Allowed host names", self.hosts)
        form.addRow("", self._note("Besides localhost and 127.0.0.1: other names of this "
                                   "computer that programs use to reach the API."))
        form.addRow(self.problem)

    def _list_edit(self, entries: tuple[str, ...], example: str, name: str) -> QPlainTextEdit:
        edit = QPlainTextEdit("\n".join(entries))
        edit.setPlaceholderText(example)
        edit.setAccessibleName(name)
        edit.setTabChangesFocus(True)
        edit.setMaximumHeight(80)
        edit.textChanged.connect(self._check)
        return edit

    @staticmethod
    def _note(text: str) -> QLabel:
        note = QLabel(text)
        note.setWordWrap(True)
        note.setEnabled(False)
        return note

    @Slot()
    def _check(self) -> None:
        problem = self.why_invalid()
        self.problem.setText(problem or "")
        self.problem.setVisible(problem is not None)

    def why_invalid(self) -> str | None:
        """What is wrong with the lists as typed, or None."""
        try:
            self._lists()
        except AccessListError as exc:
            return str(exc)
        return None

    def _lists(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return (parse_list(self.origins.toPlainText(), normalize_origin),
                parse_list(self.hosts.toPlainText(), normalize_host_name))

    def local_api(self) -> LocalApiSettings:
        """The settings as edited (raises AccessListError while a list is not valid)."""
        origins, hosts = self._lists()
        return replace(self._settings, require_key=self.require_key.isChecked(),
                       allowed_origins=origins, allowed_hosts=hosts)

    @Slot()
    def _copy_key(self) -> None:
        key = self._keys.get()
        made = None if key else self._keys.create()
        value = key or (made.value if made else "")
        clipboard = QGuiApplication.clipboard()
        if clipboard is not None:
            clipboard.setText(value)
        kept = "" if made is None or made.persisted else \
            " No system keyring is available: this key lasts until LlamaDesk quits."
        self.key_note.setText(f"Copied{' a new key' if made else ''}. Programs send it as "
                              f"'Authorization: Bearer <key>'.{kept}")
