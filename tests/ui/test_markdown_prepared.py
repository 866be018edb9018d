"""While a reply is written, markdown-it is imported on a helper thread, so the first
reply's end does not pay for it on the GUI thread (a fresh interpreter: the test run has
imported it long ago)."""

from __future__ import annotations

import os
import subprocess
import sys

CHILD = r"""
import sys, threading, time
from PySide6.QtWidgets import QApplication
from llamadesk.core.conversation import Message, Role
from llamadesk.ui.message_model import MessageListModel
from llamadesk.ui.message_view import MessageView
from llamadesk.ui.model_names import ModelNames

importers = []

class Finder:
    def find_spec(self, name, path=None, target=None):
        if name == "markdown_it":
            importers.append(threading.current_thread().name)
        return None

app = QApplication([])
view = MessageView(ModelNames())
model = MessageListModel()
view.setModel(model)
view.resize(500, 300)
view.show()
model.append_message(Message(id=1, conversation_id=1, role=Role.USER, content="Hi",
                             parent_id=None, created_at=0.0))
app.processEvents()
assert "markdown_it" not in sys.modules, "imported before any reply"
sys.meta_path.insert(0, Finder())
model.begin_reply()
model.append_reply_text("Hello there")
deadline = time.monotonic() + 60
while "llamadesk.ui.markdown" not in sys.modules or not importers:
    app.processEvents()
    assert time.monotonic() < deadline, "never imported"
    time.sleep(0.01)
print(importers)
"""


def test_a_streaming_reply_imports_markdown_on_a_helper_thread() -> None:
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['llamadesk-markdown-import']"
