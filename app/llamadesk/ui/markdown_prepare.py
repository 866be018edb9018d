"""markdown-it, imported on a helper thread while a reply is written (ui/message_view.py
asks for it when a reply's live row is made): a new chat's first reply would otherwise
pay for it (~25 ms) on the GUI thread when it ends."""

from __future__ import annotations

import importlib
import logging
import sys
import threading

log = logging.getLogger(__name__)


def prepare_markdown() -> None:
    """Import the Markdown renderer on a helper thread while a reply is written, once:
    a new chat's first reply would otherwise pay for markdown-it (~25 ms) on the GUI
    thread when it ends. An import that fails here fails again, and says so, there."""
    global _markdown_asked
    if _markdown_asked or "llamadesk.ui.markdown" in sys.modules:
        return
    _markdown_asked = True

    def load() -> None:
        try:
            importlib.import_module("llamadesk.ui.markdown")
        except ImportError as exc:
            log.warning("could not prepare the Markdown renderer: %s", exc)

    threading.Thread(target=load, name="llamadesk-markdown-import", daemon=True).start()


_markdown_asked = False
